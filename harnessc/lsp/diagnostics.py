"""The compiler's diagnostics as LSP diagnostics.

Each `harnessc.diagnostics.Diagnostic` becomes one LSP diagnostic: its range converted from character
offsets to the negotiated position encoding, its severity, its stable `code` with `codeDescription`
linking to the code's entry in docs/diagnostics.md (the page `harnessc explain CODE` prints from), the
hints appended to the message, and its secondary labels as related information.

A problem inside an imported file is shown at the document's `import` that leads to it, with the exact
place as related information. A file that declares only snippets and imports (a library imported by
harnesses) is not asked for a header, an output or views.
"""

from __future__ import annotations

from pathlib import Path

from lsprotocol import types

from harnessc.compiler import Compilation
from harnessc.diagnostics import Diagnostic
from harnessc.lsp.analysis import Analysis
from harnessc.lsp.outline import Outline
from harnessc.lsp.positions import LineIndex
from harnessc.source import Span

# What only a harness (a file with a header) must have; a library of snippets has none of it.
_HARNESS_ONLY = frozenset({"missing-header", "missing-output", "missing-student", "missing-teacher"})
_UNNECESSARY = frozenset({"unused-stage"})


def default_docs_url() -> str | None:
    """A file URL of docs/diagnostics.md next to the harnessc package (a source checkout or an editable
    install), or None when the page is not there (a wheel install)."""
    page = Path(__file__).resolve().parent.parent.parent / "docs" / "diagnostics.md"
    return page.as_uri() if page.is_file() else None


def is_library(outline: Outline) -> bool:
    """Whether the text is a snippet library: no header, and nothing but snippets and imports."""
    kinds = {item.kind for item in outline.declarations}
    return bool(kinds) and kinds <= {"snippet", "import"}


def to_lsp(
    compilation: Compilation,
    analysis: Analysis,
    encoding: str,
    docs_url: str | None,
    uri_of,
) -> list[types.Diagnostic]:
    """The LSP diagnostics of `compilation` for the document of `analysis`. `uri_of(path)` is a file's URI."""
    library = is_library(analysis.outline)
    index = analysis.lines(encoding)
    indexes: dict[str, LineIndex] = {analysis.path: index}
    imported = {item.display: item for item in analysis.imports()}

    def index_of(path: str) -> LineIndex | None:
        if path not in indexes:
            if path in imported:
                indexes[path] = LineIndex(imported[path].text, encoding)
            elif path in compilation.sources:
                indexes[path] = LineIndex(compilation.sources[path].text, encoding)
            else:
                return None
        return indexes[path]

    def location(span: Span) -> types.Location | None:
        lines = index_of(span.file) if not span.file.startswith("<") else None  # `<--set>`: no file
        if lines is None:
            return None
        path = imported[span.file].real if span.file in imported else span.file
        return types.Location(uri=uri_of(path), range=lsp_range(lines, span.start, span.end))

    found: list[types.Diagnostic] = []
    for item in compilation.diagnostics:
        if library and item.code in _HARNESS_ONLY:
            continue
        related = [
            types.DiagnosticRelatedInformation(location=place, message=label.message or "here")
            for label in item.labels
            if (place := location(label.span)) is not None
        ]
        message = _message(item)
        if item.span.file == analysis.path:
            where = lsp_range(index, item.span.start, item.span.end)
        else:  # inside an imported file: at the import that leads there
            source = imported.get(item.span.file)
            place = location(item.span)
            if source is not None:
                via = source.via
                where = lsp_range(index, via.name_start, via.name_end)
            else:
                where = lsp_range(index, 0, 0)
            message = f"in {item.span}: {message}"
            if place is not None:
                related.insert(0, types.DiagnosticRelatedInformation(location=place, message=item.label or "here"))
        found.append(
            types.Diagnostic(
                range=where,
                message=message,
                severity=types.DiagnosticSeverity.Error if item.is_error else types.DiagnosticSeverity.Warning,
                code=item.code,
                code_description=types.CodeDescription(href=f"{docs_url}#{item.code}") if docs_url else None,
                source="harnessc",
                related_information=related or None,
                tags=[types.DiagnosticTag.Unnecessary] if item.code in _UNNECESSARY else None,
            )
        )
    return found


def _message(item: Diagnostic) -> str:
    lines = [item.message]
    if item.label and item.label not in item.message:
        lines[0] += f" ({item.label})"
    lines += [f"hint: {hint}" for hint in item.hints]
    return "\n".join(lines)


def lsp_range(index: LineIndex, start: int, end: int) -> types.Range:
    """The LSP range of the character offsets [start, end) of the text of `index`."""
    start_line, start_column = index.position(start)
    end_line, end_column = index.position(max(start, end))
    return types.Range(
        start=types.Position(line=start_line, character=start_column),
        end=types.Position(line=end_line, character=end_column),
    )
