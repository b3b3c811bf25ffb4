"""Diagnostics are data first (code, severity, span, labels, hints), text second (rustc-style rendering)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from harnessc.codes import CODES, Level
from harnessc.source import SourceFile, Span

Severity = Level


@dataclass(frozen=True, slots=True)
class Label:
    """A secondary span with its own short message (e.g. "first defined here")."""

    span: Span
    message: str


@dataclass(frozen=True, slots=True)
class Diagnostic:
    code: str
    message: str
    span: Span
    label: str = ""  # the short text under the carets of the primary span
    labels: tuple[Label, ...] = ()
    hints: tuple[str, ...] = ()
    severity: Severity | None = None  # None: the code's registered severity

    def __post_init__(self) -> None:
        if self.code not in CODES:
            raise KeyError(f"diagnostic code {self.code!r} is not registered in harnessc/codes.py")
        if self.severity is None:
            object.__setattr__(self, "severity", CODES[self.code].severity)

    @property
    def level(self) -> Severity:
        """The severity, never None (`__post_init__` fills in the code's registered one)."""
        return self.severity if self.severity is not None else CODES[self.code].severity

    @property
    def is_error(self) -> bool:
        return self.level == Severity.ERROR

    def sort_key(self) -> tuple:
        return (self.span.file, self.span.start, self.span.end, self.code, self.message)

    def to_json(self) -> dict[str, object]:
        return {
            "code": self.code,
            "severity": self.level.value,
            "message": self.message,
            "span": self.span.to_json(),
            "label": self.label,
            "labels": [{"span": item.span.to_json(), "message": item.message} for item in self.labels],
            "hints": list(self.hints),
        }


class CompileError(Exception):
    """Raised by APIs that need a valid harness (the runtime, the trainer) when the checker found errors."""

    def __init__(self, diagnostics: Iterable[Diagnostic], sources: Mapping[str, SourceFile]) -> None:
        self.diagnostics = sorted(diagnostics, key=Diagnostic.sort_key)
        self.sources = dict(sources)
        super().__init__(render_all(self.diagnostics, self.sources, color=False))


def sorted_unique(diagnostics: Iterable[Diagnostic]) -> list[Diagnostic]:
    seen: set[tuple] = set()
    unique = []
    for diagnostic in sorted(diagnostics, key=Diagnostic.sort_key):
        key = (diagnostic.code, diagnostic.span, diagnostic.message)
        if key not in seen:
            seen.add(key)
            unique.append(diagnostic)
    return unique


# ---- rendering ----------------------------------------------------------------------------------------

_COLORS = {"error": "\x1b[1;31m", "warning": "\x1b[1;33m", "blue": "\x1b[1;34m", "bold": "\x1b[1m", "reset": "\x1b[0m"}


def render(diagnostic: Diagnostic, sources: Mapping[str, SourceFile], *, color: bool = False) -> str:
    """rustc-style text: header, location, the source line(s) with carets, secondary labels, hints."""

    def paint(text: str, style: str) -> str:
        return f"{_COLORS[style]}{text}{_COLORS['reset']}" if color else text

    span = diagnostic.span
    severity = diagnostic.level.value
    gutter = " " * len(str(max([span.line] + [label.span.line for label in diagnostic.labels])))
    lines = [
        paint(f"{severity}[{diagnostic.code}]", severity) + paint(f": {diagnostic.message}", "bold"),
        f"{gutter}{paint('-->', 'blue')} {span}",
    ]
    snippets = [(span, diagnostic.label, severity)]
    snippets += [(label.span, label.message, "blue") for label in diagnostic.labels]
    previous: Span | None = None
    for item_span, message, style in snippets:
        snippet = _snippet(item_span, message, sources.get(item_span.file), gutter, style, paint)
        same_line = previous is not None and (previous.file, previous.line) == (item_span.file, item_span.line)
        if same_line and snippet:
            snippet = snippet[2:]  # a second label on the line just shown: only its marker line
        lines += snippet
        previous = item_span
    lines += [f"{gutter} {paint('=', 'blue')} hint: {hint}" for hint in diagnostic.hints]
    return "\n".join(lines)


def _snippet(span: Span, message: str, source: SourceFile | None, gutter: str, style: str, paint) -> list[str]:
    """The source line under a span with carets (`^` primary, `-` secondary); nothing for a file without text."""
    if source is None or not source.text:
        return []
    text = source.line_text(span.line)
    width = (span.end_column - span.column) if span.end_line == span.line else len(text) - span.column + 1
    text, column, width = _window(text, span.column, width)
    carets = ("^" if style != "blue" else "-") * max(1, width)
    number = str(span.line).rjust(len(gutter))
    marker = " " * (column - 1) + carets + (f" {message}" if message else "")
    bar = paint("|", "blue")
    return [
        f"{gutter} {bar}",
        f"{paint(number, 'blue')} {bar} {text}".rstrip(),
        f"{gutter} {bar} {paint(marker, style)}",
    ]


# The most characters of one source line shown: a diagnostic on a long line (a generated file, a huge
# literal) shows the part around its span, so that output stays small whatever the input.
_SHOWN = 200


def _window(text: str, column: int, width: int) -> tuple[str, int, int]:
    """The part of `text` shown around 1-based `column`, with the column and caret width inside it."""
    if len(text) <= _SHOWN:
        return text, column, width
    start = max(0, min(column - 1 - _SHOWN // 4, len(text) - _SHOWN))
    prefix = "..." if start else ""
    suffix = "..." if start + _SHOWN < len(text) else ""
    column = column - start + len(prefix)
    width = max(1, min(width, len(prefix) + _SHOWN - column + 1))
    return prefix + text[start : start + _SHOWN] + suffix, column, width


def render_all(diagnostics: Iterable[Diagnostic], sources: Mapping[str, SourceFile], *, color: bool = False) -> str:
    items = list(diagnostics)
    blocks = [render(item, sources, color=color) for item in items]
    errors = sum(item.is_error for item in items)
    warnings = len(items) - errors
    if items:
        blocks.append(_summary(errors, warnings))
    return "\n\n".join(blocks)


def _summary(errors: int, warnings: int) -> str:
    def plural(count: int, word: str) -> str:
        return f"{count} {word}{'' if count == 1 else 's'}"

    return f"{plural(errors, 'error')}, {plural(warnings, 'warning')}"


def render_json(diagnostics: Iterable[Diagnostic], files: Iterable[str]) -> str:
    items = list(diagnostics)
    payload = {
        "version": 1,
        "files": sorted(set(files)),
        "errors": sum(item.is_error for item in items),
        "warnings": sum(not item.is_error for item in items),
        "diagnostics": [item.to_json() for item in items],
    }
    return json.dumps(payload, indent=2, ensure_ascii=False)
