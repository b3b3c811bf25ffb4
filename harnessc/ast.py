"""The syntax tree: what the file says, with a span on every node, before any name is resolved.

Nodes are frozen, slotted, keyword-only dataclasses; sequences are tuples. The tree is complete: the
template syntax inside strings is parsed too (`TemplateLiteral.parts`), so that later passes never parse.
harnessc/lowering/ turns this tree into the typed IR; nothing here knows about types or the stage graph.
The template nodes are named `Template*`, apart from the IR's template parts (`ir.TextPart`, ...).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Union

from harnessc.source import Span


@dataclass(frozen=True, slots=True, kw_only=True)
class Identifier:
    name: str
    span: Span


@dataclass(frozen=True, slots=True, kw_only=True)
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


@dataclass(frozen=True, slots=True, kw_only=True)
class Name:
    name: str
    span: Span


@dataclass(frozen=True, slots=True, kw_only=True)
class FieldAccess:
    value: Expr
    field: Identifier
    span: Span


@dataclass(frozen=True, slots=True, kw_only=True)
class KeywordArgument:
    name: Identifier
    value: Expr
    span: Span


@dataclass(frozen=True, slots=True, kw_only=True)
class Call:
    function: Identifier
    arguments: tuple[Expr | KeywordArgument, ...]
    span: Span


@dataclass(frozen=True, slots=True, kw_only=True)
class TemplateLiteral:
    """A string where a value is computed: a template, its syntax parsed into `parts`
    (harnessc/template_parser.py)."""

    text: Text
    parts: tuple[TemplatePart, ...]
    span: Span
    trim_final_newline: bool = False  # the last line is a lone block tag: the rendering drops one final "\n"


@dataclass(frozen=True, slots=True, kw_only=True)
class StringLiteral:
    """A string where a constant goes (an option's value, a parameter's default, a bank setting): taken
    verbatim, never as a template, so that a regex (`"[0-9]{3}"`) or a JSON schema needs no doubled braces."""

    text: Text
    span: Span


@dataclass(frozen=True, slots=True, kw_only=True)
class Number:
    value: int | float  # 0 or 0.0 when out of range: the type as written, the value unknown
    span: Span
    out_of_range: bool = False  # reported by the parser (number-out-of-range)


@dataclass(frozen=True, slots=True, kw_only=True)
class Boolean:
    value: bool
    span: Span


@dataclass(frozen=True, slots=True, kw_only=True)
class ListLiteral:
    items: tuple[Expr, ...]
    span: Span


@dataclass(frozen=True, slots=True, kw_only=True)
class Comprehension:
    element: Expr
    variable: Identifier
    iterable: Expr
    span: Span


@dataclass(frozen=True, slots=True, kw_only=True)
class Not:
    operand: Expr
    span: Span


@dataclass(frozen=True, slots=True, kw_only=True)
class Logical:
    operator: str  # "and" | "or"
    left: Expr
    right: Expr
    span: Span


@dataclass(frozen=True, slots=True, kw_only=True)
class Comparison:
    operator: str
    left: Expr
    right: Expr
    span: Span


@dataclass(frozen=True, slots=True, kw_only=True)
class Arithmetic:
    operator: str  # "+" | "-" | "*" | "//" | "%"
    left: Expr
    right: Expr
    span: Span


@dataclass(frozen=True, slots=True, kw_only=True)
class Index:
    """`value[index]`: one item of a list."""

    value: Expr
    index: Expr
    span: Span


@dataclass(frozen=True, slots=True, kw_only=True)
class Slice:
    """`value[start:stop]`: a part of a list or a text; either bound may be left out."""

    value: Expr
    start: Expr | None
    stop: Expr | None
    span: Span


Expr = Union[
    Arithmetic,
    Index,
    Slice,
    Name,
    FieldAccess,
    Call,
    TemplateLiteral,
    StringLiteral,
    Number,
    Boolean,
    ListLiteral,
    Comprehension,
    Not,
    Logical,
    Comparison,
]


# ---- templates: the syntax inside a string ----------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class TemplateText:
    """Literal text (`{{` and `}}` already turned into braces)."""

    value: str
    span: Span


@dataclass(frozen=True, slots=True, kw_only=True)
class TemplatePlaceholder:
    """`{expr}`: the value of an expression. `latex`: written right after LaTeX (`\\sqrt{x}`, `x^{n}`), for
    the hint of an unknown name (the braces were perhaps meant as text)."""

    expr: Expr
    span: Span
    latex: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class TemplateIf:
    """`{if condition}then{else}otherwise{end}`."""

    condition: Expr
    then: tuple[TemplatePart, ...]
    otherwise: tuple[TemplatePart, ...]
    span: Span


@dataclass(frozen=True, slots=True, kw_only=True)
class TemplateFor:
    """`{for variable in iterable}body{end}`."""

    variable: Identifier
    iterable: Expr
    body: tuple[TemplatePart, ...]
    span: Span


TemplatePart = Union[TemplateText, TemplatePlaceholder, TemplateIf, TemplateFor]


# ---- types ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class NamedType:
    name: Identifier
    span: Span


@dataclass(frozen=True, slots=True, kw_only=True)
class GenericType:
    name: Identifier
    argument: TypeExpr
    span: Span


@dataclass(frozen=True, slots=True, kw_only=True)
class FieldType:
    name: Identifier
    type: TypeExpr
    span: Span


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordType:
    fields: tuple[FieldType, ...]
    span: Span


TypeExpr = Union[NamedType, GenericType, RecordType]


# ---- declarations ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Setting:
    """`key value` inside a body: a message (`user "..."`) or an option (`temperature 0.6`)."""

    key: Identifier
    value: Expr
    span: Span


@dataclass(frozen=True, slots=True, kw_only=True)
class Header:
    name: Identifier
    description: Text | None
    span: Span


@dataclass(frozen=True, slots=True, kw_only=True)
class Import:
    path: Text
    span: Span


@dataclass(frozen=True, slots=True, kw_only=True)
class InputDecl:
    name: Identifier
    type: TypeExpr
    flags: tuple[Identifier, ...]
    span: Span


@dataclass(frozen=True, slots=True, kw_only=True)
class ParamDecl:
    name: Identifier
    type: TypeExpr
    default: Expr
    span: Span


@dataclass(frozen=True, slots=True, kw_only=True)
class SnippetDecl:
    name: Identifier
    template: TemplateLiteral
    span: Span


@dataclass(frozen=True, slots=True, kw_only=True)
class BankField:
    name: Identifier
    type: TypeExpr
    value: Expr
    span: Span


@dataclass(frozen=True, slots=True, kw_only=True)
class BankDecl:
    name: Identifier
    fields: tuple[BankField, ...]
    settings: tuple[Setting, ...]
    span: Span


@dataclass(frozen=True, slots=True, kw_only=True)
class Body:
    settings: tuple[Setting, ...]
    span: Span


@dataclass(frozen=True, slots=True, kw_only=True)
class FanOut:
    """`for NAME in ITERABLE max BOUND` after a stage's name: one generation per item of a list."""

    variable: Identifier
    iterable: Expr
    bound: Expr | None
    span: Span


@dataclass(frozen=True, slots=True, kw_only=True)
class LlmStage:
    name: Identifier
    guard: Expr | None
    body: Body
    otherwise: Body | None
    span: Span
    each: FanOut | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class LetStage:
    name: Identifier
    value: Expr
    span: Span


@dataclass(frozen=True, slots=True, kw_only=True)
class Until:
    condition: Expr
    span: Span


@dataclass(frozen=True, slots=True, kw_only=True)
class Next:
    value: Expr
    span: Span


@dataclass(frozen=True, slots=True, kw_only=True)
class LoopStage:
    name: Identifier
    initial: Expr
    bound: Expr | None
    items: tuple[LlmStage | LetStage | Until | Next, ...]
    span: Span


@dataclass(frozen=True, slots=True, kw_only=True)
class StudentView:
    body: Body
    span: Span


@dataclass(frozen=True, slots=True, kw_only=True)
class TeacherTemplate:
    body: Body
    span: Span


@dataclass(frozen=True, slots=True, kw_only=True)
class TeacherChain:
    names: tuple[Identifier, ...]
    span: Span


@dataclass(frozen=True, slots=True, kw_only=True)
class OutputDecl:
    value: Expr
    span: Span


@dataclass(frozen=True, slots=True, kw_only=True)
class StudentOutputDecl:
    value: Expr
    span: Span


@dataclass(frozen=True, slots=True, kw_only=True)
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


@dataclass(frozen=True, slots=True, kw_only=True)
class Module:
    path: str
    header: Header | None
    items: tuple[Item, ...]
    span: Span
