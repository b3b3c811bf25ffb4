"""The training signal is the teacher's and is deterministic: every forward other than the student's gradient
pass runs without dropout; rollouts come from the current weights; the loss is at the sampling temperature;
sequences fit the model's context; the held-out evaluation runs inside the loop and names the best step."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from conftest import REPO  # noqa: E402
from test_trainer import config  # noqa: E402

from ophsd.cli import main  # noqa: E402
from ophsd.config import ConfigError, TrainConfig  # noqa: E402
from ophsd.trainer import Trainer  # noqa: E402

MATH = str(REPO / "examples/data/math.jsonl")
OPSD = str(REPO / "harnesses/opsd.harness")
PLAN_SOLVE = str(REPO / "harnesses/plan_solve.harness")


@pytest.fixture(scope="module")
def dropout_model_dir(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model with attention dropout 0.1: any forward left in train mode is visibly random."""
    directory = tmp_path_factory.mktemp("dropout-model")
    shutil.copytree(tiny_model_dir, directory, dirs_exist_ok=True)
    settings = json.loads((directory / "config.json").read_text())
    settings["attention_dropout"] = 0.1
    (directory / "config.json").write_text(json.dumps(settings))
    return directory


@pytest.fixture(scope="module")
def gpt2_128_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny GPT-2 (learned positions: 128 of them, an IndexError past them) with the tiny tokenizer."""
    from tiny_model import VOCAB_SIZE, _train_tokenizer
    from transformers import GenerationConfig, GPT2Config, GPT2LMHeadModel

    directory = tmp_path_factory.mktemp("gpt2-128")
    tokenizer = _train_tokenizer()
    settings = GPT2Config(
        vocab_size=VOCAB_SIZE,
        n_positions=128,
        n_embd=64,
        n_layer=2,
        n_head=2,
        bos_token_id=tokenizer.eos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(0)
    model = GPT2LMHeadModel(settings)
    model.generation_config = GenerationConfig(eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


TEACHER_KINDS = [
    ("frozen", False),
    ("frozen", True),  # the base with the adapter disabled: the same module as the student
    ("live", False),
    ("live", True),
    ("ema", False),
]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("kind", "lora"), TEACHER_KINDS, ids=[f"{k}{'+lora' if lora else ''}" for k, lora in TEACHER_KINDS]
)
def test_two_teacher_passes_after_a_step_are_bit_identical(kind, lora, tmp_path, dropout_model_dir) -> None:
    extra = {"lora": True, "lora_r": 4, "lora_alpha": 8, "lora_dropout": 0.1} if lora else {}
    trainer = Trainer(
        config(tmp_path, dropout_model_dir, OPSD, MATH, teacher=kind, max_steps=1, limit=2, probe_size=0, **extra)
    )
    trainer.train()  # a real step first: the policy ends it in train mode, as it would mid-run
    batch = trainer.build_batch(trainer.rows, step=1)[0]
    assert batch.tokens > 0
    passes = []
    for _ in range(2):
        trainer.policy.train(True)
        hidden = trainer.teacher_hidden(batch)
        passes.append((hidden, trainer.teacher.head()(hidden)))
    assert torch.equal(passes[0][0], passes[1][0]) and torch.equal(passes[0][1], passes[1][1])
    assert trainer.policy.training  # the caller's mode is given back
    # The probe (and every other forward without a gradient) is deterministic too.
    trainer.policy.train(True)
    first = trainer.divergence(batch, passes[0][0], grad=False)
    second = trainer.divergence(batch, passes[0][0], grad=False)
    assert torch.equal(first, second)
    # ... while the student's gradient pass does see dropout: the test would notice a model without any.
    trainer.policy.train(True)
    noisy = [trainer.divergence(batch, passes[0][0], grad=True).detach() for _ in range(2)]
    assert not torch.equal(noisy[0], noisy[1])


class _SeparateWeightsEngine:
    """A transformers engine with its own copy of the weights (as vLLM has): only pushes update it."""

    def __init__(self, model_path: str) -> None:
        from harnessc.engines import create_engine

        self.inner = create_engine("transformers", model_path, max_model_len=1024)
        self.name, self.pushes = "separate", 0

    def chat(self, requests):
        return self.inner.chat(requests)

    def apply_chat_template(self, messages, template_kwargs=None):
        return self.inner.apply_chat_template(messages, template_kwargs)

    def load_weights(self, state_dict) -> None:
        self.pushes += 1
        self.inner.load_weights(state_dict)


@pytest.mark.slow
def test_rollouts_come_from_the_weights_of_the_last_step(tmp_path, tiny_model_dir) -> None:
    settings = config(tmp_path, tiny_model_dir, OPSD, MATH, max_steps=3, limit=4, probe_size=0, learning_rate=1e-2)
    settings.engine = "vllm"  # the path that pushes weights to an engine holding its own copy
    trainer = Trainer(settings, engine_factory=lambda trainer, config, path: _SeparateWeightsEngine(path))
    trainer.train()
    assert trainer.engine.pushes == 3
    served = trainer.engine.inner.model.state_dict()
    for name, tensor in trainer.policy.state_dict().items():
        assert torch.equal(served[name], tensor), name


@pytest.mark.slow
def test_the_loss_is_taken_at_the_rollout_temperature(tmp_path, tiny_model_dir) -> None:
    trainer = Trainer(config(tmp_path, tiny_model_dir, OPSD, MATH, max_steps=1, limit=2, rollout_temperature=0.7))
    assert trainer.spec.temperature == 0.7
    requests = []  # what the engine is asked to sample
    chat = trainer.engine.chat
    trainer.engine.chat = lambda batch: requests.extend(batch) or chat(batch)
    trainer.rollout(trainer.rows, step=0)
    assert requests and {request.sampling.temperature for request in requests} == {0.7}
    shutil.copytree(REPO / "harnesses", tmp_path / "harnesses")  # opsd imports its shared prompts
    greedy = tmp_path / "harnesses/greedy.harness"
    greedy.write_text(Path(OPSD).read_text().replace("temperature 1.0", "temperature 0"))
    assert "temperature 0" in greedy.read_text()
    with pytest.raises(ConfigError, match="greedy rollouts"):
        Trainer(config(tmp_path, tiny_model_dir, str(greedy), MATH, max_steps=1, limit=2))


@pytest.mark.slow
def test_the_student_template_switches_reach_the_rollout(tmp_path, tiny_model_dir) -> None:
    """The tiny template inserts an empty think block when thinking is off: the engine must sample after it,
    and the loss must condition on the same ids (the builder compares them per example)."""
    trainer = Trainer(
        config(
            tmp_path,
            tiny_model_dir,
            OPSD,
            MATH,
            max_steps=1,
            limit=2,
            probe_size=0,
            student_template_kwargs={"enable_thinking": False},
        )
    )
    rollouts = trainer.rollout(trainer.rows, step=0)
    think = trainer.tokenizer.encode("<think>\n\n</think>\n\n", add_special_tokens=False)
    for rollout in rollouts:
        [call] = rollout.calls
        assert call.template_kwargs == {"enable_thinking": False}
        sampled_after = list(call.samples[0].prompt_token_ids)
        assert sampled_after[-len(think) :] == think
    assert trainer.train()[0]["tokens"] > 0  # built, compared and trained without a mismatch


def test_a_bank_the_harness_does_not_declare_is_a_config_error_before_loading(tmp_path) -> None:
    missing_model = str(tmp_path / "no-model")  # never reached: the check comes before any loading
    settings = {"harness": OPSD, "data": MATH, "output": str(tmp_path / "run"), "model": missing_model}
    with pytest.raises(ConfigError, match=r"banks: cases is not a bank of .*opsd.harness \(it declares: none\)"):
        Trainer(TrainConfig(**settings, banks={"cases": MATH}))


def test_budgets_that_cannot_fit_are_config_errors_before_loading(tmp_path, gpt2_128_dir) -> None:
    with pytest.raises(ConfigError, match=r"max_new_tokens \(128\) leaves no room.*context of 128"):
        Trainer(config(tmp_path, gpt2_128_dir, OPSD, MATH, max_new_tokens=128, engine_options={}))
    with pytest.raises(ConfigError, match=r"max_model_len \(1024\) is larger than the model's context \(128"):
        Trainer(config(tmp_path, gpt2_128_dir, OPSD, MATH))


@pytest.mark.slow
@pytest.mark.parametrize("harness", [PLAN_SOLVE, OPSD])
def test_a_128_position_model_trains_with_long_teacher_prompts(tmp_path, gpt2_128_dir, harness, capsys) -> None:
    """plan_solve's and opsd's teacher prompts are longer than 128 tiny-tokenizer tokens: they are cut to fit
    (or dropped), counted and warned about, and the step runs: never an IndexError."""
    run = tmp_path / "run"
    args = ["train", "--harness", harness, "--data", MATH, "--model", str(gpt2_128_dir), "--output", str(run)]
    settings = {**_fast_cli(), "engine_options": {}, "max_new_tokens": 16, "limit": 4, "batch_size": 4}
    code = main(args + ["--max-steps", "2"] + [f"--set={key}={json.dumps(value)}" for key, value in settings.items()])
    err = capsys.readouterr().err
    assert code == 0, err
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["step"] == 2
    assert sum(row.get("truncated_teacher", 0) + row.get("dropped_too_long", 0) for row in rows) > 0
    assert "warning:" in err and err.count("teacher context was over its budget") <= 1


def _fast_cli() -> dict:
    return {"probe_size": 0, "tensorboard": False, "harness_max_tokens": 16, "learning_rate": 1e-4}


@pytest.mark.slow
def test_in_loop_evaluation_logs_the_held_out_accuracy_and_the_best_step(tmp_path, tiny_model_dir, capsys) -> None:
    run = tmp_path / "run"
    trainer = Trainer(
        config(
            tmp_path,
            tiny_model_dir,
            OPSD,
            MATH,
            max_steps=3,
            limit=4,
            eval_data=MATH,
            eval_limit=3,
            eval_every=2,
            eval_samples=2,
            eval_harness=True,
            show_every=2,
            learning_rate=1e-2,
        )
    )
    trainer.train()
    rows = {row["step"]: row for row in map(json.loads, (run / "metrics.jsonl").read_text().splitlines())}
    evaluated = [step for step, row in rows.items() if "eval_accuracy" in row]
    assert evaluated == [0, 2, 3]  # the baseline, every eval_every steps, and the end
    for step in evaluated:
        assert 0 <= rows[step]["eval_accuracy"] <= rows[step]["eval_pass_at_k"] <= 1
        assert rows[step]["eval_harness_accuracy"] is not None and rows[step]["probe_divergence"] is not None
        records = (run / f"evals/step-{step:06d}-student.jsonl").read_text().splitlines()
        assert len(records) == 3  # eval_limit rows, one greedy sample each
        assert len((run / f"evals/step-{step:06d}-student-sampled.jsonl").read_text().splitlines()) == 6
    best = json.loads((run / "best.json").read_text())
    top = max(rows[step]["eval_accuracy"] for step in evaluated)
    assert best["eval_accuracy"] == top and rows[best["step"]]["eval_accuracy"] == top
    if best["step"]:
        assert (run / best["checkpoint"] / "trainer.pt").exists()
    # What the teacher saw: training batches at step 1 and every show_every steps, the probe at evaluations.
    names = sorted(path.name for path in (run / "samples").iterdir())
    assert {"step-000001.json", "step-000002.json", "step-000000-probe.json", "step-000002-probe.json"} <= set(names)
    shown = json.loads((run / "samples/step-000002.json").read_text())
    assert shown and all(len(example["tokens"]) > 0 for example in shown)
    assert all(example["teacher_prompt"] != example["student_prompt"] for example in shown)
    assert main(["report", str(run)]) == 0 and (run / "report/held_out.png").exists()
    assert main(["show", str(run), "--step", "2"]) == 0
    out = capsys.readouterr().out
    assert "teacher sequence" in out and "reference solution" in out  # opsd's teacher shows it
