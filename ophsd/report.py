"""`ophsd report`: PNG plots of a run's metrics (RUN_DIR/report/*.png)."""

from __future__ import annotations

from pathlib import Path

from ophsd.metrics import read_metrics

PANELS = (
    ("loss", ["loss", "probe_divergence"], "divergence"),
    ("lengths", ["completion_length", "student_prompt_length", "teacher_context_length"], "tokens"),
    ("accuracy", ["student_accuracy", "harness_accuracy", "harness_success"], "fraction"),
    ("held_out", ["eval_accuracy", "eval_pass_at_k", "eval_harness_accuracy"], "held-out accuracy"),
)


def write_report(run_dir: str) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")  # files only: no display needed
    import matplotlib.pyplot as plt

    metrics = read_metrics(run_dir)
    if not metrics:
        raise FileNotFoundError(f"{run_dir}/metrics.jsonl has no steps yet")
    out = Path(run_dir) / "report"
    out.mkdir(exist_ok=True)
    steps = [row["step"] for row in metrics]
    written = []
    for name, keys, unit in PANELS:
        curves = {
            key: [(step, row[key]) for step, row in zip(steps, metrics) if row.get(key) is not None] for key in keys
        }
        if not any(curves.values()):
            continue  # e.g. no held-out evaluation in this run: no empty plot
        figure, axis = plt.subplots(figsize=(7, 4))
        for key, points in curves.items():
            if points:
                axis.plot(*zip(*points), marker="o", markersize=3, label=key)
        axis.set_xlabel("step")
        axis.set_ylabel(unit)
        axis.legend()
        axis.grid(alpha=0.3)
        figure.tight_layout()
        figure.savefig(out / f"{name}.png", dpi=120)
        plt.close(figure)
        written.append(out / f"{name}.png")
    written.append(_phases([row for row in metrics if "seconds" in row], out, plt))
    return written


def _phases(metrics, out: Path, plt) -> Path:
    """Stacked time per phase of each training step (step 0's evaluation-only line has none)."""
    steps = [row["step"] for row in metrics]
    phases = sorted({phase for row in metrics for phase in row["seconds"]})
    figure, axis = plt.subplots(figsize=(7, 4))
    bottom = [0.0] * len(steps)
    for phase in phases:
        values = [row["seconds"].get(phase, 0.0) for row in metrics]
        axis.bar(steps, values, bottom=bottom, label=phase)
        bottom = [b + v for b, v in zip(bottom, values)]
    axis.set_xlabel("step")
    axis.set_ylabel("seconds")
    axis.set_title("time per phase")
    axis.legend()
    figure.tight_layout()
    figure.savefig(out / "phases.png", dpi=120)
    plt.close(figure)
    return out / "phases.png"
