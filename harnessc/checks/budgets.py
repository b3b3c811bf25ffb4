"""Budgets no run can meet: `n`, `max_tokens` and a loop's `max` past the limits of harnessc/limits.py,
and nested iterations over lists of known lengths whose bodies would repeat too often."""

from __future__ import annotations

from collections.abc import Iterator

from harnessc import ir
from harnessc.checks.base import CheckContext, constant_value, prompts
from harnessc.diagnostics import Diagnostic
from harnessc.limits import MAX_FAN_OUT, MAX_ITERATIONS, MAX_REPETITIONS, MAX_SAMPLES
from harnessc.sampling import SAMPLING

_OPTION_MAXIMA = {name: option.limit for name, option in SAMPLING.items() if option.limit is not None}


def check_option_maxima(harness: ir.Harness, context: CheckContext) -> Iterator[Diagnostic]:
    """`n` and `max_tokens` stay within what any run can allocate (MAX_SAMPLES, MAX_TOKENS); the lower
    bounds are options.py's."""
    for _, prompt in prompts(harness):
        for option in prompt.options:
            limit = _OPTION_MAXIMA.get(option.name)
            value = constant_value(option.value, harness)
            if limit is not None and _is_int(value) and value > limit:
                yield _over_limit(f"`{option.name}`", value, limit, option.value)


def check_loop_maxima(harness: ir.Harness, context: CheckContext) -> Iterator[Diagnostic]:
    """A loop's `max` is at most MAX_ITERATIONS; a fan-out's, at most MAX_FAN_OUT."""
    for loop in (stage for stage in harness.stages if isinstance(stage, ir.LoopStage)):
        value = constant_value(loop.max_iterations, harness)
        if _is_int(value) and value > MAX_ITERATIONS:
            yield _over_limit("a loop's `max`", value, MAX_ITERATIONS, loop.max_iterations)
    for stage in harness.stages:
        if isinstance(stage, ir.LlmStage) and stage.each is not None:
            value = constant_value(stage.each.max_items, harness)
            if _is_int(value) and value > MAX_FAN_OUT:
                yield _over_limit("a fan-out's `max`", value, MAX_FAN_OUT, stage.each.max_items)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _over_limit(what: str, value: int, limit: int, at: ir.Expr) -> Diagnostic:
    via = f" (the value of param `{at.name}`)" if isinstance(at, ir.Ref) else ""
    return Diagnostic(
        code="limit-exceeded",
        message=f"{what} may be at most {limit:,}, but it is {value:,}{via}",
        span=at.span,
        label="no run can spend this much",
        hints=(f"the limits are listed in docs/language.md; a value up to {limit:,} is accepted",),
    )


# ---- repetitions ------------------------------------------------------------------------------------------


def check_repetitions(harness: ir.Harness, context: CheckContext) -> Iterator[Diagnostic]:
    """No `{for}` body or comprehension element repeats more than MAX_REPETITIONS times per example.
    Nested iterations over lists whose lengths are known multiply (the innermost body runs once per
    combination); reported at the first iteration where the product passes the limit."""
    stack: list[tuple[object, int]] = [(harness, 1)]
    while stack:
        node, product = stack.pop()
        repeated = _repeated_body(node)
        if repeated is not None:
            iterable, body = repeated
            length = static_length(iterable, harness)
            inner = product * (length or 1)
            if inner > MAX_REPETITIONS:
                yield _too_many_repetitions(node, inner)
                continue
            stack.append((iterable, product))
            stack.extend((child, inner) for child in body)
            continue
        stack.extend((child, product) for child in ir.children(node))


def _repeated_body(node: object) -> tuple[ir.Expr, tuple] | None:
    if isinstance(node, ir.ForPart):
        return node.iterable, node.body
    if isinstance(node, ir.ComprehensionExpr):
        return node.iterable, (node.element,)
    return None


def static_length(value: ir.Expr, harness: ir.Harness) -> int | None:
    """The length of a list known before the run: a literal, a list parameter, a stage's `n` samples."""
    if isinstance(value, ir.Literal) and isinstance(value.value, tuple):
        return len(value.value)
    if isinstance(value, ir.ListExpr):
        return len(value.items)
    if isinstance(value, ir.Ref) and value.kind == "param":
        param = harness.param(value.name)
        default = param.default.value if param is not None else None
        return len(default) if isinstance(default, tuple) else None
    if isinstance(value, ir.Ref) and value.kind == "stage":
        stage = harness.stage(value.name)
        option = stage.prompt.option("n") if isinstance(stage, ir.LlmStage) else None
        samples = constant_value(option.value, harness) if option is not None else None
        # An `n` out of range is reported by itself, not again as the repetitions it would cause.
        if isinstance(samples, int) and not isinstance(samples, bool) and 1 <= samples <= MAX_SAMPLES:
            return samples
        return None
    return None


def _too_many_repetitions(node, product: int) -> Diagnostic:
    what = "`{for}` block" if isinstance(node, ir.ForPart) else "comprehension"
    return Diagnostic(
        code="limit-exceeded",
        message=f"this {what} would repeat its body {product:,} times per example, more than the "
        f"{MAX_REPETITIONS:,} allowed",
        span=node.span,
        label="the lists iterated here and around it are too long together",
        hints=("iterate over fewer items: select them in a `let` stage first (e.g. with retrieve)",),
    )
