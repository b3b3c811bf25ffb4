"""Compiled-IR goldens: `harnessc compile` of every shipped harness, compared with tests/golden/ir/NAME.json.

The safety net for rewrites of the front end (parser, template parsing, lowering): whatever changes inside,
the typed stage graph each shipped harness compiles to (names, types, resolved references, filled defaults,
parsed templates, the span of every node) must stay the same. Regenerate with
`python -m pytest tests/test_golden_ir.py --update-golden`, then read the diff: a changed span moves a
diagnostic, a changed node changes what runs.

The golden is a canonical rendering of the compile output, not its bytes: a node's kind first, then its
fields sorted by name (the order of a node's fields is not semantics), and an object or list without nested
containers (a span, say) on one line, so that a moved span is a one-line diff beside its node. List order is
kept: stages are topologically ordered, and messages, parts and arguments are ordered by meaning. Spans name
files as given on the command line (as diagnostics do; a bank's `file` is the path the run reads it at), so
each harness is compiled from the repository root as `harnesses/NAME.harness` or `examples/NAME.harness`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import REPO, check_golden

from harnessc.cli import main as harnessc_main

GOLDEN = REPO / "tests" / "golden" / "ir"
SHIPPED = sorted((REPO / "harnesses").glob("*.harness")) + sorted((REPO / "examples").glob("*.harness"))


def canonical(value: Any, indent: str = "") -> str:
    """Deterministic JSON: "node" then the other keys sorted, two-space indent, objects and lists without
    nested containers (spans, say) on one line."""
    if isinstance(value, dict) and any(isinstance(item, (dict, list)) for item in value.values()):
        inner = indent + "  "
        keys = sorted(value, key=lambda key: (key != "node", key))  # a node's kind first, then its fields
        items = [f"{inner}{json.dumps(key)}: {canonical(value[key], inner)}" for key in keys]
        return "{\n" + ",\n".join(items) + "\n" + indent + "}"
    if isinstance(value, list) and any(isinstance(item, (dict, list)) for item in value):
        inner = indent + "  "
        return "[\n" + ",\n".join(inner + canonical(item, inner) for item in value) + "\n" + indent + "]"
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def relative(path: Path) -> str:
    return path.relative_to(REPO).as_posix()


@pytest.fixture
def in_repo(monkeypatch: pytest.MonkeyPatch) -> None:
    """Spans name files as given: `harnesses/NAME.harness`, whatever pytest's cwd is."""
    monkeypatch.chdir(REPO)


@pytest.mark.parametrize("path", SHIPPED, ids=lambda path: path.stem)
def test_compile_output_matches_golden(
    path: Path, update_golden: bool, in_repo: None, capsys: pytest.CaptureFixture[str]
) -> None:
    status = harnessc_main(["compile", relative(path)])
    captured = capsys.readouterr()
    assert (status, captured.err) == (0, "")
    check_golden(GOLDEN / f"{path.stem}.json", canonical(json.loads(captured.out)) + "\n", update_golden)


_COMPILE_ALL = """
import json, sys
from harnessc import ir
from harnessc.compiler import compile_file
print(json.dumps({path: ir.dumps(compile_file(path).require()) for path in sys.argv[1:]}))
"""


def test_compile_output_does_not_depend_on_the_hash_seed() -> None:
    """Sets and dicts keyed by strings iterate in a per-process order: none of it may reach the IR."""
    paths = [relative(path) for path in SHIPPED]  # the harnesses, relative to the repository
    outputs = []
    for seed in ("0", "1234"):
        path = os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])
        env = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": path}
        done = subprocess.run(
            [sys.executable, "-c", _COMPILE_ALL, *paths], cwd=REPO, env=env, capture_output=True, text=True, timeout=300
        )
        assert done.returncode == 0, done.stderr
        outputs.append(json.loads(done.stdout))
    assert outputs[0] == outputs[1]  # byte for byte, field order included
    for path in SHIPPED:  # and the goldens are that output
        golden = (GOLDEN / f"{path.stem}.json").read_text(encoding="utf-8")
        assert canonical(json.loads(outputs[0][relative(path)])) + "\n" == golden, path.stem


def test_every_shipped_harness_has_a_golden() -> None:
    names = {path.stem for path in SHIPPED}
    assert len(names) == len(SHIPPED), "two shipped harnesses share a name: their goldens would collide"
    assert {path.stem for path in GOLDEN.glob("*.json")} == names, "a golden without its harness, or the reverse"
