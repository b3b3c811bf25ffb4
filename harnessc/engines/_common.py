"""Helpers both engines share: chat templating, request validation and error completions.

Pure Python (the tokenizer is duck-typed), so importing it never imports torch.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from harnessc.engines.base import ChatMessage, ChatRequest, Completion, SamplingOptions


class UnsupportedConstraintError(NotImplementedError):
    """An engine cannot enforce this kind of output constraint (the message names an alternative)."""


def message_dicts(messages: Sequence[ChatMessage]) -> list[dict[str, str]]:
    """The `{"role", "content"}` dicts that Hugging Face chat templates expect."""
    return [{"role": message.role, "content": message.content} for message in messages]


def chat_template_ids(
    tokenizer: Any,
    messages: Sequence[ChatMessage],
    template_kwargs: Mapping[str, Any] | None,
    *,
    generation_prompt: bool = True,
) -> list[int]:
    """Prompt token ids: `messages` rendered by the tokenizer's chat template, generation prompt appended
    (unless `generation_prompt=False`: the trainer uses both to find where a template's assistant turn starts).

    Both engines tokenize through this one function, so a prompt is the same token sequence whichever
    engine runs it (and the trainer can rebuild it exactly).
    """
    encoded = tokenizer.apply_chat_template(
        message_dicts(messages),
        add_generation_prompt=generation_prompt,
        tokenize=True,
        return_dict=True,
        **dict(template_kwargs or {}),
    )
    return list(encoded["input_ids"])


def prepare_prompt(tokenizer: Any, request: ChatRequest, max_model_len: int) -> tuple[list[int], str | None]:
    """(prompt ids, None), or (whatever ids exist, why the request cannot run)."""
    problem = validate_request(request)
    if problem:
        return [], problem
    try:
        prompt = chat_template_ids(tokenizer, request.messages, request.template_kwargs)
    except Exception as exc:  # a template error concerns this request only
        return [], f"chat template failed: {exc}"
    return prompt, prompt_too_long(len(prompt), max_model_len)


def prompt_too_long(prompt_tokens: int, max_model_len: int) -> str | None:
    """Why a prompt cannot run, or None if it can: the prompt plus one generated token must fit."""
    if prompt_tokens < max_model_len:
        return None
    return (
        f"prompt of {prompt_tokens} tokens exceeds the model context: max_model_len is {max_model_len} "
        "and at least one generated token must fit"
    )


def validate_request(request: ChatRequest) -> str | None:
    """Problems an engine cannot run a request with (as one message), or None when it is well formed."""
    sampling, constraint = request.sampling, request.constraint
    problems = []
    if sampling.max_tokens < 1:
        problems.append(f"max_tokens must be at least 1, got {sampling.max_tokens}")
    if sampling.n < 1:
        problems.append(f"n must be at least 1, got {sampling.n}")
    if sampling.temperature < 0:
        problems.append(f"temperature must be >= 0, got {sampling.temperature}")
    if not 0 < sampling.top_p <= 1:
        problems.append(f"top_p must be in (0, 1], got {sampling.top_p}")
    if not 0 <= sampling.min_p <= 1:
        problems.append(f"min_p must be in [0, 1] (0 disables it), got {sampling.min_p}")
    if sampling.top_k < 0:
        problems.append(f"top_k must be >= 0 (0 disables it), got {sampling.top_k}")
    if constraint is not None and constraint.kind == "choice" and not constraint.choices:
        problems.append("a choice constraint needs at least one choice")
    if constraint is not None and constraint.kind in ("regex", "json") and not constraint.pattern:
        problems.append(f"a {constraint.kind} constraint needs a pattern")
    return "; ".join(problems) or None


def distinct_samples(sampling: SamplingOptions) -> int:
    """How many samples to actually decode: greedy samples are all identical, so one is decoded and copied.

    (vLLM also refuses n > 1 with temperature 0.)
    """
    return 1 if sampling.temperature == 0 else sampling.n


def error_completions(request: ChatRequest, error: str, prompt_token_count: int = 0) -> list[Completion]:
    """`request.sampling.n` identical error completions: a failed request still fills its slots."""
    failed = Completion(
        text="",
        token_ids=(),
        finish_reason="error",
        prompt_token_count=prompt_token_count,
        error=error,
    )
    return [failed] * max(request.sampling.n, 1)


def eos_token_ids(tokenizer: Any, generation_config: Any | None) -> tuple[int, ...]:
    """End-of-sequence ids, the tokenizer's own first, then any extra ones from the generation config.

    Chat models often end a turn with a token (`<|im_end|>`) that only the generation config lists; vLLM
    stops on both sets, so the transformers engine does too.
    """
    ids: list[int] = []
    extra = getattr(generation_config, "eos_token_id", None) if generation_config is not None else None
    for token_id in _as_ids(getattr(tokenizer, "eos_token_id", None)) + _as_ids(extra):
        if token_id not in ids:
            ids.append(token_id)
    return tuple(ids)


def _as_ids(value: int | Iterable[int] | None) -> list[int]:
    if value is None:
        return []
    if isinstance(value, int):
        return [value]
    return [int(token_id) for token_id in value]


def truncate_at_stop(text: str, stops: Sequence[str]) -> str | None:
    """`text` cut before the earliest stop string it contains, or None if it contains none."""
    positions = [index for index in (text.find(stop) for stop in stops if stop) if index >= 0]
    return text[: min(positions)] if positions else None
