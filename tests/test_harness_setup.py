"""The one harness setup (`harnessc run`, `ophsd train`, `ophsd eval`): its banks have one owner, and a
program's records keep the token ids a trainer needs in memory, never in the file."""

from __future__ import annotations

import json

import pytest
from conftest import REPO

from harnessc.engines.scripted import ScriptedEngine
from harnessc.runtime.executor import StageSynchronousExecutor
from harnessc.runtime.harness_setup import UndeclaredBankError, set_up_harness

DRAFT_VERIFY = str(REPO / "harnesses/draft_verify.harness")
CLASSIFY = str(REPO / "examples/data/classify.jsonl")
OPSD = str(REPO / "harnesses/opsd.harness")
MATH = str(REPO / "examples/data/math.jsonl")


def test_every_program_of_a_setup_reads_the_banks_it_owns(tmp_path) -> None:
    bank_file = tmp_path / "bank.jsonl"
    bank_file.write_text("".join((REPO / "examples/data/classify.jsonl").read_text().splitlines(True)[60:70]))
    setup = set_up_harness(DRAFT_VERIFY, purpose="train", bank_files={"cases": str(bank_file)}, data=CLASSIFY, limit=4)
    assert len(setup.examples) == 4 and len(setup.banks["cases"]) == 10
    first, second = setup.program(mode="train"), setup.program(mode="inference")
    assert first.banks is second.banks is setup.banks
    setup.grow_banks([inputs for _, inputs in setup.examples])
    assert len(first.new_example(0, setup.examples[0][1]).values["cases"]) == 14
    saved = setup.bank_state()
    setup.restore_banks({"cases": saved["cases"][:3]})
    assert len(second.new_example(0, setup.examples[0][1]).values["cases"]) == 3  # replaced for every program
    setup.restore_banks({})
    assert len(setup.banks["cases"]) == 0


def test_a_bank_the_harness_does_not_declare_is_refused_before_the_data_is_read(tmp_path) -> None:
    with pytest.raises(UndeclaredBankError, match="--bank names cases, which the harness does not declare") as error:
        set_up_harness(OPSD, purpose="run", bank_files={"cases": MATH}, data=str(tmp_path / "missing.jsonl"))
    assert error.value.names == ["cases"] and error.value.declared == []


def test_token_ids_live_in_memory_only() -> None:
    setup = set_up_harness(OPSD, purpose="train", data=MATH, limit=2)
    engine = ScriptedEngine(lambda request, sample: "The answer is \\boxed{4}")
    records = {}
    for keep in (False, True):
        program = setup.program(mode="train", student_only=True, token_ids=keep)
        records[keep] = StageSynchronousExecutor(program, engine).run(setup.examples)
    sample = records[True][0].calls[0].samples[0]
    assert sample.token_ids == tuple(range(sample.tokens)) and records[False][0].calls[0].samples[0].token_ids is None
    lines = {keep: [record.model_dump_json() for record in found] for keep, found in records.items()}
    assert [_timeless(json.loads(line)) for line in lines[True]] == [
        _timeless(json.loads(line)) for line in lines[False]
    ]
    assert not any("token_ids" in line or "prompt_cut" in line for line in lines[True])


def _timeless(record: dict) -> dict:
    return {**record, "seconds": 0, "calls": [{**call, "seconds": 0} for call in record["calls"]]}


def test_a_program_fits_each_prompt_before_it_is_sent() -> None:
    setup = set_up_harness(OPSD, purpose="train", data=MATH, limit=2)
    engine = ScriptedEngine(lambda request, sample: "ok")

    def fit(request):
        shortened = request.messages[:-1] + (type(request.messages[-1])("user", "short"),)
        return type(request)(shortened, request.sampling, request.template_kwargs, request.constraint), True

    program = setup.program(mode="train", student_only=True, fit_prompt=fit)
    records = StageSynchronousExecutor(program, engine).run(setup.examples)
    assert [call.messages[-1].content for record in records for call in record.calls] == ["short", "short"]
    assert all(call.prompt_cut for record in records for call in record.calls)
    assert [request.messages[-1].content for request in engine.calls[0]] == ["short", "short"]
