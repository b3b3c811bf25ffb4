"""Types as written (`list[text]`, `record{a: int}`) → harnessc.types, and the declared types of names.

An unknown type is reported where it is written and becomes `any`; the types of inputs, parameters and
banks are read from their declarations wherever they are used (`report=False`: reported once, there).
"""

from __future__ import annotations

from collections.abc import Sequence

from harnessc import ast, ir
from harnessc.diagnostics import Label
from harnessc.lowering.context import LoweringContext
from harnessc.names import did_you_mean
from harnessc.source import Span
from harnessc.types import ANY, SCALARS, Bank, ListOf, Optional_, Record, Type, make_optional, unify

# Type names from other languages, mapped to the harness language's own (for the "unknown type" hint).
_TYPE_SYNONYMS = {
    "string": "text",
    "str": "text",
    "integer": "int",
    "boolean": "bool",
    "number": "float",
    "double": "float",
    "array": "list[T]",
    "dict": "record{...}",
    "object": "record{...}",
}


def lower_type(ctx: LoweringContext, node: ast.TypeExpr, *, report: bool = True) -> Type:
    if isinstance(node, ast.RecordType):
        if report:
            check_unique_fields(ctx, node.fields, "record")
        return Record(tuple((item.name.name, lower_type(ctx, item.type, report=report)) for item in node.fields))
    if isinstance(node, ast.GenericType):
        if node.name.name == "list":
            return ListOf(lower_type(ctx, node.argument, report=report))
        if report:
            ctx.error(
                "unknown-type",
                f"unknown type `{node.name.name}[...]`",
                node.name.span,
                "not a type",
                did_you_mean(node.name.name, ["list"]) or ("the generic type is `list[T]`",),
            )
        return ANY
    name = node.name.name
    if name in SCALARS:
        return SCALARS[name]
    if report:
        if name == "list":
            hint: tuple[str, ...] = ("a list is written `list[text]`",)
        elif name.lower() in _TYPE_SYNONYMS:
            hint = (f"the language calls this type `{_TYPE_SYNONYMS[name.lower()]}`",)
        else:
            hint = did_you_mean(name, [*SCALARS, "list", "record"])
        ctx.error("unknown-type", f"unknown type `{name}`", node.name.span, "not a type", hint)
    return ANY


def check_unique_fields(ctx: LoweringContext, fields: Sequence[ast.FieldType | ast.BankField], what: str) -> None:
    first: dict[str, Span] = {}
    for item in fields:
        if item.name.name in first:
            ctx.error(
                "duplicate-definition",
                f"the {what} has two fields named `{item.name.name}`",
                item.name.span,
                "defined again here",
                labels=(Label(first[item.name.name], "first defined here"),),
            )
        first.setdefault(item.name.name, item.name.span)


def expect_type(ctx: LoweringContext, value: ir.Expr, expected: Type, what: str) -> None:
    if not unify(expected, value.type, {}) or (
        isinstance(value.type, Optional_) and not isinstance(expected, Optional_)
    ):
        ctx.error(
            "type-mismatch",
            f"{what} must be {expected}, but this is {value.type}",
            value.span,
            f"this is {value.type}",
        )


def declared_type(ctx: LoweringContext, node: ast.InputDecl | ast.ParamDecl | ast.BankDecl) -> Type:
    """The type of an input (optional if declared so), a parameter or a bank, as its declaration says."""
    if isinstance(node, ast.BankDecl):
        fields = tuple((item.name.name, lower_type(ctx, item.type, report=False)) for item in node.fields)
        return Bank(Record(fields))
    typ = lower_type(ctx, node.type, report=False)
    optional = isinstance(node, ast.InputDecl) and any(flag.name == "optional" for flag in node.flags)
    return make_optional(typ) if optional else typ
