"""Checkpoints: the files of everything needed to continue a run exactly (weights or adapter, optimizer,
scheduler, RNG states, the step, which fixes the data position, the EMA teacher and the memory banks).

This module only reads and writes files: what goes in is `Trainer.state_dict()`, what comes out goes to
`Trainer.load_state_dict()`.

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
import re
import shutil
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch


def checkpoint_dir(out: Path, step: int) -> Path:
    return out / "checkpoints" / f"step-{step:06d}"


def staging_dir(out: Path, step: int) -> Path:
    """Where a checkpoint is written before it is renamed into place (never a candidate for lookup)."""
    final = checkpoint_dir(out, step)
    return final.with_name(final.name + ".tmp")


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


def save_checkpoint(
    out: Path,
    step: int,
    state: Mapping[str, Any],
    *,
    model: Any,
    tokenizer: Any,
    keep: int,
    keep_step: int | None = None,
    weights: Mapping[str, torch.Tensor] | None = None,
    staged: bool = False,
) -> Path:
    """Write a checkpoint of `state` (Trainer.state_dict(): its "banks" as banks/NAME.jsonl, the rest as
    trainer.pt) with `model` and `tokenizer` (save_pretrained: a directory engines load), atomically (a
    temporary directory renamed into place); then keep the newest `keep` checkpoints (and the one of
    `keep_step`, the best held-out step, whatever its age). Returns the checkpoint's directory.

    `weights`: the model's full weights when `model` holds only a shard of them (FSDP); `staged`: the staging
    directory (`staging_dir`) already holds files of this checkpoint (every process's shards), kept."""
    final, staging = checkpoint_dir(out, step), staging_dir(out, step)
    if not staged:
        shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True, exist_ok=staged)
    model.save_pretrained(staging / "model", state_dict=weights)
    tokenizer.save_pretrained(staging / "model")
    (staging / "banks").mkdir()
    for name, entries in state.get("banks", {}).items():
        _write_entries(staging / "banks" / f"{name}.jsonl", entries)
    torch.save({key: value for key, value in state.items() if key != "banks"}, staging / "trainer.pt")
    _write_manifest(staging)  # last: a directory without it was cut off mid-write
    shutil.rmtree(final, ignore_errors=True)
    staging.rename(final)
    for old in list_checkpoints(out)[:-keep]:
        if keep_step is None or old != checkpoint_dir(out, keep_step):
            shutil.rmtree(old)
    for leftover in final.parent.glob("step-*.tmp"):  # staging directories of killed writes
        shutil.rmtree(leftover, ignore_errors=True)
    return final


def load_checkpoint(path: Path, *, weights: bool = True) -> dict[str, Any]:
    """The state a checkpoint holds, for Trainer.load_state_dict: trainer.pt's entries, "banks" (name ->
    entries) and "model", the weights in model/ (the adapter's for a LoRA checkpoint, all of them otherwise;
    left out when not `weights`: a sharded run loads its shards instead)."""
    from harnessc.runtime.data import load_rows

    state = torch.load(path / "trainer.pt", weights_only=False)
    state["banks"] = {file.stem: [row.values for row in load_rows(file)] for file in sorted(path.glob("banks/*.jsonl"))}
    if weights:
        state["model"] = _read_weights(path / "model")
    return state


def _write_entries(path: Path, entries: Any) -> None:
    """Memory-bank entries as JSONL, one per line (the format MemoryBank.save writes and `load_rows` reads)."""
    with path.open("w", encoding="utf-8") as handle:
        for entry in entries:
            handle.write(json.dumps(entry, ensure_ascii=False) + "\n")


def _read_weights(directory: Path) -> dict[str, torch.Tensor]:
    """The tensors of a saved model directory: the LoRA adapter's when there is one, else every shard's."""
    from safetensors.torch import load_file

    adapter = directory / "adapter_model.safetensors"
    files = [adapter] if adapter.exists() else sorted(directory.glob("*.safetensors"))
    weights: dict[str, torch.Tensor] = {}
    for file in files:
        weights.update(load_file(str(file)))
    return weights
