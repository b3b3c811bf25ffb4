"""`harnessc run` end to end with a scripted engine: output, summary, resume after SIGKILL, data errors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import REPO
from kill_points import wait_until_paused

from harnessc.cli import main
from harnessc.engines.scripted import ScriptedEngine
from harnessc.runtime.runner import RunError, RunOptions, read_records, run

MATH = str(REPO / "examples/data/math.jsonl")
PLAN_SOLVE = str(REPO / "harnesses/plan_solve.harness")


def answer_correctly(request, sample: int) -> str:
    """Solves the generated arithmetic problems? No: echoes a fixed answer so accuracy is predictable."""
    return "plan" if "tutor" in request.messages[0].content else "\\boxed{34}"


def options(tmp_path: Path, **overrides) -> RunOptions:
    values = dict(harness=PLAN_SOLVE, data=MATH, out=str(tmp_path / "out.jsonl"), limit=6, chunk_size=2)
    values.update(overrides)
    return RunOptions(**values)


def test_run_writes_one_record_per_example_and_summarises(tmp_path: Path) -> None:
    summary = run(options(tmp_path), lambda: ScriptedEngine(answer_correctly))
    records = list(read_records(tmp_path / "out.jsonl"))
    assert [record.index for record in records] == list(range(6))
    golds = [json.loads(line)["answer"] for line in Path(MATH).read_text().splitlines()[:6]]
    assert summary.accuracy == pytest.approx(sum(gold == "34" for gold in golds) / 6)
    assert summary.stages["plan"].calls == 6 and summary.stages["solve"].calls == 6
    assert records[0].inputs["question"] and records[0].calls[1].messages[0].role == "system"


def test_existing_output_is_never_overwritten_unless_asked(tmp_path: Path) -> None:
    run(options(tmp_path), lambda: ScriptedEngine(answer_correctly))
    before = (tmp_path / "out.jsonl").read_text()
    with pytest.raises(RunError, match="--resume .* --overwrite"):
        run(options(tmp_path), lambda: ScriptedEngine(answer_correctly))
    assert (tmp_path / "out.jsonl").read_text() == before
    run(options(tmp_path, overwrite=True, limit=2), lambda: ScriptedEngine(answer_correctly))
    assert len((tmp_path / "out.jsonl").read_text().splitlines()) == 2


def test_student_only_with_n_samples_reports_pass_at_k(tmp_path: Path) -> None:
    def sometimes(request, sample: int) -> str:
        return "\\boxed{34}" if request.sampling.seed % 2 else "\\boxed{0}"

    summary = run(options(tmp_path, student_only=True, samples=4), lambda: ScriptedEngine(sometimes))
    records = list(read_records(tmp_path / "out.jsonl"))
    assert len(records) == 24 and {record.replica for record in records} == {0, 1, 2, 3}
    assert all(call.stage == "student" for record in records for call in record.calls)
    assert summary.pass_at_k >= summary.accuracy


_KILLABLE = textwrap.dedent("""
    import sys, threading
    from pathlib import Path
    from harnessc.engines.scripted import ScriptedEngine
    from harnessc.runtime.runner import RunOptions, run

    harness, data, out, pause_at, paused = *sys.argv[1:4], int(sys.argv[4]), Path(sys.argv[5])
    calls = 0

    def answer(request, sample):
        global calls
        calls += 1
        if calls == pause_at:  # the kill point: say so, then wait for the SIGKILL
            paused.touch()
            threading.Event().wait()
        return "plan" if "tutor" in request.messages[0].content else "\\\\boxed{34}"

    run(RunOptions(harness=harness, data=data, out=out, limit=12, chunk_size=1, resume=True),
        lambda: ScriptedEngine(answer))
""")


def test_resume_after_sigkill_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    """SIGKILL at a known point, not after a sleep: the engine blocks on the plan call of row 5 (plan_solve
    makes two calls per row; chunks of one row), when exactly rows 0-4 are written and fsync'ed."""
    out, paused, log = tmp_path / "killed.jsonl", tmp_path / "paused", tmp_path / "run.log"
    command = [sys.executable, "-c", _KILLABLE, PLAN_SOLVE, MATH, str(out), str(2 * 5 + 1), str(paused)]
    with log.open("w") as output:
        process = subprocess.Popen(command, cwd=REPO, stdout=output, stderr=subprocess.STDOUT)
    wait_until_paused(process, paused, log)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert [record.index for record in read_records(out)] == [0, 1, 2, 3, 4]
    with out.open("a") as handle:  # as if the kill had cut a line in half
        handle.write('{"index": 99, "repl')
    run(options(tmp_path, out=str(out), limit=12, resume=True), lambda: ScriptedEngine(answer_correctly))
    indices = [record.index for record in read_records(out)]
    assert sorted(indices) == list(range(12)) and len(indices) == 12
    straight = tmp_path / "straight.jsonl"
    run(options(tmp_path, out=str(straight), limit=12), lambda: ScriptedEngine(answer_correctly))
    by_index = {record.index: record.output for record in read_records(straight)}
    assert {record.index: record.output for record in read_records(out)} == by_index


def test_data_errors_name_the_row_and_field(tmp_path: Path, capsys) -> None:
    data = tmp_path / "broken.jsonl"
    data.write_text('{"question": true, "answer": "2"}\n{"answer": "3"}\n')  # no good row: no engine starts
    code = main(
        ["run", PLAN_SOLVE, "--data", str(data), "--out", str(tmp_path / "o.jsonl"), "--engine", "transformers"]
    )
    err = capsys.readouterr().err
    assert code == 1
    assert "row 1" in err and "'question'" in err and "Traceback" not in err
    assert "row 0" in err and "must be text, got bool true" in err


def test_a_harness_with_errors_is_reported_as_diagnostics(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "bad.harness"
    bad.write_text('harness bad\ninput q: text\nllm a { user "{qq}" max_tokens 4 }\noutput = a\n')
    code = main(["run", str(bad), "--data", MATH, "--out", str(tmp_path / "o.jsonl")])
    err = capsys.readouterr().err
    assert code == 1 and "error[unknown-name]" in err and "did you mean `q`?" in err


def test_a_stage_that_fails_for_every_example_fails_the_run(tmp_path: Path, capsys, monkeypatch) -> None:
    # every output cut short of its choice: the records and the summary are written, then exit 1
    import harnessc.runtime.runner as runner

    harness = tmp_path / "spam.harness"
    harness.write_text(
        'harness spam\ninput question: text\nllm label {\n  user "{question}"\n'
        '  choice ["not sure", "spam"]\n  max_tokens 1\n}\noutput = label\n'
    )
    monkeypatch.setattr(runner, "create_run_engine", lambda options: ScriptedEngine(lambda r, s: "not sure"))
    out = tmp_path / "o.jsonl"
    code = main(["run", str(harness), "--data", MATH, "--out", str(out), "--limit", "3"])
    err = capsys.readouterr().err
    assert code == 1 and "stage `label` failed for every example (constraint-unmet: the output 'not'" in err
    assert len(out.read_text().splitlines()) == 3  # the records are written all the same
    summary = run(options(tmp_path, out=str(tmp_path / "ok.jsonl")), lambda: ScriptedEngine(answer_correctly))
    assert summary.failed_everywhere == {}
