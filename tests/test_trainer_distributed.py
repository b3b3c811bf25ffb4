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
    assert weights[0].keys() == weights[1].keys()
    # Adam's first step moves each weight by about lr (1e-3) times the sign of its gradient, so a tiny
    # gradient summed in another order can move by a little more or less: allow 2% of the learning rate.
    for name in weights[0]:
        assert torch.allclose(weights[0][name], weights[1][name], atol=2e-5), name
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
