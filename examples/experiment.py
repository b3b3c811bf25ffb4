"""A small, honest OPHSD experiment on CPU: SmolLM2-135M-Instruct on support-ticket classification.

    python examples/experiment.py                  # about half an hour on 2 CPU cores (vLLM rollouts)
    python examples/experiment.py --steps 60 --batch-size 8 --engine vllm    # a larger run (e.g. on a GPU)

The 120 tickets of examples/data/classify.jsonl are split into 80 for training (and the memory bank) and
40 held out. Four models are scored on the held-out tickets, each with its bare prompt (the student view)
and, where it has one, with its harness:

  base              the initial model                   student view | draft_verify with the bank
  OPSD              trained with the gold label shown   student view
  OPHSD             trained with draft_verify           student view | draft_verify re-attached

Draft-verify suits a 135M model better than plan-solve: its teacher context carries retrieved, labelled
neighbours, which even a small model can use; plan-solve's plans from a 135M model are mostly noise.
Results are written to runs/experiment/results.json and summarised in examples/README.md.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "runs" / "experiment"


def sh(*args: str) -> None:
    print("+", " ".join(args), flush=True)
    subprocess.run(args, check=True, cwd=REPO)


def split_data() -> tuple[Path, Path]:
    rows = (REPO / "examples/data/classify.jsonl").read_text(encoding="utf-8").splitlines(keepends=True)
    OUT.mkdir(parents=True, exist_ok=True)
    train, test = OUT / "train.jsonl", OUT / "test.jsonl"
    train.write_text("".join(rows[:80]), encoding="utf-8")
    test.write_text("".join(rows[80:]), encoding="utf-8")
    return train, test


def evaluate(
    name: str, harness: str, test: Path, train: Path, engine: str, model: str | None, student_only: bool
) -> float:
    """Accuracy of one model and view on the held-out tickets (records in runs/experiment/eval-NAME.jsonl)."""
    out = OUT / f"eval-{name}.jsonl"
    command = ["harnessc", "run", harness, "--data", str(test), "--out", str(out), "--engine", engine, "--resume"]
    # The student views sample at temperature 1.0 (training rollouts); evaluate them greedily.
    command += ["--student-only", "--set", "student_temperature=0"] if student_only else ["--bank", f"cases={train}"]
    command += ["--model", model] if model else []
    sh(*command)
    records = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    return sum(record["grade"] is True for record in records) / len(records)


def train_run(name: str, harness: str, train: Path, args: argparse.Namespace) -> str:
    run_dir = OUT / name
    if not (run_dir / "checkpoints").exists():
        sh(
            "ophsd",
            "train",
            "--harness",
            harness,
            "--data",
            str(train),
            "--output",
            str(run_dir),
            "--max-steps",
            str(args.steps),
            "--engine",
            args.engine,
            "--set",
            f"batch_size={args.batch_size}",
            "--set",
            f"learning_rate={args.learning_rate}",
            "--set",
            "max_new_tokens=64",
            "--set",
            "harness_max_tokens=64",
            "--set",
            f"save_every={args.steps}",
            "--set",
            "probe_size=4",
            "--set",
            f"seed={args.seed}",
        )
    checkpoint = sorted((run_dir / "checkpoints").glob("step-*"))[-1]
    return str(checkpoint / "model")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--learning-rate", type=float, default=1e-5)
    parser.add_argument("--engine", choices=("vllm", "transformers"), default="vllm")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    train, test = split_data()
    draft_verify, opsd = "harnesses/draft_verify.harness", "examples/opsd_classify.harness"
    ophsd_model = train_run("ophsd", draft_verify, train, args)
    opsd_model = train_run("opsd", opsd, train, args)
    results = {
        "base (student view)": evaluate("base-student", draft_verify, test, train, args.engine, None, True),
        "base + draft_verify": evaluate("base-harness", draft_verify, test, train, args.engine, None, False),
        "OPSD (student view)": evaluate("opsd-student", opsd, test, train, args.engine, opsd_model, True),
        "OPHSD (student view)": evaluate("ophsd-student", draft_verify, test, train, args.engine, ophsd_model, True),
        "OPHSD + draft_verify": evaluate("ophsd-harness", draft_verify, test, train, args.engine, ophsd_model, False),
    }
    summary = {"settings": vars(args), "held_out": 40, "accuracy": results}
    (OUT / "results.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    for name, accuracy in results.items():
        print(f"{name:<24} {accuracy:.1%}")


if __name__ == "__main__":
    sys.exit(main())
