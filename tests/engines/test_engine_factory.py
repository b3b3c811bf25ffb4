"""`create_engine` and `available_engines`: lazy imports, name resolution, clear errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import harnessc.engines as engines
from harnessc.engines import ENGINE_NAMES, EngineUnavailableError, available_engines, create_engine

_PROBE = """
import sys
import harnessc.engines
harnessc.engines.available_engines()
print(",".join(sorted(name for name in ("torch", "vllm", "transformers") if name in sys.modules)))
"""


def test_importing_the_package_imports_no_framework() -> None:
    result = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""


def test_available_engines_are_known_names_fastest_first() -> None:
    installed = available_engines()
    assert set(installed) <= set(ENGINE_NAMES)
    assert list(installed) == [name for name in ENGINE_NAMES if name in installed]


def test_unknown_engine_name_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown engine 'llamacpp'"):
        create_engine("llamacpp", "some/model")


def test_missing_engine_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engines, "_installed", lambda name: False)
    with pytest.raises(EngineUnavailableError, match="pip install"):
        create_engine("vllm", "some/model")
    with pytest.raises(EngineUnavailableError, match="no inference engine"):
        create_engine(None, "some/model")


def test_no_name_without_vllm_means_transformers(tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engines, "_installed", lambda name: name == "transformers")
    engine = create_engine(None, str(tiny_model_dir), batch_size=2)
    assert engine.name == "transformers" and engine.batch_size == 2


def test_no_model_means_the_default_model(tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from harnessc.engines import default_model

    monkeypatch.setattr(default_model, "default_model_dir", lambda: tiny_model_dir)
    engine = create_engine("transformers")
    assert engine.name == "transformers"
    assert engine.model.config.hidden_size == 64  # the stand-in, not a download
