"""String literals: a token's text → its value, with the source offset of every character kept.

Escapes are `\\\\ \\" \\n \\t` (any other backslash is kept as written, so LaTeX such as `\\boxed` needs no
doubling); triple-quoted strings are dedented like Python's textwrap.dedent after dropping a blank first
and last line. The offsets let diagnostics about a template point inside the string they come from.
"""

from __future__ import annotations

import re
from array import array
from collections.abc import Sequence

from lark import Token

from harnessc import ast
from harnessc.source import AnySource, ShiftedSource

_ESCAPES = {"\\": "\\", '"': '"', "n": "\n", "t": "\t"}
_ESCAPE = re.compile(r'\\[\\"nt]')


def decode_string(token: Token, source: AnySource) -> ast.Text:
    """Decode a literal. Offsets stay compact (a range, or an array): see ast.Text."""
    raw = str(token)
    long = raw.startswith('"""')
    quote = 3 if long else 1
    body = raw[quote:-quote]
    start_pos, end_pos = _position(token.start_pos), _position(token.end_pos)
    offsets: Sequence[int] = range(start_pos + quote, end_pos - quote)
    if isinstance(source, ShiftedSource):
        # A string inside a template placeholder (`{join(labels, ", ")}`): its offsets are positions in the
        # placeholder's text and must be mapped back to the file, or its diagnostics land on another line.
        offsets = array("q", (source.real(offset) for offset in offsets))
    pieces: list[str] = [body]
    if long:
        pieces, offsets = _dedent(body, offsets)
    value, value_offsets = _unescape(pieces, offsets)
    return ast.Text(value="".join(value), offsets=value_offsets, span=source.span(start_pos, end_pos), long=long)


def _position(position: int | None) -> int:
    assert position is not None  # the lexer sets the positions of every token it makes
    return position


def _unescape(chars: Sequence[str], offsets: Sequence[int]) -> tuple[list[str], Sequence[int]]:
    """Decode the escapes, left to right; `offsets` has one entry per character of `"".join(chars)`, and so
    has the result (whose items may be longer pieces of text: only their concatenation matters)."""
    text = "".join(chars)
    if "\\" not in text:
        return [text], offsets
    out: list[str] = []
    out_offsets = array("q")
    done = 0
    for match in _ESCAPE.finditer(text):
        start = match.start()
        out += [text[done:start], _ESCAPES[text[start + 1]]]
        out_offsets.extend(offsets[done:start])
        out_offsets.append(offsets[start])
        done = start + 2
    out.append(text[done:])
    out_offsets.extend(offsets[done:])
    return out, out_offsets


def _dedent(chars: Sequence[str], offsets: Sequence[int]) -> tuple[list[str], Sequence[int]]:
    """Drop a blank first and last line and the common indentation; one offset per character kept."""
    lines = _split_lines("".join(chars))
    if lines and not lines[0][0].strip():
        lines = lines[1:]
    if lines and not lines[-1][0].strip():
        lines = lines[:-1]
    indents = [len(text) - len(text.lstrip(" \t")) for text, _ in lines if text.strip()]
    cut = min(indents, default=0)
    out: list[str] = []
    out_offsets = array("q")
    for number, (text, begin) in enumerate(lines):
        if number:
            out.append("\n")
            out_offsets.append(offsets[begin] - 1 if text else (out_offsets[-1] if out_offsets else 0))
        out.append(text[cut:])
        out_offsets.extend(offsets[begin + cut : begin + len(text)])
    return out, out_offsets


def _split_lines(text: str) -> list[tuple[str, int]]:
    """Each line (without its line break, nor the carriage returns of a CRLF file) and where it starts."""
    lines: list[tuple[str, int]] = []
    start = 0
    for piece in text.split("\n"):
        lines.append((piece.rstrip("\r"), start))
        start += len(piece) + 1
    return lines
