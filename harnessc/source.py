"""Source files and spans: every AST and IR node points back at the text it came from."""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Union


@dataclass(frozen=True, slots=True)
class Span:
    """A half-open character range [start, end) of one file, with 1-based line and column of both ends."""

    file: str
    start: int
    end: int
    line: int
    column: int
    end_line: int
    end_column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"

    def to_json(self) -> dict[str, object]:
        return {
            "file": self.file,
            "start": self.start,
            "end": self.end,
            "line": self.line,
            "column": self.column,
            "end_line": self.end_line,
            "end_column": self.end_column,
        }

    @staticmethod
    def from_json(data: dict) -> Span:
        return Span(**data)


@dataclass(frozen=True)
class SourceFile:
    """The text of one file and the offsets where its lines start (for offset → line:column)."""

    path: str
    text: str
    line_starts: tuple[int, ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        starts = [0] + [index + 1 for index, char in enumerate(self.text) if char == "\n"]
        object.__setattr__(self, "line_starts", tuple(starts))

    def position(self, offset: int) -> tuple[int, int]:
        """1-based (line, column) of a character offset; offsets past the end land after the last char."""
        offset = max(0, min(offset, len(self.text)))
        line_index = bisect.bisect_right(self.line_starts, offset) - 1
        return line_index + 1, offset - self.line_starts[line_index] + 1

    def span(self, start: int, end: int | None = None) -> Span:
        end = start if end is None else end
        line, column = self.position(start)
        end_line, end_column = self.position(end)
        return Span(self.path, start, end, line, column, end_line, end_column)

    def line_text(self, line: int) -> str:
        if not 1 <= line <= len(self.line_starts):
            return ""
        start = self.line_starts[line - 1]
        end = self.line_starts[line] - 1 if line < len(self.line_starts) else len(self.text)
        return self.text[start:end].rstrip("\r")

    def end_span(self) -> Span:
        """A zero-width span at the last non-blank character: where "unexpected end of file" points."""
        stripped = self.text.rstrip()
        return self.span(len(stripped), len(stripped))


class ShiftedSource:
    """Quacks like SourceFile for a substring of one: the text of a template placeholder, parsed on its own.
    Offsets in the substring map through `offsets` (one source offset per character) to the file's spans."""

    where = "placeholder"  # what "unexpected end of ..." is the end of

    def __init__(self, source: SourceFile, text: str, offsets: Sequence[int]) -> None:
        self.source = source
        self.offsets = offsets
        self.path = source.path
        self.text = text

    def real(self, offset: int) -> int:
        if not self.offsets:
            return 0
        if offset >= len(self.offsets):
            return self.offsets[-1] + 1
        return self.offsets[offset]

    def span(self, start: int, end: int | None = None) -> Span:
        end = start if end is None else end
        real_end = self.real(end - 1) + 1 if end > start else self.real(start)
        return self.source.span(self.real(start), real_end)

    def end_span(self) -> Span:
        stripped = self.text.rstrip()
        return self.span(len(stripped), len(stripped))


# What the parser reads from: a whole file, or a placeholder's text inside one.
AnySource = Union[SourceFile, ShiftedSource]
