"""The policy model, its teacher, and the hidden states at completion positions.

`completion_hidden` runs the decoder stack only (no output head over every position) and gathers the
final hidden states where completion tokens are predicted; the loss applies the output head chunk-wise.

Every forward that is not the student's gradient pass (teacher, probe, evaluation, inspection) runs in eval
mode (`eval_mode`): dropout in the model or in a LoRA adapter would otherwise make the teacher's
distribution a random variable, and the student would chase noise.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from harnessc.engines.transformers_engine import resolve_dtype
from ophsd.config import TrainConfig


@contextlib.contextmanager
def eval_mode(module: nn.Module) -> Iterator[nn.Module]:
    """`module` in eval mode (no dropout) for the duration, then in whatever mode it was in before."""
    was_training = module.training
    module.eval()
    try:
        yield module
    finally:
        module.train(was_training)


# Config attributes that give a model's number of positions, by model family (GPT-2 style first).
_CONTEXT_ATTRIBUTES = ("n_positions", "max_position_embeddings", "max_sequence_length", "seq_length", "n_ctx")


def model_context_length(model_path: str) -> int | None:
    """The model's context in tokens, read from its config alone (no weights loaded); None if it says none.

    For RoPE models `max_position_embeddings` is the length the model was trained for: positions past it run
    without an error but out of distribution, so the trainer treats it as the limit too."""
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(model_path)
    config = getattr(config, "text_config", None) or config
    for name in _CONTEXT_ATTRIBUTES:
        value = getattr(config, name, None)
        if isinstance(value, int) and value > 0:
            return value
    return None


def load_policy(config: TrainConfig, model_path: str, device: torch.device) -> tuple[nn.Module, Any]:
    """The model to train (with a LoRA adapter when configured) and its tokenizer."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(config.seed)
    model: Any = AutoModelForCausalLM.from_pretrained(model_path, dtype=resolve_dtype(config.dtype, device))
    model = model.to(device)
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    if getattr(model.config, "final_logit_softcapping", None):
        raise ValueError(
            "models with final_logit_softcapping are not supported: the chunked loss applies the output head directly"
        )
    if config.gradient_checkpointing:
        model.gradient_checkpointing_enable()
    if config.lora:
        from peft import LoraConfig, get_peft_model

        lora = LoraConfig(
            r=config.lora_r,
            lora_alpha=config.lora_alpha,
            lora_dropout=config.lora_dropout,
            target_modules=config.lora_target_modules,
            task_type="CAUSAL_LM",
        )
        model = get_peft_model(model, lora)
    return model, tokenizer


def make_optimizer(
    params: Iterable[nn.Parameter], config: TrainConfig, device: torch.device, *, sharded: bool = False
) -> torch.optim.AdamW:
    """AdamW over `params` with the config's learning rate, weight decay and betas.

    The fused kernel (one pass over all parameters instead of a loop of small tensor ops; about 6x faster
    for the optimizer step on CPU) is used where torch has it for `device` (CPU, CUDA, MPS) and every
    parameter is a floating-point tensor there; its update is the same AdamW (equal to the loop version
    within float rounding). `sharded` (FSDP2: DTensor shards beside whole tensors, which neither the fused
    nor the foreach kernels take in one group) uses the per-parameter loop."""
    params = list(params)
    fused = not sharded and device.type in ("cpu", "cuda", "mps")
    fused = fused and all(param.is_floating_point() and param.device.type == device.type for param in params)
    return torch.optim.AdamW(
        params,
        lr=config.learning_rate,
        weight_decay=config.weight_decay,
        betas=config.adam_betas,
        fused=fused or None,
        foreach=False if sharded else None,
    )


def causal_lm(model: nn.Module) -> Any:
    """The transformers CausalLM inside a peft wrapper (or the model itself)."""
    inner = getattr(model, "base_model", None)
    return getattr(inner, "model", model) if inner is not None and hasattr(model, "peft_config") else model


def completion_hidden(
    model: nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor, positions: torch.Tensor
) -> torch.Tensor:
    """Final hidden states (N, H) at the flat `positions` of the (B, L) batch."""
    decoder = causal_lm(model).get_decoder()
    hidden = decoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state  # (B, L, H)
    return hidden.reshape(-1, hidden.shape[-1]).index_select(0, positions.to(hidden.device))  # (N, H)


def output_head(model: nn.Module) -> nn.Module:
    return causal_lm(model).get_output_embeddings()


@dataclass
class Teacher:
    """Gives the teacher's hidden states and head. `frozen`: the initial weights (a copy, or the base with
    the LoRA adapter disabled: no second model); `live`: the current weights; `ema`: a moving average."""

    kind: str
    policy: Any  # a transformers model, wrapped by peft with LoRA
    copy: nn.Module | None = None
    ema_decay: float = 0.99

    @staticmethod
    def create(config: TrainConfig, policy: nn.Module) -> Teacher:
        needs_copy = config.teacher == "ema" or (config.teacher == "frozen" and not config.lora)
        frozen = copy.deepcopy(policy).eval().requires_grad_(False) if needs_copy else None
        return Teacher(config.teacher, policy, frozen, config.ema_decay)

    @property
    def module(self) -> nn.Module:
        return self.copy if self.copy is not None else self.policy

    @contextlib.contextmanager
    def active(self) -> Iterator[nn.Module]:
        """The module to run as the teacher, in the right state, with no gradient."""
        with torch.no_grad(), eval_mode(self.module):
            if self.kind == "frozen" and self.copy is None:
                with self.policy.disable_adapter():  # LoRA: the base model is the initial weights
                    yield self.policy
            else:
                yield self.module

    def head(self) -> Callable[[torch.Tensor], torch.Tensor]:
        """The teacher's output head as a function of hidden states (in the teacher's state)."""
        head = output_head(self.module)
        adapter_off = self.kind == "frozen" and self.copy is None

        def teacher_head(hidden: torch.Tensor) -> torch.Tensor:
            # Eval mode here too: the head may carry a LoRA adapter with dropout (lm_head as a target).
            with torch.no_grad(), eval_mode(self.module):
                if not adapter_off:
                    return head(hidden)
                with self.policy.disable_adapter():
                    return head(hidden)

        return teacher_head

    def state_dict(self) -> dict[str, Any] | None:
        """The EMA teacher's weights (the only teacher with a state of its own), else None."""
        return self.copy.state_dict() if self.kind == "ema" and self.copy is not None else None

    def load_state_dict(self, state: Mapping[str, Any] | None) -> None:
        if state is not None and self.copy is not None:
            self.copy.load_state_dict(state)

    @torch.no_grad()
    def update(self) -> None:
        """After an optimizer step: move the EMA teacher towards the student."""
        if self.kind != "ema" or self.copy is None:
            return
        for teacher_param, student_param in zip(self.copy.parameters(), self.policy.parameters(), strict=True):
            teacher_param.lerp_(student_param.detach(), 1 - self.ema_decay)


def engine_state_dict(model: Any) -> dict[str, torch.Tensor]:
    """Full-model weights under the base model's names (what an inference engine loads); a LoRA adapter
    is merged into a copy of the affected weights, never into the trained module."""
    if not hasattr(model, "peft_config"):
        return {name: tensor.detach() for name, tensor in model.state_dict().items()}
    model.merge_adapter()
    try:
        merged = {}
        for name, tensor in causal_lm(model).state_dict().items():
            if "lora_" in name:
                continue
            merged[name.replace(".base_layer", "")] = tensor.detach().clone()
        return merged
    finally:
        model.unmerge_adapter()


def load_weights(model: nn.Module, weights: Mapping[str, torch.Tensor]) -> None:
    """Put a checkpoint's weights into `model`: a LoRA adapter's into its adapter, full weights into the model.

    Raises ValueError when they do not fit the model (missing or unexpected names)."""
    if hasattr(model, "peft_config"):
        from peft import set_peft_model_state_dict

        set_peft_model_state_dict(model, dict(weights))
        return
    missing, unexpected = model.load_state_dict(dict(weights), strict=False)
    # Tied embeddings are saved once; anything else missing means the checkpoint does not fit the model.
    missing = [name for name in missing if name != "lm_head.weight"]
    if missing or unexpected:
        raise ValueError(f"the checkpoint does not match the model: missing {missing[:3]}, unexpected {unexpected[:3]}")
