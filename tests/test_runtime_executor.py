"""The stage-synchronous executor against a scripted engine: batching, guards, loops, failures, and
equality with the per-example interpreter on every shipped harness."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import REPO

from harnessc.compiler import compile_file, compile_source
from harnessc.engines.scripted import ScriptedEngine
from harnessc.runtime.executor import StageSynchronousExecutor, plan_waves
from harnessc.runtime.interpreter import PerExampleInterpreter
from harnessc.runtime.memory_bank import MemoryBank
from harnessc.runtime.program import Program

MATH = [json.loads(line) for line in (REPO / "examples/data/math.jsonl").read_text().splitlines()][:6]
CLASSIFY = [json.loads(line) for line in (REPO / "examples/data/classify.jsonl").read_text().splitlines()]


def respond(request, sample: int) -> str:
    """Deterministic answers that depend on the prompt, so any mix-up between examples shows."""
    system = request.messages[0].content
    last = request.messages[-1].content
    if "tutor" in system:
        return "" if len(last) % 5 == 0 else "<think>hmm</think>1. read\n2. compute"
    if "reviewer" in system:
        return "APPROVED" if len(last) % 3 == 0 else "step 2 is wrong"
    if "classify" in system:
        return f"Label: {['billing', 'shipping', 'returns'][len(last) % 3]}"
    return f"The answer is \\boxed{{{len(last) % 9 + sample % 2}}}"


def run_both(harness, rows, mode, banks=None):
    program = Program(harness, mode=mode, banks=banks or {})
    batched, single = ScriptedEngine(respond), ScriptedEngine(respond)
    examples = list(enumerate(rows))
    first = StageSynchronousExecutor(program, batched).run(examples)
    second = PerExampleInterpreter(program, single).run(examples)
    return first, second, batched, single


def comparable(records):
    return [
        record.model_dump(exclude={"seconds"})
        | {"calls": [call.model_dump(exclude={"seconds"}) for call in record.calls]}
        for record in records
    ]


def filled_bank() -> MemoryBank:
    bank = MemoryBank("cases", search_field="text", label_field="label")
    bank.add(CLASSIFY[40:80])
    return bank


@pytest.mark.parametrize("mode", ["inference", "train"])
@pytest.mark.parametrize(
    "name", ["plan_solve", "critique_revise", "self_consistency", "opsd", "draft_verify", "self_ask"]
)
def test_executor_equals_interpreter(name: str, mode: str) -> None:
    harness = compile_file(REPO / "harnesses" / f"{name}.harness").require()
    rows, banks = (CLASSIFY[:6], {"cases": filled_bank()}) if name == "draft_verify" else (MATH, None)
    batched, single, batched_engine, single_engine = run_both(harness, rows, mode, banks)
    assert comparable(batched) == comparable(single)
    requests = sum(len(call) for call in single_engine.calls)
    assert sum(len(call) for call in batched_engine.calls) == requests
    if requests:
        assert len(batched_engine.calls) < len(single_engine.calls)


def test_plan_solve_issues_one_engine_call_per_stage() -> None:
    harness = compile_file(REPO / "harnesses/plan_solve.harness").require()
    engine = ScriptedEngine(respond)
    records = StageSynchronousExecutor(Program(harness), engine).run(list(enumerate(MATH)))
    assert [len(batch) for batch in engine.calls] == [6, 6]
    assert all(record.failure is None for record in records)
    # An empty plan takes the guarded stage's fallback prompt (no "Solution plan" in it).
    fallback = [r for r in records if "Solution plan" not in r.calls[1].messages[-1].content]
    assert fallback and all(r.calls[0].samples[0].text == "" for r in fallback)


def test_waves_group_independent_stages() -> None:
    source = """harness w
input q: text
llm a { user "{q}" max_tokens 8 }
llm b { user "{q}!" max_tokens 8 }
let c = join([a, b], " ")
llm d { user "{c}" max_tokens 8 }
output = d
"""
    program = Program(compile_source(source).require())
    assert [[stage.name for stage in wave] for wave in plan_waves(program)] == [["a", "b"], ["c"], ["d"]]
    engine = ScriptedEngine(lambda request, sample: "x")
    StageSynchronousExecutor(program, engine).run([(0, {"q": "1"}), (1, {"q": "2"})])
    assert [len(batch) for batch in engine.calls] == [4, 2]


def test_loop_iterates_only_unconverged_examples() -> None:
    harness = compile_file(REPO / "harnesses/critique_revise.harness").require()
    engine = ScriptedEngine(respond)
    records = StageSynchronousExecutor(Program(harness), engine).run(list(enumerate(MATH)))
    critiques = [call for record in records for call in record.calls if call.stage == "critique"]
    revisions = [call for record in records for call in record.calls if call.stage == "revise"]
    assert len(critiques) > len(revisions)  # some critics approved, their examples stopped
    for record in records:
        iterations = [call.iteration for call in record.calls if call.stage == "critique"]
        assert iterations == list(range(len(iterations))) and len(iterations) <= 3
    sizes = [len(batch) for batch in engine.calls]  # draft, then critique/revise batches that only shrink
    assert sizes[:2] == [len(MATH), len(MATH)]
    assert sizes[1:] == sorted(sizes[1:], reverse=True) and min(sizes) < len(MATH)


def test_a_failing_example_does_not_stop_the_batch() -> None:
    source = """harness f
input q: text
llm a { user "{q}" max_tokens 8 }
let picked = majority([x for x in split(a, ";")])
output = picked
"""
    engine = ScriptedEngine(
        lambda request, sample: "" if "bad" in request.messages[0].content else "p;p;q", max_prompt_words=3
    )
    program = Program(compile_source(source).require())
    rows = [(0, {"q": "fine"}), (1, {"q": "bad"}), (2, {"q": "far too many words here"})]
    records = StageSynchronousExecutor(program, engine).run(rows)
    assert records[0].output == "p" and records[0].failure is None
    assert records[1].failure.reason == "builtin-error" and "majority" in records[1].failure.message
    assert records[2].failure.reason == "engine-error" and "exceeds" in records[2].failure.message
    assert records[2].output is None


def test_model_output_is_inserted_literally() -> None:
    """A completion containing placeholders or braces is never expanded again."""
    source = """harness inject
input q: text
llm a { user "{q}" max_tokens 8 }
llm b { user "Echo: {a} / {q}" max_tokens 8 }
output = b
"""
    engine = ScriptedEngine(lambda request, sample: "{q} {{x}} {if q}boom{end} }")
    program = Program(compile_source(source).require())
    record = StageSynchronousExecutor(program, engine).run([(0, {"q": "Q"})])[0]
    assert record.calls[1].messages[0].content == "Echo: {q} {{x}} {if q}boom{end} } / Q"


def test_oracle_inputs_are_hidden_at_inference_and_shown_in_training() -> None:
    harness = compile_file(REPO / "harnesses/plan_solve.harness").require()
    row = {**MATH[1]}
    seen = {}
    for mode in ("inference", "train"):
        engine = ScriptedEngine(respond)
        record = StageSynchronousExecutor(Program(harness, mode=mode), engine).run([(1, row)])[0]
        seen[mode] = record.calls[-1].messages[-1].content
    assert "Reference answer" not in seen["inference"]
    assert f"Reference answer (for verification only; reason independently): {row['answer']}" in seen["train"]


def test_requests_are_sorted_by_shared_prefix() -> None:
    source = """harness p
input q: text
input kind: text
llm a when kind == "x" { system "SYS-X" user "{q}" max_tokens 8 } else { system "SYS-Y" user "{q}" max_tokens 8 }
output = a
"""
    engine = ScriptedEngine(lambda request, sample: "ok")
    program = Program(compile_source(source).require())
    rows = [(i, {"q": str(i), "kind": "xy"[i % 2]}) for i in range(6)]
    StageSynchronousExecutor(program, engine).run(rows)
    systems = [request.messages[0].content for request in engine.calls[0]]
    assert systems == sorted(systems)


def test_seeds_do_not_depend_on_batch_composition() -> None:
    harness = compile_file(REPO / "harnesses/self_consistency.harness").require()
    program = Program(harness, seed=7)
    alone, together = ScriptedEngine(respond), ScriptedEngine(respond)
    StageSynchronousExecutor(program, alone).run([(3, MATH[3])])
    StageSynchronousExecutor(program, together).run(list(enumerate(MATH)))
    seed_alone = alone.calls[0][0].sampling.seed
    assert seed_alone in {request.sampling.seed for request in together.calls[0]}
    assert len({request.sampling.seed for request in together.calls[0]}) == len(MATH)


def test_draft_verify_cold_start_is_one_zero_shot_call() -> None:
    harness = compile_file(REPO / "harnesses/draft_verify.harness").require()
    engine = ScriptedEngine(respond)
    empty = MemoryBank("cases", search_field="text", label_field="label")
    records = StageSynchronousExecutor(Program(harness, banks={"cases": empty}), engine).run(
        list(enumerate(CLASSIFY[:4]))
    )
    assert len(engine.calls) == 1  # verify is skipped: its guard needs a warm bank
    assert all("Solved cases" not in r.calls[0].messages[-1].content for r in records)
    assert all(r.output in ("billing", "shipping", "returns") for r in records)


def test_bank_entries_come_from_the_declared_fields(tmp_path: Path) -> None:
    harness = compile_file(REPO / "harnesses/draft_verify.harness").require()
    program = Program(harness)
    entry = program.bank_entry(harness.banks[0], CLASSIFY[0])
    assert entry == {"text": CLASSIFY[0]["text"], "label": CLASSIFY[0]["label"]}


CUT_SHORT = """harness spam
input text: text
param samples: int = 1
llm {stage}
let verdict = {value}
output = verdict
"""


@pytest.mark.parametrize(
    ("stage", "value", "answers", "output", "problem"),
    [
        # a choice cut short by max_tokens is a fragment: never the value
        (
            'label { user "{text}" choice ["not sure", "spam", "ham"] max_tokens 1 }',
            "label",
            ["not sure"],
            None,
            "'not'",
        ),
        (
            'label { user "{text}" choice ["not sure", "spam", "ham"] max_tokens 4 }',
            "label",
            ["not sure"],
            "not sure",
            "",
        ),
        # a regex output cut short is kept only when the fragment itself matches
        ('label { user "{text}" regex "[a-z]+ [a-z]+" max_tokens 1 }', "label", ["is spam"], None, "regex"),
        ('label { user "{text}" regex "[a-z]+( [a-z]+)?" max_tokens 1 }', "label", ["is spam"], "is", ""),
        # JSON cut short
        ('label { user "{text}" json """{"type": "object"}""" max_tokens 1 }', "label", ['{"a": 1}'], None, "JSON"),
        # among n samples, the fragments are dropped and the rest is the value
        (
            'label { user "{text}" choice ["not sure", "spam"] n 3 max_tokens 1 }',
            "majority(label)",
            ["spam", "not sure", "spam"],
            "spam",
            "",
        ),
    ],
)
@pytest.mark.parametrize("scheduler", [StageSynchronousExecutor, PerExampleInterpreter])
def test_a_constrained_output_cut_short_is_a_failure_not_a_value(stage, value, answers, output, problem, scheduler):
    harness = compile_source(CUT_SHORT.format(stage=stage, value=value)).require()
    engine = ScriptedEngine(lambda request, sample: answers[sample % len(answers)])
    (record,) = scheduler(Program(harness), engine).run([(0, {"text": "win a prize"})])
    assert record.output == output
    if problem:
        assert record.failure is not None and record.failure.reason == "constraint-unmet"
        assert record.failure.stage == "label" and problem in record.failure.message
    else:
        assert record.failure is None
