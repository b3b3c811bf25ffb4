"""The code stays lint-clean, formatted and type-checked (ruff and mypy, configured in pyproject.toml)."""

import shutil
import subprocess
import sys

import pytest
from conftest import REPO

PATHS = ["harnessc", "ophsd", "tests", "benchmarks", "examples"]


@pytest.mark.skipif(shutil.which("ruff") is None, reason="ruff is in the dev extra")
@pytest.mark.parametrize("command", [["check"], ["format", "--check"]], ids=["check", "format"])
def test_ruff(command: list[str]) -> None:
    result = subprocess.run(["ruff", *command, *PATHS], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy() -> None:
    pytest.importorskip("mypy", reason="mypy is in the dev extra")
    # the packages named in [tool.mypy] files (its incremental cache keeps a second run fast)
    result = subprocess.run([sys.executable, "-m", "mypy"], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_no_module_is_over_600_lines() -> None:
    # a module that grows past this has more than one job: split it along its seams
    long = {
        str(path.relative_to(REPO)): lines
        for package in ("harnessc", "ophsd")
        for path in (REPO / package).rglob("*.py")
        if (lines := len(path.read_text(encoding="utf-8").splitlines())) > 600
    }
    assert not long, long
