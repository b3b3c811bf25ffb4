"""The trainer on a tiny random model: every shipped harness and a custom one train with no trainer change
and bring the student closer to the teacher on a fixed probe batch; resume equals a straight run; bad
settings are rejected with messages that name the values."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from conftest import REPO  # noqa: E402

from ophsd.cli import main  # noqa: E402
from ophsd.config import ConfigError, TrainConfig, load_config  # noqa: E402
from ophsd.trainer import Trainer  # noqa: E402

FAST = {
    "batch_size": 2,
    "max_new_tokens": 8,
    "harness_max_tokens": 8,
    "learning_rate": 3e-5,
    "probe_size": 2,
    "save_every": 2,
    "tensorboard": False,
    "seed": 3,
    "engine_options": {"max_model_len": 1024},
}
DATA = {"plan_solve": "math.jsonl", "opsd": "math.jsonl", "draft_verify": "classify.jsonl"}

CUSTOM = """# A harness written for this test only: a hint stage, and a teacher template that shows the hint.
harness hinted "Distil a hint into the student"
input question: text
input answer: text oracle
llm hint {
  user "Give a one-line hint for: {question}"
  max_tokens 8
}
student { user "{question}" max_tokens 8 }
teacher {
  user "{question}\\nHint: {hint}{if answer} (the answer is {answer}){end}"
}
output = extract_boxed(student)
grade = math_equal(output, answer)
"""


def config(tmp_path: Path, tiny_model_dir: Path, harness: str, data: str, **extra) -> TrainConfig:
    return TrainConfig(
        harness=harness, data=data, model=str(tiny_model_dir), output=str(tmp_path / "run"), **{**FAST, **extra}
    )


@pytest.mark.slow
@pytest.mark.parametrize("name", ["plan_solve", "draft_verify", "opsd", "custom"])
def test_each_harness_trains_and_the_probe_divergence_goes_down(name, tmp_path, tiny_model_dir) -> None:
    if name == "custom":
        harness = tmp_path / "hinted.harness"
        harness.write_text(CUSTOM)
        harness, data = str(harness), str(REPO / "examples/data/math.jsonl")
    else:
        harness, data = str(REPO / f"harnesses/{name}.harness"), str(REPO / "examples/data" / DATA[name])
    extra = {}
    if name == "draft_verify":  # a warm bank, so that the probe's teacher is the verify stage, not zero-shot
        bank = tmp_path / "bank.jsonl"
        bank.write_text("".join((REPO / "examples/data/classify.jsonl").read_text().splitlines(True)[60:]))
        extra = {"banks": {"cases": str(bank)}}
    # The probe rows are the training rows (limit = batch = probe size): the loss minimised is the one measured.
    trainer = Trainer(config(tmp_path, tiny_model_dir, harness, data, max_steps=4, limit=2, **extra))
    history = trainer.train()
    assert [row["step"] for row in history] == [1, 2, 3, 4]
    assert all(row["tokens"] > 0 and not row["skipped"] for row in history)
    probes = [trainer.initial_probe] + [row["probe_divergence"] for row in history]
    assert probes[-1] < probes[0], probes
    assert (tmp_path / "run/checkpoints/step-000004/trainer.pt").exists()
    assert set(history[0]["seconds"]) >= {"rollout", "harness", "teacher", "student", "update", "weight_push"}
    if name == "draft_verify":
        assert len(trainer.banks["cases"]) == 60 + 8  # the file's rows, then 4 steps x 2 examples


@pytest.mark.slow
def test_two_steps_resume_two_steps_equals_four_straight(tmp_path, tiny_model_dir) -> None:
    harness, data = str(REPO / "harnesses/plan_solve.harness"), str(REPO / "examples/data/math.jsonl")
    straight = Trainer(config(tmp_path / "a", tiny_model_dir, harness, data, max_steps=4, probe_size=0))
    straight_history = straight.train()
    first = Trainer(config(tmp_path / "b", tiny_model_dir, harness, data, max_steps=2, probe_size=0))
    first.train()
    resumed = Trainer(config(tmp_path / "b", tiny_model_dir, harness, data, max_steps=4, probe_size=0), resume=True)
    assert resumed.step == 2
    resumed_history = resumed.train()
    assert [row["loss"] for row in resumed_history] == [row["loss"] for row in straight_history[2:]]
    for (name, a), (_, b) in zip(straight.policy.state_dict().items(), resumed.policy.state_dict().items()):
        assert torch.equal(a, b), name
    lines = (tmp_path / "b/run/metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["step"] for line in lines] == [1, 2, 3, 4]


@pytest.mark.slow
def test_lora_trains_the_adapter_only_and_the_teacher_is_the_base(tmp_path, tiny_model_dir) -> None:
    pytest.importorskip("peft")
    harness, data = str(REPO / "harnesses/opsd.harness"), str(REPO / "examples/data/math.jsonl")
    trainer = Trainer(
        config(
            tmp_path, tiny_model_dir, harness, data, max_steps=2, lora=True, lora_r=4, lora_alpha=8, learning_rate=1e-2
        )
    )
    base = {name: tensor.clone() for name, tensor in trainer.policy.state_dict().items() if "lora_" not in name}
    trainer.train()
    assert trainer.teacher.copy is None  # no second model: the adapter is disabled instead
    after = trainer.policy.state_dict()
    assert all(torch.equal(tensor, after[name]) for name, tensor in base.items())
    assert (tmp_path / "run/checkpoints/step-000002/model/adapter_config.json").exists()


def test_bad_settings_are_rejected_naming_the_values(tmp_path) -> None:
    with pytest.raises(ConfigError) as error:
        load_config(
            None,
            {"harness": "h", "data": "d", "output": "o"},
            ["max_steps=0", "teacher=ema", "lora=true", "learning_rate=-1", "lossy=1"],
        )
    text = str(error.value)
    assert "max_steps" in text and "got 0" in text
    assert "learning_rate" in text and "got -1" in text
    assert "lossy: unknown setting" in text and "did you mean `loss`?" in text
    with pytest.raises(ConfigError, match="teacher = 'ema' with lora = true"):
        load_config(None, {"harness": "h", "data": "d", "output": "o"}, ["teacher=ema", "lora=true"])
    with pytest.raises(ConfigError, match=r"warmup_steps \(10\) must be smaller than max_steps \(5\)"):
        load_config(None, {"harness": "h", "data": "d", "output": "o", "max_steps": 5}, ["warmup_steps=10"])


def test_cli_reports_a_harness_without_training_views(tmp_path, capsys) -> None:
    harness = tmp_path / "plain.harness"
    harness.write_text('harness plain\ninput q: text\nllm a { user "{q}" max_tokens 4 }\noutput = a\n')
    code = main(
        [
            "train",
            "--harness",
            str(harness),
            "--data",
            str(REPO / "examples/data/math.jsonl"),
            "--output",
            str(tmp_path / "run"),
            "--set",
            "max_steps=1",
        ]
    )
    err = capsys.readouterr().err
    assert code == 1 and "error[missing-student]" in err and "Traceback" not in err


@pytest.mark.slow
def test_cli_train_then_report(tmp_path, tiny_model_dir, capsys) -> None:
    run = tmp_path / "run"
    code = main(
        [
            "train",
            "--harness",
            str(REPO / "harnesses/plan_solve.harness"),
            "--data",
            str(REPO / "examples/data/math.jsonl"),
            "--model",
            str(tiny_model_dir),
            "--output",
            str(run),
            "--max-steps",
            "1",
            "--set",
            "batch_size=1",
            "--set",
            "max_new_tokens=4",
            "--set",
            "harness_max_tokens=4",
            "--set",
            "probe_size=0",
            "--set",
            "tensorboard=false",
        ]
    )
    assert code == 0
    assert json.loads((run / "config.json").read_text())["max_steps"] == 1
    assert main(["report", str(run)]) == 0
    assert {path.name for path in (run / "report").glob("*.png")} == {
        "loss.png",
        "lengths.png",
        "accuracy.png",
        "phases.png",
    }


def test_the_written_config_reads_back(tmp_path) -> None:
    """config.json (every field, defaults included) is what --resume, eval and report read back."""
    config = load_config(None, {"harness": "h", "data": "d", "output": "o"}, ["loss=forward_kl", "lora=true"])
    assert TrainConfig(**json.loads(config.model_dump_json())) == config


def test_a_non_finite_gradient_skips_the_update_and_says_so_once(tmp_path, tiny_model_dir, caplog) -> None:
    """A poisoned loss (NaN) must not reach the weights: the update is skipped, recorded per step, and the
    user is told once, in our words."""
    harness, data = str(REPO / "harnesses/opsd.harness"), str(REPO / "examples/data/math.jsonl")
    trainer = Trainer(config(tmp_path, tiny_model_dir, harness, data, max_steps=2, probe_size=0, save_every=5))
    divergence = trainer.divergence
    trainer.divergence = lambda *args, **kwargs: divergence(*args, **kwargs) * float("nan")
    before = {name: value.clone() for name, value in trainer.policy.state_dict().items()}
    with caplog.at_level("WARNING", logger="ophsd"):
        history = trainer.train()
    assert [row["skipped"] for row in history] == [True, True]
    assert all(torch.equal(before[name], value) for name, value in trainer.policy.state_dict().items())
    said = [record.getMessage() for record in caplog.records if "not finite" in record.getMessage()]
    assert said == ["step 1: the gradient was not finite; the update was skipped (see skipped)"]


def test_the_fused_optimizer_takes_the_same_steps_as_plain_adamw() -> None:
    from ophsd.model import make_optimizer

    config = TrainConfig(harness="h", data="d", output="o", learning_rate=1e-2, weight_decay=0.1, adam_betas=(0.8, 0.9))
    torch.manual_seed(0)
    fused_model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.Linear(16, 4))
    plain_model = copy.deepcopy(fused_model)
    fused = make_optimizer(fused_model.parameters(), config, torch.device("cpu"))
    plain = torch.optim.AdamW(plain_model.parameters(), lr=1e-2, weight_decay=0.1, betas=(0.8, 0.9), foreach=False)
    assert fused.param_groups[0]["fused"]
    for _ in range(3):
        batch = torch.randn(5, 8)
        for model, optimizer in ((fused_model, fused), (plain_model, plain)):
            optimizer.zero_grad()
            model(batch).square().mean().backward()
            optimizer.step()
    for after_fused, after_plain in zip(fused_model.parameters(), plain_model.parameters(), strict=True):
        assert torch.allclose(after_fused, after_plain, atol=1e-6)
        assert not torch.equal(after_fused, torch.zeros_like(after_fused))
