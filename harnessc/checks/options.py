"""Option values: sampling settings in their ranges, loop bounds of at least one, output constraints
that compile (one per stage)."""

from __future__ import annotations

from collections.abc import Iterator

from harnessc import ir, sampling
from harnessc.checks.base import CheckContext, constant_value, prompts
from harnessc.constraints import Problem, json_schema_problems, regex_problems
from harnessc.diagnostics import Diagnostic, Label
from harnessc.options import CONSTRAINTS
from harnessc.sampling import SAMPLING
from harnessc.source import Span


def check_option_values(harness: ir.Harness, context: CheckContext) -> Iterator[Diagnostic]:
    """Sampling options hold values an engine accepts (the ranges of harnessc/sampling.py: `temperature` and
    `top_k` >= 0, `top_p` in (0, 1], `min_p` in [0, 1], `max_tokens` and `n` >= 1). Checked on constants
    after `--set` overrides, so an override out of range is reported too; the budgets are budgets.py's."""
    for _, prompt in prompts(harness):
        for option in prompt.options:
            value = constant_value(option.value, harness)
            if option.name not in SAMPLING or not isinstance(value, (int, float)) or isinstance(value, bool):
                continue
            requirement = sampling.problem(option.name, value)
            if requirement is not None:
                via = f" (the value of param `{option.value.name}`)" if isinstance(option.value, ir.Ref) else ""
                yield Diagnostic(
                    code="invalid-option-value",
                    message=f"`{option.name}` {requirement}, but it is {value}{via}",
                    span=option.value.span,
                    label="out of range",
                )


def check_loop_bounds(harness: ir.Harness, context: CheckContext) -> Iterator[Diagnostic]:
    """A loop runs at least once: its `max` is >= 1."""
    for loop in (stage for stage in harness.stages if isinstance(stage, ir.LoopStage)):
        value = constant_value(loop.max_iterations, harness)
        if isinstance(value, int) and not isinstance(value, bool) and value < 1:
            yield Diagnostic(
                code="invalid-option-value",
                message=f"a loop runs at least once: `max` must be >= 1, but it is {value}",
                span=loop.max_iterations.span,
                label="out of range",
            )


def check_constraints(harness: ir.Harness, context: CheckContext) -> Iterator[Diagnostic]:
    """A prompt constrains its completion at most once (`choice`, `regex` or `json`), and the engines'
    decoding backend takes its constraint as written: a regex in the backend's dialect, a JSON schema it
    compiles, at least one choice (harnessc/constraints.py has the backend's rules). What the backend would
    read differently is a warning, and so is a `max_tokens` too small for the longest choice."""
    for _, prompt in prompts(harness):
        constraints = [option for option in prompt.options if option.name in CONSTRAINTS]
        for extra in constraints[1:]:
            yield Diagnostic(
                code="conflicting-constraints",
                message="a stage's output can have one constraint only",
                span=extra.span,
                label="second constraint",
                labels=(Label(constraints[0].span, "first constraint"),),
            )
        for option in constraints:
            value = constant_value(option.value, harness)
            yield from _check_constraint_value(option, value)
            if option.name == "choice" and isinstance(value, tuple) and value:
                yield from _check_choice_budget(option, value, prompt, harness)


def _check_constraint_value(option: ir.Option, value) -> Iterator[Diagnostic]:
    if option.name == "regex" and isinstance(value, str):
        for problem in regex_problems(value):
            yield _constraint_diagnostic(option, value, problem, "invalid-regex", "invalid regular expression")
    elif option.name == "json" and isinstance(value, str):
        for problem in json_schema_problems(value):
            yield _constraint_diagnostic(option, value, problem, "invalid-json-schema", "")
    elif option.name == "choice" and isinstance(value, tuple) and not value:
        yield Diagnostic(
            code="invalid-option-value",
            message="`choice` needs at least one option",
            span=option.value.span,
            label="empty list",
        )


def _constraint_diagnostic(option: ir.Option, value: str, problem: Problem, code: str, what: str) -> Diagnostic:
    if problem.severity == "warning":
        code, what = "constraint-reads-differently", f"the decoding backend reads this `{option.name}` otherwise"
    fallback = "refused by the decoding backend" if problem.severity == "error" else "read otherwise"
    span, label = _point_into(option.value.span, value, problem.index, fallback)
    message = f"{what}: {problem.message}" if what else problem.message
    return Diagnostic(code=code, message=message, span=span, label=label, hints=_hints(problem.hint))


def _hints(hint: str) -> tuple[str, ...]:
    return (hint,) if hint else ()


def _check_choice_budget(
    option: ir.Option, choices: tuple, prompt: ir.Prompt, harness: ir.Harness
) -> Iterator[Diagnostic]:
    """Each word is at least one token (tokenizers split at spaces before merging), so a choice of k words
    cannot be written in fewer than k tokens: with a smaller `max_tokens` it is always cut short."""
    budget = prompt.option("max_tokens")
    max_tokens = constant_value(budget.value, harness) if budget is not None else None
    longest = max((str(choice) for choice in choices), key=lambda choice: len(choice.split()))
    words = len(longest.split())
    if budget is not None and isinstance(max_tokens, int) and max_tokens < words:
        yield Diagnostic(
            code="choice-over-budget",
            message=f"the choice {longest!r} takes at least {words} tokens, but `max_tokens` is {max_tokens}",
            span=budget.value.span,
            label=f"at least {words} needed",
            labels=(Label(option.value.span, "the choices"),),
            hints=(f"set `max_tokens {words + 8}` or more: a choice cut short is recorded as a failure",),
        )


def _point_into(span: Span, value: str, index: int | None, fallback: str) -> tuple[Span, str]:
    """The span of character `index` of a string literal's value, when the literal is a one-line "..."
    without escapes (so that value and source line up); otherwise the whole literal with `fallback`."""
    if index is None or span.line != span.end_line or span.end - span.start != len(value) + 2:
        return span, fallback
    index = min(index, max(len(value) - 1, 0))
    start, column = span.start + 1 + index, span.column + 1 + index
    return Span(span.file, start, start + 1, span.line, column, span.line, column + 1), "here"
