"""What filling in snippets may cost: nesting, cycles and the harness's expansion budget.

A snippet is filled in (lowered again, in the scope of its use) at each use. `may_expand` decides whether a
use is filled in at all: a snippet that includes itself, a chain of snippets too deep, or a use that would
take the harness past MAX_SNIPPET_EXPANSION is reported, and the use is left empty. Sizes are measured on
the syntax tree, before anything is expanded, so refusing costs no more than the source is long.
"""

from __future__ import annotations

import dataclasses

from harnessc import ast
from harnessc.limits import MAX_SNIPPET_DEPTH, MAX_SNIPPET_EXPANSION, MAX_SNIPPET_NODES
from harnessc.lowering.context import LoweringContext
from harnessc.source import Span


def snippet_template(ctx: LoweringContext, name: str) -> ast.TemplateLiteral:
    node = ctx.declarations[name].node
    assert isinstance(node, ast.SnippetDecl)
    return node.template


def may_expand(ctx: LoweringContext, name: str, span: Span) -> bool:
    """Whether the use of snippet `name` at `span` is filled in (reported when it is not)."""
    expanding = ctx.snippets.expanding
    if name in expanding or len(expanding) >= MAX_SNIPPET_DEPTH:
        _report_nesting(ctx, name, span)
        return False
    return bool(expanding) or _charge_expansion(ctx, name, span)


def _report_nesting(ctx: LoweringContext, name: str, span: Span) -> None:
    expanding = ctx.snippets.expanding
    if name in expanding:
        chain = " → ".join(f"`{item}`" for item in [*expanding[expanding.index(name) :], name])
        ctx.error(
            "cycle",
            f"snippet `{name}` includes itself: {chain}",
            span,
            "included again here",
            ("a snippet may use other snippets, but not itself",),
        )
    else:
        ctx.error(
            "syntax-error",
            f"snippets include each other more than {MAX_SNIPPET_DEPTH} levels deep",
            span,
            "nested too deeply",
        )


def _charge_expansion(ctx: LoweringContext, name: str, span: Span) -> bool:
    """Count a use of snippet `name` (outside any snippet) against the harness's expansion budget, by
    what it expands to, measured before expanding it; False (reported once) when it does not fit.
    Without this, snippets that each use the previous one several times expand exponentially."""
    state = ctx.snippets
    characters, nodes = _snippet_size(ctx, name)
    total = (state.expanded[0] + characters, state.expanded[1] + nodes)
    if total[0] <= MAX_SNIPPET_EXPANSION and total[1] <= MAX_SNIPPET_NODES:
        state.expanded = total
        return True
    if not state.refused:
        state.refused = True
        ctx.error(
            "limit-exceeded",
            f"snippet `{name}` expands to {characters:,} characters ({nodes:,} template pieces) here, "
            f"more than the harness's snippets may expand to in total ({MAX_SNIPPET_EXPANSION:,} "
            f"characters, {MAX_SNIPPET_NODES:,} pieces)",
            span,
            "expands too much",
            ("a snippet that uses others several times multiplies their size: use each one less",),
        )
    return False


def _snippet_size(ctx: LoweringContext, root: str) -> tuple[int, int]:
    """(characters, template pieces) snippet `root` expands to, every snippet it uses filled in: an
    upper bound (both branches of an `{if}` count). Computed once per snippet and iteratively (chains
    may be long); a snippet in a cycle counts once (the cycle is reported when it is expanded)."""
    sizes = ctx.snippets.sizes
    pending: list[tuple[str, bool]] = [(root, False)]
    while pending:
        name, ready = pending.pop()
        if ready:
            used, nodes = _snippets_read(ctx, name)
            sizes[name] = (
                len(snippet_template(ctx, name).text.value) + sum(sizes[item][0] for item in used),
                nodes + sum(sizes[item][1] for item in used),
            )
        elif name not in sizes:
            sizes[name] = (0, 0)
            pending.append((name, True))
            pending.extend((used, False) for used in _snippets_read(ctx, name)[0] if used not in sizes)
    return sizes[root]


def _snippets_read(ctx: LoweringContext, name: str) -> tuple[list[str], int]:
    """The snippets snippet `name` uses (once per use) and the template pieces of its own text (cached)."""
    found = ctx.snippets.reads.get(name)
    if found is None:
        names, nodes = _names_and_pieces(snippet_template(ctx, name).parts)
        found = ctx.snippets.reads[name] = ([item for item in names if ctx.kind_of(item) == "snippet"], nodes)
    return found


def _names_and_pieces(parts: tuple[ast.TemplatePart, ...]) -> tuple[list[str], int]:
    """Every name the parts read, once per use, through nested string literals too (`{join(x, "{S}")}`),
    and how many nodes (parts and expression nodes) they hold: what a snippet's expansion is measured by.
    Iterative: templates nest deeply."""
    found: list[str] = []
    nodes = 0
    pending: list[object] = list(parts)
    while pending:
        node = pending.pop()
        if isinstance(node, (Span, bool)):
            continue  # positions and flags (`TemplatePlaceholder.latex`) are not pieces
        nodes += 1
        if isinstance(node, ast.Name):
            found.append(node.name)
        elif isinstance(node, ast.TemplateLiteral):
            pending.extend(node.parts)
        elif not isinstance(node, (ast.TemplateText, ast.Text, ast.Identifier)) and dataclasses.is_dataclass(node):
            for field in dataclasses.fields(node):
                value = getattr(node, field.name)
                pending.extend(item for item in (value if isinstance(value, tuple) else (value,)) if item is not None)
    return found, nodes
