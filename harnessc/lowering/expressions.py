"""Expressions: one function per syntax node kind, each typing its node from its lowered children.

The kinds with a module of their own: names (lowering/references.py), calls (lowering/calls.py), template
literals (lowering/templates.py). A value that may be absent has an optional type (`T?`); conditions treat
absent as false, and a mistake gives the type `any`, which matches everything (one diagnostic, no cascade).
"""

from __future__ import annotations

from harnessc import ast, ir
from harnessc.lowering.context import LoweringContext, Scope
from harnessc.names import did_you_mean
from harnessc.types import (
    ANY,
    BOOL,
    FLOAT,
    INT,
    TEXT,
    AnyType,
    ListOf,
    Optional_,
    Record,
    Type,
    make_optional,
    strip_optional,
    unify,
)


def lower_condition(ctx: LoweringContext, node: ast.Expr, scope: Scope) -> ir.Expr:
    """An expression that must be a bool (absent counts as false)."""
    value = ctx.lower_expr(node, scope)
    if not unify(BOOL, strip_optional(value.type), {}):
        ctx.error(
            "type-mismatch",
            f"a condition must be bool, but this is {value.type}",
            node.span,
            f"this is {value.type}",
            ("test text or lists with nonempty(...)",),
        )
    return value


def lower_number(ctx: LoweringContext, node: ast.Number, scope: Scope) -> ir.Expr:
    # A number out of range (reported by the parser) has no value: no range check compares it again.
    value = None if node.out_of_range else node.value
    return ir.Literal(value=value, type=INT if isinstance(node.value, int) else FLOAT, span=node.span)


def lower_boolean(ctx: LoweringContext, node: ast.Boolean, scope: Scope) -> ir.Expr:
    return ir.Literal(value=node.value, type=BOOL, span=node.span)


def lower_string(ctx: LoweringContext, node: ast.StringLiteral, scope: Scope) -> ir.Expr:
    """A string where a constant goes (an option, a parameter's default): its text, verbatim."""
    return ir.Literal(value=node.text.value, type=TEXT, span=node.span)


def lower_list(ctx: LoweringContext, node: ast.ListLiteral, scope: Scope) -> ir.Expr:
    items = tuple(ctx.lower_expr(item, scope) for item in node.items)
    item_type: Type = ANY
    for item in items:
        if isinstance(item_type, AnyType):
            item_type = item.type
        elif not unify(item_type, item.type, {}):
            ctx.error(
                "type-mismatch",
                f"list items must share one type: {item_type} and {item.type}",
                item.span,
                f"this is {item.type}",
            )
    typ = ListOf(item_type)
    literals = [item for item in items if isinstance(item, ir.Literal)]
    if len(literals) == len(items):  # a constant, as an option's value or a parameter's default must be
        return ir.Literal(value=tuple(item.value for item in literals), type=typ, span=node.span)
    return ir.ListExpr(items=items, type=typ, span=node.span)


def lower_field_access(ctx: LoweringContext, node: ast.FieldAccess, scope: Scope) -> ir.Expr:
    value = ctx.lower_expr(node.value, scope)
    base = strip_optional(value.type)
    typ: Type = ANY
    if isinstance(base, Record):
        found = base.field(node.field.name)
        if found is None:
            ctx.error(
                "unknown-field",
                f"{describe(node.value)} has no field `{node.field.name}`",
                node.field.span,
                "no such field",
                did_you_mean(node.field.name, [name for name, _ in base.fields]),
            )
        else:
            typ = make_optional(found) if isinstance(value.type, Optional_) else found
    elif not isinstance(base, AnyType):
        ctx.error(
            "unknown-field",
            f"{describe(node.value)} is {base}, which has no fields",
            node.field.span,
            "no such field",
        )
    return ir.FieldRef(value=value, field=node.field.name, type=typ, span=node.span)


def lower_comprehension(ctx: LoweringContext, node: ast.Comprehension, scope: Scope) -> ir.Expr:
    iterable = ctx.lower_expr(node.iterable, scope)
    item = item_type(ctx, iterable, "a comprehension iterates over")
    element = ctx.lower_expr(node.element, scope.bind(node.variable.name, item))
    typ: Type = ListOf(element.type)
    if isinstance(iterable.type, Optional_):
        typ = make_optional(typ)
    return ir.ComprehensionExpr(
        variable=node.variable.name, iterable=iterable, element=element, type=typ, span=node.span
    )


def item_type(ctx: LoweringContext, iterable: ir.Expr, what: str) -> Type:
    """The type of the items of a list iterated over (`{for}`, comprehensions); `any` if not a list."""
    base = strip_optional(iterable.type)
    if isinstance(base, ListOf):
        return base.item
    if not isinstance(base, AnyType):
        ctx.error(
            "type-mismatch",
            f"{what} a list, but this is {iterable.type}",
            iterable.span,
            f"this is {iterable.type}",
        )
    return ANY


def lower_not(ctx: LoweringContext, node: ast.Not, scope: Scope) -> ir.Expr:
    operand = lower_condition(ctx, node.operand, scope)
    return ir.NotExpr(operand=operand, type=BOOL, span=node.span)


def lower_logical(ctx: LoweringContext, node: ast.Logical, scope: Scope) -> ir.Expr:
    left = lower_condition(ctx, node.left, scope)
    right = lower_condition(ctx, node.right, scope)
    return ir.LogicExpr(operator=node.operator, left=left, right=right, type=BOOL, span=node.span)


def lower_comparison(ctx: LoweringContext, node: ast.Comparison, scope: Scope) -> ir.Expr:
    left = ctx.lower_expr(node.left, scope)
    right = ctx.lower_expr(node.right, scope)
    left_type, right_type = strip_optional(left.type), strip_optional(right.type)
    numeric = {INT, FLOAT}
    if node.operator in ("==", "!="):
        compatible = unify(left_type, right_type, {}) or unify(right_type, left_type, {})
    else:
        compatible = all(isinstance(t, AnyType) or t in numeric for t in (left_type, right_type))
    if not compatible:
        ctx.error(
            "type-mismatch",
            f"cannot compare {left.type} {node.operator} {right.type}",
            node.span,
            "incompatible operands",
        )
    return ir.CompareExpr(operator=node.operator, left=left, right=right, type=BOOL, span=node.span)


def lower_arithmetic(ctx: LoweringContext, node: ast.Arithmetic, scope: Scope) -> ir.Expr:
    """Integer arithmetic: both operands `int` (or `int?`: absent in, absent out)."""
    left = ctx.lower_expr(node.left, scope)
    right = ctx.lower_expr(node.right, scope)
    for operand in (left, right):
        if not _is_int(operand.type):
            ctx.error(
                "type-mismatch",
                f"`{node.operator}` takes int operands, but this is {operand.type}",
                operand.span,
                f"this is {operand.type}",
                ('arithmetic is on whole numbers only; combine texts with a template: "{a}{b}"',)
                if strip_optional(operand.type) == TEXT
                else (),
            )
    optional = isinstance(left.type, Optional_) or isinstance(right.type, Optional_)
    typ: Type = make_optional(INT) if optional else INT
    return ir.ArithmeticExpr(operator=node.operator, left=left, right=right, type=typ, span=node.span)


def lower_index(ctx: LoweringContext, node: ast.Index, scope: Scope) -> ir.Expr:
    """`list[i]`: the item's type (absent in, absent out); an index outside the list fails the example."""
    value = ctx.lower_expr(node.value, scope)
    index = ctx.lower_expr(node.index, scope)
    _require_int(ctx, index, "an index")
    item = item_type(ctx, value, "`[...]` takes an item of")
    optional = isinstance(value.type, Optional_) or isinstance(index.type, Optional_)
    typ = make_optional(item) if optional and not isinstance(item, AnyType) else item
    return ir.IndexExpr(value=value, index=index, type=typ, span=node.span)


def lower_slice(ctx: LoweringContext, node: ast.Slice, scope: Scope) -> ir.Expr:
    """`xs[a:b]`: a list or text of the same type; bounds are ints, as Python slices."""
    value = ctx.lower_expr(node.value, scope)
    start = ctx.lower_expr(node.start, scope) if node.start is not None else None
    stop = ctx.lower_expr(node.stop, scope) if node.stop is not None else None
    for bound in (start, stop):
        if bound is not None:
            _require_int(ctx, bound, "a slice bound")
    base = strip_optional(value.type)
    if not isinstance(base, (ListOf, AnyType)) and base != TEXT:
        ctx.error(
            "type-mismatch",
            f"`[a:b]` takes a part of a list or a text, but this is {value.type}",
            value.span,
            f"this is {value.type}",
        )
    optional = any(isinstance(item.type, Optional_) for item in (value, start, stop) if item is not None)
    typ = make_optional(base) if optional and not isinstance(base, AnyType) else base
    return ir.SliceExpr(value=value, start=start, stop=stop, type=typ, span=node.span)


def _is_int(typ: Type) -> bool:
    base = strip_optional(typ)
    return isinstance(base, AnyType) or base == INT


def _require_int(ctx: LoweringContext, value: ir.Expr, what: str) -> None:
    if not _is_int(value.type):
        ctx.error("type-mismatch", f"{what} must be int, but this is {value.type}", value.span, f"this is {value.type}")


def describe(node: ast.Expr) -> str:
    """How a message names a value: `name`, `record.field`, or "this value"."""
    if isinstance(node, ast.Name):
        return f"`{node.name}`"
    if isinstance(node, ast.FieldAccess):
        inner = describe(node.value).strip("`")
        return f"`{inner}.{node.field.name}`"
    return "this value"
