"""Data parallelism across processes (`accelerate launch -m ophsd train ...`, or torchrun), and sharded
training (FSDP2, ophsd.sharding) when the launcher's accelerate config asks for it.

Each process takes its share of every step's rows (rank::world), rolls out and runs the harness on them
with its own engine, and computes the loss over its completion tokens; the gradients are summed across
processes and the loss is normalised by the global token count, so the update equals the single-process
update on the whole batch. Memory banks get every row of the batch on every process, so they stay equal.
One process (the main one) writes metrics and checkpoints (under FSDP every process writes its shards).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import torch

from ophsd.model import make_optimizer

if TYPE_CHECKING:
    from ophsd.config import TrainConfig
    from ophsd.model import Teacher
    from ophsd.sharding import Checkpointed, Sharding

T = TypeVar("T")


@dataclass(frozen=True)
class Distributed:
    rank: int
    world: int
    device: torch.device
    sharding: Sharding | None = None  # FSDP2, when the launcher's config asks for it

    @staticmethod
    def create() -> Distributed:
        """The process group set up by the launcher (accelerate's PartialState), or a single process.

        Raises ophsd.sharding.LauncherConfigError when the launcher's config asks for a sharding ophsd does
        not do (FSDP version 1, DeepSpeed)."""
        if int(os.environ.get("WORLD_SIZE", "1")) > 1:
            from accelerate import PartialState  # type: ignore[import-untyped]

            from ophsd.sharding import Sharding, launcher_sharding

            sharded = launcher_sharding()  # before the process group: a refused config fails fast
            state = PartialState(cpu=not torch.cuda.is_available())  # CPU: gloo; accelerate needs telling
            sharding = Sharding(state.device) if sharded else None
            return Distributed(state.process_index, state.num_processes, state.device, sharding)
        return Distributed(0, 1, torch.device("cuda" if torch.cuda.is_available() else "cpu"))

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def shard(self, items: Sequence[T]) -> list[T]:
        return list(items[self.rank :: self.world])

    def sum(self, value: float) -> float:
        if self.world == 1:
            return value
        tensor = torch.tensor([value], dtype=torch.float64, device=self.device)
        torch.distributed.all_reduce(tensor)
        return tensor.item()

    def sum_gradients(self, parameters: Iterable[torch.nn.Parameter]) -> None:
        """Sum every gradient across processes (a process without tokens contributes zeros)."""
        if self.world == 1:
            return
        for parameter in parameters:
            if parameter.grad is None:
                parameter.grad = torch.zeros_like(parameter)
            torch.distributed.all_reduce(parameter.grad)

    def barrier(self) -> None:
        if self.world > 1:
            torch.distributed.barrier()

    # ---- what the trainer asks of data parallelism and sharding alike -----------------------------------------

    def prepare(
        self, config: TrainConfig, policy: torch.nn.Module, teacher: Teacher
    ) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR]:
        """Shard the policy and the teacher's copy (FSDP2 only), then the AdamW optimizer over the trainable
        (sharded) parameters and its linear warmup over `config.warmup_steps` steps."""
        if self.sharding is not None:
            self.sharding.shard(policy, teacher, config.engine)
        trainable = [param for param in policy.parameters() if param.requires_grad]
        optimizer = make_optimizer(trainable, config, self.device, sharded=self.sharding is not None)
        warmup = config.warmup_steps
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: min(1.0, (step + 1) / warmup) if warmup else 1.0
        )
        if self.sharding is not None:
            self.sharding.optimizer_hooks(optimizer, policy)
        return optimizer, scheduler

    def reduce_and_clip(self, params: list[torch.nn.Parameter], max_norm: float) -> float:
        """Sum the gradients across processes (FSDP has reduce-scattered the sharded ones already) and clip
        them to a global L2 norm of `max_norm`; returns the norm before clipping (inf/nan when not finite)."""
        if self.sharding is not None:
            return self.sharding.reduce_and_clip(params, max_norm)
        self.sum_gradients(params)
        return torch.nn.utils.clip_grad_norm_(params, max_norm).item()

    def engine_model(self, policy: torch.nn.Module) -> torch.nn.Module:
        """The module an in-process transformers engine generates with: the policy itself, or under FSDP a full
        copy that every optimizer step refreshes."""
        if self.sharding is not None and self.sharding.engine_model is not None:
            return self.sharding.engine_model
        return policy

    def engine_weights(self, policy: Any) -> dict[str, torch.Tensor]:
        """Full weights for the weight push (ophsd.model.engine_state_dict); under FSDP gathered here, on every
        process (collective), since each process pushes to its own engine."""
        if self.sharding is not None:
            from ophsd.sharding import full_weights

            return full_weights(policy)
        from ophsd.model import engine_state_dict

        return engine_state_dict(policy)

    def save_checkpoint(self, trainer: Checkpointed, keep_step: int | None) -> None:
        """Write the trainer's checkpoint for this step (ophsd.checkpoint; under FSDP with sharded/), keeping
        the newest `keep_checkpoints` and `keep_step`'s; every process calls it."""
        if self.sharding is not None:
            self.sharding.save(trainer, keep_step)
            return
        if self.is_main:
            from ophsd.checkpoint import save_checkpoint

            save_checkpoint(
                trainer.out,
                trainer.step,
                trainer.state_dict(),
                model=trainer.policy,
                tokenizer=trainer.tokenizer,
                keep=trainer.config.keep_checkpoints,
                keep_step=keep_step,
            )
        self.barrier()

    def load_checkpoint(self, path: Path, trainer: Checkpointed) -> dict[str, Any]:
        """The checkpoint at `path` for Trainer.load_state_dict; under FSDP its shards are loaded here."""
        if self.sharding is not None:
            return self.sharding.load(path, trainer)
        from ophsd.checkpoint import load_checkpoint

        return load_checkpoint(path)

    def idle_pass(self, policy: torch.nn.Module, teacher: Teacher) -> None:
        """Under FSDP, a process without tokens this step still takes part in the forwards and the backward."""
        if self.sharding is not None:
            self.sharding.idle_pass(policy, teacher)
