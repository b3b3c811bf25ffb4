"""Go to definition: where the name under the cursor is declared.

Stages (`llm`, `let`, `loop` and the stages inside loops), `let`s, inputs, parameters, banks and their
entry fields (from `search FIELD`), snippets (of this file or of an imported one), the views `student`
and `output` where they are read, comprehension and `{for}` variables, and an `import`'s path (the
imported file). A built-in goes to the Python function that implements it.
"""

from __future__ import annotations

import inspect
from pathlib import Path

from lsprotocol import types

from harnessc.lsp.analysis import Analysis
from harnessc.lsp.diagnostics import lsp_range
from harnessc.lsp.positions import LineIndex


def definition(analysis: Analysis, offset: int, encoding: str, uri_of, open_text) -> types.Location | None:
    """The declaration of the name at `offset`, or None. `uri_of(path)` gives a file's URI and
    `open_text(path)` the editor's text of an open file (None: read it from disk)."""
    found = analysis.target_at(offset)
    if found is None:
        return None
    _occurrence, target = found
    if target.kind == "declaration" and target.declaration is not None:
        declaration = target.declaration
        index = analysis.lines(encoding) if target.path == analysis.path else LineIndex(target.text, encoding)
        return types.Location(
            uri=uri_of(target.path), range=lsp_range(index, declaration.name_start, declaration.name_end)
        )
    if target.kind == "binding" and target.occurrence is not None:
        binding = target.occurrence
        index = analysis.lines(encoding)
        return types.Location(uri=uri_of(analysis.path), range=lsp_range(index, binding.start, binding.end))
    if target.kind == "import" and target.path:
        start = types.Position(line=0, character=0)
        return types.Location(uri=uri_of(target.path), range=types.Range(start=start, end=start))
    if target.kind in ("builtin", "parameter") and target.builtin is not None:
        return _python_location(target.builtin.function, encoding, uri_of, open_text)
    return None


def _python_location(function, encoding: str, uri_of, open_text) -> types.Location | None:
    """The `def` line of a built-in's Python function."""
    try:
        path = inspect.getsourcefile(function)
        _lines, first = inspect.getsourcelines(function)
    except (OSError, TypeError):
        return None
    if path is None:
        return None
    text = open_text(path)
    if text is None:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            return None
    index = LineIndex(text, encoding)
    line = first - 1
    source = index.line_text(line)
    while line + 1 < len(index.line_starts) and not source.lstrip().startswith(("def ", "async def ")):
        line += 1  # past the decorators
        source = index.line_text(line)
    column = len(source) - len(source.lstrip())
    name_column = column + source.lstrip().find(function.__name__)
    start = index.line_starts[line]
    return types.Location(
        uri=uri_of(path),
        range=lsp_range(index, start + name_column, start + name_column + len(function.__name__)),
    )
