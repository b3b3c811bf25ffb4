"""Per-step metrics: one JSON line per step in RUN_DIR/metrics.jsonl (and TensorBoard when installed)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


class MetricsLog:
    def __init__(self, out: Path, *, tensorboard: bool = True, truncate_after: int = 0) -> None:
        self.path = out / "metrics.jsonl"
        out.mkdir(parents=True, exist_ok=True)
        self._drop_steps_after(truncate_after)
        self.writer = _tensorboard_writer(out) if tensorboard else None

    def _drop_steps_after(self, step: int) -> None:
        """On resume, steps after the checkpoint were lost with the process: they will be redone."""
        if not self.path.exists():
            return
        kept = [
            line
            for line in self.path.read_text(encoding="utf-8").splitlines()
            if line.strip() and json.loads(line)["step"] <= step
        ]
        self.path.write_text("".join(line + "\n" for line in kept), encoding="utf-8")

    def write(self, metrics: dict[str, Any]) -> None:
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(metrics) + "\n")
        if self.writer is not None:
            for key, value in _flatten(metrics).items():
                self.writer.add_scalar(key, value, metrics["step"])

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def read_metrics(run_dir: str | Path) -> list[dict[str, Any]]:
    path = Path(run_dir) / "metrics.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _flatten(metrics: dict[str, Any], prefix: str = "") -> dict[str, float]:
    flat: dict[str, float] = {}
    for key, value in metrics.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}/"))
        elif isinstance(value, (int, float)) and not isinstance(value, bool) and key != "step":
            flat[prefix + key] = float(value)
    return flat


def _tensorboard_writer(out: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # tensorboard is optional
        return None
    return SummaryWriter(str(out / "tensorboard"))
