"""Drawing the stage graph: Mermaid and Graphviz DOT text, and a tree for the terminal.

All three are views of one `GraphModel` (nodes and edges derived from the IR), so they always agree.
Output is deterministic: nodes in IR order, edges in first-use order.
"""

from __future__ import annotations

from dataclasses import dataclass

from harnessc import ir
from harnessc.dependencies import own_nodes, referenced_names

_READ_KINDS = ("input", "bank", "stage", "loop", "output", "student")


@dataclass(frozen=True, slots=True)
class GraphNode:
    id: str
    label: str
    kind: str  # input | oracle | bank | llm | let | loop | view | output
    parent: str | None = None  # the loop that contains this stage


@dataclass(frozen=True, slots=True)
class GraphEdge:
    source: str
    target: str
    label: str = ""


@dataclass(frozen=True)
class GraphModel:
    name: str
    nodes: tuple[GraphNode, ...]
    edges: tuple[GraphEdge, ...]


def build_graph(harness: ir.Harness) -> GraphModel:
    nodes: list[GraphNode] = []
    edges: list[GraphEdge] = []
    for item in harness.inputs:
        nodes.append(GraphNode(item.name, f"{item.name}: {item.type}", "oracle" if item.oracle else "input"))
    for bank in harness.banks:
        nodes.append(GraphNode(bank.name, f"bank {bank.name}", "bank"))
    for stage in harness.stages:
        nodes.append(_stage_node(stage))
        fanned: list[str] = []
        if isinstance(stage, ir.LlmStage) and stage.each is not None:  # the list fanned out over
            fanned = [name for name in referenced_names([stage.each.iterable], _READ_KINDS) if name != stage.loop]
            edges += [GraphEdge(source, stage.name, "for each") for source in fanned if source != stage.name]
        edges += _read_edges(stage.name, [name for name in _stage_reads(stage) if name not in fanned])
    for name, node in _view_roots(harness):
        nodes.append(GraphNode(name, name, "output" if name in ("output", "grade", "student_output") else "view"))
        edges += _read_edges(name, referenced_names([node], _READ_KINDS))
    if isinstance(harness.teacher, ir.TeacherChain):
        nodes.append(GraphNode("teacher", "teacher", "view"))
        for position, source in enumerate(harness.teacher.stages):
            if source != "student":
                edges.append(GraphEdge(source, "teacher", "context" if position == 0 else "fallback"))
    for bank in harness.banks:  # training fills the bank from the inputs its fields read
        edges += _read_edges(bank.name, referenced_names(bank.fields, ("input",)))
    return GraphModel(harness.name, tuple(nodes), tuple(dict.fromkeys(edges)))


def _stage_node(stage: ir.Stage) -> GraphNode:
    kind = {ir.LlmStage: "llm", ir.LetStage: "let", ir.LoopStage: "loop"}[type(stage)]
    label = f"{kind} {stage.name}: {stage.type}"
    if isinstance(stage, ir.LlmStage) and stage.guard is not None:
        label += " (guarded)" if stage.fallback is None else " (guarded, with fallback)"
    if isinstance(stage, ir.LlmStage) and stage.each is not None:
        bound = stage.each.max_items
        limit = f", max {bound.value}" if isinstance(bound, ir.Literal) else ""
        label += f" (for each {stage.each.variable}{limit})"
    parent = None if isinstance(stage, ir.LoopStage) else stage.loop
    return GraphNode(stage.name, label, kind, parent)


def _stage_reads(stage: ir.Stage) -> list[str]:
    """Inputs, banks and stages a stage reads; a loop reads its initial value and what `next`/`until` read."""
    carried = stage.name if isinstance(stage, ir.LoopStage) else stage.loop
    return [name for name in referenced_names(own_nodes(stage), _READ_KINDS) if name != carried]


def _read_edges(target: str, sources: list[str]) -> list[GraphEdge]:
    return [GraphEdge(source, target) for source in sources if source != target]


def _view_roots(harness: ir.Harness) -> list[tuple[str, object]]:
    roots: list[tuple[str, object]] = []
    if harness.student is not None:
        roots.append(("student", harness.student))
    if isinstance(harness.teacher, ir.Prompt):
        roots.append(("teacher", harness.teacher))
    for name in ("output", "student_output", "grade"):
        value = getattr(harness, name)
        if value is not None:
            roots.append((name, value))
    return roots


# ---- renderers ----------------------------------------------------------------------------------------

_MERMAID_SHAPES = {
    "input": ("[/", "/]"),
    "oracle": ("[/", "/]"),
    "bank": ("[(", ")]"),
    "llm": ("[", "]"),
    "let": ("(", ")"),
    "loop": ("{{", "}}"),
    "view": ("([", "])"),
    "output": ("[[", "]]"),
}


def to_mermaid(model: GraphModel) -> str:
    lines = ["flowchart TD"]
    loops = {node.id for node in model.nodes if node.kind == "loop"}
    for node in model.nodes:
        if node.parent is None and node.id not in loops:
            lines.append(f"  {_mermaid_node(node)}")
    for loop in (node for node in model.nodes if node.id in loops):
        lines.append(f'  subgraph loop_{loop.id}["{_escape(loop.label)}"]')
        lines.append(f"    {_mermaid_node(loop)}")
        lines += [f"    {_mermaid_node(node)}" for node in model.nodes if node.parent == loop.id]
        lines.append("  end")
    for edge in model.edges:
        arrow = f"-->|{edge.label}|" if edge.label else "-->"
        lines.append(f"  {edge.source} {arrow} {edge.target}")
    lines += [
        "  classDef oracle stroke-dasharray: 5 5",
        *[f"  class {n.id} oracle" for n in model.nodes if n.kind == "oracle"],
    ]
    return "\n".join(lines) + "\n"


def _mermaid_node(node: GraphNode) -> str:
    opening, closing = _MERMAID_SHAPES[node.kind]
    label = node.label + (" (oracle)" if node.kind == "oracle" else "")
    return f'{node.id}{opening}"{_escape(label)}"{closing}'


def _escape(text: str) -> str:
    return text.replace('"', "#quot;").replace("{", "#123;").replace("}", "#125;")


_DOT_SHAPES = {
    "input": "parallelogram",
    "oracle": "parallelogram",
    "bank": "cylinder",
    "llm": "box",
    "let": "ellipse",
    "loop": "hexagon",
    "view": "note",
    "output": "doubleoctagon",
}


def to_dot(model: GraphModel) -> str:
    lines = [f'digraph "{model.name}" {{', "  rankdir=TB;", '  node [fontname="Helvetica"];']
    loops = {node.id for node in model.nodes if node.kind == "loop"}
    for node in model.nodes:
        if node.parent is None:
            lines.append(f"  {_dot_node(node)}")
    for loop in sorted(loops, key=[n.id for n in model.nodes].index):
        lines.append(f'  subgraph "cluster_{loop}" {{')
        lines.append(f'    label="loop {loop}"; style=dashed;')
        lines += [f"    {_dot_node(node)}" for node in model.nodes if node.parent == loop]
        lines.append("  }")
    for edge in model.edges:
        label = f' [label="{edge.label}"]' if edge.label else ""
        lines.append(f'  "{edge.source}" -> "{edge.target}"{label};')
    lines.append("}")
    return "\n".join(lines) + "\n"


def _dot_node(node: GraphNode) -> str:
    style = ", style=dashed" if node.kind == "oracle" else ""
    label = node.label.replace("\\", "\\\\").replace('"', '\\"') + ("\\n(oracle)" if node.kind == "oracle" else "")
    return f'"{node.id}" [shape={_DOT_SHAPES[node.kind]}, label="{label}"{style}];'


def to_tree_lines(model: GraphModel) -> list[str]:
    """A plain-text tree: each node followed by what it reads (the terminal renderer adds colour)."""
    reads: dict[str, list[str]] = {}
    for edge in model.edges:
        reads.setdefault(edge.target, []).append(edge.source + (f" ({edge.label})" if edge.label else ""))
    lines = [f"harness {model.name}"]
    for node in model.nodes:
        indent = "    " if node.parent else "  "
        sources = reads.get(node.id)
        label = node.label + (" (oracle)" if node.kind == "oracle" else "")
        lines.append(f"{indent}{label}" + (f"  <- {', '.join(sources)}" if sources else ""))
    return lines


def render(harness: ir.Harness, style: str) -> str:
    model = build_graph(harness)
    if style == "mermaid":
        return to_mermaid(model)
    if style == "dot":
        return to_dot(model)
    return "\n".join(to_tree_lines(model)) + "\n"
