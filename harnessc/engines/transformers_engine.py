"""The transformers engine: batched generation with a plain PyTorch decode loop over a Hugging Face model.

It runs wherever torch runs and can share the trainer's `nn.Module` (no copy, so no weight sync). It is
the fallback and the reference for the vLLM engine, not the fast path.

Why a hand-written loop instead of `model.generate`: every sampled sequence owns a `torch.Generator`, so a
seeded request gives the same completion whatever else is in the batch, and stop strings, grammar masks
and sampled-token log-probabilities are handled per sequence.

Semantics, chosen to match vLLM's defaults so that engines are interchangeable:
- Generation ends at an end-of-sequence token (finish "stop"; the token is kept in `token_ids`, not in
  `text`), at a stop string (finish "stop"; `text` is cut before the stop string, `token_ids` end with the
  token that completed it), or after `max_tokens` or at the context limit (finish "length").
- `logprobs` are those of the raw model distribution (before temperature, min-p/top-k/top-p and
  constraint masks), as vLLM reports by default.
- Determinism: a seeded request gives the same completion on every call, in any batch order and with any
  batch companions, up to floating-point effects of batch shape (padding and batch size change matrix
  shapes; on some kernels that moves logits in the last bits and can flip a near-tie). Sample j of a request
  with seed s always uses the generator seeded from (s, j). Unseeded requests draw their seed from torch's
  global generator, so `torch.manual_seed` makes a whole run reproducible.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from harnessc.engines._common import (
    SPECIAL_TOKEN_POLICIES,
    UnsupportedConstraintError,
    chat_template_ids,
    distinct_samples,
    eos_token_ids,
    error_completions,
    prepare_prompt,
    truncate_at_stop,
)
from harnessc.engines.base import (
    ChatMessage,
    ChatRequest,
    Completion,
    FinishReason,
    OutputConstraint,
    SamplingOptions,
)

__all__ = ["TransformersEngine"]

_REPLACEMENT_CHARACTER = "\ufffd"  # what decoding yields for an incomplete UTF-8 sequence


@dataclass
class _Row:
    """One sequence being generated: sample `sample` of request `request`."""

    request: int
    sample: int
    prompt_ids: list[int]
    generator: torch.Generator
    max_new_tokens: int
    matcher: Any | None = None  # an xgrammar GrammarMatcher for regex/json constraints
    token_ids: list[int] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)
    text: str = ""
    finish_reason: FinishReason | None = None


class TransformersEngine:
    """Batched chat generation with a Hugging Face causal LM.

    Args:
        model_or_path: a loaded model (used as is, never copied: the trainer can share its module) or a
            directory / hub id to load with `AutoModelForCausalLM`.
        tokenizer: a tokenizer object or a path; defaults to the model's path.
        device: where to load a model given by path (default: CUDA if available, else CPU). A loaded
            model stays where it is.
        dtype: "auto" (bfloat16 on CUDA, float32 on CPU), a name such as "bfloat16", or a torch.dtype;
            only used when loading from a path.
        max_model_len: context limit for prompt plus completion (default: the model's
            `max_position_embeddings`).
        batch_size: sequences decoded together; requests with the same sampling options share batches.
        special_tokens_in_data: "escape" (default) tokenizes special-token text inside message contents as
            ordinary characters; "refuse" fails such requests (see `chat_template_ids`).
    """

    name = "transformers"

    def __init__(
        self,
        model_or_path: Any,
        tokenizer: Any = None,
        device: str | torch.device | None = None,
        dtype: str | torch.dtype = "auto",
        max_model_len: int | None = None,
        batch_size: int = 16,
        special_tokens_in_data: str = "escape",
    ) -> None:
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be an integer of at least 1, got {batch_size!r}")
        if max_model_len is not None and (not isinstance(max_model_len, int) or max_model_len < 2):
            raise ValueError(f"max_model_len must be an integer of at least 2, got {max_model_len!r}")
        if special_tokens_in_data not in SPECIAL_TOKEN_POLICIES:
            raise ValueError(
                f"special_tokens_in_data must be one of {SPECIAL_TOKEN_POLICIES}, got {special_tokens_in_data!r}"
            )
        self.special_tokens_in_data = special_tokens_in_data
        if isinstance(model_or_path, (str, Path)):
            self.model = _load_model(str(model_or_path), _resolve_device(device), dtype)
            tokenizer = tokenizer if tokenizer is not None else str(model_or_path)
        else:
            self.model = model_or_path
            _check_device(self.model, device)
        self.tokenizer = _load_tokenizer(tokenizer, self.model)
        self.device = next(self.model.parameters()).device
        self.max_model_len = max_model_len or int(self.model.config.max_position_embeddings)
        self.batch_size = batch_size
        self._eos_ids = eos_token_ids(self.tokenizer, getattr(self.model, "generation_config", None))
        if not self._eos_ids:
            raise ValueError("the tokenizer and generation config name no end-of-sequence token")
        pad_id = self.tokenizer.pad_token_id
        self._pad_id = pad_id if pad_id is not None else self._eos_ids[0]
        self._grammar_compiler: Any = None

    # ------------------------------------------------------------------ public API (the Engine protocol)

    def apply_chat_template(
        self, messages: Sequence[ChatMessage], template_kwargs: Mapping[str, Any] | None = None
    ) -> list[int]:
        """Token ids of `messages` with the generation prompt appended (what `chat` feeds the model)."""
        return chat_template_ids(self.tokenizer, messages, template_kwargs, special_tokens=self.special_tokens_in_data)

    def chat(self, requests: Sequence[ChatRequest]) -> list[list[Completion]]:
        """Per request, `request.sampling.n` completions; a request that cannot run yields error completions.

        Raises `UnsupportedConstraintError` for regex/json constraints when xgrammar is not installed.
        """
        results: dict[int, list[Completion]] = {}
        prompts: dict[int, list[int]] = {}
        for index, request in enumerate(requests):
            prompt, error = prepare_prompt(self.tokenizer, request, self.max_model_len, self.special_tokens_in_data)
            if error:
                results[index] = error_completions(request, error, len(prompt))
            else:
                prompts[index] = prompt
        choice_requests = [i for i in prompts if _is_choice(requests[i].constraint)]
        with self._inference_mode():
            results.update(self._choose(requests, prompts, choice_requests))
            for indices in _group_by_sampling(requests, prompts, exclude=set(choice_requests)):
                results.update(self._generate_group(requests, prompts, indices))
        return [results[index] for index in range(len(requests))]

    def load_weights(self, state_dict: Mapping[str, Any]) -> None:
        """Copy `state_dict` into the model; a no-op when it holds the model's own tensors.

        A partial state dict updates only the tensors it names; names the model does not have are an error.
        """
        own = self.model.state_dict()
        unknown = sorted(set(state_dict) - set(own))
        if unknown:
            raise KeyError(f"state dict has tensors the model does not: {unknown[:5]}")
        if all(_shares_storage(tensor, own[name]) for name, tensor in state_dict.items()):
            return
        with torch.no_grad():
            self.model.load_state_dict(dict(state_dict), strict=False)

    # ------------------------------------------------------------------ shared machinery

    @contextlib.contextmanager
    def _inference_mode(self) -> Iterator[None]:
        """Eval mode (no dropout) for the duration, then the caller's mode back: the module may be shared."""
        was_training = self.model.training
        self.model.eval()
        try:
            with torch.inference_mode():
                yield
        finally:
            self.model.train(was_training)

    def _generators(self, seed: int | None, n: int, device: torch.device | None = None) -> list[torch.Generator]:
        """One generator per sample (on the engine's device by default), seeded from (seed, sample index)."""
        if seed is None:
            seed = int(torch.randint(0, 2**62, (1,)).item())
        device = device or self.device
        return [torch.Generator(device=device).manual_seed(_derive_seed(seed, j)) for j in range(n)]

    # ------------------------------------------------------------------ free generation

    def _generate_group(
        self, requests: Sequence[ChatRequest], prompts: Mapping[int, list[int]], indices: Sequence[int]
    ) -> dict[int, list[Completion]]:
        """Generate every sample of `indices` (requests with the same sampling options)."""
        results: dict[int, list[Completion]] = {}
        rows: list[_Row] = []
        for index in indices:
            rows_or_error = self._rows(index, requests[index], prompts[index])
            if isinstance(rows_or_error, str):
                results[index] = error_completions(requests[index], rows_or_error, len(prompts[index]))
            else:
                rows.extend(rows_or_error)
        # Similar lengths together waste less compute on padding.
        rows.sort(key=lambda row: len(row.prompt_ids))
        sampling = requests[indices[0]].sampling
        for start in range(0, len(rows), self.batch_size):
            self._decode(rows[start : start + self.batch_size], sampling)
        for row in sorted(rows, key=lambda row: (row.request, row.sample)):
            results.setdefault(row.request, []).append(_completion(row, sampling))
        for index, completions in results.items():
            if len(completions) < requests[index].sampling.n:  # greedy: one decoded, n returned
                results[index] = completions * requests[index].sampling.n
        return results

    def _rows(self, index: int, request: ChatRequest, prompt: list[int]) -> list[_Row] | str:
        """The request's n sequences to decode, or why it cannot run (an invalid grammar)."""
        sampling = request.sampling
        grammar = None
        if request.constraint is not None:
            try:
                grammar = self._compile_grammar(request.constraint)
            except UnsupportedConstraintError:
                raise
            except Exception as exc:  # xgrammar rejects the regex or schema of this request only
                return f"invalid {request.constraint.kind} constraint: {exc}"
        max_new_tokens = min(sampling.max_tokens, self.max_model_len - len(prompt))
        return [
            _Row(
                request=index,
                sample=sample,
                prompt_ids=prompt,
                generator=generator,
                max_new_tokens=max_new_tokens,
                matcher=None if grammar is None else _new_matcher(grammar),
            )
            for sample, generator in enumerate(self._generators(sampling.seed, distinct_samples(sampling)))
        ]

    def _decode(self, rows: list[_Row], sampling: SamplingOptions) -> None:
        """Decode `rows` together until each one finishes; finished rows leave the batch."""
        input_ids, attention_mask = self._left_pad([row.prompt_ids for row in rows])
        position_ids = (attention_mask.cumsum(-1) - 1).clamp(min=0)
        cache = None
        active = list(rows)
        while True:
            output = self.model(
                input_ids=input_ids,
                attention_mask=attention_mask,
                position_ids=position_ids,
                past_key_values=cache,
                use_cache=True,
                logits_to_keep=1,
            )
            cache = output.past_key_values
            tokens, logprobs = self._sample(output.logits[:, -1, :].float(), active, sampling)
            for row, token, logprob in zip(active, tokens.tolist(), logprobs.tolist(), strict=True):
                self._append(row, token, logprob, sampling)
            keep = [position for position, row in enumerate(active) if row.finish_reason is None]
            if not keep:
                return
            if len(keep) < len(active):
                keep_index = torch.tensor(keep, device=self.device, dtype=torch.long)
                cache.batch_select_indices(keep_index)
                tokens, attention_mask = tokens[keep_index], attention_mask[keep_index]
                position_ids = position_ids[keep_index]
                active = [active[position] for position in keep]
            input_ids = tokens[:, None]
            attention_mask = torch.cat([attention_mask, attention_mask.new_ones((len(active), 1))], dim=1)
            position_ids = position_ids[:, -1:] + 1

    def _sample(
        self, logits: torch.Tensor, rows: list[_Row], sampling: SamplingOptions
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Next token of each row and its raw log-probability. logits: (B, V) float32."""
        logprobs = torch.log_softmax(logits, dim=-1)  # (B, V), reported before any masking
        self._mask_grammar(logits, rows)
        if sampling.temperature == 0:
            tokens = logits.argmax(dim=-1)
        else:
            filtered = _filter_logits(logits / sampling.temperature, sampling)
            probs = torch.softmax(filtered, dim=-1)
            tokens = torch.cat([torch.multinomial(probs[i], 1, generator=row.generator) for i, row in enumerate(rows)])
        return tokens, logprobs.gather(-1, tokens[:, None]).squeeze(-1)

    def _append(self, row: _Row, token: int, logprob: float, sampling: SamplingOptions) -> None:
        """Record a sampled token and decide whether the row is finished."""
        row.token_ids.append(token)
        row.logprobs.append(logprob)
        if row.matcher is not None:
            row.matcher.accept_token(token)
        if token in self._eos_ids:
            row.finish_reason = "stop"
        elif sampling.stop:
            cut = truncate_at_stop(self._detokenize(row.token_ids), sampling.stop)
            if cut is not None:
                row.finish_reason, row.text = "stop", cut
                return
        if row.finish_reason is None and len(row.token_ids) >= row.max_new_tokens:
            row.finish_reason = "length"
        if row.finish_reason is not None:
            row.text = self._detokenize(row.token_ids)

    def _detokenize(self, token_ids: Sequence[int]) -> str:
        """The text of generated tokens, special tokens left out, as vLLM returns it.

        A character cut off at the end (its UTF-8 bytes split over tokens) is not text yet; vLLM's
        incremental detokenizer never emits it, so neither does this.
        """
        text = self.tokenizer.decode(token_ids, skip_special_tokens=True)
        return text.rstrip(_REPLACEMENT_CHARACTER)

    def _left_pad(self, sequences: Sequence[Sequence[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, T) input ids and attention mask, padded on the left so every row ends at the last column."""
        width = max(len(sequence) for sequence in sequences)
        input_ids = torch.full((len(sequences), width), self._pad_id, dtype=torch.long)
        attention_mask = torch.zeros((len(sequences), width), dtype=torch.long)
        for row, sequence in enumerate(sequences):
            input_ids[row, width - len(sequence) :] = torch.tensor(sequence, dtype=torch.long)
            attention_mask[row, width - len(sequence) :] = 1
        return input_ids.to(self.device), attention_mask.to(self.device)

    # ------------------------------------------------------------------ regex / json constraints

    def _compile_grammar(self, constraint: OutputConstraint) -> Any:
        """The xgrammar grammar of a regex or JSON-schema constraint (xgrammar caches compilations)."""
        compiler = self._grammar_compiler or self._new_grammar_compiler()
        if constraint.kind == "regex":
            return compiler.compile_regex(constraint.pattern)
        return compiler.compile_json_schema(constraint.pattern)

    def _new_grammar_compiler(self) -> Any:
        try:
            import xgrammar
        except ImportError as exc:
            raise UnsupportedConstraintError(
                "regex and json constraints in the transformers engine need xgrammar "
                "(pip install xgrammar); the vllm engine supports them natively"
            ) from exc
        vocab_size = self.model.get_output_embeddings().weight.shape[0]
        info = xgrammar.TokenizerInfo.from_huggingface(
            self.tokenizer, vocab_size=vocab_size, stop_token_ids=list(self._eos_ids)
        )
        self._grammar_compiler = xgrammar.GrammarCompiler(info)
        return self._grammar_compiler

    def _mask_grammar(self, logits: torch.Tensor, rows: list[_Row]) -> None:
        """Set the logits of tokens each row's grammar forbids to -inf, in place. logits: (B, V)."""
        constrained = [i for i, row in enumerate(rows) if row.matcher is not None]
        if not constrained:
            return
        import xgrammar

        bitmask = xgrammar.allocate_token_bitmask(len(rows), logits.shape[-1])
        for i, row in enumerate(rows):
            if row.matcher is not None:
                row.matcher.fill_next_token_bitmask(bitmask, i)
        xgrammar.apply_token_bitmask_inplace(logits, bitmask.to(logits.device), indices=constrained)

    # ------------------------------------------------------------------ choice constraints

    def _choose(
        self, requests: Sequence[ChatRequest], prompts: Mapping[int, list[int]], indices: Sequence[int]
    ) -> dict[int, list[Completion]]:
        """Choice requests: score every choice's full continuation (plus end of sequence), then pick.

        Greedy picks the most likely choice as a whole; with a temperature, samples come from the softmax
        of the choices' log-likelihoods (min-p/top-k/top-p over choices). vLLM instead decodes token by token
        under a grammar, so the two engines can disagree when the first tokens mislead.
        """
        candidates = {index: self._choice_candidates(requests[index], prompts[index]) for index in indices}
        pairs = [(prompts[index], ids) for index in indices for _, ids in candidates[index]]
        scores = iter(self._score_continuations(pairs))
        results = {}
        for index in indices:
            if not candidates[index]:
                message = f"no choice fits in max_model_len {self.max_model_len} after the prompt"
                results[index] = error_completions(requests[index], message, len(prompts[index]))
                continue
            sampling, prompt_tokens = requests[index].sampling, len(prompts[index])
            logprobs = [next(scores) for _ in candidates[index]]
            results[index] = [
                self._choice_completion(candidates[index][pick], logprobs[pick], sampling, prompt_tokens)
                for pick in self._pick_choices(sampling, logprobs)
            ]
        return results

    def _choice_candidates(self, request: ChatRequest, prompt: list[int]) -> list[tuple[str, list[int]]]:
        """(choice, continuation ids ending in end-of-sequence) for every choice that fits the context."""
        assert request.constraint is not None
        candidates = []
        for choice in dict.fromkeys(request.constraint.choices):  # de-duplicated, order kept
            ids = self.tokenizer.encode(choice, add_special_tokens=False) + [self._eos_ids[0]]
            if len(prompt) + len(ids) <= self.max_model_len:
                candidates.append((choice, ids))
        return candidates

    def _score_continuations(self, pairs: Sequence[tuple[list[int], list[int]]]) -> list[torch.Tensor]:
        """Per pair (prompt, continuation), the log-probability of each continuation token."""
        order = sorted(range(len(pairs)), key=lambda i: len(pairs[i][0]) + len(pairs[i][1]))
        scores: dict[int, torch.Tensor] = {}
        for start in range(0, len(order), self.batch_size):
            batch = order[start : start + self.batch_size]
            sequences = [pairs[i][0] + pairs[i][1] for i in batch]
            input_ids, attention_mask = self._left_pad(sequences)
            keep = max(len(pairs[i][1]) for i in batch) + 1
            logits = self.model(
                input_ids=input_ids,
                attention_mask=attention_mask,
                position_ids=(attention_mask.cumsum(-1) - 1).clamp(min=0),
                logits_to_keep=keep,
            ).logits.float()  # (B, keep, V): with left padding the continuations sit in the last columns
            for row, i in enumerate(batch):
                continuation = torch.tensor(pairs[i][1], device=self.device)
                predicting = logits[row, keep - len(continuation) - 1 : keep - 1]  # (C, V)
                logprobs = torch.log_softmax(predicting, dim=-1)
                scores[i] = logprobs.gather(-1, continuation[:, None]).squeeze(-1).cpu()
        return [scores[i] for i in range(len(pairs))]

    def _pick_choices(self, sampling: SamplingOptions, token_logprobs: list[torch.Tensor]) -> list[int]:
        """Indices of the n picked choices, given each choice's per-token log-probabilities."""
        totals = torch.stack([logprobs.sum() for logprobs in token_logprobs])  # (C,)
        if sampling.temperature == 0:
            return [int(totals.argmax())] * sampling.n
        filtered = _filter_logits(totals[None] / sampling.temperature, sampling)[0]
        probs = torch.softmax(filtered, dim=-1)
        # The scores live on the CPU, so the generators do too.
        generators = self._generators(sampling.seed, sampling.n, torch.device("cpu"))
        return [int(torch.multinomial(probs, 1, generator=generator)) for generator in generators]

    def _choice_completion(
        self,
        candidate: tuple[str, list[int]],
        logprobs: torch.Tensor,
        sampling: SamplingOptions,
        prompt_tokens: int,
    ) -> Completion:
        text, ids = candidate
        finish_reason: FinishReason = "stop"
        if len(ids) > sampling.max_tokens:  # as vLLM does: the budget cuts the choice short
            ids, finish_reason = ids[: sampling.max_tokens], "length"
            text = self._detokenize(ids)
        return Completion(
            text=text,
            token_ids=tuple(ids),
            finish_reason=finish_reason,
            prompt_token_count=prompt_tokens,
            logprobs=tuple(logprobs[: len(ids)].tolist()) if sampling.logprobs else None,
        )


# ---------------------------------------------------------------------- module helpers


def _is_choice(constraint: OutputConstraint | None) -> bool:
    return constraint is not None and constraint.kind == "choice"


def _group_by_sampling(
    requests: Sequence[ChatRequest], prompts: Mapping[int, list[int]], exclude: set[int]
) -> list[list[int]]:
    """Request indices grouped by sampling options, ignoring the per-row ones (seed, n)."""
    groups: dict[SamplingOptions, list[int]] = defaultdict(list)
    for index in prompts:
        if index not in exclude:
            key = dataclasses.replace(requests[index].sampling, seed=None, n=1)
            groups[key].append(index)
    return list(groups.values())


def _completion(row: _Row, sampling: SamplingOptions) -> Completion:
    return Completion(
        text=row.text,
        token_ids=tuple(row.token_ids),
        finish_reason=row.finish_reason or "length",
        prompt_token_count=len(row.prompt_ids),
        logprobs=tuple(row.logprobs) if sampling.logprobs else None,
        prompt_token_ids=tuple(row.prompt_ids),
    )


def _filter_logits(logits: torch.Tensor, sampling: SamplingOptions) -> torch.Tensor:
    """Temperature-scaled logits with min-p, top-k and top-p applied (in vLLM's order). logits: (B, V).

    Filtered-out entries are -inf. The caller divides by the temperature first.
    """
    if sampling.min_p > 0:
        probs = torch.softmax(logits, dim=-1)
        threshold = sampling.min_p * probs.max(dim=-1, keepdim=True).values
        logits = logits.masked_fill(probs < threshold, float("-inf"))
    if 0 < sampling.top_k < logits.shape[-1]:
        kth_largest = torch.topk(logits, sampling.top_k, dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth_largest, float("-inf"))
    if sampling.top_p < 1.0:
        sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
        sorted_probs = torch.softmax(sorted_logits, dim=-1)
        # Drop a token when the tokens ranked above it already cover top_p (the first always stays).
        drop_sorted = (sorted_probs.cumsum(dim=-1) - sorted_probs) >= sampling.top_p
        drop = drop_sorted.scatter(-1, order, drop_sorted)
        logits = logits.masked_fill(drop, float("-inf"))
    return logits


def _derive_seed(seed: int, sample: int) -> int:
    """A well-mixed 63-bit seed for sample `sample` of a request seeded with `seed`."""
    digest = hashlib.blake2b(f"{seed}:{sample}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


def _new_matcher(grammar: Any) -> Any:
    import xgrammar

    return xgrammar.GrammarMatcher(grammar)


def _shares_storage(tensor: Any, own: torch.Tensor) -> bool:
    return isinstance(tensor, torch.Tensor) and tensor.data_ptr() == own.data_ptr()


def _resolve_device(device: str | torch.device | None) -> torch.device:
    """The device to load onto; ValueError when it is not a device name or not present on this machine."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as error:
        raise ValueError(f"device {device!r} is not a device name ({error})") from None
    if resolved.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0 or (resolved.index is not None and resolved.index >= count):
            raise ValueError(f"device {device!r} is not available: this machine has {count} CUDA device(s)")
    return resolved


def _check_device(model: Any, device: str | torch.device | None) -> None:
    """A shared model is never moved behind its owner's back."""
    actual = next(model.parameters()).device
    if device is not None and torch.device(device).type != actual.type:
        raise ValueError(f"the model lives on {actual}, not {device}; move it before creating the engine")


def resolve_dtype(dtype: str | torch.dtype, device: torch.device) -> torch.dtype:
    """The torch dtype a model is loaded in on `device`: the one named ("float32", "bfloat16", "float16"), or
    for "auto" bfloat16 on a CUDA device and float32 anywhere else (CPU kernels are slow or missing in half
    precision). The engine and the trainer both load models through this one rule.

    Raises ValueError for a name that is not a torch dtype."""
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    resolved = getattr(torch, dtype, None)
    if not isinstance(resolved, torch.dtype):
        raise ValueError(f"unknown dtype {dtype!r}; use 'auto', 'float32', 'bfloat16' or 'float16'")
    return resolved


def _load_model(path: str, device: torch.device, dtype: str | torch.dtype) -> Any:
    from transformers import AutoModelForCausalLM

    model: Any = AutoModelForCausalLM.from_pretrained(path, dtype=resolve_dtype(dtype, device))
    return model.to(device).eval()


def _load_tokenizer(tokenizer: Any, model: Any) -> Any:
    """The tokenizer object: given, loaded from a given path, or loaded from where the model came from."""
    from transformers import AutoTokenizer

    if tokenizer is None:
        tokenizer = getattr(model.config, "_name_or_path", None) or getattr(model, "name_or_path", None)
        if not tokenizer:
            raise ValueError("pass `tokenizer=`: the model object does not say where it was loaded from")
    if isinstance(tokenizer, (str, Path)):
        return AutoTokenizer.from_pretrained(str(tokenizer))
    return tokenizer
