"""The quick OPHSD experiment on CPU: SmolLM2-135M-Instruct on support tickets, answer-first.

    python examples/experiment.py                     # base, OPHSD and OPSD; about an hour on 2 busy CPU cores
    python examples/experiment.py --seed 1            # another seed (runs go to runs/experiment/seed-1/)
    python examples/experiment.py --steps 60           # a longer run, e.g. on a GPU

Data (examples/data/README.md, made by make_tickets.py): 300 bank tickets, 480 training tickets, 240
held-out tickets whose issue sentences never occur in the bank or training split. Both trained models use
the recipe of examples/tickets.toml (LoRA r 64, lr 2e-4, batch 8, 15 steps: 120 training tickets, each
seen once, frozen teacher, reverse KL on the student's own 3-token answer-first rollouts at temperature 1):

  OPHSD   teacher = harnesses/similar_cases.harness: the five most similar solved tickets of the bank as
          few-shot turns and their majority label as a hint (the bank starts with the 300 bank tickets and
          grows with each batch)
  OPSD    teacher = examples/opsd_tickets.harness: the same student view, the gold label stated

Scored on the held-out tickets, greedy: the base model with its bare prompt and with similar_cases; each
trained model with its bare prompt; the OPHSD model with similar_cases re-attached. The harness runs
retrieve from all 780 solved tickets (bank + training). Records and results.json go to runs/experiment/.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "examples" / "data"
RECIPE = "examples/tickets.toml"
HARNESS, OPSD = "harnesses/similar_cases.harness", "examples/opsd_tickets.harness"


def sh(*args: str) -> None:
    print("+", " ".join(args), flush=True)
    subprocess.run(args, check=True, cwd=REPO)


def solved_cases(out: Path) -> Path:
    """The bank at evaluation: every solved ticket (bank and training splits)."""
    path = out / "solved.jsonl"
    path.write_text(
        "".join((DATA / f"tickets_{split}.jsonl").read_text(encoding="utf-8") for split in ("bank", "train")),
        encoding="utf-8",
    )
    return path


def evaluate(name: str, harness: str, model: str | None, student_only: bool, out: Path, args) -> dict:
    """Accuracy of one model and view on the held-out tickets, with its standard error."""
    records = out / f"eval-{name}.jsonl"
    command = ["harnessc", "run", harness, "--data", str(DATA / "tickets_test.jsonl"), "--out", str(records)]
    command += ["--engine", args.engine, "--resume", "--set", "student_temperature=0"]
    command += ["--student-only"] if student_only else ["--bank", f"cases={solved_cases(out)}"]
    command += ["--model", model] if model else []
    command += ["--limit", str(args.limit)] if args.limit else []
    sh(*command)
    grades = [json.loads(line)["grade"] is True for line in records.read_text(encoding="utf-8").splitlines()]
    accuracy = sum(grades) / len(grades)
    return {"accuracy": accuracy, "n": len(grades), "se": math.sqrt(accuracy * (1 - accuracy) / len(grades))}


def train(name: str, harness: str, out: Path, args) -> tuple[str, float]:
    """Train one model with the recipe; return its final checkpoint (merged for LoRA) and the minutes taken."""
    run_dir = out / name
    started = time.time()
    if not (run_dir / "checkpoints").exists():
        command = ["ophsd", "train", "--config", RECIPE, "--harness", harness, "--output", str(run_dir)]
        command += ["--max-steps", str(args.steps), "--engine", args.engine, "--set", f"seed={args.seed}"]
        command += ["--set", f"save_every={args.steps}"]
        command += [] if harness == HARNESS else ["--set", "banks={}"]  # the OPSD harness has no bank
        if in_loop_evaluation():
            command += ["--set", f"eval_data={DATA / 'tickets_test.jsonl'}", "--set", f"eval_every={args.eval_every}"]
            command += ["--set", f"eval_limit={args.limit}"] if args.limit else []
        sh(*command)
    minutes = (time.time() - started) / 60
    from ophsd.checkpoint import list_checkpoints
    from ophsd.config import TrainConfig
    from ophsd.held_out import _loadable

    config = TrainConfig(**json.loads((run_dir / "config.json").read_text(encoding="utf-8")))
    return str(_loadable(list_checkpoints(run_dir)[-1], config)), minutes


def in_loop_evaluation() -> bool:
    """Whether this checkout's trainer evaluates the bare student on held-out data during training."""
    from ophsd.config import TrainConfig

    return "eval_data" in TrainConfig.model_fields


def in_loop_curve(run_dir: Path) -> dict[int, float]:
    """The trainer's own held-out accuracy (greedy bare student) by step, when it evaluated in the loop."""
    lines = (run_dir / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    metrics = [json.loads(line) for line in lines]
    return {m["step"]: m["eval_accuracy"] for m in metrics if m.get("eval_accuracy") is not None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=15)
    parser.add_argument("--engine", choices=("vllm", "transformers"), default="vllm")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--eval-every", type=int, default=5, help="in-loop evaluation period, when available")
    parser.add_argument("--limit", type=int, default=None, help="score only the first N held-out tickets")
    args = parser.parse_args()
    out = REPO / "runs" / "experiment" / f"seed-{args.seed}"
    out.mkdir(parents=True, exist_ok=True)
    ophsd_model, ophsd_minutes = train("ophsd", HARNESS, out, args)
    opsd_model, opsd_minutes = train("opsd", OPSD, out, args)
    results = {
        "base (student view)": evaluate("base-student", HARNESS, None, True, out, args),
        "base + similar_cases": evaluate("base-harness", HARNESS, None, False, out, args),
        "OPSD (student view)": evaluate("opsd-student", OPSD, opsd_model, True, out, args),
        "OPHSD (student view)": evaluate("ophsd-student", HARNESS, ophsd_model, True, out, args),
        "OPHSD + similar_cases": evaluate("ophsd-harness", HARNESS, ophsd_model, False, out, args),
    }
    summary = {
        "settings": vars(args),
        "in_loop_eval": {name: in_loop_curve(out / name) for name in ("ophsd", "opsd")},
        "recipe": RECIPE,
        "train_minutes": {"ophsd": ophsd_minutes, "opsd": opsd_minutes},
        "accuracy": results,
    }
    (out / "results.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    for name, result in results.items():
        print(f"{name:<24} {result['accuracy']:6.1%} +- {result['se']:.1%}  (n={result['n']})")


if __name__ == "__main__":
    sys.exit(main())
