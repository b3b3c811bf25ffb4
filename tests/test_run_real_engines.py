"""The executor on real engines: a tiny random model through transformers and vLLM (CPU), and the embedded
SmolLM2 default end to end through `harnessc run`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from conftest import REPO  # noqa: E402

from harnessc.cli import main  # noqa: E402
from harnessc.compiler import compile_source  # noqa: E402
from harnessc.runtime.executor import StageSynchronousExecutor  # noqa: E402
from harnessc.runtime.interpreter import PerExampleInterpreter  # noqa: E402
from harnessc.runtime.program import Program  # noqa: E402

# Greedy everywhere, with a guard, a fan-out and a bounded loop: every scheduling path on a real model.
GREEDY = """harness greedy
input question: text
llm plan { user "Plan for: {question}" temperature 0 max_tokens 6 }
llm solve when nonempty(plan) { user "{question} Plan: {plan}" temperature 0 max_tokens 6 }
  else { user "{question}" temperature 0 max_tokens 6 }
loop current from solve max 2 {
  llm check { user "Check: {current}" temperature 0 max_tokens 4 }
  until contains(check, "yes")
  llm fix { user "Fix: {current} ({check})" temperature 0 max_tokens 6 }
  next fix
}
output = current
"""
QUESTIONS = [
    (i, {"question": q})
    for i, q in enumerate(
        ["What is two plus two?", "Theft or fraud?", "Three times five?", "Is the verdict yes or no?"]
    )
]


def comparable(records):
    return [(r.output, [(c.stage, c.iteration, [s.text for s in c.samples]) for c in r.calls]) for r in records]


@pytest.fixture(scope="module")
def program() -> Program:
    return Program(compile_source(GREEDY).require())


@pytest.mark.slow
def test_executor_equals_interpreter_on_greedy_transformers(tiny_model_dir: Path, program: Program) -> None:
    from harnessc.engines.transformers_engine import TransformersEngine

    engine = TransformersEngine(tiny_model_dir, batch_size=8)
    batched = StageSynchronousExecutor(program, engine).run(QUESTIONS)
    single = PerExampleInterpreter(program, engine).run(QUESTIONS)
    assert comparable(batched) == comparable(single)
    assert all(record.failure is None for record in batched)


# A fan-out on a real model: the plan's words (at most 3) are each answered, all in one engine call.
FAN_OUT = """harness fan_out
input question: text
llm plan { user "Plan for: {question}" temperature 0 max_tokens 6 }
let steps = [question, plan, "done"]
llm answers for step in steps max 3 { user "Answer: {step}" temperature 0 max_tokens 5 }
llm compose { user "{question}{for a in answers} / {a}{end}" temperature 0 max_tokens 6 }
output = compose
"""


@pytest.mark.slow
def test_fan_out_on_greedy_transformers(tiny_model_dir: Path) -> None:
    from harnessc.engines.transformers_engine import TransformersEngine

    fan_out = Program(compile_source(FAN_OUT).require())
    engine = TransformersEngine(tiny_model_dir, batch_size=16)
    calls = []
    batched = StageSynchronousExecutor(fan_out, engine, observer=calls.append).run(QUESTIONS)
    single = PerExampleInterpreter(fan_out, engine).run(QUESTIONS)
    assert comparable_items(batched) == comparable_items(single)
    assert [(call.stages, call.requests) for call in calls] == [
        (("plan",), len(QUESTIONS)),
        (("answers",), 3 * len(QUESTIONS)),  # every item of every example: one engine call
        (("compose",), len(QUESTIONS)),
    ]
    assert all(record.failure is None for record in batched)


def comparable_items(records):
    return [(r.output, [(c.stage, c.iteration, c.item, [s.text for s in c.samples]) for c in r.calls]) for r in records]


@pytest.mark.slow
def test_executor_on_vllm_cpu(tiny_model_dir: Path, program: Program) -> None:
    pytest.importorskip("vllm")
    from harnessc.engines.vllm_engine import VllmEngine

    engine = VllmEngine(tiny_model_dir, dtype="float32")
    calls = []
    batched = StageSynchronousExecutor(program, engine, observer=calls.append).run(QUESTIONS)
    single = PerExampleInterpreter(program, engine).run(QUESTIONS)
    assert comparable(batched) == comparable(single)
    assert calls[0].stages == ("plan",) and calls[0].requests == len(QUESTIONS)


@pytest.mark.slow
def test_default_model_end_to_end(tmp_path: Path, capsys) -> None:
    """No --model and no --engine: SmolLM2-135M-Instruct on the default engine, printing the accuracy."""
    pytest.importorskip("gguf")
    out = tmp_path / "ps.jsonl"
    code = main(
        [
            "run",
            str(REPO / "harnesses/plan_solve.harness"),
            "--data",
            str(REPO / "examples/data/math.jsonl"),
            "--limit",
            "2",
            "--set",
            "plan_tokens=24",
            "--set",
            "solve_tokens=32",
            "--out",
            str(out),
        ]
    )
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert "accuracy" in printed
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [record["index"] for record in records] == [0, 1]
    assert all(call["samples"][0]["text"] for record in records for call in record["calls"])
