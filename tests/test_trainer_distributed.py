"""Data parallelism: two processes (torchrun, gloo on CPU) with half a batch each make the same update as
one process with the whole batch."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("accelerate")

from conftest import REPO  # noqa: E402
from tiny_model import VOCAB_SIZE  # noqa: E402

FP32_UNIT_ROUNDOFF = 2.0**-24


def kl_rounding_bound(vocab: int) -> float:
    """An absolute bound on the fp32 rounding error of a per-token KL over `vocab` logits.

    log p_v = z_v - logsumexp(z) is a difference of values of size ~log V whose logsumexp is a sum of V
    terms (pairwise: error ~log2(V) ulps); the KL then sums p_v * (log p_v - log q_v), whose terms add up
    to at most sum_v p_v (|log p_v| + |log q_v|) ~ 2 log V. So the error is ~u * log2(V) * 2 ln(V) in
    absolute terms whatever the KL's size: a relative tolerance is wrong for a nearly-matched teacher, whose
    KL is a small difference of large terms. Splitting the batch over processes changes the padded shapes
    and the summation order, which moves the result by up to this much.
    """
    return FP32_UNIT_ROUNDOFF * math.log2(vocab) * 2 * math.log(vocab)


def assert_same_first_adam_move(
    initial: dict[str, torch.Tensor],
    one: dict[str, torch.Tensor],
    two: dict[str, torch.Tensor],
    learning_rate: float,
    weight_decay: float,
) -> None:
    """Two runs' weights after one AdamW step from `initial` agree as far as summation order allows.

    Adam's first step moves a weight w with gradient g by -lr * (g / (|g| + eps) + wd * w): about lr * sign(g),
    whatever g's size. Another process count changes only the summation order of g. Where |g| > 99 eps (Adam's
    eps is 1e-8) the ratio g / (|g| + eps) is above 0.99, and a relative error r in g moves it by at most
    r * eps / |g| < r / 99: a tenth of a percent of lr allows r up to 10%, far above fp32 rounding (measured:
    a few 1e-9, the weights' own last bit). Where g is within 100 eps of zero the move is a ratio of numbers
    at the rounding level and may differ by anything up to a sign flip, 2 lr (seen: an output-head weight
    moved by 1.4e-4 in one run and 1.1e-4 in the other). The first run's move tells which is which:
    g / (|g| + eps) = -move / lr - wd * w. A lost or doubled share of the batch changes the moves of clear
    gradients by up to 2 lr; a gradient averaged instead of summed leaves Adam's first move alone, which is
    why the callers also compare grad_norm.
    """
    assert one.keys() == two.keys()
    clear_count = 0
    for name in one:
        ratio = -(one[name] - initial[name]) / learning_rate - weight_decay * initial[name]  # g / (|g| + eps)
        clear = ratio.abs() > 0.99
        difference = (one[name] - two[name]).abs()
        assert torch.where(clear, difference, 0.0).max() <= 1e-3 * learning_rate, name
        assert difference.max() <= 2 * learning_rate * (1 + 1e-3), name
        clear_count += int(clear.sum())
    assert clear_count > 0.5 * sum(tensor.numel() for tensor in one.values())  # the strict check covers most


def train(tmp: Path, tiny_model_dir: Path, processes: int) -> Path:
    output = tmp / f"run{processes}"
    settings = {
        "batch_size": 2,
        "max_new_tokens": 6,
        "harness_max_tokens": 6,
        "learning_rate": 1e-3,
        "probe_size": 0,
        "tensorboard": False,
        "engine_options": {"max_model_len": 1024},
        "save_every": 1,
    }
    command = [
        "-m",
        "ophsd",
        "train",
        "--harness",
        str(REPO / "harnesses/opsd.harness"),
        "--data",
        str(REPO / "examples/data/math.jsonl"),
        "--model",
        str(tiny_model_dir),
        "--output",
        str(output),
        "--max-steps",
        "1",
        *[arg for key, value in settings.items() for arg in ("--set", f"{key}={json.dumps(value)}")],
    ]
    launcher = (
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc_per_node",
            str(processes),
            "--master_port",
            str(29500 + processes),
        ]
        if processes > 1
        else [sys.executable]
    )
    result = subprocess.run(launcher + command, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return output


@pytest.mark.slow
def test_two_processes_equal_one(tmp_path: Path, tiny_model_dir: Path) -> None:
    from safetensors.torch import load_file

    single, double = train(tmp_path, tiny_model_dir, 1), train(tmp_path, tiny_model_dir, 2)
    weights = [load_file(str(run / "checkpoints/step-000001/model/model.safetensors")) for run in (single, double)]
    initial = load_file(str(tiny_model_dir / "model.safetensors"))
    assert_same_first_adam_move(initial, *weights, learning_rate=1e-3, weight_decay=0.1)  # TrainConfig's decay
    metrics = [json.loads(line) for line in (double / "metrics.jsonl").read_text().splitlines()]
    single_metrics = [json.loads(line) for line in (single / "metrics.jsonl").read_text().splitlines()]
    assert metrics[-1]["tokens"] == single_metrics[-1]["tokens"]
    loss, bound = single_metrics[-1]["loss"], kl_rounding_bound(VOCAB_SIZE)
    # A real fault (a process's share lost, counted twice, or averaged per process) moves the loss by tens
    # of percent; rounding moves it by at most `bound` (about 1.4% of this loss, 7e-6 absolute).
    assert metrics[-1]["loss"] == pytest.approx(loss, abs=bound)
    # The gradient is driven by log p_v - log q_v (size ~sqrt(2 KL) for a near teacher), each carrying the
    # same absolute rounding error as the KL's terms: a relative error of bound / sqrt(2 KL).
    assert metrics[-1]["grad_norm"] == pytest.approx(single_metrics[-1]["grad_norm"], rel=bound / math.sqrt(2 * loss))
    assert len(metrics) == 1  # only the main process writes metrics
