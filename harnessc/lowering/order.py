"""The order stages are lowered in: the stage dependency graph of the syntax tree, in post-order.

A stage is lowered after the stages it reads, so every read finds its type; only in a cycle (which the
checker reports on the IR) is a stage read before it is lowered, and that read has the type `any`. The
reads are those lowering types: names in the expressions and templates a stage evaluates, through the
snippets it fills in, except locals (`{for x in ...}`, comprehensions) and constants (options and bounds
read `param`s only). A loop is two tasks: its head (initial value and bound: the loop's type) and its end
(`until` and `next`, which read its steps), so that its steps, which read the loop's value, fit between.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, NamedTuple, get_args

from harnessc import ast
from harnessc.lowering.context import STAGE_KINDS, LoweringContext
from harnessc.lowering.declarations import is_declared
from harnessc.lowering.snippets import snippet_template
from harnessc.options import ROLES

# A read: the name and the locals bound where it is read.
_Read = tuple[str, frozenset[str]]


class Task(NamedTuple):
    """One step of lowering: stage `name` (a loop's head), or the end of loop `name`."""

    name: str
    loop_end: bool = False


def lowering_order(ctx: LoweringContext) -> list[Task]:
    """Every stage's tasks, each after the tasks it depends on; the roots are taken in declaration order,
    and the dependencies of a task in the order it reads them (a depth-first post-order, iterative: a
    chain of stages can be thousands long)."""
    graph = _StageGraph(ctx)
    roots: list[Task] = []
    for name, declaration in ctx.declarations.items():
        if declaration.kind in STAGE_KINDS:
            roots.append(Task(name))
        if declaration.kind == "loop":
            roots.append(Task(name, loop_end=True))
    order: list[Task] = []
    entered: set[Task] = set()
    for root in roots:
        if root in entered:
            continue
        entered.add(root)
        work = [(root, iter(graph.dependencies(root)))]
        while work:
            task, pending = work[-1]
            for dependency in pending:
                if dependency not in entered:  # one entered but not done is read in a cycle
                    entered.add(dependency)
                    work.append((dependency, iter(graph.dependencies(dependency))))
                    break
            else:
                work.pop()
                order.append(task)
    return order


def _llm_reads(ctx: LoweringContext, node: ast.LlmStage) -> list[ast.Expr]:
    """The guard, then the messages of the prompt and of the fallback: templates and snippets (a message
    of another kind is an error, not lowered; options are constants)."""
    bodies = [node.body, *([node.otherwise] if node.otherwise is not None else [])]
    messages = [setting.value for body in bodies for setting in body.settings if setting.key.name in ROLES]
    lowered = [
        value
        for value in messages
        if isinstance(value, ast.TemplateLiteral)
        or (isinstance(value, ast.Name) and ctx.kind_of(value.name) == "snippet")
    ]
    return [*([node.guard] if node.guard is not None else []), *lowered]


def _let_reads(ctx: LoweringContext, node: ast.LetStage) -> list[ast.Expr]:
    return [node.value]


def _loop_head_reads(ctx: LoweringContext, node: ast.LoopStage) -> list[ast.Expr]:
    return [node.initial]  # the bound is a constant


# What each kind of stage evaluates (a loop: its head), in the order lowering evaluates it.
_STAGE_READS: dict[type, Callable[[LoweringContext, Any], list[ast.Expr]]] = {
    ast.LlmStage: _llm_reads,
    ast.LetStage: _let_reads,
    ast.LoopStage: _loop_head_reads,
}


@dataclass
class _StageGraph:
    """The edges of the stage graph, computed as the walk reaches each task."""

    ctx: LoweringContext
    snippet_stages: dict[str, tuple[str, ...]] = field(default_factory=dict)  # cache of `_snippet_stages`

    def dependencies(self, task: Task) -> list[Task]:
        node = self.ctx.declarations[task.name].node
        if task.loop_end:
            assert isinstance(node, ast.LoopStage)
            return [Task(task.name), *self._loop_end_dependencies(node)]
        if isinstance(node, ast.LlmStage) and node.each is not None:
            # A fan-out reads its list, then its guard and messages with the item's variable bound.
            each = node.each
            inside = self._stages_read(_STAGE_READS[type(node)](self.ctx, node), frozenset({each.variable.name}))
            return [Task(name) for name in dict.fromkeys([*self._stages_read([each.iterable]), *inside])]
        return [Task(name) for name in self._stages_read(_STAGE_READS[type(node)](self.ctx, node))]

    def _loop_end_dependencies(self, node: ast.LoopStage) -> Iterator[Task]:
        """What a loop's end reads, in the order lowering reads it: the `until`s, the steps, the first
        `next`."""
        untils = [item.condition for item in node.items if isinstance(item, ast.Until)]
        yield from (Task(name) for name in self._stages_read(untils))
        for item in node.items:
            if isinstance(item, (ast.LlmStage, ast.LetStage)) and is_declared(self.ctx, item):
                yield Task(item.name.name)
        nexts = [item.value for item in node.items if isinstance(item, ast.Next)][:1]
        yield from (Task(name) for name in self._stages_read(nexts))

    def _stages_read(self, nodes: Iterable[ast.Expr], local: frozenset[str] = frozenset()) -> list[str]:
        """The stages lowering `nodes` reads, in first-read order, through the snippets they fill in; the
        names in `local` are locals there (a fan-out's variable)."""
        kind_of = self.ctx.kind_of
        found: dict[str, None] = {}
        for name, bound in _reads(self.ctx, nodes, local):
            if kind_of(name) == "snippet":
                found.update((item, None) for item in self._snippet_stages(name) if item not in bound)
            elif kind_of(name) in STAGE_KINDS:
                found[name] = None
        return list(found)

    def _snippet_stages(self, root: str) -> tuple[str, ...]:
        """The stages snippet `root` reads when filled in, but for the locals of the use (the caller's to
        subtract), through the snippets it uses. Iterative (chains of snippets can be long); a snippet in a
        cycle of snippets reads nothing more (the cycle is reported when it is filled in)."""
        ctx, cache = self.ctx, self.snippet_stages
        direct: dict[str, list[_Read]] = {}
        visiting: set[str] = set()
        stack = [root]
        while stack:
            name = stack[-1]
            if name in cache:
                stack.pop()
                continue
            if name not in direct:
                direct[name] = list(_reads(ctx, [snippet_template(ctx, name)], frozenset()))
            used = [item for item, _ in direct[name] if ctx.kind_of(item) == "snippet"]
            missing = [item for item in used if item not in cache and item not in visiting]
            if missing and name not in visiting:
                visiting.add(name)
                stack.extend(missing)
                continue
            found: dict[str, None] = {}
            for item, bound in direct[name]:
                if ctx.kind_of(item) == "snippet":
                    found.update((read, None) for read in cache.get(item, ()) if read not in bound)
                elif ctx.kind_of(item) in STAGE_KINDS:
                    found[item] = None
            cache[name] = tuple(found)
            visiting.discard(name)
            stack.pop()
        return cache[root]


def _reads(ctx: LoweringContext, nodes: Iterable[Any], bound: frozenset[str]) -> Iterator[_Read]:
    """Every name `nodes` read that is not a local, with the locals bound there, in reading order.
    Iterative: expressions and templates nest deeply."""
    stack: list[tuple[Any, frozenset[str]]] = [(node, bound) for node in reversed(list(nodes))]
    while stack:
        node, bound = stack.pop()
        if isinstance(node, ast.Name):
            if node.name not in bound:
                yield node.name, bound
            continue
        stack.extend(reversed(_children(ctx, node, bound)))


def _children(ctx: LoweringContext, node: Any, bound: frozenset[str]) -> list[tuple[Any, frozenset[str]]]:
    """The sub-nodes lowering reads, in its order, with the locals bound for each."""
    if isinstance(node, ast.Comprehension):
        return [(node.iterable, bound), (node.element, bound | {node.variable.name})]
    if isinstance(node, ast.TemplateFor):
        inside = bound | {node.variable.name}
        return [(node.iterable, bound), *((part, inside) for part in node.body)]
    if isinstance(node, ast.Call):
        return [(argument, bound) for argument in _arguments_read(ctx, node)]
    return [(child, bound) for child in _sub_nodes(node)]


def _arguments_read(ctx: LoweringContext, node: ast.Call) -> list[ast.Expr]:
    """The arguments lowering reads: all, but the positional ones beyond a built-in's parameters (reported
    as too many, and not lowered)."""
    builtin = ctx.registry.get(node.function.name)
    count = len(builtin.signature.parameters) if builtin is not None else len(node.arguments)
    values: list[ast.Expr] = []
    keyword_seen = False
    for index, argument in enumerate(node.arguments):
        keyword_seen = keyword_seen or isinstance(argument, ast.KeywordArgument)
        if isinstance(argument, ast.KeywordArgument):
            values.append(argument.value)
        elif keyword_seen or index < count:
            values.append(argument)
    return values


# The nodes that may hold names: every expression and template part (a new kind is walked without more
# code here, its fields in declaration order), and keyword arguments.
_WALKED = (*get_args(ast.Expr), *get_args(ast.TemplatePart), ast.KeywordArgument)
_SUB_NODE_FIELDS: dict[type, tuple[str, ...]] = {}


def _sub_nodes(node: Any) -> Iterator[Any]:
    """The expressions and template parts held by `node`'s fields, in field order (the order lowering
    evaluates them in)."""
    names = _SUB_NODE_FIELDS.get(type(node))
    if names is None:
        names = _SUB_NODE_FIELDS[type(node)] = tuple(item.name for item in dataclasses.fields(node))
    for name in names:
        value = getattr(node, name)
        for item in value if isinstance(value, tuple) else (value,):
            if isinstance(item, _WALKED):
                yield item
