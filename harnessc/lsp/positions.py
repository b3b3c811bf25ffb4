"""Character offsets ↔ LSP positions.

The compiler's spans are half-open ranges of character (code point) offsets into the Python string of the
source. LSP positions are a 0-based line and a 0-based column counted in the *code units* of the
encoding negotiated at `initialize`: UTF-16 unless the client offers another (`utf-8`, `utf-32`). A line
with an emoji before an error therefore has different columns in each: `"😀 {x}"` puts `x` at code point
4, UTF-16 unit 5 and UTF-8 byte 7.

Lines end at `\\n`, `\\r\\n` or a lone `\\r`, as the protocol defines them. Nothing here imports pygls.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass, field

UTF8, UTF16, UTF32 = "utf-8", "utf-16", "utf-32"
_LINE_BREAK = re.compile(r"\r\n|\r|\n")


def _units(text: str, encoding: str) -> int:
    """The length of `text` in code units of `encoding`."""
    if encoding == UTF32 or text.isascii():
        return len(text)
    if encoding == UTF8:
        return len(text.encode("utf-8", errors="surrogatepass"))
    return len(text) + sum(1 for char in text if ord(char) > 0xFFFF)


@dataclass(frozen=True)
class LineIndex:
    """The line starts of one text, for converting offsets and positions in one encoding."""

    text: str
    encoding: str = UTF16
    line_starts: tuple[int, ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        starts = [0] + [match.end() for match in _LINE_BREAK.finditer(self.text)]
        object.__setattr__(self, "line_starts", tuple(starts))

    def _line_end(self, line: int) -> int:
        """The offset where line `line`'s text ends (before its line break)."""
        if line + 1 >= len(self.line_starts):
            return len(self.text)
        end = self.line_starts[line + 1] - 1
        if end > 0 and self.text[end] == "\n" and self.text[end - 1] == "\r":
            end -= 1
        return max(end, self.line_starts[line])

    def position(self, offset: int) -> tuple[int, int]:
        """The 0-based (line, column in code units) of a character offset, clamped to the text."""
        offset = max(0, min(offset, len(self.text)))
        line = bisect.bisect_right(self.line_starts, offset) - 1
        start = self.line_starts[line]
        offset = min(offset, self._line_end(line))  # an offset inside a "\r\n" lands before it
        return line, _units(self.text[start:offset], self.encoding)

    def offset(self, line: int, column: int) -> int:
        """The character offset of a 0-based (line, column in code units); past the end of a line is its end.

        A column inside a character (the second unit of a UTF-16 surrogate pair, a UTF-8 continuation
        byte) counts as that character's start."""
        if line < 0:
            return 0
        if line >= len(self.line_starts):
            return len(self.text)
        start, end = self.line_starts[line], self._line_end(line)
        if self.encoding == UTF32 or self.text[start:end].isascii():
            return start + max(0, min(column, end - start))
        units = 0
        for index in range(start, end):
            width = _units(self.text[index], self.encoding)
            if units + width > column:
                return index
            units += width
        return end

    def line_text(self, line: int) -> str:
        """Line `line` (0-based) without its line break; "" past the end."""
        if not 0 <= line < len(self.line_starts):
            return ""
        return self.text[self.line_starts[line] : self._line_end(line)]
