"""A deterministic engine driven by a Python function: for scheduler tests, dry runs and examples.

`ScriptedEngine(respond)` answers each request with `respond(request, sample_index)`; it counts tokens as
whitespace-separated words and records every call, so tests can assert how work was batched.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from harnessc.engines.base import ChatMessage, ChatRequest, Completion, FinishReason

Responder = Callable[[ChatRequest, int], str]


class ScriptedEngine:
    name = "scripted"

    def __init__(self, respond: Responder, *, max_prompt_words: int | None = None) -> None:
        self.respond = respond
        self.max_prompt_words = max_prompt_words
        self.calls: list[list[ChatRequest]] = []  # one entry per chat() call: its whole batch

    def chat(self, requests: Sequence[ChatRequest]) -> list[list[Completion]]:
        self.calls.append(list(requests))
        return [self._complete(request) for request in requests]

    def _complete(self, request: ChatRequest) -> list[Completion]:
        prompt_words = sum(len(message.content.split()) for message in request.messages)
        if self.max_prompt_words is not None and prompt_words > self.max_prompt_words:
            error = f"prompt of {prompt_words} words exceeds the limit of {self.max_prompt_words}"
            return [Completion(text="", token_ids=(), finish_reason="error", error=error)] * request.sampling.n
        completions = []
        for sample in range(request.sampling.n):
            text = self.respond(request, sample)
            words = text.split()[: request.sampling.max_tokens]
            finish: FinishReason = "length" if len(text.split()) > request.sampling.max_tokens else "stop"
            completions.append(
                Completion(
                    text=" ".join(words) if finish == "length" else text,
                    token_ids=tuple(range(len(words))),
                    finish_reason=finish,
                    prompt_token_count=prompt_words,
                )
            )
        return completions

    def apply_chat_template(
        self, messages: Sequence[ChatMessage], template_kwargs: Mapping[str, Any] | None = None
    ) -> list[int]:
        return list(range(sum(len(message.content.split()) for message in messages)))

    def load_weights(self, state_dict: Mapping[str, Any]) -> None:
        raise NotImplementedError("a scripted engine has no weights")
