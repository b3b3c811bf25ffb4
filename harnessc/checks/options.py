"""Option values: sampling settings in their ranges, loop bounds of at least one, output constraints
that compile (one per stage)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

from harnessc import ir
from harnessc.checks.base import CheckContext, constant_value, prompts
from harnessc.diagnostics import Diagnostic, Label
from harnessc.options import CONSTRAINTS
from harnessc.source import Span

_RANGES = {
    "temperature": (lambda v: v >= 0, "must be >= 0"),
    "top_p": (lambda v: 0 < v <= 1, "must be in (0, 1]"),
    "top_k": (lambda v: v >= 0, "must be >= 0 (0 turns it off)"),
    "min_p": (lambda v: 0 <= v <= 1, "must be in [0, 1]"),
    "max_tokens": (lambda v: v >= 1, "must be >= 1"),
    "n": (lambda v: v >= 1, "must be >= 1"),
}


def check_option_values(harness: ir.Harness, context: CheckContext) -> Iterator[Diagnostic]:
    """Sampling options hold values an engine accepts: `temperature` and `top_k` >= 0, `top_p` in (0, 1],
    `min_p` in [0, 1], `max_tokens` and `n` >= 1. Checked on constants after `--set` overrides, so an
    override out of range is reported too; the upper bounds are budgets.py's."""
    for _, prompt in prompts(harness):
        for option in prompt.options:
            rule = _RANGES.get(option.name)
            value = constant_value(option.value, harness)
            if rule is None or not isinstance(value, (int, float)) or isinstance(value, bool):
                continue
            accepts, requirement = rule
            if not accepts(value):
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
    """A prompt constrains its completion at most once (`choice`, `regex` or `json`), and its constraint
    is usable: a regex compiles, a JSON schema is a JSON object, a choice offers at least one string."""
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
            yield from _check_constraint_value(option, constant_value(option.value, harness))


def _check_constraint_value(option: ir.Option, value) -> Iterator[Diagnostic]:
    if option.name == "regex" and isinstance(value, str):
        try:
            re.compile(value)
        except re.error as error:
            span, label = _point_into(option.value.span, value, error.pos, "does not compile")
            yield Diagnostic(
                code="invalid-regex",
                message=f"invalid regular expression: {error.msg}",
                span=span,
                label=label,
                hints=_regex_hints(error.msg),
            )
    elif option.name == "json" and isinstance(value, str):
        try:
            schema = json.loads(value)
        except json.JSONDecodeError as error:
            where = f"line {error.lineno}, column {error.colno} of the schema"
            span, label = _point_into(option.value.span, value, error.pos, where)
            yield Diagnostic(
                code="invalid-json-schema",
                message=f"the JSON schema is not valid JSON: {error.msg}",
                span=span,
                label=label,
                hints=('JSON needs double quotes; write the schema in a """...""" string',) if "'" in value else (),
            )
            return
        if not isinstance(schema, dict):
            yield Diagnostic(
                code="invalid-json-schema",
                message="a JSON schema must be a JSON object",
                span=option.value.span,
                label=f"this is a JSON {_json_kind(schema)}",
                hints=('e.g. json """{"type": "object", "properties": {"label": {"type": "string"}}}"""',),
            )
    elif option.name == "choice" and isinstance(value, tuple) and not value:
        yield Diagnostic(
            code="invalid-option-value",
            message="`choice` needs at least one option",
            span=option.value.span,
            label="empty list",
        )


def _point_into(span: Span, value: str, index: int | None, fallback: str) -> tuple[Span, str]:
    """The span of character `index` of a string literal's value, when the literal is a one-line "..."
    without escapes (so that value and source line up); otherwise the whole literal with `fallback`."""
    if index is None or span.line != span.end_line or span.end - span.start != len(value) + 2:
        return span, fallback
    index = min(index, max(len(value) - 1, 0))
    start, column = span.start + 1 + index, span.column + 1 + index
    return Span(span.file, start, start + 1, span.line, column, span.line, column + 1), "here"


def _regex_hints(message: str) -> tuple[str, ...]:
    if "unterminated" in message or "missing )" in message:
        return ("close the group with `)`, or write `\\(` for a literal parenthesis",)
    if "nothing to repeat" in message:
        return ("escape the quantifier (`\\*`, `\\+`, `\\?`) to match it literally",)
    return ()


def _json_kind(value) -> str:
    return {list: "list", str: "string", bool: "boolean", type(None): "null"}.get(type(value), "number")
