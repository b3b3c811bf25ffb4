"""Templates: a string's parsed parts (ast.Template*) → the IR's template parts, one function per kind.

A placeholder must print a plain value: one that may be absent, a list, a record or a bank is reported
with the fix spelled out in the names actually written. Inside `{if x}` the names the condition proves
present lose their `?`; inside `{for x in xs}` the variable is a local.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from harnessc import ast, ir
from harnessc.lowering.context import LoweringContext, Scope
from harnessc.lowering.expressions import describe, item_type
from harnessc.lowering.snippets import may_expand, snippet_template
from harnessc.source import Span
from harnessc.types import TEXT, Bank, ListOf, Optional_, Record


def lower_template_literal(ctx: LoweringContext, node: ast.TemplateLiteral, scope: Scope) -> ir.Expr:
    """A string in an expression: its text when it has no placeholders, else a template expression."""
    template = lower_template(ctx, node, scope)
    if all(isinstance(part, ir.TextPart) for part in template.parts):
        text = "".join(part.value for part in template.parts if isinstance(part, ir.TextPart))
        if template.trim_final_newline and text.endswith("\n"):
            text = text[:-1]
        return ir.Literal(value=text, type=TEXT, span=node.span)
    return ir.TemplateExpr(template=template, type=TEXT, span=node.span)


def lower_template(ctx: LoweringContext, node: ast.TemplateLiteral, scope: Scope) -> ir.Template:
    return ir.Template(
        parts=_lower_parts(ctx, node.parts, scope), span=node.text.span, trim_final_newline=node.trim_final_newline
    )


def expand_snippet(ctx: LoweringContext, name: str, span: Span, scope: Scope) -> ir.Template:
    """A snippet's template, filled in where it is used (in the scope of the use); an empty template when
    the use is refused (lowering/snippets.py says why, and reports it)."""
    if not may_expand(ctx, name, span):
        return ir.Template(parts=(), span=span)
    ctx.snippets.expanding.append(name)
    try:
        return lower_template(ctx, snippet_template(ctx, name), scope)
    finally:
        ctx.snippets.expanding.pop()


def _lower_parts(ctx: LoweringContext, parts: tuple[ast.TemplatePart, ...], scope: Scope) -> tuple[ir.Part, ...]:
    return tuple(_PART_LOWERINGS[type(part)](ctx, part, scope) for part in parts)


def _lower_text(ctx: LoweringContext, part: ast.TemplateText, scope: Scope) -> ir.Part:
    return ir.TextPart(value=part.value, span=part.span)


def _lower_if(ctx: LoweringContext, part: ast.TemplateIf, scope: Scope) -> ir.Part:
    condition = ctx.lower_expr(part.condition, scope)
    inside = scope.narrowed(presence_names(part.condition))
    return ir.IfPart(
        condition=condition,
        then=_lower_parts(ctx, part.then, inside),
        otherwise=_lower_parts(ctx, part.otherwise, scope),
        span=part.span,
    )


def _lower_for(ctx: LoweringContext, part: ast.TemplateFor, scope: Scope) -> ir.Part:
    iterable = ctx.lower_expr(part.iterable, scope)
    item = item_type(ctx, iterable, "`{for}` iterates over")
    return ir.ForPart(
        variable=part.variable.name,
        iterable=iterable,
        body=_lower_parts(ctx, part.body, scope.bind(part.variable.name, item)),
        span=part.span,
    )


def _lower_placeholder(ctx: LoweringContext, part: ast.TemplatePlaceholder, scope: Scope) -> ir.Part:
    reported = len(ctx.diagnostics)
    value = ctx.lower_expr(part.expr, scope)
    if part.latex and isinstance(part.expr, ast.Name):
        # `\sqrt{x}` with no `x` declared: the braces were meant as LaTeX.
        hint = f"if this is LaTeX, double the braces: `{{{{{part.expr.name}}}}}`"
        ctx.diagnostics[reported:] = [
            replace(item, hints=(*item.hints, hint)) if item.code == "unknown-name" else item
            for item in ctx.diagnostics[reported:]
        ]
    typ = value.type
    # The hints spell out the fix with the names actually written (`{if hint}...{hint}...{end}`).
    named = isinstance(part.expr, (ast.Name, ast.FieldAccess))
    written = describe(part.expr).strip("`") if named else ""
    if isinstance(typ, Optional_):
        hint = (
            f"show it only when present: {{if {written}}}...{{{written}}}...{{end}}"
            if written
            else "show it only when present, inside {if CONDITION}...{end} testing the absent value"
        )
        ctx.error(
            "optional-placeholder", f"{describe(part.expr)} may be absent here", part.expr.span, f"{typ}", (hint,)
        )
    elif isinstance(typ, ListOf):
        shown = written or "LIST"
        hint = f"repeat a segment with {{for item in {shown}}}...{{item}}...{{end}}"
        if typ.item == TEXT:
            hint += f', or print join({shown}, ", ")'
        ctx.error("placeholder-type", f"a list cannot be printed directly ({typ})", part.expr.span, "a list", (hint,))
    elif isinstance(typ, Record):
        fields = [f"{{{written or 'entry'}.{name}}}" for name, _ in typ.fields]
        ctx.error(
            "placeholder-type",
            f"a {typ} cannot be printed directly",
            part.expr.span,
            "not printable",
            ("print one of its fields: " + " or ".join(fields[:3]),),
        )
    elif isinstance(typ, Bank):
        ctx.error(
            "placeholder-type",
            f"a memory bank ({typ}) cannot be printed directly",
            part.expr.span,
            "not printable",
            (
                f"print entries found with retrieve({written or 'BANK'}, QUERY) in "
                "{for case in ...}...{case.FIELD}...{end}",
            ),
        )
    return ir.ValuePart(value=value, span=part.span)


_PART_LOWERINGS: dict[type, Callable[[LoweringContext, Any, Scope], ir.Part]] = {
    ast.TemplateText: _lower_text,
    ast.TemplatePlaceholder: _lower_placeholder,
    ast.TemplateIf: _lower_if,
    ast.TemplateFor: _lower_for,
}


def presence_names(condition: ast.Expr) -> set[str]:
    """Names that `{if condition}` proves present: the condition itself or a conjunction of them."""
    if isinstance(condition, ast.Name):
        return {condition.name}
    if isinstance(condition, ast.Logical) and condition.operator == "and":
        return presence_names(condition.left) | presence_names(condition.right)
    if isinstance(condition, ast.Call) and condition.function.name == "nonempty" and len(condition.arguments) == 1:
        argument = condition.arguments[0]
        return presence_names(argument) if not isinstance(argument, ast.KeywordArgument) else set()
    return set()
