"""What a run records per example: one JSON line per example (and replica), read back by --resume,
`ophsd eval` and the trainer's teacher-context builder. Pydantic models with extra="forbid": a stale or
hand-edited file fails loudly instead of being half-read.

Messages stay the engines' ChatMessage in memory (the trainer builds sequences from them as they are) and are
written as `{"role", "content"}` objects. Fields marked `exclude=True` live in memory only, never in a file:
the token ids a trainer asks for (`Program(token_ids=True)`) and whether a prompt was cut to fit."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from harnessc.engines.base import ChatMessage, ChatRequest, Completion


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Sample(_Model):
    text: str
    tokens: int
    finish_reason: str
    # In memory only, when the program keeps them (Program(token_ids=True)): the completion's ids and the
    # prompt ids the engine sampled it after (None when the engine cannot say).
    token_ids: tuple[int, ...] | None = Field(default=None, exclude=True)
    prompt_token_ids: tuple[int, ...] | None = Field(default=None, exclude=True)


class StageCall(_Model):
    """One LLM stage (or a skipped one) for one example: what was sent and what came back."""

    stage: str
    iteration: int = 0
    item: int | None = None  # a fan-out's item (its position in the list); None for other stages
    skipped: bool = False
    messages: tuple[ChatMessage, ...] = ()
    template_kwargs: dict[str, Any] = {}
    prompt_tokens: int = 0
    samples: list[Sample] = []
    seconds: float = 0.0  # the wall time of the engine call this request was part of
    prompt_cut: bool = Field(default=False, exclude=True)  # the prompt was cut to fit before it was sent (in memory)

    @staticmethod
    def from_completions(
        stage: str,
        iteration: int,
        request: ChatRequest,
        completions: Sequence[Completion],
        seconds: float,
        item: int | None = None,
        *,
        token_ids: bool = False,
        prompt_cut: bool = False,
    ) -> StageCall:
        """The call of `request`; with `token_ids`, each sample keeps its ids in memory (see Sample)."""
        return StageCall(
            stage=stage,
            iteration=iteration,
            item=item,
            messages=request.messages,
            template_kwargs=dict(request.template_kwargs),
            prompt_tokens=completions[0].prompt_token_count if completions else 0,
            samples=[_sample(completion, token_ids) for completion in completions],
            seconds=seconds,
            prompt_cut=prompt_cut,
        )

    @property
    def generated_tokens(self) -> int:
        return sum(sample.tokens for sample in self.samples)


class Failure(_Model):
    stage: str
    # missing-value | builtin-error | operator-error (`//` or `%` by zero, an index outside its list) |
    # engine-error | constraint-unmet (a constrained output cut short) | no-output | evaluation-error |
    # data-error (the row could not be used) | invalid-text (lone surrogates replaced to write the record) |
    # output-error
    reason: str
    message: str


class TeacherContext(_Model):
    """The teacher's chat messages for one example and which stage they came from (provenance)."""

    source: str
    messages: tuple[ChatMessage, ...]
    template_kwargs: dict[str, Any] = {}

    @staticmethod
    def from_request(source: str, request: ChatRequest) -> TeacherContext:
        return TeacherContext(source=source, messages=request.messages, template_kwargs=dict(request.template_kwargs))


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


def _sample(completion: Completion, token_ids: bool) -> Sample:
    return Sample(
        text=completion.text,
        tokens=len(completion.token_ids),
        finish_reason=completion.finish_reason,
        token_ids=tuple(completion.token_ids) if token_ids else None,
        prompt_token_ids=completion.prompt_token_ids if token_ids else None,
    )
