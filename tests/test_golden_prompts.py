"""Prompt goldens: what every shipped harness sends to the model, for two data rows, under a scripted engine.

The safety net for rewrites of the template engine, the lowering, the runtime and the trainer: the prompts
are the behaviour. For each shipped harness (harnesses/ and examples/) and the first two rows of its data
set, two readable files under tests/golden/prompts/:

- `NAME.run.txt`: `harnessc run` (inference; the runner's `run()` with a scripted engine, one row per
  chunk). Per row: every LLM call in order (stage, loop iteration, sampling options, chat-template
  switches, output constraint, messages, the scripted reply), then the output, grade and failures.
- `NAME.train.txt`: `ophsd train` (a Trainer on the tiny test model with the scripted engine, one row per
  step, two steps). Per step: every engine request in order (the student rollout first, then the harness
  in training mode, oracle inputs visible), then what the trainer gives the teacher-context builder (the
  student prompt and the teacher context, as messages) and the sequences the loss conditions on, decoded
  with the tiny model's tokenizer (ChatML).

The scripted replies (`scripted_reply`) are fixed per kind of prompt and chosen to walk each harness's
interesting path: a plan with a `<think>` block to strip, a flawed draft that the critic rejects once and
approves after one revision, self-consistency samples that disagree, a draft label that verification
revises, warm memory banks. Regenerate with `python -m pytest tests/test_golden_prompts.py --update-golden`
and read the diff: every changed line is a prompt a model sees differently.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from conftest import REPO, check_golden

from harnessc.engines.base import ChatRequest, Completion
from harnessc.engines.scripted import ScriptedEngine
from harnessc.runtime.runner import RunOptions, read_records, run
from harnessc.runtime.trace import ExampleRecord

GOLDEN = REPO / "tests" / "golden" / "prompts"
DATA = REPO / "examples" / "data"
ROWS = 2  # the first rows of each data set


@dataclass(frozen=True)
class Case:
    """A shipped harness, the data set its rows come from, and the memory banks filled before it runs."""

    harness: str  # relative to the repository
    data: str
    banks: dict[str, str] = field(default_factory=dict)  # bank name -> data file, relative to the repository

    @property
    def name(self) -> str:
        return Path(self.harness).stem


# The second half of classify.jsonl (rows 60 on) fills draft_verify's bank, as examples/run_examples.sh does;
# the first rows, used here, are not in it.
CLASSIFY_BANK = "examples/data/classify.jsonl[60:]"

CASES = [
    Case("harnesses/critique_revise.harness", "examples/data/math.jsonl"),
    Case("harnesses/draft_verify.harness", "examples/data/classify.jsonl", {"cases": CLASSIFY_BANK}),
    Case("harnesses/opsd.harness", "examples/data/math.jsonl"),
    Case("harnesses/plan_solve.harness", "examples/data/math.jsonl"),
    Case("harnesses/self_ask.harness", "examples/data/math.jsonl"),
    Case("harnesses/self_consistency.harness", "examples/data/math.jsonl"),
    Case(
        "harnesses/similar_cases.harness",
        "examples/data/tickets_train.jsonl",
        {"cases": "examples/data/tickets_bank.jsonl"},
    ),
    Case("examples/opsd_classify.harness", "examples/data/classify.jsonl"),
    Case("examples/opsd_tickets.harness", "examples/data/tickets_train.jsonl"),
]


def test_every_shipped_harness_has_a_case() -> None:
    shipped = sorted((REPO / "harnesses").glob("*.harness")) + sorted((REPO / "examples").glob("*.harness"))
    assert sorted(case.harness for case in CASES) == sorted(path.relative_to(REPO).as_posix() for path in shipped)


# ---- the scripted model ----------------------------------------------------------------------------------------


def scripted_reply(request: ChatRequest, sample: int) -> str:
    """A fixed reply per kind of prompt, recognised by its wording (see the module docstring)."""
    system = next((message.content for message in request.messages if message.role == "system"), "")
    last = request.messages[-1].content
    if "strategic math tutor" in system:  # plan_solve's plan: the hidden part must be stripped
        return "<think>scratch work the solver must not see</think>1. Price the items.\n2. Add them up."
    if "meticulous reviewer" in system:  # critique_revise: reject the draft, approve the revision
        return "Correct now. APPROVED" if "Revised:" in last else "Step 2 is wrong: 24 + 10 = 34, not 33."
    if "A reviewer's critique" in last:
        return "Revised: 24 + 10 = 34. \\boxed{34}"
    if request.sampling.n > 1:  # self_consistency's samples disagree: 34 wins the vote 2 to 1
        return ["Total 34. \\boxed{34}", "Total 34. \\boxed{34}", "Total 35. \\boxed{35}"][sample % 3]
    if system.startswith("You are an expert mathematician. Put") and last.startswith("Problem:") and "\n" not in last:
        return "24 + 10 = 33. \\boxed{33}"  # critique_revise's draft (a flawed one)
    if "simpler sub-questions" in system:  # self_ask's decomposition: two sub-questions to fan out over
        return "What is the first quantity?\nWhat is the second quantity?"
    if "Answer the sub-question" in system:  # self_ask's fan-out: one answer per sub-question
        return "It is " + last.rsplit("the ", 1)[-1].rstrip("?") + ": 24."
    if "\\boxed{}" in system + last:  # every other math prompt
        return "Step by step: 3 x 8 = 24, 24 + 10 = 34. \\boxed{34}"
    if "You previously judged" in last:  # draft_verify's verification revises the draft label
        return "The message asks about a product.\nLabel: product question"
    if "classify customer-support messages" in system:
        return "It mentions a payment.\nLabel: billing"
    if "sort customer-support tickets" in system:
        return "returns"
    return "(no scripted reply for this prompt)"


def bank_paths(case: Case, tmp_path: Path) -> dict[str, str]:
    paths = {}
    for name, path in case.banks.items():
        if path == CLASSIFY_BANK:
            tail = tmp_path / "classify_tail.jsonl"
            tail.write_text("".join((DATA / "classify.jsonl").read_text(encoding="utf-8").splitlines(True)[60:]))
            path = str(tail)
        paths[name] = path
    return paths


# ---- rendering ----------------------------------------------------------------------------------------------------


def render_messages(messages: Sequence[Any]) -> list[str]:
    """Each message's role, then its text verbatim, every line prefixed with `| ` (blank lines show)."""
    lines = []
    for message in messages:
        lines.append(f"[{message.role}]")
        lines += _verbatim(message.content)
    return lines


def _verbatim(text: str) -> list[str]:
    return [f"| {line}" if line else "|" for line in text.split("\n")]


def render_request(request: ChatRequest) -> list[str]:
    sampling = dataclasses.asdict(request.sampling)
    lines = ["sampling: " + ", ".join(f"{name}={json.dumps(sampling[name])}" for name in sorted(sampling))]
    lines.append(f"template switches: {json.dumps(dict(request.template_kwargs), sort_keys=True)}")
    if request.constraint is not None:
        lines.append(f"constraint: {json.dumps(dataclasses.asdict(request.constraint), sort_keys=True)}")
    return lines + render_messages(request.messages)


def render_replies(completions: Sequence[Completion]) -> list[str]:
    lines = []
    for number, completion in enumerate(completions, 1):
        label = "reply" if len(completions) == 1 else f"reply {number}"
        lines.append(f"{label} ({completion.finish_reason}): {json.dumps(completion.text, ensure_ascii=False)}")
    return lines


class RecordingEngine(ScriptedEngine):
    """The scripted engine, keeping each request with its completions in the order the engine got them."""

    def __init__(self, tokenizer: Any = None) -> None:
        super().__init__(scripted_reply)
        self.tokenizer = tokenizer
        self.log: list[tuple[ChatRequest, list[Completion]]] = []

    def chat(self, requests: Sequence[ChatRequest]) -> list[list[Completion]]:
        results = super().chat(requests)
        if self.tokenizer is not None:  # real token ids, so that the trainer's sequences decode to the replies
            results = [[self._tokenized(item) for item in completions] for completions in results]
        self.log += list(zip(requests, results))
        return results

    def _tokenized(self, completion: Completion) -> Completion:
        ids = self.tokenizer.encode(completion.text, add_special_tokens=False)
        return dataclasses.replace(completion, token_ids=tuple(ids))


def header(case: Case, what: str) -> list[str]:
    return [
        f"# {what} of {case.harness} on the first {ROWS} rows of {case.data}"
        + (f", banks {json.dumps(case.banks, sort_keys=True)}" if case.banks else ""),
        "# Generated by tests/test_golden_prompts.py (scripted replies); regenerate with --update-golden.",
    ]


# ---- harnessc run --------------------------------------------------------------------------------------------------


def render_run(case: Case, records: list[ExampleRecord], log: list[tuple[ChatRequest, list[Completion]]]) -> str:
    lines = header(case, "`harnessc run` (inference)")
    pending = list(log)
    for record in records:
        lines += ["", f"=== row {record.index}: {json.dumps(record.inputs, ensure_ascii=False, sort_keys=True)}"]
        for call in record.calls:
            title = f"--- {call.stage}" + (f" (iteration {call.iteration})" if call.iteration else "")
            title += f" (item {call.item})" if call.item is not None else ""
            if call.skipped:
                lines += ["", title + ": skipped"]
                continue
            # The engine's request for this call: the first not yet shown with the same messages and switches.
            found = next(
                index
                for index, (request, _) in enumerate(pending)
                if [(m.role, m.content) for m in request.messages] == [(m.role, m.content) for m in call.messages]
                and dict(request.template_kwargs) == call.template_kwargs
            )
            request, completions = pending.pop(found)
            lines += ["", title, *render_request(request), *render_replies(completions)]
        lines += ["", f"output: {json.dumps(record.output, ensure_ascii=False)}", f"grade: {json.dumps(record.grade)}"]
        lines += [f"failure: {failure.stage}: {failure.reason}: {failure.message}" for failure in record.failures]
    assert not pending, "engine requests that no record shows"
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_run_prompts_match_golden(
    case: Case, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, update_golden: bool
) -> None:
    if case.banks:
        pytest.importorskip("numpy")  # the memory bank's embedder
    monkeypatch.chdir(REPO)
    engine = RecordingEngine()
    options = RunOptions(
        harness=case.harness,
        data=case.data,
        out=str(tmp_path / "records.jsonl"),
        limit=ROWS,
        chunk_size=1,
        banks=bank_paths(case, tmp_path),
    )
    run(options, lambda: engine)
    records = list(read_records(tmp_path / "records.jsonl"))
    assert [record.index for record in records] == list(range(ROWS))
    check_golden(GOLDEN / f"{case.name}.run.txt", render_run(case, records, engine.log), update_golden)


# ---- ophsd train ----------------------------------------------------------------------------------------------------


TRAIN_SETTINGS: dict[str, Any] = {
    "limit": ROWS,
    "batch_size": 1,  # one row per step: each step's requests belong to one row
    "max_steps": ROWS,
    "max_new_tokens": 16,
    "harness_max_tokens": 16,
    "probe_size": 0,
    "show_every": 0,
    "tensorboard": False,
    "seed": 0,
    "engine_options": {"max_model_len": 1024},
}


def render_train(case: Case, steps: list[dict[str, Any]], tokenizer: Any) -> str:
    settings = ", ".join(f"{key}={json.dumps(value)}" for key, value in TRAIN_SETTINGS.items())
    lines = header(case, "`ophsd train` (training)") + [f"# Settings: {settings}"]
    for number, step in enumerate(steps, 1):
        lines += ["", f"=== step {number}"]
        for call, batch in enumerate(step["engine"], 1):
            for position, (request, completions) in enumerate(batch, 1):
                lines += ["", f"--- engine call {call}, request {position}", *render_request(request)]
                lines += render_replies(completions)
        for example in step["examples"]:
            lines += ["", "--- student prompt"]
            lines.append(f"template switches: {json.dumps(dict(example.student_template_kwargs), sort_keys=True)}")
            lines += render_messages(example.student_messages)
            lines += ["", f"--- teacher context (from {example.teacher_source})"]
            if example.teacher_messages is None:
                lines.append("none")
            else:
                kwargs = json.dumps(dict(example.teacher_template_kwargs), sort_keys=True)
                lines += [f"template switches: {kwargs}", *render_messages(example.teacher_messages)]
        batch = step["batch"]
        counts = ("dropped", "realigned", "truncated_student", "truncated_teacher")
        lines += ["", "--- the batch: " + ", ".join(f"{name}={getattr(batch, name)}" for name in counts)]
        for row in range(len(batch.kept)):
            student = batch.student_input_ids[row, : batch.student_prompt_lengths[row]].tolist()
            teacher = batch.teacher_input_ids[row, : batch.teacher_prompt_lengths[row]].tolist()
            completion = batch.completion_ids[batch.example_of_token == row].tolist()
            lines += ["student sequence (prompt):", *_decoded(tokenizer, student)]
            lines += ["teacher sequence (prompt):", *_decoded(tokenizer, teacher)]
            lines += ["completion:", *_decoded(tokenizer, completion)]
    return "\n".join(lines) + "\n"


def _decoded(tokenizer: Any, ids: list[int]) -> list[str]:
    return _verbatim(tokenizer.decode(ids))


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_train_prompts_match_golden(
    case: Case, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tiny_model_dir: Path, update_golden: bool
) -> None:
    from transformers import AutoTokenizer

    from ophsd.config import TrainConfig
    from ophsd.context import TeacherContextBuilder
    from ophsd.trainer import Trainer

    if case.banks:
        pytest.importorskip("numpy")
    monkeypatch.chdir(REPO)
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    engine = RecordingEngine(tokenizer)
    steps: list[dict[str, Any]] = []
    seen = [0, 0]  # engine calls and logged requests already attributed to a step
    build = TeacherContextBuilder.build

    def spy(builder: TeacherContextBuilder, examples: Sequence[Any]) -> Any:
        """The trainer hands each step's examples to the builder once, after the step's engine calls."""
        batch = build(builder, examples)
        calls, log = engine.calls[seen[0] :], engine.log[seen[1] :]
        steps.append({"engine": _split(calls, log), "examples": list(examples), "batch": batch})
        seen[:] = [len(engine.calls), len(engine.log)]
        return batch

    monkeypatch.setattr(TeacherContextBuilder, "build", spy)
    config = TrainConfig(
        harness=case.harness,
        data=case.data,
        model=str(tiny_model_dir),
        output=str(tmp_path / "run"),
        banks=bank_paths(case, tmp_path),
        **TRAIN_SETTINGS,
    )
    Trainer(config, engine_factory=lambda trainer, config, path: engine).train()
    assert len(steps) == ROWS
    check_golden(GOLDEN / f"{case.name}.train.txt", render_train(case, steps, tokenizer), update_golden)


def _split(calls: list[list[ChatRequest]], log: list[tuple[ChatRequest, list[Completion]]]) -> list[list[Any]]:
    """The logged (request, completions) pairs grouped by the engine call they were part of."""
    groups, start = [], 0
    for call in calls:
        groups.append(log[start : start + len(call)])
        start += len(call)
    assert start == len(log)
    return groups


def test_the_scripted_replies_cover_every_prompt() -> None:
    """No golden shows the catch-all reply: a prompt the script does not recognise walks no interesting path."""
    for path in GOLDEN.glob("*.txt"):
        assert "no scripted reply" not in path.read_text(encoding="utf-8"), path.name
