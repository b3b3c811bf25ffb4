"""Helpers both engines share: chat templating, request validation and error completions.

Pure Python (the tokenizer is duck-typed), so importing it never imports torch.
"""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from harnessc.engines.base import ChatMessage, ChatRequest, Completion, SamplingOptions
from harnessc.sampling import sampling_problems


class UnsupportedConstraintError(NotImplementedError):
    """An engine cannot enforce this kind of output constraint (the message names an alternative)."""


def message_dicts(messages: Sequence[ChatMessage]) -> list[dict[str, str]]:
    """The `{"role", "content"}` dicts that Hugging Face chat templates expect."""
    return [{"role": message.role, "content": message.content} for message in messages]


SPECIAL_TOKEN_POLICIES = ("escape", "refuse")
"""What to do when a message's content holds the text of a special token (`<|im_start|>`, ...):
"escape" tokenizes that text as the ordinary characters it is, "refuse" fails the request."""


class SpecialTokenTextError(ValueError):
    """A message's content would become special tokens (refused by policy, or not escapable: see the message)."""


def chat_template_ids(
    tokenizer: Any,
    messages: Sequence[ChatMessage],
    template_kwargs: Mapping[str, Any] | None,
    *,
    generation_prompt: bool = True,
    special_tokens: str = "escape",
) -> list[int]:
    """Prompt token ids: `messages` rendered by the tokenizer's chat template, generation prompt appended
    (unless `generation_prompt=False`: the trainer uses both to find where a template's assistant turn starts).

    Both engines and the trainer tokenize through this one function, so a prompt is the same token sequence
    whichever engine runs it (and the trainer can rebuild it exactly).

    Special tokens come only from the template: message contents (data values, model outputs) are text.
    When a content holds a special token's text (`"<|im_start|>system ..."`), `special_tokens` decides:
    "escape" tokenizes the content with special tokens split into ordinary characters, "refuse" raises
    `SpecialTokenTextError`. Prompts whose contents hold no such text get exactly the ids of tokenizing the
    whole rendered prompt (segment boundaries cannot shift their tokenization).

    Raises:
        SpecialTokenTextError: refused by policy, or the template rewrites contents so that they cannot be
            located and escaped.
        ValueError: an unknown policy. Template errors propagate as raised by the tokenizer.
    """
    if special_tokens not in SPECIAL_TOKEN_POLICIES:
        raise ValueError(f"special_tokens must be one of {SPECIAL_TOKEN_POLICIES}, got {special_tokens!r}")
    kwargs = dict(template_kwargs or {})
    encoded = tokenizer.apply_chat_template(
        message_dicts(messages), add_generation_prompt=generation_prompt, tokenize=True, return_dict=True, **kwargs
    )
    ids = list(encoded["input_ids"])
    special_ids = special_token_ids(tokenizer)
    if not special_ids:
        return ids
    segments = _template_segments(tokenizer, messages, kwargs, generation_prompt)
    if segments is None:  # the template rewrites contents: only safe when no content holds special text
        found = _special_text_in(tokenizer, messages)
        if found is None:
            return ids
        raise SpecialTokenTextError(
            f"{found}; this chat template rewrites message contents, so the text cannot be escaped"
        )
    template_parts = [_encode(tokenizer, segment, split_special=False) for segment in segments]
    template_specials = [token for part in template_parts for token in part if token in special_ids]
    if [token for token in ids if token in special_ids] == template_specials:
        return ids  # contents added no special token: today's ids, untouched
    if special_tokens == "refuse":
        found = _special_text_in(tokenizer, messages) or "a message content forms special-token text"
        raise SpecialTokenTextError(f"{found} (special tokens in data: refuse)")
    escaped = template_parts[0][:]
    for message, part in zip(messages, template_parts[1:], strict=True):
        escaped += _encode(tokenizer, message.content, split_special=True) + part
    return escaped


# Per tokenizer object: `added_tokens_decoder` is rebuilt on every access, which costs milliseconds for
# tokenizers with thousands of added tokens (Gemma's reserved ones).
# Keyed by the vocabulary size too, so tokens added later are seen.
_SPECIAL_IDS: weakref.WeakKeyDictionary[Any, tuple[int, frozenset[int]]] = weakref.WeakKeyDictionary()


def special_token_ids(tokenizer: Any) -> frozenset[int]:
    """Ids of the tokenizer's added tokens marked special (role markers, end of turn, ...)."""
    size = len(tokenizer) if hasattr(tokenizer, "__len__") else -1
    try:
        cached_size, ids = _SPECIAL_IDS[tokenizer]
        if cached_size == size:
            return ids
    except (KeyError, TypeError):  # TypeError: an object that cannot be weakly referenced
        pass
    decoder = getattr(tokenizer, "added_tokens_decoder", None) or {}
    ids = frozenset(int(token_id) for token_id, token in decoder.items() if getattr(token, "special", False))
    with contextlib.suppress(TypeError):
        _SPECIAL_IDS[tokenizer] = (size, ids)
    return ids


def special_token_texts(tokenizer: Any) -> tuple[str, ...]:
    """The texts of the tokenizer's special tokens, longest first."""
    decoder = getattr(tokenizer, "added_tokens_decoder", None) or {}
    texts = {str(token.content) for token in decoder.values() if getattr(token, "special", False) and token.content}
    return tuple(sorted(texts, key=lambda text: (-len(text), text)))


def _special_text_in(tokenizer: Any, messages: Sequence[ChatMessage]) -> str | None:
    """Where a message content holds a special token's text, as a sentence; None when none does."""
    texts = special_token_texts(tokenizer)
    for number, message in enumerate(messages):
        for text in texts:
            if text in message.content:
                return f"message {number} ({message.role}) contains the special-token text {text!r}"
    return None


# Stand-ins for message contents while the template is rendered; private-use characters keep them apart
# from anything a template or a data value would contain.
_SENTINEL = "\ue000harnessc-content-{}\ue001"


def _template_segments(
    tokenizer: Any, messages: Sequence[ChatMessage], kwargs: dict[str, Any], generation_prompt: bool
) -> list[str] | None:
    """The template's own text around the contents: len(messages) + 1 segments, or None when the template
    does not place every content once, in order and unchanged (checked against the real rendering)."""
    placeholders = [ChatMessage(role=m.role, content=_SENTINEL.format(i)) for i, m in enumerate(messages)]
    try:
        rendered = tokenizer.apply_chat_template(
            message_dicts(placeholders), add_generation_prompt=generation_prompt, tokenize=False, **kwargs
        )
    except Exception:  # noqa: BLE001 - a template that rejects the placeholders: treated as rewriting contents
        return None
    segments, rest = [], rendered
    for index in range(len(messages)):
        head, found, rest = rest.partition(_SENTINEL.format(index))
        if not found:
            return None
        segments.append(head)
    segments.append(rest)
    if any("\ue000harnessc-content-" in segment for segment in segments):
        return None  # a content rendered twice
    real = tokenizer.apply_chat_template(
        message_dicts(messages), add_generation_prompt=generation_prompt, tokenize=False, **kwargs
    )
    rebuilt = segments[0] + "".join(m.content + segment for m, segment in zip(messages, segments[1:], strict=True))
    return segments if rebuilt == real else None


def _encode(tokenizer: Any, text: str, *, split_special: bool) -> list[int]:
    if not text:
        return []
    encoded = tokenizer(text, add_special_tokens=False, split_special_tokens=split_special)
    return list(encoded["input_ids"])


def prepare_prompt(
    tokenizer: Any, request: ChatRequest, max_model_len: int, special_tokens: str = "escape"
) -> tuple[list[int], str | None]:
    """(prompt ids, None), or (whatever ids exist, why the request cannot run)."""
    problem = validate_request(request)
    if problem:
        return [], problem
    try:
        prompt = chat_template_ids(tokenizer, request.messages, request.template_kwargs, special_tokens=special_tokens)
    except SpecialTokenTextError as exc:
        return [], f"refused: {exc}"
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
    problems = sampling_problems(sampling)
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
