"""The one small interface between the harness runtime (and the trainer) and an inference engine.

Pure data and a Protocol: importing this module never imports torch or vllm.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

from harnessc.sampling import SamplingOptions as SamplingOptions  # per-request sampling: one table, sampling.py


@dataclass(frozen=True, slots=True)
class ChatMessage:
    role: Literal["system", "user", "assistant"]
    content: str


@dataclass(frozen=True, slots=True)
class OutputConstraint:
    """Constrained decoding: exactly one kind per request."""

    kind: Literal["choice", "regex", "json"]
    choices: tuple[str, ...] = ()
    pattern: str = ""  # the regex, or the JSON schema as text


@dataclass(frozen=True, slots=True)
class ChatRequest:
    messages: tuple[ChatMessage, ...]
    sampling: SamplingOptions
    # Passed to the tokenizer's chat template, e.g. {"enable_thinking": False}.
    template_kwargs: Mapping[str, Any] = field(default_factory=dict)
    constraint: OutputConstraint | None = None


FinishReason = Literal["stop", "length", "error"]


@dataclass(frozen=True, slots=True)
class Completion:
    text: str
    token_ids: tuple[int, ...]
    finish_reason: FinishReason
    prompt_token_count: int = 0
    logprobs: tuple[float, ...] | None = None
    error: str | None = None  # why the request failed (e.g. prompt longer than the model's context)
    # The prompt ids the engine actually generated after (None when an engine cannot say): the trainer checks
    # that the sequence its loss conditions on starts with exactly these.
    prompt_token_ids: tuple[int, ...] | None = None


@runtime_checkable
class Engine(Protocol):
    """An inference engine. `chat` returns, per request, `request.sampling.n` completions.

    Engines schedule the whole list themselves: the runtime passes one list per stage (the fast path).
    A request that cannot run (prompt too long, ...) yields completions with finish_reason "error" and an
    `error` string; it never raises for the whole batch.
    """

    name: str

    def chat(self, requests: Sequence[ChatRequest]) -> list[list[Completion]]: ...

    def apply_chat_template(
        self, messages: Sequence[ChatMessage], template_kwargs: Mapping[str, Any] | None = None
    ) -> list[int]:
        """Token ids of `messages` with the generation prompt appended (what `chat` feeds the model)."""
        ...

    def load_weights(self, state_dict: Mapping[str, Any]) -> None:
        """Replace the model's weights (called by the trainer after each optimizer step)."""
        ...
