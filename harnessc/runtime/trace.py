"""What a run records per example: one JSON line per example (and replica), read back by --resume,
`ophsd eval` and the trainer's teacher-context builder. Pydantic models with extra="forbid": a stale or
hand-edited file fails loudly instead of being half-read."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict

from harnessc.engines.base import ChatRequest, Completion


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Message(_Model):
    role: str
    content: str


class Sample(_Model):
    text: str
    tokens: int
    finish_reason: str


class StageCall(_Model):
    """One LLM stage (or a skipped one) for one example: what was sent and what came back."""

    stage: str
    iteration: int = 0
    item: int | None = None  # a fan-out's item (its position in the list); None for other stages
    skipped: bool = False
    messages: list[Message] = []
    template_kwargs: dict[str, Any] = {}
    prompt_tokens: int = 0
    samples: list[Sample] = []
    seconds: float = 0.0  # the wall time of the engine call this request was part of

    @staticmethod
    def from_completions(
        stage: str,
        iteration: int,
        request: ChatRequest,
        completions: Sequence[Completion],
        seconds: float,
        item: int | None = None,
    ) -> StageCall:
        return StageCall(
            stage=stage,
            iteration=iteration,
            item=item,
            messages=_messages(request),
            template_kwargs=dict(request.template_kwargs),
            prompt_tokens=completions[0].prompt_token_count if completions else 0,
            samples=[Sample(text=c.text, tokens=len(c.token_ids), finish_reason=c.finish_reason) for c in completions],
            seconds=seconds,
        )

    @property
    def generated_tokens(self) -> int:
        return sum(sample.tokens for sample in self.samples)


class Failure(_Model):
    stage: str
    # missing-value | builtin-error | engine-error | no-output | evaluation-error | data-error (the row could
    # not be used) | invalid-text (lone surrogates replaced to write the record) | output-error
    reason: str
    message: str


class TeacherContext(_Model):
    """The teacher's chat messages for one example and which stage they came from (provenance)."""

    source: str
    messages: list[Message]
    template_kwargs: dict[str, Any] = {}

    @staticmethod
    def from_request(source: str, request: ChatRequest) -> TeacherContext:
        return TeacherContext(source=source, messages=_messages(request), template_kwargs=dict(request.template_kwargs))


class ExampleRecord(_Model):
    index: int
    replica: int = 0
    inputs: dict[str, Any] = {}
    output: Any = None
    grade: Any = None
    calls: list[StageCall] = []
    failure: Failure | None = None  # the first failure: its root cause
    failures: list[Failure] = []
    teacher: TeacherContext | None = None
    seconds: float = 0.0

    @property
    def correct(self) -> float:
        """The grade as a number (true = 1.0); absent or failed = 0.0."""
        if isinstance(self.grade, bool):
            return float(self.grade)
        return float(self.grade) if isinstance(self.grade, (int, float)) else 0.0


def _messages(request: ChatRequest) -> list[Message]:
    return [Message(role=message.role, content=message.content) for message in request.messages]
