"""Training cost: time per step and per phase, and the loss's time and peak memory against a naive loss.

    python benchmarks/bench_train.py                         # tiny model and SmolLM2-135M, both engines
    python benchmarks/bench_train.py --models smollm2 --engines vllm --steps 3 --repeats 2 --skip-loss
    python benchmarks/bench_train.py --skip-trl              # without TRL installed: our rows only

1. The loss alone (one fixed batch: 4 sequences x 64 completion tokens, forward + backward):
     chunked   ophsd's loss: decoder hidden states, the output head applied 256 positions at a time under
               activation checkpointing, fp32 log-softmax per chunk (this batch is one chunk: no checkpointing)
     naive     full (B, T, V) logits from both models, cast to fp32, log-softmax over everything
   Peak memory is the growth of the process's peak resident set while computing the loss, measured in a
   fresh subprocess per variant (CPU); on CUDA, torch.cuda.max_memory_allocated.
2. Whole steps of `ophsd train` with the OPSD harness (the same work as TRL's SDFT trainer: the teacher
   sees the reference solution), batch 4, 64 completion tokens: mean time per step after the first and
   its split into phases, through the transformers engine and through vLLM; beside them, in the same run,
   TRL's self-distillation trainer on the same model, batch, completion length, loss and optimizer
   (benchmarks/trl_sdft.py; `pip install 'ophsd[bench]'` pins the TRL version measured) and the ratio
   TRL / ours. Every run is a fresh subprocess (clean memory and threads); with --repeats N each trainer
   runs N times, the trainers taking turns, and the median run is reported (of an even number,
   the faster of the two middle ones).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))


def model_path(name: str) -> str:
    if name == "tiny":
        from tiny_model import build_tiny_model

        return str(build_tiny_model(Path(tempfile.mkdtemp()) / "tiny"))
    from harnessc.engines.default_model import default_model_dir

    return str(default_model_dir())


# ---- 1. the loss -------------------------------------------------------------------------------------------


def loss_once(path: str, variant: str) -> dict:
    """Runs in a subprocess: build a batch, measure one forward + backward of the loss."""
    import torch
    from transformers import AutoModelForCausalLM

    from ophsd.losses import DivergenceSpec, chunked_divergence, token_divergence
    from ophsd.model import completion_hidden, output_head

    torch.manual_seed(0)
    student = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    teacher = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).requires_grad_(False)
    vocab = student.config.vocab_size
    batch, prompt_s, prompt_t, completion = 4, 96, 192, 64
    student_ids = torch.randint(0, vocab, (batch, prompt_s + completion))
    teacher_ids = torch.cat([torch.randint(0, vocab, (batch, prompt_t)), student_ids[:, prompt_s:]], dim=1)
    mask_s, mask_t = torch.ones_like(student_ids), torch.ones_like(teacher_ids)
    rows = torch.arange(batch).repeat_interleave(completion)
    cols = torch.arange(completion).repeat(batch)
    pos_s = rows * student_ids.shape[1] + prompt_s + cols - 1
    pos_t = rows * teacher_ids.shape[1] + prompt_t + cols - 1
    spec = DivergenceSpec()
    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    if variant == "chunked":
        with torch.no_grad():
            hidden_t = completion_hidden(teacher, teacher_ids, mask_t, pos_t)
        hidden_s = completion_hidden(student, student_ids, mask_s, pos_s)
        loss = chunked_divergence(hidden_s, hidden_t, output_head(student), output_head(teacher), spec, 256).mean()
    else:
        with torch.no_grad():
            logits_t = teacher(input_ids=teacher_ids, attention_mask=mask_t).logits.float()  # (B, T, V)
        logits_s = student(input_ids=student_ids, attention_mask=mask_s).logits.float()  # (B, T, V)
        flat_s = logits_s.reshape(-1, vocab).index_select(0, pos_s)
        flat_t = logits_t.reshape(-1, vocab).index_select(0, pos_t)
        loss = token_divergence(flat_s, flat_t, spec).mean()
    loss.backward()
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "variant": variant,
        "seconds": seconds,
        "peak_growth_mb": (peak - baseline) / 1024,
        "loss": loss.item(),
        "tokens": batch * completion,
        "vocab": vocab,
    }


def bench_loss(path: str) -> list[dict]:
    results = []
    for variant in ("naive", "chunked"):
        code = (
            f"import json, sys; sys.path.insert(0, {str(REPO)!r}); sys.path.insert(0, {str(REPO / 'benchmarks')!r});"
            f"import bench_train; print(json.dumps(bench_train.loss_once({path!r}, {variant!r})))"
        )
        output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        results.append(json.loads(output.stdout.strip().splitlines()[-1]))
    return results


# ---- 2. whole steps ----------------------------------------------------------------------------------------


def ours_steps(path: str, engine: str, steps: int) -> dict:
    from ophsd.config import TrainConfig
    from ophsd.trainer import Trainer

    with tempfile.TemporaryDirectory() as out:
        config = TrainConfig(
            harness=str(REPO / "harnesses/opsd.harness"),
            data=str(REPO / "examples/data/math.jsonl"),
            output=out,
            model=path,
            max_steps=steps,
            batch_size=4,
            max_new_tokens=64,
            rollout_temperature=1.0,
            learning_rate=1e-6,
            probe_size=0,
            save_every=10_000,
            tensorboard=False,
            engine=engine,
            engine_options={"max_model_len": 1024} if engine == "vllm" or "tiny" in path else {},
        )
        trainer = Trainer(config)
        ends: list[float] = []  # as TRL's row: wall time between the ends of consecutive steps
        history = trainer.train(progress=lambda _: ends.append(time.perf_counter()))
    timed = history[1:] or history
    phases = {name: sum(row["seconds"].get(name, 0.0) for row in timed) / len(timed) for name in timed[0]["seconds"]}
    gaps = [later - earlier for earlier, later in zip(ends, ends[1:], strict=False)]
    per_step = sum(gaps) / len(gaps) if gaps else sum(phases.values())
    phases["other"] = max(per_step - sum(phases.values()), 0.0)
    tokens = sum(row["tokens"] for row in timed) / len(timed)
    return {"engine": engine, "seconds_per_step": per_step, "phases": phases, "loss_tokens_per_s": tokens / per_step}


def run_steps(path: str, trainer: str, steps: int) -> dict:
    """`ours_steps` (trainer = an engine name) or TRL's (trainer = "trl") in a fresh subprocess."""
    call = (
        f"trl_sdft.sdft_steps({path!r}, {steps})"
        if trainer == "trl"
        else f"bench_train.ours_steps({path!r}, {trainer!r}, {steps})"
    )
    code = (
        f"import json, sys; sys.path.insert(0, {str(REPO)!r}); sys.path.insert(0, {str(REPO / 'benchmarks')!r});"
        f"import bench_train, trl_sdft; print('RESULT ' + json.dumps({call}))"
    )
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    results = [line for line in output.stdout.splitlines() if line.startswith("RESULT ")]
    if output.returncode or not results:
        raise RuntimeError(f"the {trainer} run failed (exit {output.returncode}):\n{output.stderr[-3000:]}")
    return json.loads(results[-1].removeprefix("RESULT "))


def median_runs(path: str, trainers: list[str], steps: int, repeats: int) -> dict[str, dict]:
    """Per trainer, the run with the median seconds per step of `repeats` fresh runs (every run's time under
    `runs`). The trainers take turns, so a change in the machine's load falls on all of them alike; each run
    is reported on stderr as it ends."""
    runs: dict[str, list[dict]] = {trainer: [] for trainer in trainers}
    for repeat in range(repeats):
        for trainer in trainers:
            row = run_steps(path, trainer, steps)
            runs[trainer].append(row)
            phases = ", ".join(f"{name} {seconds:.2f}" for name, seconds in row["phases"].items())
            print(
                f"run {repeat + 1}/{repeats} {row['engine']}: {row['seconds_per_step']:.2f} s/step ({phases})",
                file=sys.stderr,
                flush=True,
            )
    medians = {}
    for trainer, rows in runs.items():
        rows.sort(key=lambda row: row["seconds_per_step"])
        medians[trainer] = {**rows[(len(rows) - 1) // 2], "runs": [row["seconds_per_step"] for row in rows]}
    return medians


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", choices=("tiny", "smollm2"), default=["tiny", "smollm2"])
    parser.add_argument("--engines", nargs="+", choices=("transformers", "vllm"), default=["transformers", "vllm"])
    parser.add_argument("--steps", type=int, default=3, help="steps per run (the first is not timed)")
    parser.add_argument("--repeats", type=int, default=1, help="fresh runs per trainer; the median is reported")
    parser.add_argument("--skip-loss", action="store_true", help="skip part 1 (the loss alone)")
    parser.add_argument("--skip-trl", action="store_true", help="no TRL baseline row (TRL not installed)")
    args = parser.parse_args()
    for name in args.models:
        path = model_path(name)
        if not args.skip_loss:
            print_losses(name, bench_loss(path))
        print(f"\n## {name}: steps of `ophsd train` (OPSD harness, batch 4, 64 tokens), median of {args.repeats}")
        medians = median_runs(path, ([] if args.skip_trl else ["trl"]) + args.engines, args.steps, args.repeats)
        rows = [medians[engine] for engine in args.engines]
        baseline = medians.get("trl")
        phases = list(rows[0]["phases"])
        print(f"| trainer | s/step | {' | '.join(phases)} | runs |")
        print("| --- | ---: |" + " ---: |" * len(phases) + " --- |")
        for row in ([baseline] if baseline else []) + rows:
            cells = " | ".join(f"{row['phases'][phase]:.2f}" if phase in row["phases"] else "" for phase in phases)
            runs = ", ".join(f"{seconds:.2f}" for seconds in row["runs"])
            print(f"| {row['engine']} | {row['seconds_per_step']:.2f} | {cells} | {runs} |")
        for row in rows if baseline else []:
            print(
                f"{baseline['engine']} {baseline['seconds_per_step']:.2f} s/step / ours ({row['engine']}) "
                f"{row['seconds_per_step']:.2f} s/step = {baseline['seconds_per_step'] / row['seconds_per_step']:.2f}x"
            )


def print_losses(name: str, losses: list[dict]) -> None:
    naive, chunked = losses
    print(f"\n## {name}: the loss (4 x 64 completion tokens, vocabulary {naive['vocab']:,}, fp32, forward+backward)")
    print(f"{'variant':<9} {'seconds':>8} {'peak growth MB':>15} {'loss':>10}")
    for row in losses:
        print(f"{row['variant']:<9} {row['seconds']:>8.2f} {row['peak_growth_mb']:>15.0f} {row['loss']:>10.4f}")
    print(
        f"chunked/naive: time {chunked['seconds'] / naive['seconds']:.2f}, "
        f"peak memory {chunked['peak_growth_mb'] / max(naive['peak_growth_mb'], 1):.2f}"
    )


if __name__ == "__main__":
    main()
