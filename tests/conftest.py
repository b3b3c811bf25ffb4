"""Shared pytest options and fixtures."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

# Hypothesis (tests/test_frontend_properties.py): reproducible by default. The "ci" profile derives each
# test's examples from the test itself (derandomize), so every run, on every machine, tries the same inputs
# and a failure reproduces by rerunning; no deadline (a shared CI machine is slow at random moments) and no
# example database (nothing is written to .hypothesis/). HYPOTHESIS_PROFILE=explore opts into random
# exploration, with the database so a failure found that way replays on the next run:
#     HYPOTHESIS_PROFILE=explore python -m pytest tests/test_frontend_properties.py
# A test's own @settings (max_examples, ...) still apply on top of the profile.
try:
    from hypothesis import settings as _hypothesis_settings
except ImportError:  # a dev dependency: only the property tests need it
    pass
else:
    _hypothesis_settings.register_profile("ci", derandomize=True, deadline=None, database=None)
    _hypothesis_settings.register_profile("explore", deadline=None)
    _hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-golden",
        action="store_true",
        default=False,
        help="rewrite golden expected files from the current output instead of comparing",
    )


@pytest.fixture
def update_golden(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--update-golden"))


def check_golden(path: Path, actual: str, update: bool) -> None:
    """Compare `actual` with the golden file at `path` (or rewrite it with --update-golden)."""
    if update or not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(actual, encoding="utf-8")
        if not update:
            pytest.fail(f"golden file {path} did not exist; it was written now: review it and rerun")
        return
    expected = path.read_text(encoding="utf-8")
    assert actual == expected, f"output differs from {path}; rerun with --update-golden if the change is intended"


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random Llama (safetensors, byte-level BPE tokenizer, ChatML template), built once a session."""
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from tiny_model import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny-model"))
