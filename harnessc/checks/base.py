"""What every check shares: the context a harness is checked for, constant values, the prompts."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from harnessc import ir
from harnessc.source import Span


@dataclass(frozen=True)
class CheckContext:
    """`purpose`: "train" (student and teacher required), "run" (an output or a student required) or
    "any" (what is missing for either purpose is a warning)."""

    purpose: str = "any"


def prompts(harness: ir.Harness) -> Iterator[tuple[str, ir.Prompt]]:
    for what, prompt, _ in anchored_prompts(harness):
        yield what, prompt


def anchored_prompts(harness: ir.Harness) -> Iterator[tuple[str, ir.Prompt, Span]]:
    """Every prompt with what to call it and where to point at it as a whole (a stage's name)."""
    for stage in harness.llm_stages():
        yield f"stage `{stage.name}`", stage.prompt, stage.name_span
        if stage.fallback is not None:
            yield f"the fallback of `{stage.name}`", stage.fallback, stage.fallback.span
    if harness.student is not None:
        yield "the student view", harness.student, harness.student.span
    if isinstance(harness.teacher, ir.Prompt):
        yield "the teacher view", harness.teacher, harness.teacher.span


def constant_value(value: ir.Expr, harness: ir.Harness):
    """The value of a constant expression (a literal or a `param`'s current default), or None."""
    if isinstance(value, ir.Literal):
        return value.value
    if isinstance(value, ir.Ref) and value.kind == "param":
        param = harness.param(value.name)
        return param.default.value if param else None
    return None
