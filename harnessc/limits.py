"""Every limit the language sets, in one place (docs/language.md, "Limits", lists them), and the checks of
the limits that only the whole harness shows.

Work and memory are bounded by the source, not by what it expands to: a 500-byte file of snippets that
each use the previous one four times would otherwise expand to gigabytes, and a budget no run can meet
(`n 10**100`) would crash the run that tries. Each limit is far beyond any real harness.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

from harnessc import ir
from harnessc.diagnostics import Diagnostic
from harnessc.reading import MAX_SOURCE_BYTES as MAX_SOURCE_BYTES  # the size of one source file
from harnessc.sampling import SAMPLING

# Numbers: integers are 64-bit (what engines take for seeds and counts), decimals are finite doubles.
MIN_INT = -(2**63)
MAX_INT = 2**63 - 1
MAX_INT_DIGITS = len(str(MAX_INT))  # a longer literal is out of range without converting it
# Budgets of one LLM stage and one loop: beyond these no run finishes. The options' budgets are entries of
# the sampling table (`limit`).
MAX_SAMPLES: int = SAMPLING["n"].limit or 0  # `n`: 1,024
MAX_TOKENS: int = SAMPLING["max_tokens"].limit or 0  # `max_tokens`: 1,048,576, the longest context windows
MAX_ITERATIONS = 1000  # a loop's `max`
# What the uses of snippets expand to, summed over the whole harness: characters of text (what prompts
# and the compiled IR hold), and template pieces (texts, placeholders, blocks and the nodes of their
# expressions: the work of every later pass is proportional to these).
MAX_SNIPPET_EXPANSION = 4_000_000
MAX_SNIPPET_NODES = 20_000
# How many times one `{for}` or comprehension body may be repeated for one example, through nested
# iterations whose lengths are known before the run (list literals, list parameters, `n` samples).
MAX_REPETITIONS = 1_000_000


def int_in_range(text: str) -> int | None:
    """The integer a literal (`-12`) writes, or None when it is outside [MIN_INT, MAX_INT]. The length is
    checked first: converting a very long literal is slow and Python refuses more than 4,300 digits."""
    if len(text.lstrip("-+")) > MAX_INT_DIGITS:
        return None
    value = int(text)
    return value if MIN_INT <= value <= MAX_INT else None


def float_in_range(text: str) -> float | None:
    """The finite float a literal writes (`1e-3`), or None when it overflows (`1e999`)."""
    value = float(text)
    return value if math.isfinite(value) else None


# ---- budgets --------------------------------------------------------------------------------------------

_OPTION_MAXIMA = {name: option.limit for name, option in SAMPLING.items() if option.limit is not None}


def check_option_maxima(harness: ir.Harness, context: object) -> Iterator[Diagnostic]:
    """`n` and `max_tokens` beyond what any run can allocate (the valid ranges are checked by checker.py)."""
    from harnessc.checker import _prompts

    for _, prompt in _prompts(harness):
        for option in prompt.options:
            limit = _OPTION_MAXIMA.get(option.name)
            value = _constant(option.value, harness)
            if limit is not None and _is_int(value) and value > limit:
                yield _over_limit(f"`{option.name}`", value, limit, option.value)


def check_loop_maxima(harness: ir.Harness, context: object) -> Iterator[Diagnostic]:
    for loop in (stage for stage in harness.stages if isinstance(stage, ir.LoopStage)):
        value = _constant(loop.max_iterations, harness)
        if _is_int(value) and value > MAX_ITERATIONS:
            yield _over_limit("a loop's `max`", value, MAX_ITERATIONS, loop.max_iterations)


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


def check_repetitions(harness: ir.Harness, context: object) -> Iterator[Diagnostic]:
    """Nested `{for}` blocks and comprehensions whose lengths are known multiply: the innermost body runs
    once per combination. Reported at the first iteration where the product passes MAX_REPETITIONS."""
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
        samples = _constant(option.value, harness) if option is not None else None
        # An `n` out of range is reported by itself, not again as the repetitions it would cause.
        if isinstance(samples, int) and not isinstance(samples, bool) and 1 <= samples <= MAX_SAMPLES:
            return samples
        return None
    return None


def _constant(value: ir.Expr, harness: ir.Harness):
    from harnessc.checker import constant_value

    return constant_value(value, harness)


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
