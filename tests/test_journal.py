"""A killed `harnessc run` resumes mid-chunk: the engine answers of the chunk under way are journaled as they
arrive (harnessc/runtime/journal.py), and a resumed run sends the engine only what the kill interrupted."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from conftest import REPO
from kill_points import wait_until_paused
from test_run_command import _KILLABLE, MATH, PLAN_SOLVE, answer_correctly, options

from harnessc.engines.base import ChatMessage, ChatRequest, Completion, SamplingOptions
from harnessc.engines.scripted import ScriptedEngine
from harnessc.runtime.journal import Journal, journal_path, request_key
from harnessc.runtime.runner import read_records, run


def _request(text: str, seed: int = 1) -> ChatRequest:
    return ChatRequest(messages=(ChatMessage("user", text),), sampling=SamplingOptions(max_tokens=8, seed=seed))


def _comparable(path: Path) -> list[dict]:
    """The records without their wall times."""
    return [
        record.model_dump(exclude={"seconds": True, "calls": {"__all__": {"seconds"}}}) for record in read_records(path)
    ]


def test_a_run_killed_mid_chunk_resumes_from_its_journal(tmp_path: Path) -> None:
    """One chunk of 12 rows; the engine blocks on the 3rd `solve` request (wave 2), when all 12 `plan`
    answers (wave 1) are journaled and no record is written. The resumed run asks the engine for the 12
    `solve` requests only, and writes the records of an uninterrupted run."""
    out, paused, log = tmp_path / "killed.jsonl", tmp_path / "paused", tmp_path / "run.log"
    killable = _KILLABLE.replace("chunk_size=1", "chunk_size=12")
    command = [sys.executable, "-c", killable, PLAN_SOLVE, MATH, str(out), str(12 + 3), str(paused)]
    with log.open("w") as output:
        process = subprocess.Popen(command, cwd=REPO, stdout=output, stderr=subprocess.STDOUT)
    wait_until_paused(process, paused, log)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert out.read_text() == ""  # nothing written: the chunk was not finished
    assert len(Journal(journal_path(out)).answers) == 12

    engine = ScriptedEngine(answer_correctly)
    run(options(tmp_path, out=str(out), limit=12, chunk_size=12, resume=True), lambda: engine)
    sent = [request for call in engine.calls for request in call]
    assert len(sent) == 12 and all("tutor" not in request.messages[0].content for request in sent)
    assert not journal_path(out).exists()  # the run ended: its journal is gone

    straight = tmp_path / "straight.jsonl"
    run(options(tmp_path, out=str(straight), limit=12, chunk_size=12), lambda: ScriptedEngine(answer_correctly))
    assert _comparable(out) == _comparable(straight)


def test_a_resumed_run_with_every_answer_journaled_starts_no_engine(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    first = ScriptedEngine(answer_correctly)
    run(options(tmp_path, out=str(out), limit=4, chunk_size=4), lambda: first)
    expected = _comparable(out)
    # As if the process had died after the last answer, before its records were written:
    out.write_text("")
    asked = [request for call in first.calls for request in call]
    Journal(journal_path(out)).append(asked, ScriptedEngine(answer_correctly).chat(asked))

    def no_engine():
        raise AssertionError("every answer is journaled: no engine may start")

    run(options(tmp_path, out=str(out), limit=4, chunk_size=4, resume=True), no_engine)
    assert _comparable(out) == expected


def test_failed_answers_are_not_journaled_and_a_cut_line_is_skipped(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    good, bad = _request("a"), _request("b")
    ok = [Completion(text="x", token_ids=(1, 2), finish_reason="stop", logprobs=(-0.5, -0.25))]
    failed = [Completion(text="", token_ids=(), finish_reason="error", error="replica died")]
    Journal(path).append([good, bad], [ok, failed])
    with path.open("a") as handle:
        handle.write('{"key": "cut off by a ki')
    answers = Journal(path).answers
    assert answers == {request_key(good): ok}  # tuples restored, the failed one left to run again


def test_request_keys_tell_apart_what_decides_an_answer() -> None:
    base = _request("a")
    assert request_key(base) == request_key(_request("a"))
    assert request_key(base) != request_key(_request("a", seed=2))
    assert request_key(base) != request_key(_request("b"))
    thinking = ChatRequest(base.messages, base.sampling, template_kwargs={"enable_thinking": False})
    assert request_key(base) != request_key(thinking)


def test_a_fresh_run_ignores_a_stale_journal(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    run(options(tmp_path, out=str(out), limit=2), lambda: ScriptedEngine(answer_correctly))
    stale = Journal(journal_path(out))
    stale.append([_request("anything")], [[Completion(text="stale", token_ids=(), finish_reason="stop")]])
    engine = ScriptedEngine(answer_correctly)
    run(options(tmp_path, out=str(out), limit=2, overwrite=True), lambda: engine)
    assert sum(len(call) for call in engine.calls) == 4 and not journal_path(out).exists()
