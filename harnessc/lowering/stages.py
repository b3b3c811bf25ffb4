"""Stages: each kind lowered by its own function, dispatched through `_STAGE_LOWERINGS`.

Stages are lowered in the order of lowering/order.py, so that what a stage reads is lowered (and typed)
before it. A loop is lowered in two steps: its head (the initial value, which gives the loop its type, and
its bound) before its steps, and the rest (`until`, `next`) after them, by `finish_loop`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from harnessc import ast, ir
from harnessc.diagnostics import Label
from harnessc.lowering.context import LoweringContext, Scope
from harnessc.lowering.declarations import is_declared
from harnessc.lowering.expressions import item_type, lower_condition
from harnessc.lowering.prompts import lower_prompt
from harnessc.lowering.type_expressions import expect_type
from harnessc.types import ANY, INT, TEXT, ListOf, Optional_, Type, make_optional, strip_optional


def lower_stage(ctx: LoweringContext, name: str) -> None:
    """Lower stage `name` (a loop: its head) into `ctx.stages` and `ctx.stage_types`."""
    declaration = ctx.declarations[name]
    _STAGE_LOWERINGS[type(declaration.node)](ctx, declaration.node, declaration.loop)


def _record(ctx: LoweringContext, stage: ir.Stage) -> None:
    ctx.stages[stage.name] = stage
    ctx.stage_types[stage.name] = stage.type


def _lower_llm(ctx: LoweringContext, node: ast.LlmStage, loop: str | None) -> None:
    scope = Scope("stage", loop=loop)
    each = _lower_fan_out(ctx, node.each, scope) if node.each is not None else None
    guard = lower_condition(ctx, node.guard, scope) if node.guard is not None else None  # once, not per item
    if each is not None:
        scope = scope.bind(each.variable, _item_type(each))
    prompt = lower_prompt(ctx, node.body, scope)
    fallback = lower_prompt(ctx, node.otherwise, scope) if node.otherwise is not None else None
    # Any `n` makes the value a list, so the type does not depend on a parameter's current value.
    typ: Type = ListOf(TEXT) if prompt.option("n") is not None else TEXT
    if each is not None:
        typ = ListOf(typ)  # one value per item, in order
        if isinstance(each.iterable.type, Optional_):
            typ = make_optional(typ)  # an absent list: an absent value
    if guard is not None and fallback is None:
        typ = make_optional(typ)
    stage = ir.LlmStage(
        name=node.name.name,
        prompt=prompt,
        guard=guard,
        fallback=fallback,
        loop=loop,
        type=typ,
        name_span=node.name.span,
        span=node.span,
        each=each,
    )
    _record(ctx, stage)


def _item_type(each: ir.FanOut) -> Type:
    base = strip_optional(each.iterable.type)
    return base.item if isinstance(base, ListOf) else ANY


def _lower_fan_out(ctx: LoweringContext, node: ast.FanOut, scope: Scope) -> ir.FanOut:
    """`for x in xs max N`: the list (checked to be one) and the bound (a constant int, at least 1, and at
    least the length of a list literal; a literal `[]` never calls the model)."""
    iterable = ctx.lower_expr(node.iterable, scope)
    item_type(ctx, iterable, "a fan-out iterates over")
    length = _literal_length(iterable)
    if node.bound is None:
        ctx.error(
            "unbounded-fan-out",
            f"fan-out over `{ctx.source_text(node.iterable.span)}` has no bound",
            node.span,
            "one generation per item, and no limit on the items",
            (f"add `max N` after the list: `for {node.variable.name} in {ctx.source_text(node.iterable.span)} max 4`",),
        )
        bound: ir.Expr = ir.Literal(value=None, type=ANY, span=node.span)
    else:
        bound = ctx.lower_constant(node.bound)
        expect_type(ctx, bound, INT, "a fan-out's bound")
        if isinstance(bound, ir.Literal) and isinstance(bound.value, int) and bound.value < 1:
            ctx.error(
                "fan-out-bound",
                f"a fan-out's bound must be at least 1, not {bound.value}",
                bound.span,
                "no item could ever run",
            )
        elif length is not None and isinstance(bound, ir.Literal) and isinstance(bound.value, int):
            if length > bound.value:
                ctx.error(
                    "fan-out-bound",
                    f"this list has {length} items, more than the fan-out's bound ({bound.value})",
                    iterable.span,
                    f"{length} items",
                    (f"raise the bound to `max {length}`, or shorten the list",),
                )
    if length == 0:
        ctx.error(
            "empty-fan-out",
            "this fan-out's list is always empty: the stage never calls the model",
            iterable.span,
            "an empty list",
            ("its value is always `[]`; fan out over a list that a stage or input computes",),
        )
    return ir.FanOut(variable=node.variable.name, iterable=iterable, max_items=bound, span=node.span)


def _literal_length(value: ir.Expr) -> int | None:
    """The number of items of a list literal (lowered to a constant, or to a list of expressions)."""
    if isinstance(value, ir.Literal) and isinstance(value.value, tuple):
        return len(value.value)
    return len(value.items) if isinstance(value, ir.ListExpr) else None


def _lower_let(ctx: LoweringContext, node: ast.LetStage, loop: str | None) -> None:
    value = ctx.lower_expr(node.value, Scope("stage", loop=loop))
    name = node.name.name
    _record(
        ctx, ir.LetStage(name=name, value=value, loop=loop, type=value.type, name_span=node.name.span, span=node.span)
    )


def _lower_loop_head(ctx: LoweringContext, node: ast.LoopStage, loop: str | None) -> None:
    """The initial value (computed before the loop, outside it) and the bound; the loop's value has the
    initial value's type, which its steps may read from here on."""
    initial = ctx.lower_expr(node.initial, Scope("stage"))
    ctx.stage_types[node.name.name] = initial.type
    ctx.loop_heads[node.name.name] = (initial, _loop_bound(ctx, node))


_STAGE_LOWERINGS: dict[type, Callable[[LoweringContext, Any, str | None], None]] = {
    ast.LlmStage: _lower_llm,
    ast.LetStage: _lower_let,
    ast.LoopStage: _lower_loop_head,
}


def finish_loop(ctx: LoweringContext, name: str) -> None:
    """The rest of loop `name`, once its steps are lowered: the exit test, the next value, the IR node."""
    node = ctx.declarations[name].node
    assert isinstance(node, ast.LoopStage)
    initial, bound = ctx.loop_heads[name]
    inner = Scope("stage", loop=name)
    steps: list[str | ir.Until] = []
    nexts = [item for item in node.items if isinstance(item, ast.Next)]
    for item in node.items:
        if isinstance(item, (ast.LlmStage, ast.LetStage)) and is_declared(ctx, item):  # not a rejected duplicate
            steps.append(item.name.name)
        elif isinstance(item, ast.Until):
            steps.append(ir.Until(condition=lower_condition(ctx, item.condition, inner), span=item.span))
    _check_loop_clauses(ctx, node, nexts)
    if nexts:
        next_value = ctx.lower_expr(nexts[0].value, inner)
        expect_type(ctx, next_value, strip_optional(initial.type), "the value of `next`")
    else:
        next_value = ir.Ref(name=name, kind="loop", type=initial.type, span=node.name.span)
    loop = ir.LoopStage(
        name=name,
        initial=initial,
        max_iterations=bound,
        steps=tuple(steps),
        next=next_value,
        type=initial.type,
        name_span=node.name.span,
        span=node.span,
    )
    _record(ctx, loop)


def _loop_bound(ctx: LoweringContext, node: ast.LoopStage) -> ir.Expr:
    if node.bound is None:
        initial = ctx.source_text(node.initial.span)
        example = (
            f"loop {node.name.name} from {initial} max 3 {{"
            if "\n" not in initial
            else "loop refine from draft max 3 {"
        )
        ctx.error(
            "unbounded-loop",
            f"loop `{node.name.name}` has no bound",
            node.name.span,
            "this loop could run forever",
            (f"add `max N` after the initial value: `{example}`",),
        )
        return ir.Literal(value=None, type=ANY, span=node.name.span)
    bound = ctx.lower_constant(node.bound)
    expect_type(ctx, bound, INT, "a loop's bound")
    return bound


def _check_loop_clauses(ctx: LoweringContext, node: ast.LoopStage, nexts: list[ast.Next]) -> None:
    untils = [item for item in node.items if isinstance(item, ast.Until)]
    extras: list[ast.Until | ast.Next] = [*untils[1:], *nexts[1:]]
    for extra in extras:
        first = untils[0] if isinstance(extra, ast.Until) else nexts[0]
        ctx.error(
            "duplicate-definition",
            "a loop has at most one `until` and one `next`",
            extra.span,
            "declared again here",
            labels=(Label(first.span, "first declared here"),),
        )
    if not nexts:
        steps = [item.name.name for item in node.items if isinstance(item, (ast.LlmStage, ast.LetStage))]
        example = f", e.g. `next {steps[-1]}` after the last step" if steps else ""
        ctx.error(
            "loop-without-next",
            f"loop `{node.name.name}` never updates its value",
            node.name.span,
            "no `next` in this loop",
            (f"add `next STAGE` saying which value the next iteration works on{example}",),
        )
