"""The compiler front end must work with only its light dependencies: it never imports torch or vllm."""

from __future__ import annotations

import subprocess
import sys

from conftest import REPO

_PROBE = """
import sys
from harnessc.cli import main
code = main(["check", *sys.argv[1:]])
heavy = sorted(name for name in ("torch", "vllm", "transformers", "numpy", "math_verify") if name in sys.modules)
print("HEAVY:" + ",".join(heavy))
sys.exit(code)
"""


def test_check_and_graph_import_no_heavy_framework() -> None:
    files = [str(path) for path in sorted((REPO / "harnesses").glob("*.harness"))]
    result = subprocess.run([sys.executable, "-c", _PROBE, *files], capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "HEAVY:\n" in result.stdout, result.stdout
