"""Document symbols: the outline of a harness for the editor's outline view and breadcrumbs.

One symbol per declaration, in the order written: the header, imports, inputs, parameters, snippets,
banks (with their entry fields), stages (loops with the stages inside them) and the views. A symbol's
detail is the declaration's type when the compiler computed one.
"""

from __future__ import annotations

from lsprotocol import types

from harnessc.lsp.analysis import Analysis
from harnessc.lsp.diagnostics import lsp_range
from harnessc.lsp.outline import Declaration
from harnessc.lsp.positions import LineIndex

_KIND = {
    "harness": types.SymbolKind.Module,
    "import": types.SymbolKind.File,
    "input": types.SymbolKind.Field,
    "param": types.SymbolKind.Constant,
    "snippet": types.SymbolKind.String,
    "bank": types.SymbolKind.Struct,
    "bank-field": types.SymbolKind.Field,
    "llm": types.SymbolKind.Function,
    "let": types.SymbolKind.Variable,
    "loop": types.SymbolKind.Function,
    "student": types.SymbolKind.Interface,
    "teacher": types.SymbolKind.Interface,
    "output": types.SymbolKind.Property,
    "student_output": types.SymbolKind.Property,
    "grade": types.SymbolKind.Property,
}


def document_symbols(analysis: Analysis, encoding: str) -> list[types.DocumentSymbol]:
    """The document's declarations as a tree of symbols."""
    index = analysis.lines(encoding)
    return [symbol for item in analysis.outline.declarations if (symbol := _symbol(analysis, index, item)) is not None]


def _symbol(analysis: Analysis, index: LineIndex, item: Declaration) -> types.DocumentSymbol | None:
    if not item.name:
        return None  # a keyword whose name is still being typed
    typ = analysis.declared_type(item)
    detail = str(typ) if typ is not None else item.kind
    if item.kind in ("harness", "import"):
        detail = item.kind
    children = [symbol for child in item.children if (symbol := _symbol(analysis, index, child)) is not None]
    return types.DocumentSymbol(
        name=item.name,
        detail=detail,
        kind=_KIND.get(item.kind, types.SymbolKind.Variable),
        range=lsp_range(index, item.start, max(item.end, item.name_end)),
        selection_range=lsp_range(index, item.name_start, item.name_end),
        children=children or None,
    )
