"""Sharded training with FSDP2 (`accelerate launch --config_file examples/accelerate/fsdp2_*.yaml -m ophsd train`).

The launcher's config chooses: `accelerate launch` with `distributed_type: FSDP` and `fsdp_version: 2` sets
ACCELERATE_USE_FSDP and FSDP_VERSION, and `Distributed.create()` then shards; `ophsd train` has no flag of its own.

What is sharded: every decoder layer is its own FSDP2 unit (`torch.distributed.fsdp.fully_shard`), and the
decoder stack (embeddings and final norm) is the root unit, so each process holds 1/world of those weights, their
gradients and their AdamW states, and a layer's full weights exist only while it runs. The output head stays
whole on every process: the chunked loss applies it outside the model's forward, a different number of times on
each process (one per chunk of that process's tokens), which FSDP's all-gathers could not match; its gradient is
summed by hand, as data parallelism does. A frozen or EMA teacher copy is sharded the same way.

FSDP's collectives need every process to run the same forwards and backwards: a process whose share of the batch
kept no tokens runs `idle_pass` instead, and the samples of what the teacher saw (`show_every`, main process only)
are not kept. Gradients are reduce-scattered as sums (the loss is already a mean over every process's tokens).

Full weights are gathered only where they are needed: the weight push to an engine (`engine_weights`, one
parameter at a time into a dict on every process: each rank's in-process engine loads them), the transformers
engine's own full copy after each optimizer step (it generates outside FSDP's collectives), and a checkpoint's
model/ directory (gathered onto the main process's CPU).

    RUN_DIR/checkpoints/step-000010/
        model/      full weights (save_pretrained, main process): what ophsd eval, `best` and users load
        sharded/    torch.distributed.checkpoint: model, optimizer and EMA-teacher shards, one file per process
        trainer.pt  scheduler, RNG states, step (its "optimizer" and "teacher" are in sharded/)

Resume reads sharded/ on every process (the same number of processes as the run that wrote it; DCP can reshard,
but the data order is per process).
"""

from __future__ import annotations

import copy
import logging
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, cast

import torch
from torch import nn

from ophsd.model import causal_lm, completion_hidden, output_head

if TYPE_CHECKING:
    from ophsd.config import TrainConfig
    from ophsd.model import Teacher


class Checkpointed(Protocol):
    """What a checkpoint reads and restores of the trainer (ophsd.trainer.Trainer), named here so that this
    module and ophsd.distributed do not import the trainer that imports them."""

    out: Path
    step: int
    config: TrainConfig
    policy: nn.Module
    teacher: Teacher
    tokenizer: Any
    optimizer: torch.optim.Optimizer

    def state_dict(self) -> dict[str, Any]: ...


log = logging.getLogger("ophsd")

SHARDED = "sharded"  # the checkpoint's subdirectory written by torch.distributed.checkpoint


class LauncherConfigError(ValueError):
    """The launcher asked for a kind of sharding ophsd does not do (FSDP1, DeepSpeed)."""


def launcher_sharding() -> str | None:
    """Sharding "fsdp2" when `accelerate launch` was given an FSDP2 config; None for data parallelism.

    Raises LauncherConfigError for FSDP version 1, for DeepSpeed, which this trainer does not drive, and for
    accelerate's mixed precision and parameter offload, which FSDP2 here does not apply."""
    if os.environ.get("ACCELERATE_USE_DEEPSPEED", "").lower() == "true":
        raise LauncherConfigError(
            "the accelerate config uses DeepSpeed, which ophsd does not drive: shard with FSDP2 "
            "(examples/accelerate/fsdp2_8gpu.yaml), which holds the same 1/N share of weights, gradients and "
            "optimizer states as ZeRO-3"
        )
    if os.environ.get("ACCELERATE_USE_FSDP", "").lower() != "true":
        return None
    if os.environ.get("FSDP_VERSION", "1") != "2":
        raise LauncherConfigError("the accelerate config uses FSDP version 1: set fsdp_config.fsdp_version: 2")
    if os.environ.get("ACCELERATE_MIXED_PRECISION", "no") != "no":  # it would go unheeded: say so
        raise LauncherConfigError(
            "the accelerate config sets mixed_precision: under FSDP the model trains in the run's `dtype` "
            "(bf16 on a GPU by default); set mixed_precision: 'no'"
        )
    if os.environ.get("FSDP_OFFLOAD_PARAMS", "false").lower() == "true":  # the whole output head stays on the GPU
        raise LauncherConfigError("the accelerate config offloads parameters: set fsdp_offload_params: false")
    return "fsdp2"


class Sharding:
    """FSDP2 over every process of the launcher's process group (one device each); built by `Distributed`."""

    def __init__(self, device: torch.device) -> None:
        from accelerate.utils import FullyShardedDataParallelPlugin  # type: ignore[import-untyped]
        from torch.distributed.device_mesh import init_device_mesh

        self.mesh = init_device_mesh(device.type, (torch.distributed.get_world_size(),))
        self.plugin = FullyShardedDataParallelPlugin()  # the launcher's FSDP_* settings
        self.device = device
        self.engine_model: nn.Module | None = None
        self.warned = False

    def shard(self, policy: nn.Module, teacher: Teacher, engine: str) -> None:
        """Shard the policy and the teacher's copy in place; keep a full copy for the transformers engine."""
        if hasattr(policy, "peft_config"):
            raise LauncherConfigError(
                "LoRA under FSDP: a LoRA run trains a few million weights, which data parallelism (a plain "
                "`accelerate launch` config) already serves; shard full-parameter training"
            )
        if engine == "transformers":  # generation must not wait on other processes' all-gathers
            self.engine_model = copy.deepcopy(policy).eval().requires_grad_(False)
        for module in (policy, teacher.copy):
            if module is not None:
                self._fully_shard(module)

    def _fully_shard(self, model: nn.Module) -> None:
        from torch.distributed.fsdp import fully_shard

        options: dict[str, Any] = {"mesh": self.mesh}  # no mixed precision, no offload: launcher_sharding
        decoder = causal_lm(model).get_decoder()
        # A tied output head is the embedding matrix: it must stay whole like the head (see the module's text).
        tied = set(output_head(model).parameters()) & set(decoder.parameters())
        layers = [module for module in decoder.modules() if type(module).__name__ in _layer_classes(model)]
        for layer in layers:
            fully_shard(layer, reshard_after_forward=bool(self.plugin.reshard_after_forward), **options)
        # The root too reshards after its forward (FSDP's default keeps a root gathered until the backward,
        # and a teacher has none); the trainer calls the decoder stack, so it is the root.
        fully_shard(decoder, reshard_after_forward=True, ignored_params=tied or None, **options)
        for unit in (*layers, decoder):
            unit.set_gradient_divide_factor(1.0)  # type: ignore[operator]  # sums: the loss is a global mean
            unit.set_force_sum_reduction_for_comms(True)  # type: ignore[operator]  # gloo has no PREMUL_SUM

    def optimizer_hooks(self, optimizer: torch.optim.Optimizer, policy: nn.Module) -> None:
        """Refresh the transformers engine's full copy after every optimizer step (every process steps)."""
        if self.engine_model is not None:
            optimizer.register_step_post_hook(lambda *_: self.refresh_engine_model(policy))

    def refresh_engine_model(self, policy: nn.Module) -> None:
        if self.engine_model is not None:
            with torch.no_grad():
                self.engine_model.load_state_dict(full_weights(policy), strict=False)

    def reduce_and_clip(self, params: list[nn.Parameter], max_norm: float) -> float:
        """Sum the whole (replicated) parameters' gradients across processes, then clip every gradient to a
        global L2 norm of `max_norm`; returns the norm before clipping (inf/nan when not finite).

        The sharded gradients were reduce-scattered by FSDP: each process holds the sum over processes of its
        rows of them, so their squared norms add up across processes; the replicated ones count once."""
        from torch.distributed.tensor import DTensor

        sharded = [param for param in params if isinstance(param, DTensor)]
        replicated = [param for param in params if not isinstance(param, DTensor)]
        for param in replicated:
            if param.grad is None:
                param.grad = torch.zeros_like(param)
            torch.distributed.all_reduce(param.grad)
        squares = torch.zeros((), dtype=torch.float32, device=self.device)
        for param in sharded:
            if param.grad is not None:  # this process's rows of the summed gradient
                squares += cast(DTensor, param.grad).to_local().float().pow(2).sum()
        torch.distributed.all_reduce(squares)
        grads = [param.grad for param in (*sharded, *replicated) if param.grad is not None]
        for param in replicated:  # whole on every process: counted once, after the sum over processes
            squares += cast(torch.Tensor, param.grad).float().pow(2).sum()
        norm = squares.sqrt().item()
        scale = min(1.0, max_norm / (norm + 1e-6))  # torch.nn.utils.clip_grad_norm_'s rule
        for grad in grads:
            grad.mul_(scale)
        return norm

    def idle_pass(self, policy: nn.Module, teacher: Teacher) -> None:
        """The forwards and backward of a step on one token with a zero loss, for a process whose share of the
        batch kept no tokens: the other processes' all-gathers and reduce-scatters wait on it."""
        ids = torch.zeros((1, 1), dtype=torch.long, device=self.device)
        mask, positions = torch.ones_like(ids), torch.zeros(1, dtype=torch.long)
        with teacher.active() as module:  # the copy's units, or the policy's own for a live teacher
            completion_hidden(module, ids, mask, positions)
        hidden = completion_hidden(policy, ids, mask, positions)
        (output_head(policy)(hidden).sum() * 0.0).backward()

    def skip_samples(self) -> bool:
        """Samples are computed on the main process alone, which sharded forwards cannot do: say so once."""
        if not self.warned:
            self.warned = True
            log.warning("samples of what the teacher saw (show_every) are not kept under FSDP")
        return True

    # ---- checkpoints -------------------------------------------------------------------------------------------

    def save(self, trainer: Checkpointed, keep_step: int | None) -> None:
        """Every process writes its shards into the staging directory, the main process the rest (see the
        module's text); collective."""
        import torch.distributed.checkpoint as dcp

        from ophsd.checkpoint import save_checkpoint, staging_dir

        weights = full_weights(trainer.policy, cpu=True, main_only=True)
        staging = staging_dir(trainer.out, trainer.step)
        is_main = torch.distributed.get_rank() == 0
        if is_main:  # a killed write's leftovers go first
            shutil.rmtree(staging, ignore_errors=True)
            staging.mkdir(parents=True)
        torch.distributed.barrier()
        dcp.save(_sharded_state(trainer), checkpoint_id=staging / SHARDED)
        if is_main:
            state = {**trainer.state_dict(), "optimizer": None, "teacher": None}
            save_checkpoint(
                trainer.out,
                trainer.step,
                state,
                model=trainer.policy,
                tokenizer=trainer.tokenizer,
                keep=trainer.config.keep_checkpoints,
                keep_step=keep_step,
                weights=weights,
                staged=True,
            )
        torch.distributed.barrier()

    def load(self, path: Path, trainer: Checkpointed) -> dict[str, Any]:
        """Load the shards of `path` into the policy, optimizer and EMA teacher on every process, and return the
        rest of the checkpoint for Trainer.load_state_dict (whose optimizer entry is the loaded state itself)."""
        import torch.distributed.checkpoint as dcp
        from torch.distributed.checkpoint.state_dict import set_model_state_dict, set_optimizer_state_dict

        from ophsd.checkpoint import load_checkpoint

        state = load_checkpoint(path, weights=False)
        sharded = _sharded_state(trainer)
        dcp.load(sharded, checkpoint_id=path / SHARDED)
        set_model_state_dict(trainer.policy, sharded["model"])
        set_optimizer_state_dict(trainer.policy, trainer.optimizer, sharded["optimizer"])
        if "teacher" in sharded and trainer.teacher.copy is not None:
            set_model_state_dict(trainer.teacher.copy, sharded["teacher"])
        self.refresh_engine_model(trainer.policy)
        return {**state, "optimizer": trainer.optimizer.state_dict(), "teacher": None}


def full_weights(model: nn.Module, *, cpu: bool = False, main_only: bool = False) -> dict[str, torch.Tensor]:
    """The model's full weights under its Hugging Face names, gathered one parameter at a time (collective:
    every process calls it). `cpu`: each gathered tensor moves to CPU memory before the next is gathered;
    `main_only`: the other processes get an empty dict (they still take part in the gathers)."""
    from torch.distributed.tensor import DTensor

    is_main = torch.distributed.get_rank() == 0
    weights = {}
    for name, tensor in model.state_dict().items():
        full = tensor.full_tensor() if isinstance(tensor, DTensor) else tensor.detach()
        if is_main or not main_only:
            weights[name] = full.cpu() if cpu else full
    return weights


def _sharded_state(trainer: Checkpointed) -> dict[str, Any]:
    """What sharded/ holds, as DCP state dicts of this process's shards (filled in place by dcp.load)."""
    from torch.distributed.checkpoint.state_dict import get_model_state_dict, get_optimizer_state_dict

    state = {
        "model": get_model_state_dict(trainer.policy),
        "optimizer": get_optimizer_state_dict(trainer.policy, trainer.optimizer),
    }
    if trainer.teacher.kind == "ema" and trainer.teacher.copy is not None:
        state["teacher"] = get_model_state_dict(trainer.teacher.copy)
    return state


def _layer_classes(model: nn.Module) -> set[str]:
    """The transformer block classes to shard one by one: the model's `_no_split_modules` (what accelerate's
    TRANSFORMER_BASED_WRAP uses), or FSDP_TRANSFORMER_CLS_TO_WRAP from the launcher's config."""
    named = os.environ.get("FSDP_TRANSFORMER_CLS_TO_WRAP")
    if named:
        return {name.strip() for name in named.split(",")}
    classes = set(getattr(causal_lm(model), "_no_split_modules", None) or ())
    if not classes:
        raise LauncherConfigError(
            f"{type(causal_lm(model)).__name__} names no transformer block class (_no_split_modules): set "
            "fsdp_transformer_layer_cls_to_wrap in the accelerate config"
        )
    return classes
