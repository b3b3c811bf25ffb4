"""The policy's weights on vLLM servers: rollouts on `engine = "openai"` replicas come from the current step.

After every optimizer step the trainer pushes the weights to every replica and tags them with a weight version
(the number of updates they contain); before every wave of requests it reads each replica's version back and
refuses to roll out when one is behind. So a rollout never comes from stale weights, and the step's metrics
record the version each replica served (`weight_versions`).

The push goes through vLLM's own development routes (the server runs with VLLM_SERVER_DEV_MODE=1):

    write FOLDER/model.safetensors once                 (atomic rename: a replica never reads half a file)
    POST /collective_rpc  {"method": "reload_weights", "kwargs": {"weights_path": FOLDER}}   every replica, at once
    POST /reset_prefix_cache                            (cached KV of the old weights must not be reused)
    POST /update_weight_version {"new_version": "K"}    the version vLLM attaches to every output after this
    GET  /weight_info                                   read back: must be "K"

FOLDER must be readable by every server (the same machine, or a shared file system). vLLM's NCCL weight transfer
(/init_weight_transfer_engine, /update_weights) avoids the disk on GPU clusters; it is not used here because it
needs GPUs on both sides (see docs/training.md, "Rollouts on vLLM servers").
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

WEIGHTS_FILE = "model.safetensors"


class ServerWeightsError(RuntimeError):
    """The servers cannot serve the trainer's current weights (the CLI reports it as a user-side problem)."""


class WeightPushError(ServerWeightsError):
    """A replica did not take the new weights (unreachable, an error answer, or not in dev mode)."""


class StaleWeightsError(ServerWeightsError):
    """A replica serves other weights than the trainer's current ones; rolling out would train on stale samples."""


class ServerWeights:
    """Pushes full-model weights to vLLM server replicas and checks which version each one serves.

    `base_urls` are the servers' roots or their OpenAI roots (a trailing `/v1` is dropped); `folder` is where the
    weights are written (created if missing; every server must be able to read it). `timeout_s` bounds each HTTP
    call (a reload of a large model takes a while). `client` is an `httpx.Client` (tests pass a mock transport).
    """

    def __init__(
        self, base_urls: Sequence[str], folder: str | Path, *, timeout_s: float = 600.0, client: Any = None
    ) -> None:
        import httpx

        if not base_urls:
            raise ValueError("ServerWeights needs at least one server URL")
        self.base_urls = [_server_root(url) for url in base_urls]
        self.folder = Path(folder).resolve()
        self.client = client or httpx.Client(timeout=timeout_s)
        self.version: int | None = None  # the trainer's weights: the last version pushed

    def push(self, state_dict: Mapping[str, Any], version: int) -> None:
        """Write `state_dict` (tensors under the base model's names) once, reload it on every replica
        concurrently, and tag it `version` there.

        Raises WeightPushError naming every replica that failed; `self.version` is `version` even then (the
        trainer's weights moved on), so a later `require` refuses those replicas rather than roll out on them."""
        self.version = version
        self._write(state_dict)
        with ThreadPoolExecutor(max_workers=len(self.base_urls)) as pool:
            outcomes = list(pool.map(lambda url: self._reload(url, version), self.base_urls))
        failures = [f"{url}: {problem}" for url, problem in zip(self.base_urls, outcomes) if problem]
        if failures:
            raise WeightPushError(
                f"the weight push (version {version}) failed on {len(failures)} of {len(self.base_urls)} "
                "replica(s):\n  " + "\n  ".join(failures) + "\n(is each server started with VLLM_SERVER_DEV_MODE=1 "
                f"and able to read {self.folder}?)"
            )

    def versions(self) -> list[int | None]:
        """The weight version each replica serves now, in `base_urls` order (None: not one this trainer set).

        Raises StaleWeightsError naming a replica that does not answer: what it would serve once back (a
        restart loads the initial weights) is unknown, so it must not be rolled out on."""
        import httpx

        def read(url: str) -> int | None:
            try:
                return self._served_version(url)
            except httpx.HTTPError as error:
                raise StaleWeightsError(
                    f"refusing to roll out: {url} did not say which weights it serves "
                    f"({type(error).__name__}: {error}); restart it and resume the run with --resume"
                ) from error

        with ThreadPoolExecutor(max_workers=len(self.base_urls)) as pool:
            return list(pool.map(read, self.base_urls))

    def require(self) -> list[int | None]:
        """The replicas' versions, read back; raises StaleWeightsError naming any replica that does not serve
        the last pushed version (behind, restarted, or pushed to by someone else)."""
        served = self.versions()
        behind = [f"{url} serves {v}" for url, v in zip(self.base_urls, served) if v != self.version]
        if self.version is None or behind:
            raise StaleWeightsError(
                f"refusing to roll out: the trainer's weights are version {self.version}, but "
                + ("; ".join(behind) or "none were pushed")
            )
        return served

    # ---- one replica ----------------------------------------------------------------------------------------

    def _reload(self, url: str, version: int) -> str | None:
        """None when `url` serves `version` afterwards, else what went wrong there."""
        import httpx

        calls = (
            ("/collective_rpc", {"method": "reload_weights", "kwargs": {"weights_path": str(self.folder)}}),
            ("/reset_prefix_cache", None),
            ("/update_weight_version", {"new_version": str(version)}),
        )
        try:
            for route, body in calls:
                answer = self.client.post(url + route, json=body)
                if answer.status_code != 200:
                    return f"POST {route} answered {answer.status_code}: {answer.text[:300]}"
            served = self._served_version(url)
        except httpx.HTTPError as error:
            return f"{type(error).__name__}: {error}"
        return None if served == version else f"reads back version {served} after the push"

    def _served_version(self, url: str) -> int | None:
        answer = self.client.get(url + "/weight_info")
        answer.raise_for_status()
        value = answer.json().get("weight_version")
        # vLLM starts at "default"; anything not an integer is not a version this trainer set.
        return int(value) if isinstance(value, str) and value.isdigit() else None

    def _write(self, state_dict: Mapping[str, Any]) -> None:
        from safetensors.torch import save_file

        self.folder.mkdir(parents=True, exist_ok=True)
        tensors, seen = {}, set()
        for name, tensor in state_dict.items():
            tensor = tensor.detach().to("cpu").contiguous()  # a no-op for the CPU tensors of a CPU policy
            # A tied output head shares the embedding's storage; safetensors refuses shared tensors, and
            # the head must still be written under its own name (vLLM loads it when the config does not tie).
            if tensor.data_ptr() in seen:
                tensor = tensor.clone()
            seen.add(tensor.data_ptr())
            tensors[name] = tensor
        partial = self.folder / (WEIGHTS_FILE + ".partial")
        save_file(tensors, str(partial), metadata={"format": "pt"})
        os.replace(partial, self.folder / WEIGHTS_FILE)


def _server_root(url: str) -> str:
    url = url.rstrip("/")
    return url.removesuffix("/v1")


class ServedPolicyEngine:
    """The rollout engine of `engine = "openai"`: an OpenAI-compatible engine over replicas that serve the policy.

    `chat` first reads every replica's weight version back and refuses (StaleWeightsError) unless all serve the
    last pushed one; `load_weights` pushes the trainer's weights as the next version, starting at
    `first_version` (the number of updates the weights already contain: 0, or the resumed step).
    """

    name = "openai"

    def __init__(self, engine: Any, weights: ServerWeights, first_version: int) -> None:
        self.engine = engine
        self.weights = weights
        self.next_version = first_version
        self.served: list[int | None] | None = None  # per replica, read back before the last wave

    def chat(self, requests: Sequence[Any]) -> list[list[Any]]:
        self.served = self.weights.require()
        return self.engine.chat(requests)

    def apply_chat_template(
        self, messages: Sequence[Any], template_kwargs: Mapping[str, Any] | None = None
    ) -> list[int]:
        return self.engine.apply_chat_template(messages, template_kwargs)

    def load_weights(self, state_dict: Mapping[str, Any]) -> None:
        self.weights.push(state_dict, self.next_version)
        self.next_version += 1

    def take_versions(self) -> list[int | None] | None:
        """The version each replica served the waves since the last call with (None: no wave ran)."""
        served, self.served = self.served, None
        return served

    def __getattr__(self, name: str) -> Any:  # the wrapped engine's extras (max_model_len, base_urls, ...)
        if name == "engine":  # not set yet (a copy being built): no endless lookup
            raise AttributeError(name)
        return getattr(self.engine, name)


def served_versions(engine: Any) -> dict[str, list[int | None] | None]:
    """For a step's metrics: `{"weight_versions": [...]}` (per replica, read back before the step's waves) when
    `engine` is a ServedPolicyEngine; nothing for other engines."""
    return {"weight_versions": engine.take_versions()} if isinstance(engine, ServedPolicyEngine) else {}


def create_served_engine(trainer: Any, config: Any, model_path: str) -> ServedPolicyEngine:
    """The trainer's `engine = "openai"` engine; its weights are written under OUTPUT/server_weights.

    Raises ConfigError under a multi-process launch: each process would push its own copy of the weights."""
    from harnessc.engines import create_engine

    from .config import ConfigError

    if trainer.dist.world > 1:
        raise ConfigError(
            [
                f"engine = 'openai' runs in one trainer process (this launch has {trainer.dist.world}): "
                "run `ophsd train` without accelerate launch or torchrun"
            ]
        )
    engine = create_engine("openai", model_path, base_urls=config.base_urls, **config.engine_options)
    return ServedPolicyEngine(engine, ServerWeights(config.base_urls, trainer.out / "server_weights"), trainer.step)
