"""Tokens of a `.harness` text as the editor features read it: the grammar's token rules (harnessc/grammar.lark),
applied to text that may be half written, and the `{...}` placeholders inside string literals."""

from __future__ import annotations

import re
from dataclasses import dataclass

# ---- tokens ------------------------------------------------------------------------------------------------

NAME, NUMBER, STRING, COMMENT, PUNCT, OTHER = "name", "number", "string", "comment", "punct", "other"

# One token at a time, by the grammar's rules (harnessc/grammar.lark); strings are finished by `lex`.
_TOKEN_PARTS = (
    r"(?P<space>[ \t\f\r\n]+)",
    r"(?P<comment>\#[^\n]*)",
    r"(?P<quote>{quote})",
    r"(?P<name>[A-Za-z_][A-Za-z0-9_]*)",
    r"(?P<number>-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)",
    r"(?P<punct>==|!=|<=|>=|[{{}}()\[\],:=.<>])",
    r"(?P<other>.)",
)
_TOKEN = re.compile("|".join(_TOKEN_PARTS).format(quote='"'), re.S)
_ESCAPED_TOKEN = re.compile("|".join(_TOKEN_PARTS).format(quote=r'\\"|"'), re.S)
_KINDS = {"comment": COMMENT, "name": NAME, "number": NUMBER, "punct": PUNCT, "other": OTHER}

# Words that continue an expression rather than end it.
OPERATOR_WORDS = frozenset({"and", "or", "not", "for", "in"})
# Words that start a top-level declaration wherever they stand (the views need a look at the next token).
DECLARATION_WORDS = ("harness", "import", "input", "param", "snippet", "bank", "llm", "let", "loop")
VIEW_WORDS = ("student", "teacher", "output", "student_output", "grade")
TEMPLATE_WORDS = ("if", "for", "in", "else", "end")


@dataclass(frozen=True, slots=True)
class Token:
    """One token; a string knows where its content starts and ends and whether it was closed."""

    kind: str
    text: str
    start: int
    end: int
    long: bool = False  # a triple-quoted string
    closed: bool = True  # a string with its closing quote
    content_start: int = 0
    content_end: int = 0
    escaped_quotes: bool = False  # a string inside a placeholder of a one-line string: `\"...\"`


def lex(text: str, start: int = 0, end: int | None = None, *, escaped_quotes: bool = False) -> list[Token]:
    """The tokens of `text[start:end]`, comments included. Never fails: an unknown character is an OTHER
    token, an unterminated string runs to the end of its line (a triple-quoted one to the end).

    With `escaped_quotes`, the text is the inside of a placeholder in a one-line string, where a nested
    string literal is written `\\"...\\"`."""
    end = len(text) if end is None else end
    pattern = _ESCAPED_TOKEN if escaped_quotes else _TOKEN
    tokens: list[Token] = []
    append = tokens.append
    index = start
    while index < end:
        match = pattern.match(text, index, end)
        assert match is not None  # `other` matches any character
        kind, stop = match.lastgroup, match.end()
        if kind == "space":
            pass
        elif kind == "quote":
            if match.group() == '\\"':
                close = text.find('\\"', index + 2, end)
                closed = close >= 0
                stop = close + 2 if closed else end
                content_end = close if closed else end
                append(Token(STRING, text[index:stop], index, stop, False, closed, index + 2, content_end, True))
            elif text.startswith('"""', index):
                close = text.find('"""', index + 3, end)
                closed = close >= 0
                stop = close + 3 if closed else end
                content_end = close if closed else end
                append(Token(STRING, text[index:stop], index, stop, True, closed, index + 3, content_end))
            else:
                stop, closed = _string_end(text, index + 1, end)
                content_end = stop - 1 if closed else stop
                append(Token(STRING, text[index:stop], index, stop, False, closed, index + 1, content_end))
        else:
            append(Token(_KINDS[kind], match.group(), index, stop))  # type: ignore[index]
        index = stop
    return tokens


def _string_end(text: str, index: int, end: int) -> tuple[int, bool]:
    """After the opening `"` of a one-line string: the offset after its closing quote and True, or the end
    of the line (the string is unterminated) and False."""
    while index < end:
        char = text[index]
        if char == "\\" and index + 1 < end and text[index + 1] != "\n":
            index += 2
        elif char == '"':
            return index + 1, True
        elif char == "\n":
            return index, False
        else:
            index += 1
    return end, False


@dataclass(frozen=True, slots=True)
class Placeholder:
    """A `{...}` inside a string: from its `{` to its `}` (or to where it stops, unclosed)."""

    start: int
    end: int
    inner_start: int
    inner_end: int
    closed: bool


def placeholders(text: str, start: int, end: int, escaped_quotes: bool = False) -> list[Placeholder]:
    """The `{...}` placeholders and block tags of the string content `text[start:end]`, as the compiler
    reads them (harnessc/template.py): `{{`, `}}` and `{}` are literal; a `{` whose `}` never comes (a
    `{` or the end comes first) is an unclosed placeholder running up to there."""
    found: list[Placeholder] = []
    index = start
    while index < end:
        pair = text[index : index + 2]
        if pair in ("{{", "}}", "{}"):
            index += 2
            continue
        if text[index] != "{":
            index += 1
            continue
        close = _find_close(text, index + 1, end, escaped_quotes)
        if close is None:
            stop = text.find("{", index + 1, end)
            stop = end if stop < 0 else stop
            found.append(Placeholder(index, stop, index + 1, stop, False))
            index = stop
            continue
        found.append(Placeholder(index, close + 1, index + 1, close, True))
        index = close + 1
    return found


def _find_close(text: str, index: int, end: int, escaped_quotes: bool) -> int | None:
    """The `}` closing a placeholder opened just before `index`, skipping nested string literals."""
    while index < end:
        char = text[index]
        if escaped_quotes and text.startswith('\\"', index):
            stop = text.find('\\"', index + 2, end)
            if stop < 0:
                return None
            index = stop + 2
            continue
        if not escaped_quotes and char == '"':
            stop = text.find('"', index + 1, end)
            if stop < 0:
                return None
            index = stop + 1
            continue
        if char == "\\" and escaped_quotes:
            index += 2
            continue
        if char == "}":
            return index
        if char == "{":
            return None
        index += 1
    return None
