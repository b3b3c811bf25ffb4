"""Fan-out stages (`llm NAME for x in xs max N { ... }`): syntax, types, diagnostics, the graph, and both
schedulers on the scripted engine: one engine call (wave) for every item of every example, equal traces."""

from __future__ import annotations

import json

import pytest
from conftest import REPO

from harnessc import ir
from harnessc.compiler import compile_file, compile_source
from harnessc.engines.scripted import ScriptedEngine
from harnessc.graph import render
from harnessc.runtime.executor import StageSynchronousExecutor
from harnessc.runtime.interpreter import PerExampleInterpreter
from harnessc.runtime.program import Program
from harnessc.types import TEXT, ListOf, make_optional

SELF_ASK = REPO / "harnesses" / "self_ask.harness"
MATH = [json.loads(line) for line in (REPO / "examples/data/math.jsonl").read_text().splitlines()][:8]


def respond(request, sample: int) -> str:
    """Decompositions of 0 to 5 sub-questions (by the prompt's length), answers that echo the item."""
    system = request.messages[0].content
    last = request.messages[-1].content
    if "simpler sub-questions" in system:
        return "\n".join(f"sub-question {i}?" for i in range(len(last) % 6))
    if "Answer the sub-question" in system:
        return "answer to " + last.rsplit("Sub-question: ", 1)[-1]
    return f"\\boxed{{{len(last) % 9}}}"


def comparable(records):
    return [
        record.model_dump(exclude={"seconds"})
        | {"calls": [call.model_dump(exclude={"seconds"}) for call in record.calls]}
        for record in records
    ]


def run_both(harness, rows, mode="inference"):
    program = Program(harness, mode=mode)
    batched, single = ScriptedEngine(respond), ScriptedEngine(respond)
    examples = list(enumerate(rows))
    first = StageSynchronousExecutor(program, batched).run(examples)
    second = PerExampleInterpreter(program, single).run(examples)
    return first, second, batched, single


def codes(source: str) -> list[str]:
    """The codes of the problems found, but the views training needs (these harnesses only run)."""
    found = [diagnostic.code for diagnostic in compile_source(source).diagnostics]
    return [code for code in found if code not in ("missing-student", "missing-teacher")]


# ---- the language --------------------------------------------------------------------------------------------


def test_self_ask_types_and_ir() -> None:
    harness = compile_file(SELF_ASK).require()
    answers = harness.stage("answers")
    assert isinstance(answers, ir.LlmStage) and answers.each is not None
    assert answers.type == ListOf(TEXT)
    assert answers.each.variable == "sub"
    assert isinstance(answers.each.max_items, ir.Literal) and answers.each.max_items.value == 4
    assert ir.loads(ir.dumps(harness)) == harness
    # Stages without a fan-out serialise as before (no `each` key).
    assert '"each"' not in ir.dumps(
        compile_source('harness a\ninput q: text\nllm s { user "{q}" }\noutput = s\n').require()
    )


def test_item_type_samples_and_optional_lists() -> None:
    source = """harness t
input q: text
input tags: list[text] optional
param k: int = 3
llm a for tag in [q, "x"] max k { user "{tag}" n 2 }
llm b for tag in tags max 2 { user "{tag}" }
output = join([join(item(a, 0)), join(coalesce(b, []))])
"""
    harness = compile_source(source).require()
    assert harness.stage("a").type == ListOf(ListOf(TEXT))  # n samples per item
    assert harness.stage("b").type == make_optional(ListOf(TEXT))  # an absent list: an absent value


def test_the_variable_is_local_to_the_prompt_and_the_guard_is_not_per_item() -> None:
    assert "unknown-name" in codes(
        'harness t\ninput q: list[text]\nllm a for x in q max 2 { user "{x}" }\noutput = x\n'
    )
    assert "unknown-name" in codes(
        'harness t\ninput q: list[text]\nllm a for x in q max 2 when nonempty(x) { user "{x}" }\noutput = join(a)\n'
    )


@pytest.mark.parametrize(
    "stage, code",
    [
        ('llm a for x in qs { user "{x}" }', "unbounded-fan-out"),
        ('llm a for x in ["1", "2", "3"] max 2 { user "{x}" }', "fan-out-bound"),
        ('llm a for x in qs max 0 { user "{x}" }', "fan-out-bound"),
        ('llm a for x in [] max 2 { user "{x}" }', "empty-fan-out"),
        ('llm a for x in q max 2 { user "{x}" }', "type-mismatch"),
        ('llm a for x in qs max "2" { user "{x}" }', "type-mismatch"),
        ('llm a for x in qs max 5000 { user "{x}" }', "limit-exceeded"),
    ],
)
def test_static_checks(stage: str, code: str) -> None:
    source = f"harness t\ninput q: text\ninput qs: list[text]\n{stage}\noutput = join(a)\n"
    assert codes(source) == [code]


def test_a_teacher_chain_cannot_name_a_fan_out() -> None:
    source = """harness t
input qs: list[text]
llm a for x in qs max 2 { user "{x}" }
student { user "hi" }
teacher = a else student
output = join(a)
"""
    assert "teacher-not-llm" in codes(source)


def test_graph_draws_the_fan_out() -> None:
    tree = render(compile_file(SELF_ASK).require(), "tree")
    assert "llm answers: list[text] (for each sub, max 4)  <- subs (for each), question" in tree
    assert "subs -->|for each| answers" in render(compile_file(SELF_ASK).require(), "mermaid")


# ---- running -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["inference", "train"])
def test_executor_equals_interpreter(mode: str) -> None:
    harness = compile_file(SELF_ASK).require()
    batched, single, batched_engine, single_engine = run_both(harness, MATH, mode)
    assert comparable(batched) == comparable(single)
    assert sum(map(len, batched_engine.calls)) == sum(map(len, single_engine.calls))


def test_every_item_of_every_example_is_one_engine_call() -> None:
    harness = compile_file(SELF_ASK).require()
    records, _, engine, single = run_both(harness, MATH)
    counts = [len(respond_to_decompose(row)) for row in MATH]
    fanned = sum(count for count in counts if count <= 4)
    # decompose, then ONE call with every sub-question of every example, then compose.
    assert [len(batch) for batch in engine.calls] == [len(MATH), fanned, len(MATH)]
    assert len(single.calls) == len(MATH) * 2 + fanned  # the interpreter: one call per item
    for record, count in zip(records, counts):
        items = [call for call in record.calls if call.stage == "answers"]
        if count > 4:  # more sub-questions than `max 4`: a failure of this example, no calls
            assert not items and record.failure.stage == "answers"
            assert record.failure.reason == "fan-out-too-long"
        else:
            assert [call.item for call in items] == list(range(count))
            assert [call.samples[0].text for call in items] == [f"answer to sub-question {i}?" for i in range(count)]
            assert record.failure is None


def respond_to_decompose(row: dict) -> list[str]:
    harness = compile_file(SELF_ASK).require()
    engine = ScriptedEngine(respond)
    program = Program(harness)
    state = program.new_example(0, row)
    request = program.prepare_llm(harness.stage("decompose"), state)
    text = engine.chat([request])[0][0].text
    return [line for line in text.split("\n") if line]


def test_empty_list_is_an_empty_value_without_a_call() -> None:
    source = """harness t
input qs: list[text]
llm a for x in qs max 3 { user "Q: {x}" }
llm b { user "{for y in a}[{y}]{end}" }
output = b
"""
    harness = compile_source(source).require()
    rows = [{"qs": []}, {"qs": ["1", "2"]}]
    batched, single, engine, _ = run_both(harness, rows)
    assert comparable(batched) == comparable(single)
    assert [len(batch) for batch in engine.calls] == [2, 2]
    assert batched[0].failure is None and [call.stage for call in batched[0].calls] == ["b"]
    assert batched[0].calls[0].messages[0].content == ""
    assert batched[1].calls[-1].messages[0].content.count("[") == 2


def test_items_are_seeded_separately_and_prefix_sorted_together() -> None:
    source = 'harness t\ninput qs: list[text]\nllm a for x in qs max 3 { user "Q: {x}" }\noutput = join(a)\n'
    harness = compile_source(source).require()
    engine = ScriptedEngine(lambda request, sample: "ok")
    StageSynchronousExecutor(Program(harness), engine).run([(0, {"qs": ["a", "b", "c"]}), (1, {"qs": ["d"]})])
    (batch,) = engine.calls
    assert len({request.sampling.seed for request in batch}) == 4


def test_an_engine_error_on_one_item_fails_the_example_only() -> None:
    source = 'harness t\ninput qs: list[text]\nllm a for x in qs max 3 { user "{x}" }\noutput = join(a)\n'
    harness = compile_source(source).require()
    rows = [{"qs": ["short", "far too many words in this one"]}, {"qs": ["fine"]}]
    program = Program(harness)
    for runner in (StageSynchronousExecutor, PerExampleInterpreter):
        engine = ScriptedEngine(lambda request, sample: "ok", max_prompt_words=3)
        records = runner(program, engine).run(list(enumerate(rows)))
        assert records[0].failure.reason == "engine-error" and records[0].output is None
        assert records[1].failure is None and records[1].output == "ok"


def test_fan_out_inside_a_loop() -> None:
    source = """harness t
input qs: list[text]
llm draft { user "draft" }
loop current from draft max 2 {
  llm views for x in qs max 3 { user "{current} / {x}" }
  next join(views, "+")
}
output = current
"""
    harness = compile_source(source).require()
    rows = [{"qs": ["a", "b"]}, {"qs": ["c"]}]
    batched, single, engine, _ = run_both(harness, rows)
    assert comparable(batched) == comparable(single)
    assert [len(batch) for batch in engine.calls] == [2, 3, 3]
    iterations = [(call.iteration, call.item) for call in batched[0].calls if call.stage == "views"]
    assert iterations == [(0, 0), (0, 1), (1, 0), (1, 1)]
