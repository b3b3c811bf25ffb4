"""Interrupted runs resume, or say exactly why not: `harnessc run --resume` continues only the same run
(its header names what differs otherwise); the trainer resumes from the newest *complete* checkpoint
(manifest verified) and drops a partial metrics line."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO
from kill_points import wait_until_paused

from harnessc.engines.scripted import ScriptedEngine
from harnessc.runtime.runner import RunError, RunOptions, header_path, read_records, run

MATH = str(REPO / "examples/data/math.jsonl")
PLAN_SOLVE = str(REPO / "harnesses/plan_solve.harness")


def answer(request, sample: int) -> str:
    return "plan" if "tutor" in request.messages[0].content else "\\boxed{34}"


def options(out: Path, **changes) -> RunOptions:
    values = dict(harness=PLAN_SOLVE, data=MATH, out=str(out), limit=4, chunk_size=2, engine="transformers")
    return RunOptions(**{**values, **changes})


def other_data(tmp_path: Path) -> str:
    path = tmp_path / "other.jsonl"
    path.write_text(Path(MATH).read_text().replace("?", "??", 1))
    return str(path)


# Each member of the kind: (what changes on resume, a word the refusal must name).
MISMATCHES = {
    "data": (lambda tmp: {"data": other_data(tmp)}, "data:"),
    "seed": (lambda tmp: {"seed": 1}, "--seed"),
    "overrides": (lambda tmp: {"overrides": {"plan_tokens": "7"}}, "--set"),
    "student-only": (lambda tmp: {"student_only": True}, "--student-only"),
    "smaller-limit": (lambda tmp: {"limit": 2}, "--limit"),
    "samples": (lambda tmp: {"samples": 2}, "--n"),
    "model": (lambda tmp: {"model": "some/other-model"}, "--model"),
    "engine-option": (lambda tmp: {"engine_options": {"dtype": "float16"}}, "engine options"),
    "columns": (lambda tmp: {"columns": {"question": "answer"}}, "--map"),
}


@pytest.mark.parametrize("kind", MISMATCHES)
def test_resume_refuses_a_different_run_naming_what_differs(tmp_path: Path, kind: str) -> None:
    out = tmp_path / "out.jsonl"
    run(options(out), lambda: ScriptedEngine(answer))
    before = out.read_bytes()
    change, named = MISMATCHES[kind]
    with pytest.raises(RunError, match="was written by a different run") as caught:
        run(options(out, resume=True, **change(tmp_path)), lambda: ScriptedEngine(answer))
    assert named in str(caught.value) and "--overwrite" in str(caught.value)
    assert out.read_bytes() == before  # nothing was touched


def test_resume_refuses_when_the_data_file_changed_in_place(tmp_path: Path) -> None:
    data = tmp_path / "d.jsonl"
    data.write_text(Path(MATH).read_text())
    out = tmp_path / "out.jsonl"
    run(options(out, data=str(data)), lambda: ScriptedEngine(answer))
    data.write_text(Path(MATH).read_text().replace("?", "!", 1))
    with pytest.raises(RunError, match=r"data: .*d.jsonl has changed since the run started"):
        run(options(out, data=str(data), resume=True), lambda: ScriptedEngine(answer))


def test_resume_accepts_a_larger_limit_and_speed_only_options(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    run(options(out, limit=2), lambda: ScriptedEngine(answer))
    summary = run(
        options(out, limit=4, resume=True, chunk_size=1, engine_options={"batch_size": 3}),
        lambda: ScriptedEngine(answer),
    )
    assert summary.records == 4 and sorted(r.index for r in read_records(out)) == [0, 1, 2, 3]
    assert json.loads(header_path(out).read_text())["limit"] == 4


def test_resume_refuses_an_output_without_a_header(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    run(options(out), lambda: ScriptedEngine(answer))
    header_path(out).unlink()
    with pytest.raises(RunError, match="no run header"):
        run(options(out, resume=True), lambda: ScriptedEngine(answer))
    run(options(out, overwrite=True), lambda: ScriptedEngine(answer))  # the way out it names
    assert header_path(out).exists()


# ---- the trainer's checkpoints ---------------------------------------------------------------------------------


def fake_checkpoint(root: Path, step: int) -> Path:
    """A checkpoint directory with the real writer's manifest (no model needed)."""
    from ophsd.checkpoint import _write_manifest, checkpoint_dir

    path = checkpoint_dir(root, step)
    (path / "model").mkdir(parents=True)
    (path / "model" / "model.safetensors").write_bytes(os.urandom(2048))
    (path / "trainer.pt").write_bytes(os.urandom(512))
    _write_manifest(path)
    return path


def damage_truncate(path: Path) -> None:
    file = path / "model" / "model.safetensors"
    file.write_bytes(file.read_bytes()[:1000])


def damage_flip(path: Path) -> None:  # same size, different bytes
    file = path / "trainer.pt"
    data = bytearray(file.read_bytes())
    data[10] ^= 0xFF
    file.write_bytes(bytes(data))


def damage_no_manifest(path: Path) -> None:  # killed before the manifest, then renamed by hand
    (path / "manifest.json").unlink()
    (path / "trainer.pt").unlink()


def damage_missing_file(path: Path) -> None:
    (path / "trainer.pt").unlink()


def damage_bad_manifest(path: Path) -> None:
    (path / "manifest.json").write_text('{"files": ')


@pytest.mark.parametrize(
    "damage", [damage_truncate, damage_flip, damage_no_manifest, damage_missing_file, damage_bad_manifest]
)
def test_a_damaged_newest_checkpoint_is_skipped_with_a_warning(tmp_path: Path, damage) -> None:
    pytest.importorskip("torch")
    from ophsd.checkpoint import IncompleteCheckpointWarning, latest_checkpoint

    older = fake_checkpoint(tmp_path, 2)
    newest = fake_checkpoint(tmp_path, 4)
    assert latest_checkpoint(tmp_path) == newest
    damage(newest)
    with pytest.warns(IncompleteCheckpointWarning, match="step-000004"):
        assert latest_checkpoint(tmp_path) == older


def test_staging_directories_of_killed_writes_are_never_candidates(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    from ophsd.checkpoint import latest_checkpoint, list_checkpoints

    older = fake_checkpoint(tmp_path, 2)
    staging = tmp_path / "checkpoints" / "step-000004.tmp"
    (staging / "model").mkdir(parents=True)
    (staging / "trainer.pt").write_bytes(b"\x80\x02")  # cut off: torch.load would raise EOFError
    assert latest_checkpoint(tmp_path) == older and list_checkpoints(tmp_path) == [older]


@pytest.mark.parametrize("tail", ['{"step": 3, "loss": 0.', '{"st', "\x00\x00\x00"])
def test_a_partial_last_metrics_line_is_dropped(tmp_path: Path, tail: str) -> None:
    pytest.importorskip("torch")
    from ophsd.metrics import MetricsLog, read_metrics

    lines = "".join(json.dumps({"step": step, "loss": 1.0}) + "\n" for step in (1, 2, 3))
    (tmp_path / "metrics.jsonl").write_text(lines + tail)
    assert [row["step"] for row in read_metrics(tmp_path)] == [1, 2, 3]
    MetricsLog(tmp_path, tensorboard=False, truncate_after=2)
    assert (tmp_path / "metrics.jsonl").read_text() == lines.rsplit("{", 1)[0]


def test_a_damaged_complete_metrics_line_names_the_file_and_line(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    from ophsd.metrics import read_metrics

    (tmp_path / "metrics.jsonl").write_text('{"step": 1}\nnot json\n{"step": 2}\n')
    with pytest.raises(ValueError, match=r"metrics.jsonl, line 2: not a metrics record"):
        read_metrics(tmp_path)


# A harness whose teacher context passes `pause_point` (tests/pause_point_builtins.py) twice per step: in the
# harness phase (the `let`) and in the bank update after the optimizer step (the bank's field).
_PAUSABLE = """\
harness pausable "A teacher context with kill points"
input question: text
input answer: text oracle
bank solved {
  question: text = pause_point(question, "bank")
  answer: text = answer
  search question
  label answer
}
let similar = retrieve(solved, pause_point(question, "harness"), k=1)
student { user "{question}" max_tokens 4 }
teacher { user "{question}{for case in similar}\\nA solved problem: {case.question} (answer {case.answer}){end}" }
output = extract_boxed(student)
grade = math_equal(output, answer)
"""

# Where each round's process blocks (the N-th call of a kill point, counted from the process's start), and
# what a kill there must leave: the metrics lines and the newest complete checkpoint (one per step).
_KILL_ROUNDS = [
    ("harness:3", [1, 2], 2),  # fresh: steps 1-2 done, step 3 in its harness phase
    ("bank:2", [1, 2, 3], 3),  # resumed at 2: step 3 done; step 4 after its optimizer step, not yet saved
    ("harness:1", [1, 2, 3], 3),  # resumed at 3: killed before its first step completes
]


@pytest.mark.slow
def test_train_killed_at_chosen_moments_resumes_to_the_end(tmp_path: Path, tiny_model_dir: Path) -> None:
    """A real SIGKILL at a different point each round (the process blocks there, so the kill lands exactly
    there), then the damage a kill during a checkpoint write leaves behind; every `--resume` must finish
    cleanly and the run must end with every step logged once."""
    pytest.importorskip("torch")
    (tmp_path / "pausable.harness").write_text(_PAUSABLE)
    run_dir, marker, log = tmp_path / "run", tmp_path / "paused", tmp_path / "train.log"
    command = [sys.executable, "-m", "ophsd", "train", "--harness", str(tmp_path / "pausable.harness")]
    command += ["--data", MATH, "--model", str(tiny_model_dir), "--output", str(run_dir), "--max-steps", "6"]
    for name, value in [("batch_size", 1), ("max_new_tokens", 4), ("harness_max_tokens", 4), ("probe_size", 0)]:
        command += ["--set", f"{name}={value}"]
    command += ["--set", "tensorboard=false", "--set", "save_every=1", "--set", "keep_checkpoints=3"]
    command += ["--set", 'builtins=["pause_point_builtins"]']
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO / "tests"), str(REPO), os.environ.get("PYTHONPATH", "")]),
    }
    checkpoints = run_dir / "checkpoints"
    for pause, steps, newest in _KILL_ROUNDS:
        marker.unlink(missing_ok=True)
        resume = ["--resume"] if run_dir.exists() else []
        with log.open("w") as output:
            process = subprocess.Popen(
                command + resume,
                cwd=REPO,
                env={**env, "PAUSE_POINT": pause, "PAUSE_POINT_MARKER": str(marker)},
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        wait_until_paused(process, marker, log)
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        assert [row["step"] for row in _metrics(run_dir)] == steps, pause
        assert max(path.parent for path in checkpoints.glob("step-??????/manifest.json")).name == f"step-{newest:06d}"
    # What a kill mid-write can leave: a staging directory with a cut-off trainer.pt, a torn metrics line.
    newest_dir = checkpoints / f"step-{newest:06d}"
    staging = checkpoints / f"step-{newest + 1:06d}.tmp"
    (staging / "model").mkdir(parents=True, exist_ok=True)
    (staging / "trainer.pt").write_bytes((newest_dir / "trainer.pt").read_bytes()[:100])
    with (run_dir / "metrics.jsonl").open("a") as handle:
        handle.write('{"step": 99, "lo')
    done = subprocess.run(command + ["--resume"], cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert [row["step"] for row in _metrics(run_dir)] == list(range(1, 7))
    assert (checkpoints / "step-000006" / "manifest.json").exists() and not staging.exists()


def _metrics(run_dir: Path) -> list[dict]:
    """The complete lines of metrics.jsonl (a line cut off by the kill is not one)."""
    text = (run_dir / "metrics.jsonl").read_text()
    return [json.loads(line) for line in text[: text.rfind("\n") + 1].splitlines()]


# ---- ophsd train --resume continues the same run -----------------------------------------------------------------


def fake_run(tmp_path: Path, data: Path) -> Path:
    """A run directory as `ophsd train` leaves it before its first checkpoint: config and fingerprints."""
    pytest.importorskip("torch")
    from ophsd.cli import _write_fingerprints
    from ophsd.config import TrainConfig, write_run_config

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    config = TrainConfig(harness=PLAN_SOLVE, data=str(data), output=str(run_dir), seed=3)
    write_run_config(run_dir, config)
    _write_fingerprints(config)
    return run_dir


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (["--set", "seed=4"], "seed: 3 then, 4 now"),
        (["--set", "learning_rate=0.1"], "learning_rate"),
        (["--set", "lora=true"], "lora"),
        (["--data", MATH], "data:"),
        (["--set", 'engine_options={"dtype": "float16"}'], "engine_options"),
    ],
)
def test_train_resume_refuses_other_settings(tmp_path: Path, change: list[str], named: str, capsys) -> None:
    from ophsd.cli import main

    data = tmp_path / "d.jsonl"
    data.write_text(Path(MATH).read_text())
    run_dir = fake_run(tmp_path, data)
    code = main(["train", "--output", str(run_dir), "--resume", *change])
    err = capsys.readouterr().err
    assert code == 1 and named in err and "Traceback" not in err


def test_train_resume_refuses_changed_data_contents(tmp_path: Path, capsys) -> None:
    from ophsd.cli import main

    data = tmp_path / "d.jsonl"
    data.write_text(Path(MATH).read_text())
    run_dir = fake_run(tmp_path, data)
    data.write_text(Path(MATH).read_text().replace("?", "!", 1))
    code = main(["train", "--output", str(run_dir), "--resume", "--max-steps", "500"])
    err = capsys.readouterr().err
    assert code == 1 and "data: " in err and "has changed since the run started" in err


def test_train_resume_with_a_torn_config_names_the_file(tmp_path: Path, capsys) -> None:
    from ophsd.cli import main

    run_dir = fake_run(tmp_path, Path(MATH))
    text = (run_dir / "config.json").read_text()
    (run_dir / "config.json").write_text(text[: len(text) // 2])
    assert main(["train", "--output", str(run_dir), "--resume"]) == 1
    assert "config.json cannot be read" in capsys.readouterr().err
