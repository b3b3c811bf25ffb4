"""Checkpoints: everything needed to continue a run exactly (weights or adapter, optimizer, scheduler,
RNG states, the step, which fixes the data position, the EMA teacher and the memory banks).

    RUN_DIR/checkpoints/step-000010/
        model/            save_pretrained: full weights, or the LoRA adapter; plus the tokenizer
        trainer.pt        optimizer, scheduler, RNG states, step, EMA teacher weights
        banks/NAME.jsonl  memory-bank entries
"""

from __future__ import annotations

import random
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

if TYPE_CHECKING:
    from ophsd.trainer import Trainer


def checkpoint_dir(out: Path, step: int) -> Path:
    return out / "checkpoints" / f"step-{step:06d}"


def list_checkpoints(out: Path) -> list[Path]:
    root = out / "checkpoints"
    return sorted(path for path in root.glob("step-*") if (path / "trainer.pt").exists()) if root.exists() else []


def latest_checkpoint(out: Path) -> Path | None:
    found = list_checkpoints(out)
    return found[-1] if found else None


def save_checkpoint(trainer: Trainer, keep_step: int | None = None) -> Path:
    """Write atomically (a temporary directory renamed into place), then keep the newest N (and the one of
    `keep_step`, the best held-out step, whatever its age)."""
    final = checkpoint_dir(trainer.out, trainer.step)
    staging = final.with_name(final.name + ".tmp")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    trainer.policy.save_pretrained(staging / "model")
    trainer.tokenizer.save_pretrained(staging / "model")
    (staging / "banks").mkdir()
    for name, bank in trainer.banks.items():
        bank.save(staging / "banks" / f"{name}.jsonl")
    state = {
        "step": trainer.step,
        "optimizer": trainer.optimizer.state_dict(),
        "scheduler": trainer.scheduler.state_dict(),
        "teacher": trainer.teacher.copy.state_dict() if trainer.teacher.kind == "ema" else None,
        "rng": {
            "python": random.getstate(),
            "numpy": np.random.get_state(),
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
        },
    }
    torch.save(state, staging / "trainer.pt")
    shutil.rmtree(final, ignore_errors=True)
    staging.rename(final)
    for old in list_checkpoints(trainer.out)[: -trainer.config.keep_checkpoints]:
        if keep_step is None or old != checkpoint_dir(trainer.out, keep_step):
            shutil.rmtree(old)
    return final


def load_checkpoint(trainer: Trainer, path: Path) -> None:
    """Restore a trainer built from the same config (its frozen teacher already holds the initial weights)."""
    _load_weights(trainer.policy, path / "model")
    state = torch.load(path / "trainer.pt", weights_only=False)
    trainer.optimizer.load_state_dict(state["optimizer"])
    trainer.scheduler.load_state_dict(state["scheduler"])
    if state["teacher"] is not None:
        trainer.teacher.copy.load_state_dict(state["teacher"])
    rng = state["rng"]
    random.setstate(rng["python"])
    np.random.set_state(rng["numpy"])
    torch.set_rng_state(rng["torch"])
    if rng["cuda"] is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(rng["cuda"])
    _restore_banks(trainer, path / "banks")
    trainer.step = state["step"]


def _restore_banks(trainer: Trainer, directory: Path) -> None:
    """Replace each bank with the checkpoint's entries (re-embedded on load)."""
    from harnessc.runtime.memory_bank import MemoryBank

    for name, bank in list(trainer.banks.items()):
        restored = MemoryBank(
            name, search_field=bank.search_field, label_field=bank.label_field, embedder=bank.embedder
        )
        saved = directory / f"{name}.jsonl"
        if saved.exists():
            restored.load(saved)
        trainer.banks[name] = restored
        trainer.harness_program.banks[name] = restored


def _load_weights(model: torch.nn.Module, directory: Path) -> None:
    if hasattr(model, "peft_config"):
        from peft import set_peft_model_state_dict
        from safetensors.torch import load_file

        set_peft_model_state_dict(model, load_file(str(directory / "adapter_model.safetensors")))
        return
    from safetensors.torch import load_file

    files = sorted(directory.glob("*.safetensors"))
    weights = {}
    for file in files:
        weights.update(load_file(str(file)))
    missing, unexpected = model.load_state_dict(weights, strict=False)
    # Tied embeddings are saved once; anything else missing means the checkpoint does not fit the model.
    missing = [name for name in missing if name != "lm_head.weight"]
    if missing or unexpected:
        raise ValueError(
            f"checkpoint {directory} does not match the model: missing {missing[:3]}, unexpected {unexpected[:3]}"
        )
