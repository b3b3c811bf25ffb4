"""What may appear inside an `llm`, `student` or `teacher` body besides messages: the option table.

Each option has a type; its value is a constant (a literal or a `param`). Value ranges (sampling.py's) are
checked on the IR by harnessc/checks/, after `--set` overrides, so that an override out of range is reported
too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from harnessc import ast, ir
from harnessc.sampling import SAMPLING
from harnessc.types import BOOL, TEXT, ListOf, Type, strip_optional, unify

ROLES = ("system", "user", "assistant")


@dataclass(frozen=True, slots=True)
class OptionSpec:
    type: Type
    summary: str
    example: str


# The sampling options (their types, ranges and defaults are harnessc/sampling.py's), then the chat-template
# switch and the output constraints.
OPTIONS: dict[str, OptionSpec] = {
    **{name: OptionSpec(option.type, option.summary, option.example) for name, option in SAMPLING.items()},
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
