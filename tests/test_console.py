"""The console of long jobs (harnessc/console.py): our lines on the terminal, everything else in the log file."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import REPO

from harnessc.console import JobConsole, advance, duration, note, phase, start, step_phase

# Third-party output of every kind a long job meets: Python prints on both streams, a C library's write to
# file descriptor 2, a child process (vLLM's engine core), a Python warning and a library's logger.
_JOB = textwrap.dedent("""
    import logging, os, subprocess, sys, warnings
    from harnessc.console import JobConsole, advance, note, phase, start, step_phase

    verbose = sys.argv[2] == "verbose"
    with JobConsole("job", log_file=sys.argv[1], verbose=verbose):
        phase("loading the model")
        print("chatter: python stdout")
        print("chatter: python stderr", file=sys.stderr)
        os.write(2, b"chatter: C level\\n")
        subprocess.run([sys.executable, "-c", "import sys; print('chatter: child', file=sys.stderr)"])
        warnings.warn("chatter: a library warning")
        logging.getLogger("vllm").warning("chatter: a library logger")
        start(2)
        step_phase("rollout")
        advance(1, {"loss": "0.5000"})
        note("ophsd: warning: a prompt was cut")
        advance(2, {"loss": "0.2500"})
    print("the summary")
""")


def _run_job(tmp_path: Path, mode: str) -> tuple[subprocess.CompletedProcess, Path]:
    log = tmp_path / "logs" / "job.log"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run(
        [sys.executable, "-c", _JOB, str(log), mode], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done, log


def test_third_party_output_of_every_kind_goes_to_the_log_file(tmp_path: Path) -> None:
    done, log = _run_job(tmp_path, "quiet")
    assert done.stdout == "the summary\n"
    lines = done.stderr.splitlines()
    assert lines[0] == "job: loading the model"
    assert lines[1].startswith("job: step 1/2  loss 0.5000")
    assert lines[2] == "ophsd: warning: a prompt was cut"
    assert lines[3].startswith("job: step 2/2  loss 0.2500") and len(lines) == 4
    logged = log.read_text()
    for chatter in ("python stdout", "python stderr", "C level", "child", "a library warning", "a library logger"):
        assert f"chatter: {chatter}" in logged
    assert "ophsd: warning: a prompt was cut" in logged and logged.startswith("==== ")


def test_verbose_leaves_third_party_output_where_it_goes(tmp_path: Path) -> None:
    done, log = _run_job(tmp_path, "verbose")
    assert "chatter: C level" in done.stderr and "chatter: python stdout" in done.stdout
    assert "job: step 2/2" in done.stderr and not log.exists()


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_on_a_terminal_one_live_display_shows_phase_step_and_numbers() -> None:
    screen = _Terminal()
    with JobConsole("ophsd train", log_file=None, stream=screen) as console:
        assert console.live
        phase("loading the model")
        start(3)
        step_phase("wave 1/2: plan (8 requests)")
        assert "step 1/3 · wave 1/2: plan (8 requests)" in console.bar.tasks[0].description
        advance(1, {"loss": "0.1234", "held-out": "12.5%"})
        note("ophsd: warning: an example was dropped")
        step_phase("rollout")
        assert console.bar.tasks[0].description == "step 2/3 · rollout"
        advance(3, {"loss": "0.0100"})
    shown = screen.getvalue()
    assert "ophsd: warning: an example was dropped" in shown
    assert "step 3/3" in shown and "loss 0.0100" in shown and "eta 0:00" in shown


def test_without_a_console_the_reports_are_silent_and_notes_go_to_stderr(capsys) -> None:
    phase("nothing shows")
    step_phase("nothing shows")
    start(4)
    advance(2, {"loss": "1"})
    note("said anyway")
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == "said anyway\n"


@pytest.mark.parametrize(("seconds", "text"), [(42, "42 s"), (185, "3 min 05 s"), (3720, "1 h 02 min")])
def test_durations_read_as_people_say_them(seconds: float, text: str) -> None:
    assert duration(seconds) == text


def test_ophsd_train_prints_a_line_per_step_and_a_summary(tmp_path: Path, tiny_model_dir: Path) -> None:
    """Off a terminal: a line per phase and per step, our warnings once, the summary on standard output;
    transformers' and torch's messages only in RUN/logs/train.log."""
    pytest.importorskip("torch")
    run_dir = tmp_path / "run"
    command = [sys.executable, "-m", "ophsd", "train", "--harness", str(REPO / "harnesses/plan_solve.harness")]
    command += ["--data", str(REPO / "examples/data/math.jsonl"), "--model", str(tiny_model_dir)]
    command += ["--output", str(run_dir), "--max-steps", "2", "--engine", "transformers"]
    settings = ["batch_size=2", "max_new_tokens=4", "harness_max_tokens=4", "probe_size=1", "tensorboard=false"]
    for setting in [*settings, 'params={"plan_tokens": 4, "solve_tokens": 4}']:
        command += ["--set", setting]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    err = done.stderr.splitlines()
    assert "ophsd train: loading the model" in " ".join(err)
    steps = [line for line in err if line.startswith("ophsd train: step ")]
    assert [line.split()[3] for line in steps] == ["0/2", "1/2", "2/2"]
    assert "loss" in steps[1] and "s/step" in steps[1] and "probe" in steps[0]
    assert all(line.startswith("ophsd") for line in err), err  # nobody else's messages
    assert done.stdout.startswith("trained 2 steps in ") and f"ophsd eval {run_dir}" in done.stdout
    assert "checkpoints" in done.stdout and "probe divergence" in done.stdout
    assert (run_dir / "logs" / "train.log").exists()
    assert [json.loads(line)["step"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()] == [0, 1, 2]
