"""Every shipped harness checks clean, draws the same graph as its golden files, and round-trips as IR JSON."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import REPO, check_golden

from harnessc import ir
from harnessc.compiler import compile_file
from harnessc.graph import render

SHIPPED = sorted((REPO / "harnesses").glob("*.harness"))
GOLDEN = REPO / "tests" / "golden" / "graphs"


def test_the_five_required_harnesses_ship() -> None:
    names = {path.stem for path in SHIPPED}
    assert {"plan_solve", "draft_verify", "opsd", "self_consistency", "critique_revise"} <= names


@pytest.mark.parametrize("path", SHIPPED, ids=lambda path: path.stem)
def test_checks_clean_for_training(path: Path) -> None:
    compilation = compile_file(path, purpose="train")
    assert [(d.code, str(d.span)) for d in compilation.diagnostics] == []
    assert compilation.ok


@pytest.mark.parametrize("path", SHIPPED, ids=lambda path: path.stem)
def test_has_a_header_comment(path: Path) -> None:
    first = path.read_text(encoding="utf-8").splitlines()[0]
    assert first.startswith("# ") and len(first) > 20


@pytest.mark.parametrize("path", SHIPPED, ids=lambda path: path.stem)
@pytest.mark.parametrize("style", ["tree", "mermaid", "dot"])
def test_graph_matches_golden(path: Path, style: str, update_golden: bool) -> None:
    harness = compile_file(path).require()
    suffix = {"tree": "txt", "mermaid": "mmd", "dot": "dot"}[style]
    check_golden(GOLDEN / f"{path.stem}.{suffix}", render(harness, style), update_golden)


@pytest.mark.parametrize("path", SHIPPED, ids=lambda path: path.stem)
def test_ir_round_trips_through_json(path: Path) -> None:
    harness = compile_file(path).require()
    text = ir.dumps(harness)
    assert ir.loads(text) == harness
    assert ir.dumps(ir.loads(text)) == text


def test_ir_is_immutable() -> None:
    harness = compile_file(REPO / "harnesses" / "plan_solve.harness").require()
    with pytest.raises(AttributeError):
        harness.name = "other"  # type: ignore[misc]


def test_plan_solve_ir_shape() -> None:
    harness = compile_file(REPO / "harnesses" / "plan_solve.harness").require()
    assert [stage.name for stage in harness.stages] == ["plan", "plan_text", "solve"]
    solve = harness.stage("solve")
    assert isinstance(solve, ir.LlmStage) and solve.guard is not None and solve.fallback is not None
    assert str(solve.type) == "text"  # guarded with a fallback: always present
    assert isinstance(harness.teacher, ir.TeacherChain) and harness.teacher.stages == ("solve", "student")
    assert harness.input("answer").oracle and not harness.input("question").oracle
    assert solve.name_span.line == 29 and solve.name_span.column == 5
