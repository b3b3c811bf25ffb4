"""The stage graph: no stage reads itself through others, loop steps read what ran before them, and
every stage is used."""

from __future__ import annotations

import difflib
from collections.abc import Iterator

from harnessc import ir
from harnessc.checks.base import CheckContext
from harnessc.dependencies import (
    direct_reads,
    own_nodes,
    referenced_names,
    required_stages,
    strongly_connected,
    top_level_graph,
)
from harnessc.diagnostics import Diagnostic, Label
from harnessc.source import Span


def check_cycles(harness: ir.Harness, context: CheckContext) -> Iterator[Diagnostic]:
    """No stage depends on itself, directly or through other stages (a loop is one stage: carrying a value
    from one iteration to the next is what loops are for). Each cycle is reported once, from its
    first-declared stage, with a label on every read that closes it (`{solve}` inside `plan`, `{plan}`
    inside `solve`): those reads are where the fix goes."""
    stages = {stage.name: stage for stage in harness.stages}
    graph = top_level_graph(stages)
    for component in strongly_connected(graph):
        start = min(component, key=lambda name: stages[name].name_span.start)
        path = _cycle_path(start, set(component), graph)
        shown = " → ".join(f"`{name}`" for name in [*path, path[0]])
        pairs = zip(path, [*path[1:], path[0]], strict=True)
        reads = [_read_site(stages, reader, read) for reader, read in pairs]
        labels: tuple[Label, ...]
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
        return stage.loop if stage is not None and stage.loop else name

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
            if stage is None:
                continue
            for read in direct_reads(stage):
                if read in steps[position:]:
                    yield Diagnostic(
                        code="loop-order",
                        message=f"`{name}` reads `{read}`, which runs after it in loop `{loop.name}`",
                        span=stage.name_span,
                        label=f"reads `{read}`",
                        hints=(f"put `{read}` before `{name}` in the loop, or read the loop value `{loop.name}`",),
                    )


def check_unused_stages(harness: ir.Harness, context: CheckContext) -> Iterator[Diagnostic]:
    """Every stage is needed by what the harness produces: `output`, `student_output`, `grade` or the
    teacher view read it, directly or through other stages (a warning: it would run for nothing). Quiet
    when nothing reads stages at all (missing-output or missing-teacher says what is missing), about the
    steps of a loop reported itself, and about stages a misspelled name most likely meant."""
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
        if stage.name not in used and stage.loop not in quiet:
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
