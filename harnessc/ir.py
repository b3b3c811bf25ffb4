"""The IR: a typed stage graph. Immutable pure data with a span on every node, serialisable to JSON.

Both consumers read this: the batched runtime (`harnessc run`) and the trainer's teacher-context builder.
Names are resolved, types are computed, templates are parsed, defaults are filled; nothing here refers
back to the syntax tree.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Union
from typing import Literal as TypingLiteral

from harnessc.source import Span
from harnessc.types import Record, Type, parse_type

RefKind = TypingLiteral["input", "param", "bank", "stage", "loop", "local", "student", "output"]
Role = TypingLiteral["system", "user", "assistant"]


# ---- expressions -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Literal:
    value: Any  # str | int | float | bool | tuple of those
    type: Type
    span: Span


@dataclass(frozen=True, slots=True, kw_only=True)
class Ref:
    """A reference to a declared name. `kind` says what it names; `type` is the type at this use."""

    name: str
    kind: RefKind
    type: Type
    span: Span


@dataclass(frozen=True, slots=True, kw_only=True)
class FieldRef:
    value: Expr
    field: str
    type: Type
    span: Span


@dataclass(frozen=True, slots=True, kw_only=True)
class CallExpr:
    """A built-in call; `arguments` follow the signature's order with defaults filled in."""

    function: str
    arguments: tuple[Expr, ...]
    type: Type
    span: Span


@dataclass(frozen=True, slots=True, kw_only=True)
class ListExpr:
    items: tuple[Expr, ...]
    type: Type
    span: Span


@dataclass(frozen=True, slots=True, kw_only=True)
class ComprehensionExpr:
    variable: str
    iterable: Expr
    element: Expr
    type: Type
    span: Span


@dataclass(frozen=True, slots=True, kw_only=True)
class NotExpr:
    operand: Expr
    type: Type
    span: Span


@dataclass(frozen=True, slots=True, kw_only=True)
class LogicExpr:
    operator: str  # "and" | "or"
    left: Expr
    right: Expr
    type: Type
    span: Span


@dataclass(frozen=True, slots=True, kw_only=True)
class CompareExpr:
    operator: str
    left: Expr
    right: Expr
    type: Type
    span: Span


@dataclass(frozen=True, slots=True, kw_only=True)
class ArithmeticExpr:
    """Integer arithmetic (`+ - * // %`, Python's floor semantics); `//` or `%` by zero fails the example."""

    operator: str
    left: Expr
    right: Expr
    type: Type
    span: Span


@dataclass(frozen=True, slots=True, kw_only=True)
class IndexExpr:
    """One item of a list, counted from 0 (negative: from the end); outside the list fails the example."""

    value: Expr
    index: Expr
    type: Type
    span: Span


@dataclass(frozen=True, slots=True, kw_only=True)
class SliceExpr:
    """A part of a list or text, as Python slices it (never fails); a bound left out is None."""

    value: Expr
    start: Expr | None
    stop: Expr | None
    type: Type
    span: Span


@dataclass(frozen=True, slots=True, kw_only=True)
class TemplateExpr:
    template: Template
    type: Type
    span: Span


Expr = Union[
    Literal,
    Ref,
    FieldRef,
    CallExpr,
    ListExpr,
    ComprehensionExpr,
    NotExpr,
    LogicExpr,
    CompareExpr,
    ArithmeticExpr,
    IndexExpr,
    SliceExpr,
    TemplateExpr,
]


# ---- templates ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class TextPart:
    value: str
    span: Span


@dataclass(frozen=True, slots=True, kw_only=True)
class ValuePart:
    value: Expr
    span: Span


@dataclass(frozen=True, slots=True, kw_only=True)
class IfPart:
    """Shown when `condition` is present and truthy (non-empty text or list, true, non-zero)."""

    condition: Expr
    then: tuple[Part, ...]
    otherwise: tuple[Part, ...]
    span: Span


@dataclass(frozen=True, slots=True, kw_only=True)
class ForPart:
    variable: str
    iterable: Expr
    body: tuple[Part, ...]
    span: Span


Part = Union[TextPart, ValuePart, IfPart, ForPart]


@dataclass(frozen=True, slots=True, kw_only=True)
class Template:
    """`trim_final_newline`: the string's last line is a lone block tag, so the rendering drops one final
    line break (docs/language.md, "Block tags on their own line")."""

    parts: tuple[Part, ...]
    span: Span
    trim_final_newline: bool = False


# ---- declarations and stages ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Input:
    name: str
    type: Type
    optional: bool
    oracle: bool
    span: Span


@dataclass(frozen=True, slots=True, kw_only=True)
class Param:
    name: str
    type: Type
    default: Literal
    span: Span


@dataclass(frozen=True, slots=True, kw_only=True)
class BankField:
    name: str
    type: Type
    value: Expr
    span: Span


@dataclass(frozen=True, slots=True, kw_only=True)
class Bank:
    """A memory bank: entries built from each training example with `fields`; searched on `search_field`."""

    name: str
    entry: Record
    fields: tuple[BankField, ...]
    search_field: str
    label_field: str | None
    file: str | None
    span: Span


@dataclass(frozen=True, slots=True, kw_only=True)
class Message:
    role: Role
    template: Template
    span: Span


@dataclass(frozen=True, slots=True, kw_only=True)
class Option:
    """A sampling option, chat-template switch or output constraint; `value` is a constant expression."""

    name: str
    value: Expr
    span: Span


@dataclass(frozen=True, slots=True, kw_only=True)
class Prompt:
    """Chat messages plus the options they are sampled with."""

    messages: tuple[Message, ...]
    options: tuple[Option, ...]
    span: Span

    def option(self, name: str) -> Option | None:
        return next((option for option in self.options if option.name == name), None)


@dataclass(frozen=True, slots=True, kw_only=True)
class FanOut:
    """A fan-out: the stage's prompt is rendered once per item of `iterable` (a list), with the item bound
    to the local `variable`; at most `max_items` items (a constant: a literal or a `param`)."""

    variable: str
    iterable: Expr
    max_items: Expr
    span: Span


@dataclass(frozen=True, slots=True, kw_only=True)
class LlmStage:
    """A generation. With a `guard`, it runs only when the guard holds; otherwise the `fallback` prompt
    runs if there is one, and else the stage is absent. With `each` (a fan-out), one generation per item
    of a list, and the stage's value is the list of their values, in order."""

    name: str
    prompt: Prompt
    guard: Expr | None
    fallback: Prompt | None
    loop: str | None
    type: Type
    name_span: Span
    span: Span
    each: FanOut | None = dataclasses.field(default=None, metadata={"omit_default": True})


@dataclass(frozen=True, slots=True, kw_only=True)
class LetStage:
    name: str
    value: Expr
    loop: str | None
    type: Type
    name_span: Span
    span: Span


@dataclass(frozen=True, slots=True, kw_only=True)
class Until:
    condition: Expr
    span: Span


@dataclass(frozen=True, slots=True, kw_only=True)
class LoopStage:
    """A bounded refinement loop. `name` holds the loop-carried value: `initial` first, then `next` after
    each iteration; `steps` run in order (stage names and the `until` exit test) at most `max_iterations`
    times (a constant: a literal or a `param`)."""

    name: str
    initial: Expr
    max_iterations: Expr
    steps: tuple[str | Until, ...]
    next: Expr
    type: Type
    name_span: Span
    span: Span

    @property
    def loop(self) -> None:
        """The loop a stage is inside, as for the other stages: none, as loops do not nest."""
        return None


Stage = Union[LlmStage, LetStage, LoopStage]


@dataclass(frozen=True, slots=True, kw_only=True)
class TeacherChain:
    """The teacher context is the rendered prompt of the first of `stages` that ran (`student` last)."""

    stages: tuple[str, ...]
    span: Span


@dataclass(frozen=True, slots=True, kw_only=True)
class Harness:
    name: str
    description: str
    inputs: tuple[Input, ...]
    params: tuple[Param, ...]
    banks: tuple[Bank, ...]
    stages: tuple[Stage, ...]  # topologically ordered; stages inside a loop follow their loop
    student: Prompt | None
    teacher: TeacherChain | Prompt | None
    output: Expr | None
    student_output: Expr | None
    grade: Expr | None
    files: tuple[str, ...]
    name_span: Span  # the header's name (where file-level diagnostics point)
    span: Span

    # name → stage, for O(1) lookups: built once, as the harness is immutable; not a field of the data (it is
    # left out of comparisons, repr, JSON and `dataclasses.replace`, which builds it anew).
    _stage_index: dict[str, Stage] = dataclasses.field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # The first stage of a name wins (duplicate names are reported; the first one is the definition).
        object.__setattr__(self, "_stage_index", {stage.name: stage for stage in reversed(self.stages)})

    def stage(self, name: str) -> Stage | None:
        return self._stage_index.get(name)

    def input(self, name: str) -> Input | None:
        return next((item for item in self.inputs if item.name == name), None)

    def param(self, name: str) -> Param | None:
        return next((item for item in self.params if item.name == name), None)

    def llm_stages(self) -> tuple[LlmStage, ...]:
        return tuple(stage for stage in self.stages if isinstance(stage, LlmStage))


# ---- traversal -------------------------------------------------------------------------------------------


_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


# Fields that never hold IR nodes, by their annotation: `children` does not look into them.
_LEAF_FIELDS = {"Span", "Type", "Record", "str", "str | None", "bool", "RefKind", "Role", "tuple[str, ...]"}


def _data_fields(cls: type) -> list[dataclasses.Field]:
    """A node class's fields, without those computed from the others (`Harness._stage_index`)."""
    return [item for item in dataclasses.fields(cls) if item.init]


def _node_fields(cls: type) -> tuple[str, ...]:
    names = _FIELD_NAMES.get(cls)
    if names is None:
        names = _FIELD_NAMES[cls] = tuple(
            item.name
            for item in _data_fields(cls)
            if item.type not in _LEAF_FIELDS and not str(item.type).startswith("TypingLiteral[")
        )
    return names


def children(node: Any) -> Iterator[Any]:
    """The IR nodes directly inside `node` (in field order)."""
    for name in _node_fields(type(node)):
        value = getattr(node, name)
        for item in value if isinstance(value, tuple) else (value,):
            if type(item) in _NODE_CLASSES:
                yield item


def walk(node: Any) -> Iterator[Any]:
    """`node` and every IR node below it, depth first (iteratively: no recursion limit on deep trees)."""
    stack = [node]
    classes = _NODE_CLASSES
    while stack:
        item = stack.pop()
        yield item
        found = []
        for name in _node_fields(type(item)):
            value = getattr(item, name)
            if isinstance(value, tuple):
                found += [child for child in value if type(child) in classes]
            elif type(value) in classes:
                found.append(value)
        found.reverse()
        stack += found


def references(node: Any) -> Iterator[Ref]:
    return (item for item in walk(node) if isinstance(item, Ref))


# ---- JSON ------------------------------------------------------------------------------------------------

_NODE_TYPES: dict[str, type] = {}


def _register_nodes() -> None:
    for value in list(globals().values()):
        if isinstance(value, type) and dataclasses.is_dataclass(value) and value.__module__ == __name__:
            _NODE_TYPES[value.__name__] = value
    _NODE_CLASSES.update(_NODE_TYPES.values())


_NODE_CLASSES: set[type] = set()  # the IR's node classes, what `children` yields


def to_json(node: Any) -> Any:
    """A JSON-ready form: nodes become objects tagged with "node"; types their spelling; tuples lists."""
    if isinstance(node, Span):
        return node.to_json()
    if dataclasses.is_dataclass(node) and type(node).__name__ in _NODE_TYPES:
        data: dict[str, Any] = {"node": type(node).__name__}
        for item in _data_fields(type(node)):
            value = getattr(node, item.name)
            if item.default is not dataclasses.MISSING and value == item.default:
                continue  # a default is left out (and read back as the default)
            data[item.name] = str(value) if _is_type_field(item) else to_json(value)
        return data
    if isinstance(node, tuple):
        return [to_json(item) for item in node]
    return node


def from_json(data: Any) -> Any:
    """The inverse of to_json: `from_json(to_json(harness)) == harness`."""
    if isinstance(data, list):
        return tuple(from_json(item) for item in data)
    if not isinstance(data, dict):
        return data
    if "node" not in data:
        return Span.from_json(data)
    cls = _NODE_TYPES[data["node"]]
    values = {}
    for item in _data_fields(cls):
        if item.name not in data and item.default is not dataclasses.MISSING:
            continue
        raw = data[item.name]
        values[item.name] = parse_type(raw) if _is_type_field(item) else from_json(raw)
    return cls(**values)


def _is_type_field(item: dataclasses.Field) -> bool:
    return item.type in ("Type", "Record")


def dumps(harness: Harness) -> str:
    return json.dumps(to_json(harness), indent=1, ensure_ascii=False)


def loads(text: str) -> Harness:
    harness = from_json(json.loads(text))
    if not isinstance(harness, Harness):
        raise ValueError("not a serialised harness")
    return harness


_register_nodes()
