"""ServerWeights and ServedPolicyEngine against fake vLLM servers (httpx.MockTransport): no server, no model."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
import torch

from ophsd.config import ConfigError, TrainConfig
from ophsd.server_weights import (
    ServedPolicyEngine,
    ServerWeights,
    StaleWeightsError,
    WeightPushError,
    served_versions,
)


class FakeReplicas:
    """vLLM's dev routes on several hosts: each keeps its weight version; `broken` hosts answer reloads 500,
    `ignores_version` hosts accept the version call but keep their old version."""

    def __init__(self, hosts: list[str]) -> None:
        self.versions = {host: "default" for host in hosts}
        self.calls: list[tuple[str, str, object]] = []
        self.broken: set[str] = set()
        self.ignores_version: set[str] = set()
        self.down: set[str] = set()
        self.loaded: dict[str, Path] = {}

    def __call__(self, request: httpx.Request) -> httpx.Response:
        host, route = request.url.host, request.url.path
        body = json.loads(request.content) if request.content else None
        self.calls.append((host, route, body))
        if host in self.down:
            raise httpx.ConnectError("[Errno 111] Connection refused", request=request)
        if route == "/weight_info":
            return httpx.Response(200, json={"weight_version": self.versions[host]})
        if route == "/collective_rpc":
            if host in self.broken:
                return httpx.Response(500, json={"error": "reload_weights failed: size mismatch"})
            assert body["method"] == "reload_weights"
            self.loaded[host] = Path(body["kwargs"]["weights_path"])
            return httpx.Response(200, json={"results": [None]})
        if route == "/reset_prefix_cache":
            return httpx.Response(200)
        if route == "/update_weight_version":
            if host not in self.ignores_version:
                self.versions[host] = body["new_version"]
            return httpx.Response(200, json={"success": True})
        return httpx.Response(404, json={"detail": "Not Found"})


def _weights(tmp_path: Path, replicas: FakeReplicas) -> ServerWeights:
    client = httpx.Client(transport=httpx.MockTransport(replicas))
    urls = [f"http://{host}:8000/v1" for host in replicas.versions]
    return ServerWeights(urls, tmp_path / "weights", client=client)


def test_a_push_writes_once_reloads_every_replica_and_reads_the_version_back(tmp_path: Path) -> None:
    from safetensors.torch import load_file

    replicas = FakeReplicas(["a", "b"])
    weights = _weights(tmp_path, replicas)
    embedding = torch.arange(6.0).reshape(3, 2)
    weights.push({"model.embed_tokens.weight": embedding, "lm_head.weight": embedding}, version=4)

    assert weights.version == 4 and weights.versions() == [4, 4] and weights.require() == [4, 4]
    assert replicas.loaded == {"a": tmp_path / "weights", "b": tmp_path / "weights"}
    saved = load_file(tmp_path / "weights" / "model.safetensors")
    # The tied head is written under its own name (it shares the embedding's storage in the model).
    assert torch.equal(saved["lm_head.weight"], embedding) and torch.equal(
        saved["model.embed_tokens.weight"], embedding
    )
    routes = [route for host, route, _ in replicas.calls if host == "a"]
    # The push reads the version back once; versions() and require() once each.
    assert routes == ["/collective_rpc", "/reset_prefix_cache", "/update_weight_version"] + ["/weight_info"] * 3


def test_a_failing_replica_is_named_and_keeps_the_trainer_from_rolling_out(tmp_path: Path) -> None:
    replicas = FakeReplicas(["a", "b"])
    weights = _weights(tmp_path, replicas)
    weights.push({"w": torch.zeros(2)}, version=0)
    replicas.broken.add("b")
    with pytest.raises(WeightPushError, match=r"failed on 1 of 2 replica\(s\):\n  http://b:8000: POST /collective_rpc"):
        weights.push({"w": torch.ones(2)}, version=1)
    # a took version 1; b still serves version 0, behind the trainer's weights.
    with pytest.raises(StaleWeightsError, match="weights are version 1, but http://b:8000 serves 0$"):
        weights.require()


def test_a_replica_that_does_not_take_the_version_is_refused(tmp_path: Path) -> None:
    replicas = FakeReplicas(["a", "b"])
    replicas.ignores_version.add("a")
    with pytest.raises(WeightPushError, match="http://a:8000: reads back version None after the push"):
        _weights(tmp_path, replicas).push({"w": torch.zeros(2)}, version=0)


def test_a_restarted_replica_is_refused_before_the_next_wave(tmp_path: Path) -> None:
    replicas = FakeReplicas(["a", "b"])
    weights = _weights(tmp_path, replicas)
    inner = type("Inner", (), {"chat": lambda self, requests: [["done"] for _ in requests], "base_urls": ("x",)})()
    engine = ServedPolicyEngine(inner, weights, first_version=3)
    with pytest.raises(StaleWeightsError, match="none were pushed"):
        engine.chat(["r"])
    engine.load_weights({"w": torch.zeros(2)})
    assert engine.chat(["r"]) == [["done"]] and engine.take_versions() == [3, 3] and engine.take_versions() is None
    assert engine.base_urls == ("x",)  # the wrapped engine's attributes show through
    replicas.versions["b"] = "default"  # a restart loads the model directory's weights again
    with pytest.raises(StaleWeightsError, match="http://b:8000 serves None"):
        engine.chat(["r"])
    engine.load_weights({"w": torch.ones(2)})
    assert engine.chat(["r"]) == [["done"]] and served_versions(engine) == {"weight_versions": [4, 4]}
    assert served_versions(inner) == {}  # other engines add nothing to the metrics


def test_a_replica_that_does_not_answer_is_refused_and_named(tmp_path: Path) -> None:
    replicas = FakeReplicas(["a", "b"])
    weights = _weights(tmp_path, replicas)
    weights.push({"w": torch.zeros(2)}, version=0)
    replicas.down.add("a")
    with pytest.raises(StaleWeightsError, match=r"http://a:8000 did not say which weights it serves \(ConnectError"):
        weights.require()
    with pytest.raises(WeightPushError, match="http://a:8000: ConnectError: .*Connection refused"):
        weights.push({"w": torch.ones(2)}, version=1)


def test_base_urls_go_with_engine_openai_only() -> None:
    base = {"harness": "h.harness", "data": "d.jsonl", "output": "run"}
    assert TrainConfig(**base, engine="openai", base_urls=["http://h:1/v1"]).base_urls == ["http://h:1/v1"]
    with pytest.raises(ValueError, match="engine = 'openai' needs base_urls"):
        TrainConfig(**base, engine="openai")
    with pytest.raises(ValueError, match="base_urls are for engine = 'openai', not engine = 'vllm'"):
        TrainConfig(**base, engine="vllm", base_urls=["http://h:1/v1"])


def test_a_multi_process_launch_with_engine_openai_is_refused() -> None:
    from ophsd.server_weights import create_served_engine

    trainer = type("T", (), {"dist": type("D", (), {"world": 2})(), "out": Path("unused"), "step": 0})()
    config = TrainConfig(
        harness="h.harness", data="d.jsonl", output="run", engine="openai", base_urls=["http://h:1/v1"]
    )
    with pytest.raises(ConfigError, match="one trainer process"):
        create_served_engine(trainer, config, "model")
