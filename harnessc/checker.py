"""Whole-harness checks on the IR: one small function per invariant, listed in CHECKS.

Each check reads the lowered harness and yields diagnostics; none of them stops the others, so a file
with five different mistakes gets five diagnostics in one run.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass

from harnessc import ir, sampling
from harnessc.dependencies import (
    direct_reads,
    own_nodes,
    referenced_names,
    required_stages,
    strongly_connected,
    top_level_graph,
)
from harnessc.diagnostics import Diagnostic, Label, Severity
from harnessc.limits import check_loop_maxima, check_option_maxima, check_repetitions
from harnessc.options import CONSTRAINTS
from harnessc.sampling import SAMPLING
from harnessc.source import Span
from harnessc.types import BOOL, FLOAT, INT, TEXT, AnyType, strip_optional


@dataclass(frozen=True)
class CheckContext:
    """`purpose`: "train" (student and teacher required), "run" (an output or a student required) or
    "any" (what is missing for either purpose is a warning)."""

    purpose: str = "any"


# ---- graph ------------------------------------------------------------------------------------------------


def check_cycles(harness: ir.Harness, context: CheckContext) -> Iterator[Diagnostic]:
    """Each cycle is reported once, from its first-declared stage, with a label on every read that closes
    it (`{solve}` inside `plan`, `{plan}` inside `solve`): those reads are where the fix goes."""
    stages = {stage.name: stage for stage in harness.stages}
    graph = top_level_graph(stages)
    for component in strongly_connected(graph):
        start = min(component, key=lambda name: stages[name].name_span.start)
        path = _cycle_path(start, set(component), graph)
        shown = " → ".join(f"`{name}`" for name in [*path, path[0]])
        pairs = zip(path, [*path[1:], path[0]], strict=True)
        reads = [_read_site(stages, reader, read) for reader, read in pairs]
        if len(path) == 1:
            message, hint_start = f"stage `{start}` reads its own value", "a stage cannot read itself"
            labels = (Label(stages[start].name_span, "this stage"),)
        else:
            message = f"stages read each other in a cycle: {shown}"
            hint_start = "a stage can only read stages that run before it"
            labels = tuple(Label(span, f"`{reader}` reads `{read}` here") for reader, read, span in reads[1:])
        reader, read, span = reads[0]
        yield Diagnostic(
            code="cycle",
            message=message,
            span=span,
            label=f"`{reader}` reads `{read}` here" if len(path) > 1 else "read here",
            labels=labels,
            hints=(
                f"{hint_start}; to refine a value repeatedly, use a bounded `loop NAME from VALUE max N "
                "{ ... next STAGE }`",
            ),
        )


def _cycle_path(start: str, members: set[str], graph: dict[str, list[str]]) -> list[str]:
    """A simple path start → ... → (back to start) through the strongly connected `members`: a depth-first
    search, iterative (a cycle can be thousands of stages long) and visiting each stage once."""
    path, seen = [start], {start}
    work = [iter(graph.get(start, ()))]
    while work:
        for target in work[-1]:
            if target == start:
                return path
            if target in members and target not in seen:
                seen.add(target)
                path.append(target)
                work.append(iter(graph.get(target, ())))
                break
        else:
            work.pop()
            path.pop()
    return [start]


def _read_site(stages: dict[str, ir.Stage], reader: str, read: str) -> tuple[str, str, Span]:
    """Where top-level stage `reader` (or, for a loop, one of its steps) first reads `read` (the stage's
    name when no such reference is found)."""

    def owner(name: str) -> str:
        stage = stages.get(name)
        return stage.loop if stage is not None and getattr(stage, "loop", None) else name

    for stage in stages.values():
        if owner(stage.name) != reader:
            continue
        carried = stage.name if isinstance(stage, ir.LoopStage) else stage.loop  # the loop value: not a read
        nodes = (stage.initial,) if isinstance(stage, ir.LoopStage) and read == reader else own_nodes(stage)
        for node in nodes:
            for ref in ir.references(node):
                if (
                    ref.kind in ("stage", "loop")
                    and owner(ref.name) == read
                    and (ref.name != carried or node is getattr(stage, "initial", None))
                ):
                    return reader, read, ref.span
    return reader, read, stages[reader].name_span


def check_loop_order(harness: ir.Harness, context: CheckContext) -> Iterator[Diagnostic]:
    """Inside a loop, a stage may read only steps that come before it in the same iteration."""
    for loop in (stage for stage in harness.stages if isinstance(stage, ir.LoopStage)):
        steps = [step for step in loop.steps if isinstance(step, str)]
        for position, name in enumerate(steps):
            stage = harness.stage(name)
            for read in direct_reads(stage) if stage else ():
                if read in steps[position:]:
                    yield Diagnostic(
                        code="loop-order",
                        message=f"`{name}` reads `{read}`, which runs after it in loop `{loop.name}`",
                        span=stage.name_span,
                        label=f"reads `{read}`",
                        hints=(f"put `{read}` before `{name}` in the loop, or read the loop value `{loop.name}`",),
                    )


def check_unused_stages(harness: ir.Harness, context: CheckContext) -> Iterator[Diagnostic]:
    roots = (harness.output, harness.student_output, harness.grade, harness.teacher)
    if all(root is None for root in roots) and (harness.student is None or context.purpose != "run"):
        return  # nothing at all reads stages: missing-output or missing-teacher says what is missing
    used = _used_stage_names(harness)
    # One report per mistake: the steps of an unused loop are covered by the loop's report, and the steps
    # of a loop without `next` are unused because of that error (the fix is `next STEP`, not removing it).
    quiet = {
        loop.name
        for loop in harness.stages
        if isinstance(loop, ir.LoopStage) and (loop.name not in used or _implicit_next(loop))
    }
    for stage in harness.stages:
        if stage.name not in used and getattr(stage, "loop", None) not in quiet:
            yield Diagnostic(
                code="unused-stage",
                message=f"nothing reads stage `{stage.name}`",
                span=stage.name_span,
                label="never used",
                hints=("use it in a later stage, the teacher, `output` or `grade`, or remove it",),
            )


def _implicit_next(loop: ir.LoopStage) -> bool:
    """Lowering stands in for a missing `next` (reported as loop-without-next) with the loop's own value."""
    return isinstance(loop.next, ir.Ref) and loop.next.name == loop.name and loop.next.span == loop.name_span


def _used_stage_names(harness: ir.Harness) -> set[str]:
    roots: list = [node for node in (harness.output, harness.student_output, harness.grade) if node is not None]
    if isinstance(harness.teacher, ir.Prompt):
        roots.append(harness.teacher)
    pending = referenced_names(roots)
    if isinstance(harness.teacher, ir.TeacherChain):
        pending += list(harness.teacher.stages)
    pending += _meant_stages(harness)
    return required_stages(harness, pending, loop_bodies=False)


def _meant_stages(harness: ir.Harness) -> list[str]:
    """Stages that a misspelled name most likely meant (`strip_think(plann)` means `plan`). Lowering
    already reported the unknown name with this suggestion; calling `plan` unused as well would be a
    follow-on error. Unknown names are lowered as references to inputs that do not exist."""
    stage_names = {stage.name for stage in harness.stages}
    declared = sorted(
        stage_names | {item.name for group in (harness.inputs, harness.params, harness.banks) for item in group}
    )
    unknown = {ref.name for ref in ir.references(harness) if ref.kind == "input" and harness.input(ref.name) is None}
    if isinstance(harness.teacher, ir.TeacherChain):
        unknown.update(name for name in harness.teacher.stages if name != "student" and harness.stage(name) is None)
    meant = []
    for name in sorted(unknown):
        match = difflib.get_close_matches(name, declared, n=1, cutoff=0.6)  # as names.did_you_mean picks
        meant += [found for found in match if found in stage_names]
    return meant


# ---- options ------------------------------------------------------------------------------------------------


def _prompts(harness: ir.Harness) -> Iterator[tuple[str, ir.Prompt]]:
    for what, prompt, _ in _anchored_prompts(harness):
        yield what, prompt


def _anchored_prompts(harness: ir.Harness) -> Iterator[tuple[str, ir.Prompt, Span]]:
    """Every prompt with what to call it and where to point at it as a whole (a stage's name)."""
    for stage in harness.llm_stages():
        yield f"stage `{stage.name}`", stage.prompt, stage.name_span
        if stage.fallback is not None:
            yield f"the fallback of `{stage.name}`", stage.fallback, stage.fallback.span
    if harness.student is not None:
        yield "the student view", harness.student, harness.student.span
    if isinstance(harness.teacher, ir.Prompt):
        yield "the teacher view", harness.teacher, harness.teacher.span


def constant_value(value: ir.Expr, harness: ir.Harness):
    """The value of a constant expression (a literal or a `param`'s current default), or None."""
    if isinstance(value, ir.Literal):
        return value.value
    if isinstance(value, ir.Ref) and value.kind == "param":
        param = harness.param(value.name)
        return param.default.value if param else None
    return None


def check_option_values(harness: ir.Harness, context: CheckContext) -> Iterator[Diagnostic]:
    for _, prompt in _prompts(harness):
        for option in prompt.options:
            value = constant_value(option.value, harness)
            if option.name not in SAMPLING or not isinstance(value, (int, float)) or isinstance(value, bool):
                continue
            requirement = sampling.problem(option.name, value)
            if requirement is not None:
                via = f" (the value of param `{option.value.name}`)" if isinstance(option.value, ir.Ref) else ""
                yield Diagnostic(
                    code="invalid-option-value",
                    message=f"`{option.name}` {requirement}, but it is {value}{via}",
                    span=option.value.span,
                    label="out of range",
                )


def check_loop_bounds(harness: ir.Harness, context: CheckContext) -> Iterator[Diagnostic]:
    for loop in (stage for stage in harness.stages if isinstance(stage, ir.LoopStage)):
        value = constant_value(loop.max_iterations, harness)
        if isinstance(value, int) and not isinstance(value, bool) and value < 1:
            yield Diagnostic(
                code="invalid-option-value",
                message=f"a loop runs at least once: `max` must be >= 1, but it is {value}",
                span=loop.max_iterations.span,
                label="out of range",
            )


def check_constraints(harness: ir.Harness, context: CheckContext) -> Iterator[Diagnostic]:
    for _, prompt in _prompts(harness):
        constraints = [option for option in prompt.options if option.name in CONSTRAINTS]
        for extra in constraints[1:]:
            yield Diagnostic(
                code="conflicting-constraints",
                message="a stage's output can have one constraint only",
                span=extra.span,
                label="second constraint",
                labels=(Label(constraints[0].span, "first constraint"),),
            )
        for option in constraints:
            yield from _check_constraint_value(option, constant_value(option.value, harness))


def _check_constraint_value(option: ir.Option, value) -> Iterator[Diagnostic]:
    if option.name == "regex" and isinstance(value, str):
        try:
            re.compile(value)
        except re.error as error:
            span, label = _point_into(option.value.span, value, error.pos, "does not compile")
            yield Diagnostic(
                code="invalid-regex",
                message=f"invalid regular expression: {error.msg}",
                span=span,
                label=label,
                hints=_regex_hints(error.msg),
            )
    elif option.name == "json" and isinstance(value, str):
        try:
            schema = json.loads(value)
        except json.JSONDecodeError as error:
            where = f"line {error.lineno}, column {error.colno} of the schema"
            span, label = _point_into(option.value.span, value, error.pos, where)
            yield Diagnostic(
                code="invalid-json-schema",
                message=f"the JSON schema is not valid JSON: {error.msg}",
                span=span,
                label=label,
                hints=('JSON needs double quotes; write the schema in a """...""" string',) if "'" in value else (),
            )
            return
        if not isinstance(schema, dict):
            yield Diagnostic(
                code="invalid-json-schema",
                message="a JSON schema must be a JSON object",
                span=option.value.span,
                label=f"this is a JSON {_json_kind(schema)}",
                hints=('e.g. json """{"type": "object", "properties": {"label": {"type": "string"}}}"""',),
            )
    elif option.name == "choice" and isinstance(value, tuple) and not value:
        yield Diagnostic(
            code="invalid-option-value",
            message="`choice` needs at least one option",
            span=option.value.span,
            label="empty list",
        )


def _point_into(span: Span, value: str, index: int | None, fallback: str) -> tuple[Span, str]:
    """The span of character `index` of a string literal's value, when the literal is a one-line "..."
    without escapes (so that value and source line up); otherwise the whole literal with `fallback`."""
    if index is None or span.line != span.end_line or span.end - span.start != len(value) + 2:
        return span, fallback
    index = min(index, max(len(value) - 1, 0))
    start, column = span.start + 1 + index, span.column + 1 + index
    return Span(span.file, start, start + 1, span.line, column, span.line, column + 1), "here"


def _regex_hints(message: str) -> tuple[str, ...]:
    if "unterminated" in message or "missing )" in message:
        return ("close the group with `)`, or write `\\(` for a literal parenthesis",)
    if "nothing to repeat" in message:
        return ("escape the quantifier (`\\*`, `\\+`, `\\?`) to match it literally",)
    return ()


def _json_kind(value) -> str:
    return {list: "list", str: "string", bool: "boolean", type(None): "null"}.get(type(value), "number")


def check_prompts(harness: ir.Harness, context: CheckContext) -> Iterator[Diagnostic]:
    for what, prompt, anchor in _anchored_prompts(harness):
        roles = [message.role for message in prompt.messages]
        if not roles:
            yield Diagnostic(
                code="empty-prompt",
                message=f"{what} has no messages",
                span=anchor,
                label="no system/user/assistant message",
                hints=('add at least `user "..."`',),
            )
            continue
        misplaced = [message for message in prompt.messages[1:] if message.role == "system"]
        for message in misplaced:
            yield Diagnostic(
                code="message-order",
                message="a system message must come first",
                span=message.span,
                label="system message after another message",
                hints=("move it to the top of the prompt",),
            )
        # A misplaced system message at the end is one mistake, already reported above.
        if roles[-1] != "user" and prompt.messages[-1] not in misplaced:
            article = "an" if roles[-1][0] in "aeiou" else "a"
            yield Diagnostic(
                code="message-order",
                message=f"{what} ends with {article} {roles[-1]} message",
                span=prompt.messages[-1].span,
                label="the model replies to the last user message",
                hints=("end the prompt with a `user` message",),
            )


# ---- information flow ------------------------------------------------------------------------------------------


def check_student_view(harness: ir.Harness, context: CheckContext) -> Iterator[Diagnostic]:
    """The student sees the bare prompt: inputs that exist at inference, and parameters."""
    if harness.student is None:
        return
    for ref in ir.references(harness.student):
        if ref.kind in ("stage", "loop", "bank"):
            what = "a memory bank" if ref.kind == "bank" else "a stage"
            yield Diagnostic(
                code="student-reads-stage",
                message=f"the student view reads `{ref.name}`, {what}",
                span=ref.span,
                label="not visible to the student",
                hints=(
                    "the student prompt is what the trained model sees alone; harness context belongs in the teacher",
                ),
            )
        elif ref.kind == "input" and _is_oracle(harness, ref.name):
            yield Diagnostic(
                code="student-reads-oracle",
                message=f"the student view reads the oracle input `{ref.name}`",
                span=ref.span,
                label="oracle: absent at inference",
                hints=(
                    "oracle inputs (gold answers, reference solutions) may appear in the teacher, never the student",
                ),
            )


def check_oracle_at_inference(harness: ir.Harness, context: CheckContext) -> Iterator[Diagnostic]:
    """The output must be computable at inference, where oracle inputs are absent; a conditional segment
    `{if answer}...{end}` simply vanishes there, so only unconditional uses count."""
    needs = _oracle_requirements(harness)
    for label, root in (("`output`", harness.output), ("`student_output`", harness.student_output)):
        if root is None:
            continue
        for ref in _unconditional_refs(root):
            use = _oracle_use(harness, ref, needs)
            if use is not None:
                yield Diagnostic(
                    code="oracle-at-inference",
                    message=f"{label} needs the oracle input `{use.name}`, which is absent at inference",
                    span=use.span,
                    label="used unconditionally here",
                    labels=(Label(root.span, f"{label} depends on it"),) if use is not ref else (),
                    hints=(f"show it only in training with {{if {use.name}}}...{{end}}",),
                )
                break


def _is_oracle(harness: ir.Harness, name: str) -> bool:
    item = harness.input(name)
    return item is not None and item.oracle


def _oracle_use(harness: ir.Harness, ref: ir.Ref, needs: dict[str, ir.Ref]) -> ir.Ref | None:
    if ref.kind == "input" and _is_oracle(harness, ref.name):
        return ref
    return needs.get(ref.name) if ref.kind in ("stage", "loop") else None


def _oracle_requirements(harness: ir.Harness) -> dict[str, ir.Ref]:
    """Stage → the unconditional use of an oracle input that it (transitively) cannot do without."""
    needs: dict[str, ir.Ref] = {}
    for stage in harness.stages:  # topological order: what a stage reads is already known
        for node in _unconditional_nodes(stage):
            for ref in _unconditional_refs(node):
                use = _oracle_use(harness, ref, needs)
                if use is not None and stage.name not in needs:
                    needs[stage.name] = use
    return needs


def _unconditional_nodes(stage: ir.Stage) -> tuple:
    if isinstance(stage, ir.LlmStage):
        # A guarded stage with a fallback runs one of its two prompts; without, it is merely absent.
        return (stage.prompt,) if stage.guard is None else ()
    if isinstance(stage, ir.LetStage):
        return (stage.value,)
    return (stage.initial,)


def _unconditional_refs(node) -> Iterator[ir.Ref]:
    """References evaluated whether or not optional values are present (not under `{if}`, guards, until)."""
    if isinstance(node, ir.Ref):
        yield node
        return
    if isinstance(node, ir.IfPart):
        guarded = set(referenced_names([node.condition], ("input", "stage", "loop")))
        for part in node.then:
            yield from (ref for ref in _unconditional_refs(part) if ref.name not in guarded)
        for part in node.otherwise:
            yield from _unconditional_refs(part)
        return
    for child in ir.children(node):
        yield from _unconditional_refs(child)


def check_teacher_differs(harness: ir.Harness, context: CheckContext) -> Iterator[Diagnostic]:
    teacher, student = harness.teacher, harness.student
    same = (isinstance(teacher, ir.TeacherChain) and teacher.stages[0] == "student") or (
        isinstance(teacher, ir.Prompt) and student is not None and _without_spans(teacher) == _without_spans(student)
    )
    if same:
        labels = (Label(student.span, "the student view"),) if isinstance(teacher, ir.Prompt) else ()
        yield Diagnostic(
            code="teacher-equals-student",
            message="the teacher view is the same as the student view",
            span=teacher.span,
            label="identical to the student",
            labels=labels,
            hints=("the distillation loss would be zero: give the teacher more context than the student",),
        )


def check_thinking_views(harness: ir.Harness, context: CheckContext) -> Iterator[Diagnostic]:
    """The student's and the teacher's prompts should open the assistant turn alike: a thinking template
    opens it differently per switch (`assistant\n<think>\n\n</think>\n\n` with thinking off). The trainer
    makes the teacher continue from the student's opening, but a teacher stage that *ran* with another
    switch wrote its answer in another mode than the one the student is trained in."""
    student = harness.student
    if student is None or context.purpose == "run":
        return
    wanted = _thinking(student, harness)
    for what, prompt, anchor in _teacher_prompts(harness):
        found = _thinking(prompt, harness)
        if found == wanted:
            continue
        option = prompt.option("thinking")
        student_option = student.option("thinking")
        yield Diagnostic(
            code="thinking-mismatch",
            message=f"the student view's thinking switch ({_switch(wanted)}) differs from that of {what} "
            f"({_switch(found)})",
            span=option.value.span if option is not None else anchor,
            label=f"thinking {_switch(found)}",
            labels=(
                Label(student_option.value.span if student_option else student.span, f"thinking {_switch(wanted)}"),
            ),
            hints=(
                "the completion is scored after the student's assistant-turn opening; give both views the same "
                "`thinking` setting (or use `teacher_template_kwargs` / `student_template_kwargs` in training)",
            ),
        )


def _teacher_prompts(harness: ir.Harness) -> Iterator[tuple[str, ir.Prompt, Span]]:
    teacher = harness.teacher
    if isinstance(teacher, ir.Prompt):
        yield "the teacher view", teacher, teacher.span
    elif isinstance(teacher, ir.TeacherChain):
        for stage in harness.llm_stages():
            if stage.name in teacher.stages:
                yield f"teacher stage `{stage.name}`", stage.prompt, stage.name_span
                if stage.fallback is not None:
                    yield f"the fallback of `{stage.name}`", stage.fallback, stage.fallback.span


def _thinking(prompt: ir.Prompt, harness: ir.Harness) -> object:
    """The prompt's constant `thinking` value; None when unset (the template's default)."""
    option = prompt.option("thinking")
    return None if option is None else constant_value(option.value, harness)


def _switch(value: object) -> str:
    return "unset: the template's default" if value is None else ("on" if value else "off")


def _without_spans(node) -> object:
    data = ir.to_json(node)

    def strip(value):
        if isinstance(value, dict):
            return {key: strip(item) for key, item in value.items() if key != "span"}
        if isinstance(value, list):
            return [strip(item) for item in value]
        return value

    return strip(data)


# ---- what each purpose requires ---------------------------------------------------------------------------------


def check_training_views(harness: ir.Harness, context: CheckContext) -> Iterator[Diagnostic]:
    if context.purpose == "run":
        return
    severity = None if context.purpose == "train" else "warning"
    # The examples use the harness's own names: its first non-oracle input, its last LLM stage.
    visible = [item.name for item in harness.inputs if not item.oracle] or ["question"]
    stages = [stage.name for stage in harness.llm_stages()]
    teacher = f"teacher = {stages[-1]} else student" if stages else 'teacher { user "...more context..." }'
    for missing, code, example in (
        (harness.student is None, "missing-student", f'student {{ user "{{{visible[0]}}}" }}'),
        (harness.teacher is None, "missing-teacher", teacher),
    ):
        if missing:
            view = code.split("-")[1]
            yield _purpose_diagnostic(
                code,
                f"the harness has no `{view}` view, which training needs",
                harness,
                severity,
                f"declare one, e.g. `{example}`",
            )


def check_output(harness: ir.Harness, context: CheckContext) -> Iterator[Diagnostic]:
    if harness.output is None and harness.student is None and context.purpose != "train":
        top = [stage.name for stage in harness.stages if getattr(stage, "loop", None) is None]
        last = top[-1] if top else "EXPRESSION"
        yield _purpose_diagnostic(
            "missing-output",
            "the harness declares neither `output` nor a `student` view",
            harness,
            None,
            f"declare what the harness answers, e.g. `output = {last}`",
        )
    if harness.grade is not None:
        grade_type = strip_optional(harness.grade.type)
        if not isinstance(grade_type, AnyType) and grade_type not in (BOOL, FLOAT, INT):
            yield Diagnostic(
                code="type-mismatch",
                message=f"`grade` must be bool or a number, but it is {grade_type}",
                span=harness.grade.span,
                label=f"this is {grade_type}",
                hints=("compare with a grader: math_equal(output, answer), label_equal(...), set_f1(...)",),
            )


def _purpose_diagnostic(code: str, message: str, harness: ir.Harness, severity: str | None, hint: str) -> Diagnostic:
    return Diagnostic(
        code=code,
        message=message,
        span=harness.name_span,
        label="in this harness",
        hints=(hint,),
        severity=Severity(severity) if severity else None,
    )


def check_bank_filters(harness: ir.Harness, context: CheckContext) -> Iterator[Diagnostic]:
    """`retrieve(..., label_in=..., label_not_in=...)` filters on the bank's `label` field."""
    banks = {bank.name: bank for bank in harness.banks}
    for node in ir.walk(harness):
        if not (isinstance(node, ir.CallExpr) and node.function == "retrieve" and node.arguments):
            continue
        bank_ref = node.arguments[0]
        bank = banks.get(bank_ref.name) if isinstance(bank_ref, ir.Ref) else None
        # retrieve(bank, query, k, label_in, label_not_in): an empty literal list is no filter.
        filters = [
            argument for argument in node.arguments[3:] if not (isinstance(argument, ir.Literal) and not argument.value)
        ]
        if bank is not None and bank.label_field is None and filters:
            yield Diagnostic(
                code="bank-without-label",
                message=f"bank `{bank.name}` has no `label` field to filter on",
                span=filters[0].span,
                label="label filter",
                labels=(Label(bank.span, "declared here"),),
                hints=(_label_hint(bank),),
            )


def _label_hint(bank: ir.Bank) -> str:
    texts = [name for name, typ in bank.entry.fields if typ == TEXT and name != bank.search_field]
    preferred = "label" if "label" in texts else (texts[0] if texts else "FIELD")
    return f"add `label {preferred}` to the bank, naming the entry's label field"


CHECKS = (
    check_cycles,
    check_loop_order,
    check_unused_stages,
    check_option_values,
    check_loop_bounds,
    check_constraints,
    check_prompts,
    check_student_view,
    check_oracle_at_inference,
    check_teacher_differs,
    check_thinking_views,
    check_training_views,
    check_output,
    check_bank_filters,
    check_option_maxima,
    check_loop_maxima,
    check_repetitions,
)


def run_checks(harness: ir.Harness, context: CheckContext) -> list[Diagnostic]:
    return [diagnostic for check in CHECKS for diagnostic in check(harness, context)]
