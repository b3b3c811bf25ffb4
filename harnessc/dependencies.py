"""The stage graph's edges, derived from the IR: who reads whom, in which order stages can run, cycles.

A loop is one node of the top-level graph: its inner stages' reads of the outside world become the
loop's, and a read of a loop's inner stage from outside is a read of the loop. Inside a loop, reading the
loop's own name is the loop-carried value, not an edge.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from harnessc import ir

STAGE_KINDS = ("stage", "loop")


def own_nodes(stage: ir.Stage) -> tuple:
    """The parts of a stage that it evaluates itself (a loop's inner stages are separate stages)."""
    if isinstance(stage, ir.LlmStage):
        parts = (stage.each.iterable if stage.each is not None else None, stage.guard, stage.prompt, stage.fallback)
        return tuple(item for item in parts if item is not None)
    if isinstance(stage, ir.LetStage):
        return (stage.value,)
    return (stage.initial, stage.next, *[step for step in stage.steps if isinstance(step, ir.Until)])


def referenced_names(nodes: Iterable, kinds: tuple[str, ...] = STAGE_KINDS) -> list[str]:
    """Names referenced by `nodes`, of the given reference kinds, in first-use order."""
    names: dict[str, None] = {}
    for node in nodes:
        for ref in ir.references(node):
            if ref.kind in kinds:
                names.setdefault(ref.name, None)
    return list(names)


def direct_reads(stage: ir.Stage) -> list[str]:
    """Stages this stage reads directly. Inside a loop, the loop's own name is the loop-carried value, not
    a read; a loop's initial value is computed before the loop, so there it is a read (of itself)."""
    if isinstance(stage, ir.LoopStage):
        untils = [step for step in stage.steps if isinstance(step, ir.Until)]
        inside = [name for name in referenced_names((stage.next, *untils)) if name != stage.name]
        return list(dict.fromkeys(referenced_names((stage.initial,)) + inside))
    return [name for name in referenced_names(own_nodes(stage)) if name != stage.loop]


def required_stages(harness: ir.Harness, names: Iterable[str], *, loop_bodies: bool) -> set[str]:
    """`names` and every stage they need, transitively: what each stage reads, and the loop of a stage
    inside a loop (reading it runs the loop); with `loop_bodies`, also every step of a needed loop."""
    pending, needed = list(names), set()
    while pending:
        name = pending.pop()
        if name in needed:
            continue
        needed.add(name)
        stage = harness.stage(name)
        if stage is None:
            continue
        pending += direct_reads(stage)
        if isinstance(stage, ir.LoopStage):
            pending += [step for step in stage.steps if isinstance(step, str)] if loop_bodies else []
        elif stage.loop is not None:
            pending.append(stage.loop)
    return needed


def top_level_graph(stages: Mapping[str, ir.Stage]) -> dict[str, list[str]]:
    """Top-level stage → the top-level stages it depends on (inner stages folded into their loop)."""

    def owner(name: str) -> str:
        stage = stages.get(name)
        return stage.loop if stage is not None and stage.loop else name

    graph: dict[str, list[str]] = {name: [] for name, stage in stages.items() if owner(name) == name}
    for name, stage in stages.items():
        source = owner(name)
        for read in direct_reads(stage):
            target = owner(read) if read in stages else None
            if target is not None and (read == name or target != source) and target not in graph[source]:
                graph[source].append(target)
    return graph


def strongly_connected(graph: Mapping[str, list[str]]) -> list[list[str]]:
    """Tarjan's algorithm (iterative): the cycles of `graph`, each in discovery order."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    counter = 0
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(graph.get(root, ())))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, edges = work[-1]
            advanced = False
            for target in edges:
                if target not in graph:
                    continue
                if target not in index:
                    index[target] = low[target] = counter
                    counter += 1
                    stack.append(target)
                    on_stack.add(target)
                    work.append((target, iter(graph.get(target, ()))))
                    advanced = True
                    break
                if target in on_stack:
                    low[node] = min(low[node], index[target])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1 or node in graph.get(node, ()):
                    cycles.append(sorted(component, key=list(graph).index))
    return cycles


def topological_order(stages: Mapping[str, ir.Stage], declared: Iterable[str]) -> tuple[ir.Stage, ...]:
    """Top-level stages in dependency order, ties in declaration order; inner stages after their loop, in
    step order. Members of a cycle are placed in declaration order (the checker reports the cycle)."""
    order = [name for name in declared if name in stages]
    graph = top_level_graph(stages)
    placed: list[str] = []
    done: set[str] = set()
    visiting: set[str] = set()

    position = {name: index for index, name in enumerate(order)}

    def dependencies(name: str):
        return iter(sorted(graph.get(name, ()), key=lambda item: position.get(item, len(position))))

    def visit(root: str) -> None:  # depth-first post-order, iterative: dependency chains can be long
        if root in done or root in visiting:
            return
        visiting.add(root)
        work = [(root, dependencies(root))]
        while work:
            name, pending = work[-1]
            for dependency in pending:
                if dependency not in done and dependency not in visiting:
                    visiting.add(dependency)
                    work.append((dependency, dependencies(dependency)))
                    break
            else:
                work.pop()
                visiting.discard(name)
                done.add(name)
                placed.append(name)

    for name in order:
        if name in graph:
            visit(name)
    result: list[ir.Stage] = []
    for name in placed:
        stage = stages[name]
        result.append(stage)
        if isinstance(stage, ir.LoopStage):
            result += [stages[step] for step in stage.steps if isinstance(step, str) and step in stages]
    return tuple(result)
