"""`harnessc lsp`: the language server for `.harness` files (diagnostics, hover, definition, completion,
document symbols), spoken over standard input and output.

The server needs pygls (the `editor` extra: `pip install -e ".[editor]"`); nothing here imports it until
the server starts, so that `harnessc check` never pays for it. The modules:

- `positions`: character offsets ↔ LSP positions in the negotiated encoding (UTF-16 by default);
- `outline`: a tolerant reading of the text being typed: declarations, every name and its role, and
  what may follow each token;
- `analysis`: what a name means: its declaration (here or in an imported file), its type from the IR;
- `diagnostics`, `hover`, `definition`, `completion`, `symbols`: one LSP feature each;
- `server`: the pygls wiring (debounced checks of the unsaved text, settings).
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence


def main(
    *,
    purpose: str = "any",
    allow_roots: Sequence[str] = (),
    builtins: Sequence[str] = (),
    overrides: Mapping[str, str] | None = None,
) -> int:
    """Run the language server on stdio; exit code 2 when pygls is not installed."""
    try:
        import pygls  # noqa: F401
    except ImportError:
        print(
            "harnessc lsp: the language server needs pygls; install it with  pip install 'pygls>=2.0'  "
            "(or the project's `editor` extra)",
            file=sys.stderr,
        )
        return 2
    from harnessc.lsp.server import serve

    return serve(purpose=purpose, allow_roots=allow_roots, builtins=builtins, overrides=overrides)
