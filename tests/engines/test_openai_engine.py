"""The openai engine against fake OpenAI-compatible servers (real HTTP on 127.0.0.1, in this process): request
mapping, spreading by load, retries, a dead replica, errors at start. tests/engines/test_openai_servers.py runs
it against real vLLM servers."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("httpx")

from conftest import REPO  # noqa: E402

from harnessc.cli import main  # noqa: E402
from harnessc.cli_support import EXIT_ERRORS, EXIT_USAGE  # noqa: E402
from harnessc.engines import UnsupportedConstraintError, create_engine  # noqa: E402
from harnessc.engines.base import ChatMessage, ChatRequest, OutputConstraint, SamplingOptions  # noqa: E402
from harnessc.engines.openai_engine import OpenAIEngine, ServerUnavailableError  # noqa: E402
from harnessc.engines.replicas import ReplicaPool  # noqa: E402

MODEL = "tiny"


class FakeServer(ThreadingHTTPServer):
    """Answers /v1/models and /v1/chat/completions like vLLM; records every chat body. Knobs: `owned_by`,
    `delay_s` (per answer), `fail` (the next N answers are 503), `hang_s` (the next answer waits this long),
    `drop` (close connections without answering, like a killed server)."""

    daemon_threads = True

    def __init__(self, owned_by: str = "vllm", delay_s: float = 0.0) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.owned_by, self.delay_s = owned_by, delay_s
        self.fail, self.hang_s, self.drop, self.garbage = 0, 0.0, False, False
        self.bodies: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that timed out and hung up: expected here

    def stop(self) -> None:
        self.shutdown()
        self.server_close()


class _Handler(BaseHTTPRequestHandler):
    server: FakeServer

    def log_message(self, *args: Any) -> None:  # quiet
        pass

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        if self.path == "/v1/models":
            self._json(200, {"data": [{"id": MODEL, "owned_by": self.server.owned_by, "max_model_len": 64}]})
        else:
            self._json(404, {"error": {"message": "no route"}})

    def do_POST(self) -> None:  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        server = self.server
        if server.drop:
            self.close_connection = True
            self.connection.close()
            return
        with server.lock:
            server.bodies.append(body)
            fail, hang = server.fail > 0, server.hang_s
            server.fail -= int(fail)
            server.hang_s = 0.0
        if self.path == "/tokenize":
            self._json(200, {"tokens": [len(message["content"]) for message in body["messages"]]})
            return
        time.sleep(server.delay_s + hang)
        if server.garbage:
            self._json(200, "not a completion")
        elif fail:
            self._json(503, {"error": {"message": "overloaded"}})
        elif "bad" in body["messages"][-1]["content"]:
            self._json(400, {"error": {"message": "this request is bad"}})
        else:
            self._json(200, _answer(body))

    def _json(self, status: int, payload: Any) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def _answer(body: dict[str, Any]) -> dict[str, Any]:
    """n choices; choice i says the last message's content and sample number; ids are the text's bytes."""
    content = body["messages"][-1]["content"]
    choices = []
    for index in range(body.get("n", 1)):
        text = f"{content}#{index}"
        choice: dict[str, Any] = {
            "index": index,
            "message": {"role": "assistant", "content": text},
            "finish_reason": "length" if body["max_tokens"] < 3 else "stop",
            "token_ids": list(text.encode()),
        }
        if body.get("logprobs"):
            choice["logprobs"] = {"content": [{"token": c, "logprob": -0.5} for c in text]}
        choices.append(choice)
    return {"choices": choices, "prompt_token_ids": [1, 2, 3], "usage": {"prompt_tokens": 3}}


@pytest.fixture
def servers() -> Iterator[list[FakeServer]]:
    started = [FakeServer(), FakeServer()]
    yield started
    for server in started:
        server.stop()


def ask(content: str = "hi", constraint: OutputConstraint | None = None, **sampling: Any) -> ChatRequest:
    sampling.setdefault("max_tokens", 8)
    return ChatRequest((ChatMessage("user", content),), SamplingOptions(**sampling), {}, constraint)


def engine_on(servers: list[FakeServer], **options: Any) -> OpenAIEngine:
    options.setdefault("backoff_s", 0.01)
    return OpenAIEngine([server.url for server in servers], **options)


def test_sampling_options_map_to_the_request_fields(servers: list[FakeServer]) -> None:
    engine = engine_on(servers[:1])
    request = ChatRequest(
        (ChatMessage("system", "be brief"), ChatMessage("user", "hi")),
        SamplingOptions(max_tokens=7, temperature=0.7, top_p=0.9, top_k=5, min_p=0.1, stop=("\n",), n=3, seed=11),
        {"enable_thinking": False},
        OutputConstraint("regex", pattern="[a-z]+"),
    )
    [completions] = engine.chat([request])
    [body] = servers[0].bodies
    assert body == {
        "model": MODEL,
        "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}],
        "n": 3,
        "temperature": 0.7,
        "top_p": 0.9,
        "max_tokens": 7,
        "seed": 11,
        "stop": ["\n"],
        "top_k": 5,
        "min_p": 0.1,
        "chat_template_kwargs": {"enable_thinking": False},
        "return_token_ids": True,
        "structured_outputs": {"regex": "[a-z]+"},
    }
    assert [c.text for c in completions] == ["hi#0", "hi#1", "hi#2"]
    assert completions[0].token_ids == tuple(b"hi#0") and completions[0].prompt_token_ids == (1, 2, 3)
    assert completions[0].finish_reason == "stop" and completions[0].prompt_token_count == 3


def test_a_budget_over_the_servers_context_is_capped_to_it(servers: list[FakeServer]) -> None:
    """vLLM answers 400 to max_tokens over max_model_len (64 here); capped, it stops at the context limit."""
    engine = engine_on(servers[:1])
    engine.chat([ask("long", max_tokens=8192), ask("short", max_tokens=10)])
    sent = {body["messages"][0]["content"]: body["max_tokens"] for body in servers[0].bodies}
    assert sent == {"long": 64, "short": 10}


def test_constraints_logprobs_and_greedy_copies(servers: list[FakeServer]) -> None:
    engine = engine_on(servers[:1])
    choice = OutputConstraint("choice", choices=("yes", "no"))
    schema = OutputConstraint("json", pattern='{"type": "object"}')
    results = engine.chat(
        [ask(constraint=choice, temperature=0.0, n=2, logprobs=True), ask(constraint=schema, max_tokens=2)]
    )
    first, second = sorted(servers[0].bodies, key=lambda body: "choice" not in body["structured_outputs"])
    assert first["structured_outputs"] == {"choice": ["yes", "no"]} and first["n"] == 1  # greedy: decoded once
    assert first["logprobs"] is True and first["top_logprobs"] == 0
    assert second["structured_outputs"] == {"json": {"type": "object"}} and "logprobs" not in second
    assert [c.text for c in results[0]] == ["hi#0", "hi#0"] and results[0][0].logprobs == (-0.5,) * 4
    assert results[1][0].finish_reason == "length" and results[1][0].logprobs is None


def test_a_server_that_is_not_vllm_gets_json_schemas_and_refuses_regex_before_sending() -> None:
    server = FakeServer(owned_by="sglang")
    try:
        engine = engine_on([server])
        assert not engine.is_vllm
        engine.chat([ask(constraint=OutputConstraint("json", pattern='{"type": "string"}'))])
        [body] = server.bodies
        assert body["response_format"]["json_schema"]["schema"] == {"type": "string"}
        assert "return_token_ids" not in body and "structured_outputs" not in body
        with pytest.raises(UnsupportedConstraintError, match="regex constraints need vLLM"):
            engine.chat([ask(), ask(constraint=OutputConstraint("regex", pattern="a+"))])
        assert len(server.bodies) == 1  # the refused wave sent nothing
    finally:
        server.stop()


def test_a_wave_is_spread_over_replicas_by_outstanding_requests(servers: list[FakeServer]) -> None:
    servers[0].delay_s, servers[1].delay_s = 0.02, 0.3  # the second replica answers 15x slower
    engine = engine_on(servers, max_in_flight=2)
    results = engine.chat([ask(f"q{i}") for i in range(24)])
    assert [r[0].text for r in results] == [f"q{i}#0" for i in range(24)]  # in request order
    fast, slow = (len(server.bodies) for server in servers)
    assert fast + slow == 24 and slow >= 2 and fast > 2 * slow, (fast, slow)
    assert engine.requests_sent() == {servers[0].url: fast, servers[1].url: slow}


def test_in_flight_requests_are_bounded_per_replica() -> None:
    pool = ReplicaPool(["http://a", "http://b"], max_in_flight=2)
    held = [pool.acquire() for _ in range(4)]
    assert sorted(replica.url for replica in held) == ["http://a", "http://a", "http://b", "http://b"]
    got: list[str] = []
    waiter = threading.Thread(target=lambda: got.append(pool.acquire().url))
    waiter.start()
    time.sleep(0.2)
    assert got == []  # both replicas are full: it waits
    pool.release(held[3])
    waiter.join(timeout=5)
    assert got == [held[3].url]


def test_5xx_answers_and_timeouts_are_retried(servers: list[FakeServer]) -> None:
    servers[0].fail = 2
    engine = engine_on(servers[:1], retries=3)
    [[completion]] = engine.chat([ask()])
    assert completion.text == "hi#0" and len(servers[0].bodies) == 3

    servers[0].hang_s = 1.5
    engine = engine_on(servers[:1], retries=1, timeout_s=0.5)
    [[completion]] = engine.chat([ask("later")])
    assert completion.text == "later#0"


def test_a_request_that_keeps_failing_becomes_error_completions_alone(servers: list[FakeServer]) -> None:
    servers[0].fail = 10
    engine = engine_on(servers[:1], retries=2)
    [failed] = engine.chat([ask(n=2, temperature=1.0)])
    assert [c.finish_reason for c in failed] == ["error", "error"]
    assert "failed 3 times" in (failed[0].error or "") and "503: overloaded" in (failed[0].error or "")
    servers[0].fail = 0
    bad, good = engine.chat([ask("bad"), ask("good")])  # a 4xx answer: that request, not retried
    assert bad[0].finish_reason == "error" and "this request is bad" in (bad[0].error or "")
    assert good[0].text == "good#0"
    servers[0].garbage = True
    [[garbage]] = engine.chat([ask()])
    assert garbage.finish_reason == "error" and "not an object" in (garbage.error or "")


def test_a_dead_replica_loses_no_example(servers: list[FakeServer]) -> None:
    engine = engine_on(servers, max_in_flight=4)
    servers[1].drop = True  # answers nothing: connections close mid-request, like a killed server
    results = engine.chat([ask(f"q{i}") for i in range(16)])
    assert [r[0].text for r in results] == [f"q{i}#0" for i in range(16)]
    assert len(servers[0].bodies) == 16
    servers[1].stop()  # now refused outright
    results = engine.chat([ask(f"r{i}") for i in range(8)])
    assert all(r[0].finish_reason == "stop" for r in results)
    assert engine.pool.live_count() == 1 and "ConnectError" in engine.pool.replicas[1].down_reason


def test_errors_at_start_name_the_server(servers: list[FakeServer]) -> None:
    url = servers[1].url
    servers[1].stop()
    with pytest.raises(ServerUnavailableError, match=f"server at {url} is not reachable"):
        engine_on(servers)
    with pytest.raises(ServerUnavailableError, match="does not serve 'other'"):
        engine_on(servers[:1], model="other")
    with pytest.raises(ValueError, match="needs base_urls"):
        create_engine("openai", None)
    with pytest.raises(ValueError, match="starts with http"):
        OpenAIEngine(["127.0.0.1:8000"])


def test_load_weights_points_to_the_server_weight_push(servers: list[FakeServer]) -> None:
    engine = create_engine("openai", None, base_urls=[servers[0].url + "/v1/"])
    assert engine.base_urls == (servers[0].url,) and engine.model == MODEL
    with pytest.raises(NotImplementedError, match="server_weights"):
        engine.load_weights({})


def test_without_a_tokenizer_the_server_tokenizes(servers: list[FakeServer]) -> None:
    engine = engine_on(servers[:1])
    assert engine.apply_chat_template([ChatMessage("user", "four")], {"enable_thinking": False}) == [4]
    [body] = servers[0].bodies
    assert body["add_generation_prompt"] is True and body["chat_template_kwargs"] == {"enable_thinking": False}


def harnessc_run(tmp_path: Path, *flags: str) -> int:
    data = str(REPO / "examples/data/math.jsonl")
    out = str(tmp_path / "out.jsonl")
    return main(["run", str(REPO / "harnesses/plan_solve.harness"), "--data", data, "--out", out, *flags])


def test_harnessc_run_over_two_replicas(servers: list[FakeServer], tmp_path: Path, capsys: Any) -> None:
    code = harnessc_run(
        tmp_path, "--limit", "4", "--engine", "openai", "--base-url", servers[0].url, "--base-url", servers[1].url
    )
    assert code == 0, capsys.readouterr()
    records = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert sorted(record["index"] for record in records) == [0, 1, 2, 3]
    assert len(servers[0].bodies) + len(servers[1].bodies) == 8 and servers[0].bodies and servers[1].bodies


def test_harnessc_run_flag_mistakes(servers: list[FakeServer], tmp_path: Path, capsys: Any) -> None:
    assert harnessc_run(tmp_path, "--engine", "openai") == EXIT_USAGE
    assert "--engine openai needs --base-url" in capsys.readouterr().err
    assert harnessc_run(tmp_path, "--engine", "transformers", "--base-url", servers[0].url) == EXIT_USAGE
    assert "--base-url is for --engine openai" in capsys.readouterr().err
    url = servers[1].url
    servers[1].stop()
    assert harnessc_run(tmp_path, "--engine", "openai", "--base-url", url) == EXIT_ERRORS
    assert f"the server at {url} is not reachable" in capsys.readouterr().err


def test_an_unknown_engine_option_names_the_known_ones(servers: list[FakeServer]) -> None:
    from harnessc.engines import create_engine

    with pytest.raises(ValueError, match=r"no option bogus; its options: .*max_in_flight"):
        create_engine("openai", base_urls=[servers[0].url], bogus=1)


def test_openai_is_never_the_default_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    import harnessc.engines as engines
    from harnessc.runtime.runner import RunOptions, chosen_engine

    monkeypatch.setattr(engines, "_installed", lambda name: name == "openai")
    assert engines.available_engines() == ("openai",)
    with pytest.raises(engines.EngineUnavailableError, match="no inference engine"):
        create_engine(None, "some/model")
    assert chosen_engine(RunOptions(harness="h", data="d", out="o")) is None
