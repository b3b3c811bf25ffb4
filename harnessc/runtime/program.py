"""The semantics of running a harness on one example, shared by both executors.

`Program` holds a compiled harness ready to run (the IR, the built-ins, the memory banks, the mode);
`ExampleState` holds one example's values and records. The stage-synchronous executor and the per-example
interpreter differ only in *when* they call these methods (a whole batch per engine call, or one example
at a time); what a stage does is defined once, here, so that both produce identical traces.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

from harnessc import ir
from harnessc.builtins.registry import Registry, default_registry
from harnessc.dependencies import referenced_names, required_stages
from harnessc.engines.base import ChatMessage, ChatRequest, Completion, OutputConstraint
from harnessc.runtime.expressions import EvaluationError, Evaluator
from harnessc.runtime.trace import ExampleRecord, Failure, StageCall, TeacherContext
from harnessc.sampling import DEFAULT_MAX_TOKENS, check_overrides, sampling_options

Mode = Literal["inference", "train"]
STUDENT = "student"
# Rewrites a request before it is sent: (the request to send, whether its prompt was cut to fit).
PromptFitter = Callable[[ChatRequest], tuple[ChatRequest, bool]]


class Sent(NamedTuple):
    """A stage's request as it was sent, for its call record and the teacher context."""

    request: ChatRequest
    iteration: int
    cut: bool = False  # the program's `fit_prompt` cut the prompt to fit


@dataclass
class ExampleState:
    """Everything known about one example while the harness runs on it."""

    index: int  # the row's position in the data set (stable across --limit and --resume)
    replica: int  # which of the --n independent runs of this example
    inputs: dict[str, Any]  # the row as given (recorded in the trace)
    values: dict[str, Any]  # what prompts and expressions see: inputs, params, banks, stage values
    oracles: dict[str, Any]  # oracle inputs: always visible to the grade
    calls: list[StageCall] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    prompts: dict[str, Sent] = field(default_factory=dict)  # stage -> its latest request
    loops_done: set[str] = field(default_factory=set)
    # fan-out stage -> (its requests in flight, iteration)
    fan_outs: dict[str, list[Sent]] = field(default_factory=dict)
    started: float = field(default_factory=time.perf_counter)

    def fail(self, stage: str, reason: str, message: str) -> None:
        self.failures.append(Failure(stage=stage, reason=reason, message=message))


class Program:
    """A harness bound to its built-ins, banks and mode, ready to run on examples.

    `mode="inference"` hides oracle inputs from prompts (they read as absent); `mode="train"` shows them.
    `banks` is read, never copied: whoever owns the banks (harness_setup.HarnessSetup) may grow or replace
    them between runs. `student_only=True` runs the student view alone as the program (the model without its
    harness). `sampling_overrides` replace fields of every request's SamplingOptions (e.g. `{"temperature":
    0.0}` to evaluate greedily, `{"n": 1}` for one rollout per prompt; ValueError for an invalid one), and
    `template_kwargs` are added to every request's chat-template switches (winning over a stage's own
    `thinking`), so that whoever builds a sequence from a request later sees the same switches the engine
    used. `fit_prompt` rewrites each request before it is sent (the trainer cuts an over-long student prompt
    to its budget), and with `token_ids=True` the records keep each completion's token ids in memory (see
    trace.Sample): what a trainer needs to build sequences from a run's records.
    """

    def __init__(
        self,
        harness: ir.Harness,
        *,
        mode: Mode = "inference",
        registry: Registry | None = None,
        banks: Mapping[str, Any] | None = None,
        seed: int = 0,
        default_max_tokens: int = DEFAULT_MAX_TOKENS,
        student_only: bool = False,
        sampling_overrides: Mapping[str, Any] | None = None,
        template_kwargs: Mapping[str, Any] | None = None,
        fit_prompt: PromptFitter | None = None,
        token_ids: bool = False,
    ) -> None:
        self.harness = harness
        self.mode = mode
        self.registry = registry or default_registry()
        self.evaluator = Evaluator(self.registry)
        self.banks: Mapping[str, Any] = banks if banks is not None else {}
        self.seed = seed
        self.default_max_tokens = default_max_tokens
        self.student_only = student_only
        check_overrides(sampling_overrides or {})  # ValueError: a name or value no request could carry
        self.sampling_overrides = dict(sampling_overrides or {})
        self.template_kwargs = dict(template_kwargs or {})
        self.fit_prompt = fit_prompt
        self.token_ids = token_ids
        self.student_stage = _student_stage(harness)
        self.output_expr = self._output_expression()
        self.stages = self._stages_to_run()
        self.params = {param.name: param.default.value for param in harness.params}

    # ---- what runs -------------------------------------------------------------------------------------------

    def _output_expression(self) -> ir.Expr | None:
        harness = self.harness
        if not self.student_only and harness.output is not None:
            return harness.output
        if harness.student_output is not None:
            return harness.student_output
        if harness.output is not None and set(referenced_names([harness.output])) <= {STUDENT}:
            return harness.output  # e.g. OPSD: `output = extract_boxed(student)`
        if harness.student is None:
            return None
        return ir.Ref(name=STUDENT, kind="student", type=ir.parse_type("text"), span=harness.student.span)

    def _stages_to_run(self) -> tuple[ir.Stage, ...]:
        """The stages this mode needs, in the harness's topological order. At inference: what the output
        reads. In training: what the teacher reads, plus the output and grade (for the harness's success
        rate) unless they read the student, whose completion the trainer samples itself."""
        harness, teacher = self.harness, self.harness.teacher
        roots: list = []
        if self.mode == "train" and not self.student_only:
            reads_student = harness.output is not None and STUDENT in referenced_names([harness.output], ("student",))
            self.output_expr = None if reads_student else self.output_expr
            roots += [root for root in (self.output_expr, harness.grade) if root is not None]
            roots += [teacher] if isinstance(teacher, ir.Prompt) else []
        elif self.output_expr is not None:
            roots.append(self.output_expr)
        needed = set(referenced_names(roots, ("stage", "loop", "student")))
        if self.mode == "train" and isinstance(teacher, ir.TeacherChain) and not self.student_only:
            needed |= {name for name in teacher.stages if name != STUDENT}
        needed = required_stages(harness, needed, loop_bodies=True)
        ordered: list[ir.Stage] = []
        if STUDENT in needed and self.student_stage is not None:
            ordered.append(self.student_stage)
        ordered += [stage for stage in harness.stages if stage.name in needed]
        return tuple(ordered)

    # ---- examples -----------------------------------------------------------------------------------------------

    def new_example(self, index: int, inputs: Mapping[str, Any], replica: int = 0) -> ExampleState:
        visible, oracles = {}, {}
        for item in self.harness.inputs:
            value = inputs.get(item.name)
            if item.oracle:
                oracles[item.name] = value
            if not item.oracle or self.mode == "train":
                visible[item.name] = value
        values = {**self.params, **self.banks, **visible}
        return ExampleState(index=index, replica=replica, inputs=dict(inputs), values=values, oracles=oracles)

    def bank_entry(self, bank: ir.Bank, inputs: Mapping[str, Any]) -> dict[str, Any]:
        """A memory-bank entry from one example's inputs (oracle inputs included: banks hold gold labels)."""
        return bank_entry(bank, inputs, self.params, self.evaluator)

    # ---- LLM stages ----------------------------------------------------------------------------------------------

    def prepare_llm(self, stage: ir.LlmStage, state: ExampleState, iteration: int = 0) -> ChatRequest | None:
        """The request this stage sends for this example, or None when the stage does not run (its guard
        failed without a fallback, or rendering failed: recorded on the example)."""
        try:
            prompt: ir.Prompt | None = stage.prompt
            if stage.guard is not None and not self.evaluator.condition(stage.guard, state.values):
                prompt = stage.fallback
            if prompt is None:
                state.values[stage.name] = None
                state.calls.append(StageCall(stage=stage.name, iteration=iteration, skipped=True))
                return None
            request = self.request(prompt, state, stage.name, iteration)
        except EvaluationError as error:
            state.values[stage.name] = None
            state.fail(stage.name, error.reason, str(error))
            return None
        cut = False
        if self.fit_prompt is not None:
            request, cut = self.fit_prompt(request)
        state.prompts[stage.name] = Sent(request, iteration, cut)
        return request

    def request(
        self,
        prompt: ir.Prompt,
        state: ExampleState,
        stage: str,
        iteration: int,
        local: Mapping[str, Any] | None = None,
    ) -> ChatRequest:
        """`local`: the locals the messages see (a fan-out's item)."""
        values = state.values
        messages = tuple(
            ChatMessage(message.role, self.evaluator.render(message.template, values, local))
            for message in prompt.messages
        )
        options = {option.name: self.evaluator.evaluate(option.value, values) for option in prompt.options}
        seed = self.request_seed(options.get("seed"), state, stage, iteration)
        sampling = sampling_options(options, max_tokens=self.default_max_tokens, seed=seed)
        sampling = dataclasses.replace(sampling, **self.sampling_overrides)
        kwargs = {"enable_thinking": options["thinking"]} if "thinking" in options else {}
        kwargs.update(self.template_kwargs)
        return ChatRequest(
            messages=messages, sampling=sampling, template_kwargs=kwargs, constraint=_constraint(options)
        )

    def request_seed(self, stage_seed: int | None, state: ExampleState, stage: str, iteration: int) -> int:
        """A per-request seed from the run seed (or the stage's own), the row, the replica, the stage and the
        iteration: results do not depend on batch composition, --limit or --resume."""
        base = self.seed if stage_seed is None else stage_seed
        key = f"{base}/{state.index}/{state.replica}/{stage}/{iteration}".encode()
        return int.from_bytes(hashlib.blake2b(key, digest_size=4).digest(), "little") & 0x7FFFFFFF

    def finish_llm(
        self, stage: ir.LlmStage, state: ExampleState, completions: Sequence[Completion], seconds: float = 0.0
    ) -> None:
        request, iteration, cut = state.prompts[stage.name]
        call = StageCall.from_completions(
            stage.name, iteration, request, completions, seconds, token_ids=self.token_ids, prompt_cut=cut
        )
        state.calls.append(call)
        errors = [
            completion.error or "engine error" for completion in completions if completion.finish_reason == "error"
        ]
        if errors:
            state.values[stage.name] = None
            state.fail(stage.name, "engine-error", errors[0])
            return
        # A constrained output cut short (by max_tokens) is a fragment, not a value: it is never passed on.
        unmet = [unmet_constraint(request.constraint, completion) for completion in completions]
        kept = [completion.text for completion, problem in zip(completions, unmet) if problem is None]
        if stage.prompt.option("n") is not None and kept:
            state.values[stage.name] = tuple(kept)  # the samples that meet the constraint
        elif stage.prompt.option("n") is None and not unmet[0]:
            state.values[stage.name] = completions[0].text
        else:
            state.values[stage.name] = None
            state.fail(stage.name, "constraint-unmet", next(problem for problem in unmet if problem))

    # ---- any LLM stage: one request, or one per item of a fan-out -------------------------------------------------

    def prepare_requests(self, stage: ir.LlmStage, state: ExampleState, iteration: int = 0) -> list[ChatRequest]:
        """The requests this stage sends for this example: one (none if it does not run), or for a fan-out
        one per item of its list, in order (none for an empty list, whose value is `[]`, or a list longer
        than the bound, a failure of the example)."""
        if stage.each is None:
            request = self.prepare_llm(stage, state, iteration)
            return [] if request is None else [request]
        each = stage.each
        try:
            prompt: ir.Prompt | None = stage.prompt
            if stage.guard is not None and not self.evaluator.condition(stage.guard, state.values):
                prompt = stage.fallback
            items = None if prompt is None else self.evaluator.evaluate(each.iterable, state.values)
            if items is None:  # the guard failed without a fallback, or the list is absent
                state.values[stage.name] = None
                state.calls.append(StageCall(stage=stage.name, iteration=iteration, skipped=True))
                return []
            assert prompt is not None
            bound = int(self.evaluator.evaluate(each.max_items, state.values))
            if len(items) > bound:
                state.values[stage.name] = None
                state.fail(
                    stage.name,
                    "fan-out-too-long",
                    f"the list has {len(items)} items, more than the fan-out's bound ({bound})",
                )
                return []
            requests = [
                self.request(prompt, state, f"{stage.name}[{position}]", iteration, {each.variable: item})
                for position, item in enumerate(items)
            ]
        except EvaluationError as error:
            state.values[stage.name] = None
            state.fail(stage.name, error.reason, str(error))
            return []
        if not requests:
            state.values[stage.name] = ()
        sent = [Sent(request, iteration) for request in requests]
        if self.fit_prompt is not None:
            fitted = [self.fit_prompt(request) for request in requests]
            sent = [Sent(request, iteration, cut) for request, cut in fitted]
        state.fan_outs[stage.name] = sent
        return [item.request for item in sent]

    def finish_requests(
        self,
        stage: ir.LlmStage,
        state: ExampleState,
        results: Sequence[Sequence[Completion]],
        seconds: float = 0.0,
    ) -> None:
        """Record what came back for the requests `prepare_requests` made, in their order."""
        if stage.each is None:
            self.finish_llm(stage, state, results[0], seconds)
            return
        values: list[Any] = []
        errors: list[str] = []
        for position, (sent, completions) in enumerate(zip(state.fan_outs.pop(stage.name), results)):
            call = StageCall.from_completions(
                stage.name,
                sent.iteration,
                sent.request,
                completions,
                seconds,
                item=position,
                token_ids=self.token_ids,
                prompt_cut=sent.cut,
            )
            state.calls.append(call)
            errors += [c.error or "engine error" for c in completions if c.finish_reason == "error"]
            many = stage.prompt.option("n") is not None
            values.append(tuple(c.text for c in completions) if many else completions[0].text)
        if errors:
            state.values[stage.name] = None
            state.fail(stage.name, "engine-error", errors[0])
        else:
            state.values[stage.name] = tuple(values)

    # ---- deterministic stages and loops --------------------------------------------------------------------------

    def run_let(self, stage: ir.LetStage, state: ExampleState) -> None:
        try:
            state.values[stage.name] = self.evaluator.evaluate(stage.value, state.values)
        except EvaluationError as error:
            state.values[stage.name] = None
            state.fail(stage.name, error.reason, str(error))

    def loop_step(self, name: str) -> ir.LlmStage | ir.LetStage:
        """A loop's step stage by name (lowering made every named step a stage of the harness)."""
        stage = self.harness.stage(name)
        if not isinstance(stage, (ir.LlmStage, ir.LetStage)):
            raise KeyError(f"loop step {name!r} is not an llm or let stage of the harness")
        return stage

    def begin_loop(self, loop: ir.LoopStage, state: ExampleState) -> None:
        state.values[loop.name] = self._safe_evaluate(loop.initial, state, loop.name)
        for step in loop.steps:
            if isinstance(step, str):
                state.values[step] = None
        if state.values[loop.name] is None:
            state.loops_done.add(loop.name)  # nothing to refine

    def loop_bound(self, loop: ir.LoopStage, state: ExampleState) -> int:
        return int(self.evaluator.evaluate(loop.max_iterations, state.values))

    def until_holds(self, until: ir.Until, loop: ir.LoopStage, state: ExampleState) -> bool:
        if self._safe_condition(until.condition, state, loop.name):
            state.loops_done.add(loop.name)
            return True
        return False

    def advance_loop(self, loop: ir.LoopStage, state: ExampleState) -> None:
        value = self._safe_evaluate(loop.next, state, loop.name)
        if value is None:
            state.loops_done.add(loop.name)  # the iteration produced nothing: keep the last good value
        else:
            state.values[loop.name] = value

    def _safe_evaluate(self, expr: ir.Expr, state: ExampleState, stage: str, values: dict | None = None) -> Any:
        """Evaluate against the example's values (or `values`); a failure is recorded on the example."""
        try:
            return self.evaluator.evaluate(expr, state.values if values is None else values)
        except EvaluationError as error:
            state.fail(stage, error.reason, str(error))
            return None

    def _safe_condition(self, expr: ir.Expr, state: ExampleState, stage: str) -> bool:
        try:
            return self.evaluator.condition(expr, state.values)
        except EvaluationError as error:
            state.fail(stage, error.reason, str(error))
            return True  # stop iterating an example whose exit test cannot be evaluated

    # ---- results --------------------------------------------------------------------------------------------

    def finish(self, state: ExampleState) -> ExampleRecord:
        """Evaluate the output and the grade (which always sees oracle inputs) and build the record."""
        output = grade = None
        if self.output_expr is not None:
            output = self._safe_evaluate(self.output_expr, state, "output")
            if output is None and not state.failures:
                state.fail("output", "no-output", "the output is absent (a stage it needs did not run)")
        if self.harness.grade is not None and self.output_expr is not None:
            grading = {**state.values, **state.oracles, "output": output}
            # A private copy: the grade sees oracle inputs, which must not leak into the example's values.
            grade = self._safe_evaluate(self.harness.grade, state, "grade", grading)
        order = {stage.name: position for position, stage in enumerate(self.stages)}
        calls = sorted(state.calls, key=lambda call: (call.iteration, order.get(call.stage, -1)))
        return ExampleRecord(
            index=state.index,
            replica=state.replica,
            inputs=_jsonable(state.inputs),
            output=_jsonable(output),
            grade=_jsonable(grade),
            calls=calls,
            failure=state.failures[0] if state.failures else None,
            failures=state.failures,
            teacher=self.teacher_context(state) if self.mode == "train" else None,
            seconds=time.perf_counter() - state.started,
        )

    def teacher_context(self, state: ExampleState) -> TeacherContext | None:
        """The teacher's messages: the first stage of the chain that ran, or the explicit teacher template."""
        teacher = self.harness.teacher
        if isinstance(teacher, ir.Prompt):
            try:
                request = self.request(teacher, state, "teacher", 0)
            except EvaluationError as error:
                state.fail("teacher", error.reason, str(error))
                return None
            return TeacherContext.from_request("teacher", request)
        if isinstance(teacher, ir.TeacherChain):
            for name in teacher.stages:
                if name == STUDENT and self.harness.student is not None:
                    return TeacherContext.from_request(STUDENT, self.request(self.harness.student, state, STUDENT, 0))
                if name in state.prompts and state.values.get(name) is not None:
                    return TeacherContext.from_request(name, state.prompts[name].request)
        return None


def bank_entry(
    bank: ir.Bank, inputs: Mapping[str, Any], params: Mapping[str, Any], evaluator: Evaluator
) -> dict[str, Any]:
    """A memory-bank entry: the bank's field expressions over one row's inputs (and the harness's params)."""
    values = {**params, **inputs}
    return {item.name: evaluator.evaluate(item.value, values) for item in bank.fields}


def unmet_constraint(constraint: OutputConstraint | None, completion: Completion) -> str | None:
    """Why `completion` does not satisfy its request's constraint, or None when it does (or has none).

    The engines' decoding backend keeps a completion inside its constraint while it generates, so a
    completion that stopped by itself satisfies it; one cut short by `max_tokens` (finish reason `length`)
    is a prefix of a valid output, which may or may not be one itself. A choice is checked always: it costs
    nothing and is exact."""
    if constraint is None:
        return None
    text, cut = completion.text, completion.finish_reason == "length"
    if constraint.kind == "choice":
        if text in constraint.choices:
            return None
        choices = ", ".join(repr(choice) for choice in constraint.choices)
        why = " (cut short by max_tokens)" if cut else ""
        return f"the output {text!r} is not one of the choices {choices}{why}"
    if not cut:
        return None
    if constraint.kind == "json":
        return _unmet_schema(text, constraint.pattern)
    try:
        matched = re.fullmatch(constraint.pattern, text) is not None
    except re.error:  # in the backend's dialect only: judge the fragment by its cut alone
        matched = False
    return None if matched else f"the output was cut short by max_tokens before it matched the regex: {text!r}"


def _unmet_schema(text: str, schema: str) -> str | None:
    from jsonschema import Draft202012Validator

    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return f"the output was cut short by max_tokens before its JSON was complete: {text[:200]!r}"
    invalid = next(iter(Draft202012Validator(json.loads(schema)).iter_errors(value)), None)
    if invalid is not None:
        return f"the output was cut short by max_tokens and does not fit the schema: {invalid.message}"
    return None


def _constraint(options: Mapping[str, Any]) -> OutputConstraint | None:
    if "choice" in options:
        return OutputConstraint(kind="choice", choices=tuple(options["choice"]))
    if "regex" in options:
        return OutputConstraint(kind="regex", pattern=options["regex"])
    if "json" in options:
        return OutputConstraint(kind="json", pattern=options["json"])
    return None


def _student_stage(harness: ir.Harness) -> ir.LlmStage | None:
    """The student view as an LLM stage named `student`, for programs that generate with it."""
    if harness.student is None:
        return None
    return ir.LlmStage(
        name=STUDENT,
        prompt=harness.student,
        guard=None,
        fallback=None,
        loop=None,
        type=ir.parse_type("text"),
        name_span=harness.student.span,
        span=harness.student.span,
    )


def _jsonable(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_jsonable(item) for item in value]
    if isinstance(value, dict):
        return {key: _jsonable(item) for key, item in value.items()}
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return repr(value)
