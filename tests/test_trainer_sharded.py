"""Sharded training (FSDP2 through `accelerate launch`): two CPU processes (gloo), each holding half of every
decoder weight, make the same update as one process with the whole model, and a sharded run resumes exactly."""

from __future__ import annotations

import json
import math
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("accelerate")

from conftest import REPO  # noqa: E402
from test_trainer_distributed import assert_same_first_adam_move, kl_rounding_bound  # noqa: E402
from tiny_model import VOCAB_SIZE  # noqa: E402

CPU_CONFIG = REPO / "examples/accelerate/fsdp2_cpu_2proc.yaml"
LEARNING_RATE = 1e-3
WEIGHT_DECAY = 0.1  # TrainConfig's default


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _run(arguments: list[str], launcher: list[str]) -> None:
    result = subprocess.run(
        [*launcher, "-m", "ophsd", "train", *arguments], cwd=REPO, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr[-3000:]


def _accelerate(config: Path) -> list[str]:
    port = str(_free_port())  # other tests (and other runs) may hold accelerate's default port
    launch = [sys.executable, "-m", "accelerate.commands.launch"]
    return [*launch, "--config_file", str(config), "--main_process_port", port]


def train(
    output: Path, model: Path, *, processes: int, steps: int, config: Path = CPU_CONFIG, **settings: object
) -> Path:
    settings = {
        "batch_size": 2,
        "max_new_tokens": 6,
        "harness_max_tokens": 6,
        "learning_rate": LEARNING_RATE,
        "probe_size": 0,
        "tensorboard": False,
        "engine_options": {"max_model_len": 1024},
        "save_every": 1,
        **settings,
    }
    arguments = [
        *("--harness", str(REPO / "harnesses/opsd.harness"), "--data", str(REPO / "examples/data/math.jsonl")),
        *("--model", str(model), "--output", str(output), "--max-steps", str(steps)),
        *[arg for key, value in settings.items() for arg in ("--set", f"{key}={json.dumps(value)}")],
    ]
    _run(arguments, _accelerate(config) if processes > 1 else [sys.executable])
    return output


def _weights(run: Path, step: int) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(run / f"checkpoints/step-{step:06d}/model/model.safetensors"))


def _metrics(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def _assert_same_update(single: Path, sharded: Path, model: Path) -> None:
    """The sharded run's first update equals the single process's, within the tolerances derived in
    test_trainer_distributed (the same reasoning: only the summation order differs)."""
    from safetensors.torch import load_file

    initial = load_file(str(model / "model.safetensors"))
    assert_same_first_adam_move(initial, _weights(single, 1), _weights(sharded, 1), LEARNING_RATE, WEIGHT_DECAY)

    metrics, single_metrics = _metrics(sharded), _metrics(single)
    assert len(metrics) == 1  # only the main process writes metrics
    assert metrics[-1]["tokens"] == single_metrics[-1]["tokens"]
    loss, bound = single_metrics[-1]["loss"], kl_rounding_bound(VOCAB_SIZE)
    assert metrics[-1]["loss"] == pytest.approx(loss, abs=bound)  # see test_trainer_distributed
    # The norm is summed from each process's shard of the reduce-scattered gradient plus the whole output
    # head's: the same relative rounding as data parallelism's (bound / sqrt(2 KL)); an averaged or
    # half-counted gradient is off by a factor of about 2.
    assert metrics[-1]["grad_norm"] == pytest.approx(single_metrics[-1]["grad_norm"], rel=bound / math.sqrt(2 * loss))


@pytest.mark.slow
def test_fsdp_two_processes_equal_one(tmp_path: Path, tiny_model_dir: Path) -> None:
    single = train(tmp_path / "single", tiny_model_dir, processes=1, steps=1)
    sharded = train(tmp_path / "sharded", tiny_model_dir, processes=2, steps=1)
    checkpoint = sharded / "checkpoints/step-000001"
    assert len(list((checkpoint / "sharded").glob("*.distcp"))) == 2  # each process wrote its own shard
    assert torch.load(checkpoint / "trainer.pt", weights_only=False)["optimizer"] is None  # it is in sharded/

    _assert_same_update(single, sharded, tiny_model_dir)


@pytest.mark.slow
def test_fsdp_tied_embeddings_equal_one(tmp_path: Path, tiny_model_dir: Path) -> None:
    """A tied output head (SmolLM2, the default model, ties it) is the embedding matrix: it stays whole on
    every process like an untied head, and the update still equals one process's."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tied = tmp_path / "tied-model"
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    model.config.tie_word_embeddings = True
    model.tie_weights()  # the head becomes the embedding matrix
    assert model.lm_head.weight is model.model.embed_tokens.weight
    model.save_pretrained(tied)
    AutoTokenizer.from_pretrained(tiny_model_dir).save_pretrained(tied)
    single = train(tmp_path / "single", tied, processes=1, steps=1)
    sharded = train(tmp_path / "sharded", tied, processes=2, steps=1)
    _assert_same_update(single, sharded, tied)


@pytest.mark.slow
def test_fsdp_resume_continues_exactly(tmp_path: Path, tiny_model_dir: Path) -> None:
    """Three steps straight, against two steps, a resume from the step-2 checkpoint's shards, and a third:
    the same processes sum in the same order, so a resume that restores the sharded weights, AdamW moments
    and EMA teacher is bit-exact; losing any of them moves the weights by about lr."""
    straight = train(tmp_path / "straight", tiny_model_dir, processes=2, steps=3, teacher="ema")
    resumed = tmp_path / "resumed"
    shutil.copytree(straight, resumed)  # the run as it stood after step 2 (it keeps two checkpoints)
    shutil.rmtree(resumed / "checkpoints/step-000003")
    config = json.loads((resumed / "config.json").read_text())
    (resumed / "config.json").write_text(json.dumps({**config, "output": str(resumed)}))  # its own directory
    _run(["--output", str(resumed), "--max-steps", "3", "--resume"], _accelerate(CPU_CONFIG))

    one, two = _weights(straight, 3), _weights(resumed, 3)
    assert one.keys() == two.keys()
    for name in one:
        assert torch.equal(one[name], two[name]), name
    for key in ("step", "loss", "grad_norm", "tokens"):
        assert _metrics(resumed)[-1][key] == _metrics(straight)[-1][key], key


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available() or torch.cuda.device_count() < 2, reason="needs 2 CUDA devices")
def test_fsdp_two_gpus_equal_one(tmp_path: Path, tiny_model_dir: Path) -> None:
    """examples/accelerate/fsdp2_8gpu.yaml on two GPUs (NCCL) against one GPU, with the CPU test's tolerances
    (fp32 matmuls without TF32, torch's default: rounding of the same size)."""
    config = tmp_path / "fsdp2_2gpu.yaml"
    shipped = (REPO / "examples/accelerate/fsdp2_8gpu.yaml").read_text(encoding="utf-8")
    config.write_text(shipped.replace("num_processes: 8", "num_processes: 2"), encoding="utf-8")
    single = train(tmp_path / "single", tiny_model_dir, processes=1, steps=1)
    sharded = train(tmp_path / "sharded", tiny_model_dir, processes=2, steps=1, config=config)
    _assert_same_update(single, sharded, tiny_model_dir)


def test_launcher_config_chooses_the_sharding(monkeypatch: pytest.MonkeyPatch) -> None:
    from ophsd.sharding import LauncherConfigError, launcher_sharding

    launcher_variables = ("ACCELERATE_USE_FSDP", "ACCELERATE_USE_DEEPSPEED", "ACCELERATE_MIXED_PRECISION")
    for name in (*launcher_variables, "FSDP_VERSION", "FSDP_OFFLOAD_PARAMS"):
        monkeypatch.delenv(name, raising=False)
    assert launcher_sharding() is None  # torchrun or a plain accelerate config: data parallelism
    monkeypatch.setenv("ACCELERATE_USE_FSDP", "true")
    monkeypatch.setenv("FSDP_VERSION", "2")
    assert launcher_sharding() == "fsdp2"
    monkeypatch.setenv("ACCELERATE_MIXED_PRECISION", "bf16")
    with pytest.raises(LauncherConfigError, match="mixed_precision"):
        launcher_sharding()
    monkeypatch.setenv("ACCELERATE_MIXED_PRECISION", "no")  # what the shipped configs say
    assert launcher_sharding() == "fsdp2"
    monkeypatch.setenv("FSDP_OFFLOAD_PARAMS", "true")
    with pytest.raises(LauncherConfigError, match="fsdp_offload_params"):
        launcher_sharding()
    monkeypatch.setenv("FSDP_OFFLOAD_PARAMS", "false")
    monkeypatch.setenv("FSDP_VERSION", "1")
    with pytest.raises(LauncherConfigError, match="fsdp_version: 2"):
        launcher_sharding()
    monkeypatch.setenv("ACCELERATE_USE_DEEPSPEED", "true")
    with pytest.raises(LauncherConfigError, match="DeepSpeed"):
        launcher_sharding()


def test_shipped_accelerate_configs_shard_with_fsdp2() -> None:
    yaml = pytest.importorskip("yaml")
    for path in sorted((REPO / "examples/accelerate").glob("*.yaml")):
        config = yaml.safe_load(path.read_text(encoding="utf-8"))
        assert config["distributed_type"] == "FSDP", path.name
        assert config["fsdp_config"]["fsdp_version"] == 2, path.name
        assert config["fsdp_config"]["fsdp_auto_wrap_policy"] == "TRANSFORMER_BASED_WRAP", path.name


def _lockstep_worker(rank: int, world: int, port: int, model_dir: str, result: str) -> None:
    """One process of test_a_process_without_tokens_keeps_lockstep (spawned; gloo on CPU)."""
    import copy
    import os

    from transformers import AutoModelForCausalLM

    from ophsd.model import Teacher, completion_hidden, output_head
    from ophsd.sharding import Sharding

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), FSDP_VERSION="2", ACCELERATE_USE_FSDP="true")
    torch.distributed.init_process_group("gloo", rank=rank, world_size=world)
    try:
        policy = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
        whole = copy.deepcopy(policy)  # the same update on one process, for reference
        teacher = Teacher("frozen", policy, copy.deepcopy(policy).eval().requires_grad_(False))
        sharding = Sharding(torch.device("cpu"))
        sharding.shard(policy, teacher, engine="vllm")
        ids = torch.arange(1, 9).reshape(1, 8)
        mask, positions = torch.ones_like(ids), torch.arange(3, 8)

        def loss_of(model: torch.nn.Module) -> torch.Tensor:  # teacher forward, then the student's loss
            with teacher.active() as module:
                completion_hidden(module, ids, mask, positions)
            return output_head(model)(completion_hidden(model, ids, mask, positions)).logsumexp(-1).sum()

        if rank == 0:
            loss_of(policy).backward()
        else:  # no tokens this step: without the idle pass, rank 0's all-gathers would wait forever
            sharding.idle_pass(policy, teacher)
        norm = sharding.reduce_and_clip(list(policy.parameters()), max_norm=1e9)
        output_head(whole)(completion_hidden(whole, ids, mask, positions)).logsumexp(-1).sum().backward()
        expected = torch.nn.utils.clip_grad_norm_(whole.parameters(), 1e9).item()
        if rank == 0:
            Path(result).write_text(json.dumps({"norm": norm, "expected": expected}))
    finally:
        torch.distributed.destroy_process_group()


def test_a_process_without_tokens_keeps_lockstep(tmp_path: Path, tiny_model_dir: Path) -> None:
    """A process whose rows kept no tokens runs the idle pass: the step completes (no process waits on a
    collective the other never calls) and contributes exactly nothing, so the gradient norm is the one
    process's own (fp32 summation order only: a relative 1e-5)."""
    result = tmp_path / "result.json"
    torch.multiprocessing.spawn(
        _lockstep_worker, args=(2, _free_port(), str(tiny_model_dir), str(result)), nprocs=2, join=True
    )
    numbers = json.loads(result.read_text())
    assert numbers["norm"] == pytest.approx(numbers["expected"], rel=1e-5)
