"""Typing a built-in call: bind arguments to the signature, unify types, propagate absence.

An argument that may be absent (`T?`) passed where the signature wants `T` makes the whole call absent
when it is: `extract_boxed(solve)` is `text?` when `solve` is guarded. Conditions treat absent as false.
"""

from __future__ import annotations

from harnessc import ast, ir
from harnessc.builtins.registry import Builtin, Parameter
from harnessc.diagnostics import Label
from harnessc.lowering.context import LoweringContext, Scope
from harnessc.names import did_you_mean
from harnessc.types import ANY, AnyType, Optional_, Type, make_optional, substitute, unify


def lower_call(ctx: LoweringContext, node: ast.Call, scope: Scope) -> ir.Expr:
    name = node.function.name
    builtin = ctx.registry.get(name)
    if builtin is None:
        # The arguments are still lowered (their own mistakes are reported) and kept in the call, so that the
        # stages they read count as used: a misspelled built-in must not also make `solve` "unused".
        arguments = tuple(
            ctx.lower_expr(argument.value if isinstance(argument, ast.KeywordArgument) else argument, scope)
            for argument in node.arguments
        )
        ctx.error(
            "unknown-builtin",
            f"unknown built-in `{name}`",
            node.function.span,
            "not a built-in",
            did_you_mean(name, ctx.registry.names()) or ("`harnessc builtins` lists them all",),
        )
        return ir.CallExpr(function=name, arguments=arguments, type=ANY, span=node.span)
    bound = _bind_arguments(ctx, builtin, node, scope)
    return _typed_call(ctx, builtin, bound, node)


def _bind_arguments(ctx: LoweringContext, builtin: Builtin, node: ast.Call, scope: Scope) -> dict[str, ir.Expr]:
    parameters = {parameter.name: parameter for parameter in builtin.signature.parameters}
    order = list(parameters)
    bound: dict[str, ir.Expr] = {}
    seen_keyword = False
    for index, argument in enumerate(node.arguments):
        if isinstance(argument, ast.KeywordArgument):
            seen_keyword = True
            _bind_keyword(ctx, builtin, argument, parameters, bound, scope)
        elif seen_keyword:
            ctx.error(
                "argument-count",
                "a positional argument cannot follow a keyword argument",
                argument.span,
                "positional after keyword",
                ("give it by name, or move it before the keyword arguments",),
            )
            # Bind it to the first parameter still free, so that it is not reported missing as well.
            free = [name for name in order if name not in bound]
            value = ctx.lower_expr(argument, scope)
            if free:
                bound[free[0]] = value
        elif index >= len(order):
            ctx.error(
                "argument-count",
                f"`{builtin.name}` takes at most {len(order)} argument"
                f"{'' if len(order) == 1 else 's'}, but {len(node.arguments)} were given",
                argument.span,
                "one too many" if index == len(order) else "too many",
                (f"signature: {builtin.signature}",),
            )
        else:
            bound[order[index]] = ctx.lower_expr(argument, scope)
    return bound


def _bind_keyword(
    ctx: LoweringContext,
    builtin: Builtin,
    argument: ast.KeywordArgument,
    parameters: dict[str, Parameter],
    bound: dict[str, ir.Expr],
    scope: Scope,
) -> None:
    key = argument.name.name
    value = ctx.lower_expr(argument.value, scope)
    if key not in parameters:
        # `top_k=` for `k=`: a parameter that is one word of the name given is as likely as a near-miss.
        within = [name for name in parameters if name in key.split("_") and name != key]
        hints = did_you_mean(key, parameters) or ((f"did you mean `{within[0]}`?",) if within else ())
        ctx.error(
            "unknown-argument",
            f"`{builtin.name}` has no parameter `{key}`",
            argument.name.span,
            "no such parameter",
            (*hints, f"signature: {builtin.signature}"),
        )
    elif key in bound:
        ctx.error(
            "duplicate-argument",
            f"argument `{key}` of `{builtin.name}` is given twice",
            argument.span,
            "given again here",
            labels=(Label(bound[key].span, "first given here"),),
        )
    else:
        bound[key] = value


def _typed_call(ctx: LoweringContext, builtin: Builtin, bound: dict[str, ir.Expr], node: ast.Call) -> ir.Expr:
    bindings: dict[str, Type] = {}
    absent_possible = False
    arguments: list[ir.Expr] = []
    for parameter in builtin.signature.parameters:
        value = bound.get(parameter.name)
        if value is None:
            arguments.append(_default(ctx, builtin, parameter, node))
            continue
        actual = value.type
        if isinstance(actual, Optional_) and not isinstance(parameter.type, Optional_):
            actual, absent_possible = actual.inner, True
        if not unify(parameter.type, actual, bindings):
            ctx.error(
                "argument-type",
                f"argument `{parameter.name}` of `{builtin.name}` must be "
                f"{substitute(parameter.type, bindings)}, but this is {value.type}",
                value.span,
                f"this is {value.type}",
                (f"signature: {builtin.signature}",),
            )
        arguments.append(value)
    result = substitute(builtin.signature.returns, bindings)
    if absent_possible and not isinstance(result, AnyType):
        result = make_optional(result)
    return ir.CallExpr(function=builtin.name, arguments=tuple(arguments), type=result, span=node.span)


def _default(ctx: LoweringContext, builtin: Builtin, parameter: Parameter, node: ast.Call) -> ir.Expr:
    if parameter.required:
        ctx.error(
            "argument-count",
            f"`{builtin.name}` is missing its argument `{parameter.name}`",
            node.span,
            f"`{parameter.name}` not given",
            (f"signature: {builtin.signature}",),
        )
        return ir.Literal(value=None, type=ANY, span=node.span)
    value = tuple(parameter.default) if isinstance(parameter.default, list) else parameter.default
    return ir.Literal(value=value, type=parameter.type, span=node.span)
