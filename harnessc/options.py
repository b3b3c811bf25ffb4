"""What may appear inside an `llm`, `student` or `teacher` body besides messages: the option table.

Each option has a type; its value is a constant (a literal or a `param`). Value ranges are checked on the
IR by harnessc/checks/, after `--set` overrides, so that an override out of range is reported too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from harnessc import ast, ir
from harnessc.types import BOOL, FLOAT, INT, TEXT, ListOf, Type, strip_optional, unify

ROLES = ("system", "user", "assistant")


@dataclass(frozen=True, slots=True)
class OptionSpec:
    type: Type
    summary: str
    example: str


OPTIONS: dict[str, OptionSpec] = {
    "temperature": OptionSpec(FLOAT, "sampling temperature, >= 0 (0 = greedy)", "temperature 0.6"),
    "top_p": OptionSpec(FLOAT, "nucleus sampling mass, in (0, 1]", "top_p 0.95"),
    "top_k": OptionSpec(INT, "sample among the k most likely tokens, >= 0 (0 = off)", "top_k 20"),
    "min_p": OptionSpec(FLOAT, "drop tokens below this fraction of the top probability, in [0, 1]", "min_p 0.05"),
    "max_tokens": OptionSpec(
        INT, "the most tokens to generate, 1 to 1,048,576 (always set: engines' defaults are tiny)", "max_tokens 4096"
    ),
    "n": OptionSpec(INT, "samples per example, 1 to 1,024; with n > 1 the stage's value is list[text]", "n 8"),
    "seed": OptionSpec(INT, "a per-stage sampling seed (the run's seed is used when absent)", "seed 1234"),
    "stop": OptionSpec(ListOf(TEXT), "strings that end generation (a single string is allowed)", 'stop ["</answer>"]'),
    "thinking": OptionSpec(
        BOOL, "the chat template's thinking switch (enable_thinking), `on` or `off`", "thinking off"
    ),
    "choice": OptionSpec(ListOf(TEXT), "constrain the completion to exactly one of these strings", "choice labels"),
    "regex": OptionSpec(TEXT, "constrain the completion to match this regular expression", 'regex "[A-D]"'),
    "json": OptionSpec(
        TEXT, "constrain the completion to JSON valid under this JSON schema", 'json """{"type": "object"}"""'
    ),
}
CONSTRAINTS = ("choice", "regex", "json")
_SWITCH_WORDS = {"on": True, "off": False, "yes": True, "no": False}

ErrorSink = Callable[..., None]


def lower_option(
    setting: ast.Setting, lower_constant: Callable[[ast.Expr], ir.Expr], error: ErrorSink
) -> ir.Option | None:
    """Type one `key value` option; returns None (after reporting) when its value has the wrong type."""
    spec = OPTIONS[setting.key.name]
    raw = setting.value
    if spec.type == BOOL and isinstance(raw, ast.Name) and raw.name in _SWITCH_WORDS:
        value: ir.Expr = ir.Literal(value=_SWITCH_WORDS[raw.name], type=BOOL, span=raw.span)
    else:
        value = lower_constant(raw)
    if spec.type == ListOf(TEXT) and isinstance(value, ir.Literal) and isinstance(value.value, str):
        value = ir.Literal(value=(value.value,), type=ListOf(TEXT), span=value.span)
    if not unify(spec.type, strip_optional(value.type), {}):
        error(
            "type-mismatch",
            f"option `{setting.key.name}` takes {spec.type}, but this is {value.type}",
            raw.span,
            f"this is {value.type}",
            (f"for example: {spec.example}",),
        )
        return None
    return ir.Option(name=setting.key.name, value=value, span=setting.span)
