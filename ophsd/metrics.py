"""Per-step metrics: one JSON line per step in RUN_DIR/metrics.jsonl (and TensorBoard when installed)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


class MetricsLog:
    def __init__(self, out: Path, *, tensorboard: bool = True, truncate_after: int = 0) -> None:
        self.path = out / "metrics.jsonl"
        out.mkdir(parents=True, exist_ok=True)
        self._drop_steps_after(truncate_after)
        self.writer = _tensorboard_writer(out) if tensorboard else None

    def _drop_steps_after(self, step: int) -> None:
        """On resume, steps after the checkpoint were lost with the process: they will be redone. A partial
        last line (the process was killed mid-write) is dropped too."""
        if not self.path.exists():
            return
        kept = [line for line in _metric_lines(self.path) if line[1]["step"] <= step]
        staging = self.path.with_name(self.path.name + ".tmp")
        staging.write_text("".join(json.dumps(values) + "\n" for _, values in kept), encoding="utf-8")
        os.replace(staging, self.path)  # atomic: a kill now leaves the old file or the new one

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
    """The logged steps of a run, in order; a partial last line (a killed write) is left out.

    Raises:
        FileNotFoundError: the run has no metrics.jsonl.
        ValueError: a complete line is not a metrics record (the message names the file and line).
    """
    return [values for _, values in _metric_lines(Path(run_dir) / "metrics.jsonl")]


def _metric_lines(path: Path) -> list[tuple[int, dict[str, Any]]]:
    """(line number, record) for every complete line of a metrics file."""
    data = path.read_bytes()
    complete = data[: data.rfind(b"\n") + 1]  # after the last newline: a line cut off mid-write
    lines = []
    for number, line in enumerate(complete.decode("utf-8", errors="replace").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            values = json.loads(line)
            int(values["step"])
        except (ValueError, KeyError, TypeError) as error:
            raise ValueError(f"{path}, line {number}: not a metrics record ({error})") from None
        lines.append((number, values))
    return lines


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
