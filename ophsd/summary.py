"""What `ophsd train` tells its user: the numbers of each step (for the live display and the plain step lines)
and the summary at the end of a run (steps, first/final/best held-out numbers, where things are, what next)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from harnessc.console import duration
from ophsd.metrics import read_metrics


def step_fields(metrics: Mapping[str, Any]) -> dict[str, str]:
    """The numbers shown for one step's metrics line (see docs/training.md for each): the loss, the probe's
    divergence, the rollouts' and the held-out accuracy, throughput in completion tokens per second and
    seconds per step. Absent or unknown numbers are left out."""
    fields: dict[str, str] = {}
    if _known(metrics.get("loss")):
        fields["loss"] = f"{metrics['loss']:.4f}"
    if _known(metrics.get("probe_divergence")):
        fields["probe"] = f"{metrics['probe_divergence']:.4f}"
    if _known(metrics.get("student_accuracy")):
        fields["rollout acc"] = f"{metrics['student_accuracy']:.0%}"
    if _known(metrics.get("eval_accuracy")):
        fields["held-out"] = f"{metrics['eval_accuracy']:.1%}"
    if _known(metrics.get("eval_harness_accuracy")):
        fields["held-out+harness"] = f"{metrics['eval_harness_accuracy']:.1%}"
    seconds = sum((metrics.get("seconds") or {}).values())
    if seconds > 0:
        if metrics.get("tokens"):
            fields["tok/s"] = f"{metrics['tokens'] / seconds:,.0f}"
        fields["s/step"] = f"{seconds:.1f}"
    if metrics.get("skipped") and _known(metrics.get("loss")):
        fields["update"] = "skipped (non-finite gradient)"
    return fields


def train_summary(run_dir: Path, plots: Sequence[Path], *, seconds: float) -> str:
    """The end-of-run summary: steps done, the first and final held-out numbers and the best step, the loss,
    where the checkpoints, plots and log are, and the next commands to try."""
    from ophsd.checkpoint import list_checkpoints

    history = read_metrics(run_dir)
    steps = max((row["step"] for row in history), default=0)
    lines = [f"trained {steps} steps in {duration(seconds)} -> {run_dir}"]
    for key, label in (("eval_accuracy", "held-out accuracy"), ("eval_harness_accuracy", "held-out + harness")):
        line = _first_last(history, key, label, percent=True)
        if line:
            lines.append(line)
    for key, label in (("probe_divergence", "probe divergence"), ("loss", "loss")):
        line = _first_last(history, key, label, percent=False)
        if line:
            lines.append(line)
    best = _best(history)
    if best is not None:
        lines.append(f"  best held-out      {best['eval_accuracy']:.1%} at step {best['step']}")
    checkpoints = list_checkpoints(run_dir)
    if checkpoints:
        names = ", ".join(path.name for path in checkpoints)
        lines.append(f"  checkpoints        {run_dir / 'checkpoints'}/ ({names})")
    if plots:
        lines.append(f"  plots              {Path(plots[0]).parent}/ ({', '.join(Path(p).name for p in plots)})")
    log = run_dir / "logs" / "train.log"
    if log.exists():
        lines.append(f"  log                {log}")
    lines += [
        "next:",
        f"  ophsd eval {run_dir}     score the checkpoints with and without the harness on held-out data",
        f"  ophsd show {run_dir}     what the teacher saw, token by token",
    ]
    return "\n".join(lines)


def _known(value: Any) -> bool:
    return isinstance(value, (int, float)) and value == value  # not None, not NaN


def _first_last(history: Sequence[Mapping[str, Any]], key: str, label: str, *, percent: bool) -> str | None:
    """ "  LABEL  first (step a) -> last (step b)" over the steps that have `key`, or None."""
    known = [(row["step"], row[key]) for row in history if _known(row.get(key))]
    if not known:
        return None

    def shown(value: float) -> str:
        return f"{value:.1%}" if percent else f"{value:.4f}"

    (first_step, first), (last_step, last) = known[0], known[-1]
    if first_step == last_step:
        return f"  {label:<18} {shown(last)} (step {last_step})"
    return f"  {label:<18} {shown(first)} (step {first_step}) -> {shown(last)} (step {last_step})"


def _best(history: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The step with the best held-out accuracy (the earliest of equals), as `best.json` names it."""
    best = None
    for row in history:
        if _known(row.get("eval_accuracy")) and (best is None or row["eval_accuracy"] > best["eval_accuracy"]):
            best = row
    return best
