"""The syntax tree: what the file says, with a span on every node, before any name is resolved.

Nodes are frozen, slotted, keyword-only dataclasses; sequences are tuples. `lower.py` turns this tree into
the typed IR; nothing here knows about types or the stage graph.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Union

from harnessc.source import Span

_node = dataclass(frozen=True, slots=True, kw_only=True)


@_node
class Identifier:
    name: str
    span: Span


@_node
class Text:
    """A decoded string literal. `offsets[i]` is the source offset of `value[i]` (escapes and dedent make
    the two differ), so that template diagnostics can point inside the string. The offsets are a `range`
    or an `array` of 64-bit integers, not a tuple: 8 bytes a character at most, for strings of megabytes.
    They are left out of comparisons (the span tells two literals apart), which an array could not hash."""

    value: str
    offsets: Sequence[int] = field(compare=False)
    span: Span
    long: bool


# ---- expressions ----------------------------------------------------------------------------------


@_node
class Name:
    name: str
    span: Span


@_node
class FieldAccess:
    value: Expr
    field: Identifier
    span: Span


@_node
class KeywordArgument:
    name: Identifier
    value: Expr
    span: Span


@_node
class Call:
    function: Identifier
    arguments: tuple[Expr | KeywordArgument, ...]
    span: Span


@_node
class TemplateLiteral:
    text: Text
    span: Span


@_node
class Number:
    value: int | float  # 0 or 0.0 when out of range: the type as written, the value unknown
    span: Span
    out_of_range: bool = False  # reported by the parser (number-out-of-range)


@_node
class Boolean:
    value: bool
    span: Span


@_node
class ListLiteral:
    items: tuple[Expr, ...]
    span: Span


@_node
class Comprehension:
    element: Expr
    variable: Identifier
    iterable: Expr
    span: Span


@_node
class Not:
    operand: Expr
    span: Span


@_node
class Logical:
    operator: str  # "and" | "or"
    left: Expr
    right: Expr
    span: Span


@_node
class Comparison:
    operator: str
    left: Expr
    right: Expr
    span: Span


Expr = Union[
    Name, FieldAccess, Call, TemplateLiteral, Number, Boolean, ListLiteral, Comprehension, Not, Logical, Comparison
]


# ---- types ----------------------------------------------------------------------------------------


@_node
class NamedType:
    name: Identifier
    span: Span


@_node
class GenericType:
    name: Identifier
    argument: TypeExpr
    span: Span


@_node
class FieldType:
    name: Identifier
    type: TypeExpr
    span: Span


@_node
class RecordType:
    fields: tuple[FieldType, ...]
    span: Span


TypeExpr = Union[NamedType, GenericType, RecordType]


# ---- declarations ---------------------------------------------------------------------------------


@_node
class Setting:
    """`key value` inside a body: a message (`user "..."`) or an option (`temperature 0.6`)."""

    key: Identifier
    value: Expr
    span: Span


@_node
class Header:
    name: Identifier
    description: Text | None
    span: Span


@_node
class Import:
    path: Text
    span: Span


@_node
class InputDecl:
    name: Identifier
    type: TypeExpr
    flags: tuple[Identifier, ...]
    span: Span


@_node
class ParamDecl:
    name: Identifier
    type: TypeExpr
    default: Expr
    span: Span


@_node
class SnippetDecl:
    name: Identifier
    text: Text
    span: Span


@_node
class BankField:
    name: Identifier
    type: TypeExpr
    value: Expr
    span: Span


@_node
class BankDecl:
    name: Identifier
    fields: tuple[BankField, ...]
    settings: tuple[Setting, ...]
    span: Span


@_node
class Body:
    settings: tuple[Setting, ...]
    span: Span


@_node
class LlmStage:
    name: Identifier
    guard: Expr | None
    body: Body
    otherwise: Body | None
    span: Span


@_node
class LetStage:
    name: Identifier
    value: Expr
    span: Span


@_node
class Until:
    condition: Expr
    span: Span


@_node
class Next:
    value: Expr
    span: Span


@_node
class LoopStage:
    name: Identifier
    initial: Expr
    bound: Expr | None
    items: tuple[LlmStage | LetStage | Until | Next, ...]
    span: Span


@_node
class StudentView:
    body: Body
    span: Span


@_node
class TeacherTemplate:
    body: Body
    span: Span


@_node
class TeacherChain:
    names: tuple[Identifier, ...]
    span: Span


@_node
class OutputDecl:
    value: Expr
    span: Span


@_node
class StudentOutputDecl:
    value: Expr
    span: Span


@_node
class GradeDecl:
    value: Expr
    span: Span


Item = Union[
    Import,
    InputDecl,
    ParamDecl,
    SnippetDecl,
    BankDecl,
    LlmStage,
    LetStage,
    LoopStage,
    StudentView,
    TeacherTemplate,
    TeacherChain,
    OutputDecl,
    StudentOutputDecl,
    GradeDecl,
]


@_node
class Module:
    path: str
    header: Header | None
    items: tuple[Item, ...]
    span: Span
