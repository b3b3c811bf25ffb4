"""Checkpoints: everything needed to continue a run exactly (weights or adapter, optimizer, scheduler,
RNG states, the step, which fixes the data position, the EMA teacher and the memory banks).

    RUN_DIR/checkpoints/step-000010/
        model/            save_pretrained: full weights, or the LoRA adapter; plus the tokenizer
        trainer.pt        optimizer, scheduler, RNG states, step, EMA teacher weights
        banks/NAME.jsonl  memory-bank entries
        manifest.json     every other file's size and sha256, written last

A checkpoint is written in `step-NNNNNN.tmp/` and renamed into place after its manifest, so a kill at any
moment leaves either a complete checkpoint or a `.tmp` directory that is never a candidate. Lookup
(`latest_checkpoint`) takes the newest checkpoint whose manifest matches its files (sizes and hashes); a
damaged one is skipped with an `IncompleteCheckpointWarning` and the next older one is used. Checkpoints
from before manifests (no manifest.json, a trainer.pt) are accepted unverified.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import shutil
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

if TYPE_CHECKING:
    from ophsd.trainer import Trainer


def checkpoint_dir(out: Path, step: int) -> Path:
    return out / "checkpoints" / f"step-{step:06d}"


MANIFEST = "manifest.json"
_STEP_NAME = re.compile(r"step-\d{6,}")


class IncompleteCheckpointWarning(UserWarning):
    """A checkpoint directory was skipped because its files do not match its manifest (or it has none)."""


def list_checkpoints(out: Path) -> list[Path]:
    """Checkpoints that look complete (manifest present, file sizes match), oldest first; cheap: no hashing."""
    root = out / "checkpoints"
    if not root.is_dir():
        return []
    candidates = sorted(path for path in root.iterdir() if _STEP_NAME.fullmatch(path.name) and path.is_dir())
    return [path for path in candidates if checkpoint_problem(path, hashes=False) is None]


def latest_checkpoint(out: Path) -> Path | None:
    """The newest checkpoint whose files match their manifest, hashes included; damaged or incomplete ones
    are skipped with an IncompleteCheckpointWarning naming the directory and the problem."""
    root = out / "checkpoints"
    if not root.is_dir():
        return None
    candidates = sorted(path for path in root.iterdir() if _STEP_NAME.fullmatch(path.name) and path.is_dir())
    for path in reversed(candidates):
        problem = checkpoint_problem(path, hashes=True)
        if problem is None:
            return path
        warnings.warn(f"skipping checkpoint {path}: {problem}", IncompleteCheckpointWarning, stacklevel=2)
    return None


def checkpoint_problem(path: Path, *, hashes: bool) -> str | None:
    """Why `path` is not a complete checkpoint (a sentence), or None when it is one."""
    manifest_path = path / MANIFEST
    if not manifest_path.exists():
        # Written before manifests existed; the old writer also renamed whole directories into place.
        return None if (path / "trainer.pt").is_file() else f"no {MANIFEST} (the write did not finish)"
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        files = manifest["files"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        return f"unreadable {MANIFEST} ({error})"
    for name, expected in files.items():
        file = path / name
        try:
            size = file.stat().st_size
        except OSError:
            return f"{name} is missing"
        if size != expected["size"]:
            return f"{name} has {size} bytes, the manifest says {expected['size']}"
        if hashes and _sha256(file) != expected["sha256"]:
            return f"{name} does not match its sha256 in the manifest"
    return None


def _write_manifest(directory: Path) -> None:
    """Record every file's size and hash, then fsync: the manifest is the checkpoint's completion mark."""
    files: dict[str, Any] = {}
    for file in sorted(item for item in directory.rglob("*") if item.is_file()):
        files[file.relative_to(directory).as_posix()] = {"size": file.stat().st_size, "sha256": _sha256(file)}
    with (directory / MANIFEST).open("w", encoding="utf-8") as handle:
        json.dump({"files": files}, handle, indent=1, sort_keys=True)
        handle.flush()
        os.fsync(handle.fileno())


def _sha256(file: Path) -> str:
    digest = hashlib.sha256()
    with file.open("rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


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
    _write_manifest(staging)  # last: a directory without it was cut off mid-write
    shutil.rmtree(final, ignore_errors=True)
    staging.rename(final)
    for old in list_checkpoints(trainer.out)[: -trainer.config.keep_checkpoints]:
        if keep_step is None or old != checkpoint_dir(trainer.out, keep_step):
            shutil.rmtree(old)
    for leftover in final.parent.glob("step-*.tmp"):  # staging directories of killed writes
        shutil.rmtree(leftover, ignore_errors=True)
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
