"""Data parallelism across processes (`accelerate launch -m ophsd train ...`, or torchrun).

Each process takes its share of every step's rows (rank::world), rolls out and runs the harness on them
with its own engine, and computes the loss over its completion tokens; the gradients are summed across
processes and the loss is normalised by the global token count, so the update equals the single-process
update on the whole batch. Memory banks get every row of the batch on every process, so they stay equal.
One process (the main one) writes metrics and checkpoints.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import torch

T = TypeVar("T")


@dataclass(frozen=True)
class Distributed:
    rank: int
    world: int
    device: torch.device

    @staticmethod
    def create() -> Distributed:
        """The process group set up by the launcher (accelerate's PartialState), or a single process."""
        if int(os.environ.get("WORLD_SIZE", "1")) > 1:
            from accelerate import PartialState  # type: ignore[import-untyped]

            state = PartialState(cpu=not torch.cuda.is_available())  # CPU: gloo; accelerate needs telling
            return Distributed(state.process_index, state.num_processes, state.device)
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
