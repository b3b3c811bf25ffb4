"""Information flow between the views: the student sees only what exists at inference, the output does
not need oracle inputs, and the teacher sees more than the student, in the same thinking mode."""

from __future__ import annotations

from collections.abc import Iterator

from harnessc import ir
from harnessc.checks.base import CheckContext, constant_value
from harnessc.dependencies import referenced_names
from harnessc.diagnostics import Diagnostic, Label
from harnessc.source import Span


def check_student_view(harness: ir.Harness, context: CheckContext) -> Iterator[Diagnostic]:
    """The student sees the bare prompt: inputs that exist at inference, and parameters; never a stage,
    a memory bank or an oracle input."""
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


def check_oracle_in_output(harness: ir.Harness, context: CheckContext) -> Iterator[Diagnostic]:
    """What the harness answers is never the oracle: no value flows from an oracle input to `output` or
    `student_output` except through an LLM stage's generation. Every route counts, for every purpose: a
    placeholder, a `let` chain, a condition (`{if answer == "x"}`, a loop's `until`), a list, a built-in's
    argument. Otherwise in training the harness answers with the gold label and grades itself perfect.
    (A prompt may show the oracle in training: what the model writes is its own answer.)"""
    routes = _direct_oracle_routes(harness)
    for label, root in (("`output`", harness.output), ("`student_output`", harness.student_output)):
        route = _route_from(harness, root, routes) if root is not None else None
        if root is None or route is None:
            continue
        use, through = route
        chain = " → ".join(f"`{name}`" for name in (use.name, *through))
        yield Diagnostic(
            code="oracle-in-output",
            message=f"{label} is computed from the oracle input `{use.name}` without a model generating it"
            + (f" ({chain} → {label})" if through else ""),
            span=use.span,
            label="the oracle flows to the answer from here",
            labels=(Label(root.span, f"{label} depends on it"),) if through else (),
            hints=(
                f"the answer must come from the model: show `{use.name}` in a stage's prompt in training "
                f"(`{{if {use.name}}}...{{end}}`) and compute {label} from that stage; compare with the oracle "
                "only in `grade`",
            ),
        )


def _direct_oracle_routes(harness: ir.Harness) -> dict[str, tuple[ir.Ref, tuple[str, ...]]]:
    """Stage → an oracle input it is computed from without an LLM stage in between (the use, and the
    stages the value passes through after it). LLM stages end a route: their value is a generation."""
    routes: dict[str, tuple[ir.Ref, tuple[str, ...]]] = {}
    for stage in harness.stages:  # topological order
        if isinstance(stage, ir.LlmStage):
            continue
        nodes: tuple = (stage.value,) if isinstance(stage, ir.LetStage) else _loop_nodes(harness, stage)
        for node in nodes:
            route = _route_from(harness, node, routes)
            if route is not None:
                routes[stage.name] = (route[0], (*route[1], stage.name))
                break
    return routes


def _loop_nodes(harness: ir.Harness, loop: ir.LoopStage) -> tuple:
    """What a loop's value is computed from directly: its initial and next values, and its exit tests."""
    return (loop.initial, loop.next, *(step.condition for step in loop.steps if isinstance(step, ir.Until)))


def _route_from(
    harness: ir.Harness, node, routes: dict[str, tuple[ir.Ref, tuple[str, ...]]]
) -> tuple[ir.Ref, tuple[str, ...]] | None:
    for ref in ir.references(node):
        if ref.kind == "input" and _is_oracle(harness, ref.name):
            return ref, ()
        if ref.kind in ("stage", "loop") and ref.name in routes:
            return routes[ref.name]
    return None


def check_oracle_at_inference(harness: ir.Harness, context: CheckContext) -> Iterator[Diagnostic]:
    """The output must be computable at inference, where oracle inputs are absent; a conditional segment
    `{if answer}...{end}` simply vanishes there, so only unconditional uses count. An output computed from
    the oracle without a model in between is `oracle-in-output` instead (and `{if}` is no fix for it)."""
    needs = _oracle_requirements(harness)
    routes = _direct_oracle_routes(harness)
    for label, root in (("`output`", harness.output), ("`student_output`", harness.student_output)):
        if root is None or _route_from(harness, root, routes) is not None:
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
                    hints=(f"in the prompt that reads it, show it only in training: {{if {use.name}}}...{{end}}",),
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
    """The teacher view differs from the student view: a teacher chain does not start at `student`, a
    teacher prompt is not the student prompt (the distillation signal would be zero)."""
    teacher, student = harness.teacher, harness.student
    if isinstance(teacher, ir.TeacherChain) and teacher.stages[0] == "student":
        labels: tuple[Label, ...] = ()
    elif isinstance(teacher, ir.Prompt) and student is not None and _without_spans(teacher) == _without_spans(student):
        labels = (Label(student.span, "the student view"),)
    else:
        return
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
