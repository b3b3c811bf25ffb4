"""Prompts: the body of an `llm` stage or of a view, messages (templates) and options (constants)."""

from __future__ import annotations

from typing import cast

from harnessc import ast, ir
from harnessc.diagnostics import Label
from harnessc.lowering.context import LoweringContext, Scope
from harnessc.lowering.references import unknown_name
from harnessc.lowering.templates import expand_snippet, lower_template
from harnessc.names import did_you_mean
from harnessc.options import OPTIONS, ROLES, lower_option
from harnessc.source import Span


def lower_prompt(ctx: LoweringContext, body: ast.Body, scope: Scope, span: Span | None = None) -> ir.Prompt:
    """`span`: the whole declaration for a view (`student { ... }`), so diagnostics about the view point
    at its keyword rather than at its `{`; a stage's prompt spans its body."""
    messages: list[ir.Message] = []
    options: list[ir.Option] = []
    for setting in body.settings:
        key = setting.key.name
        if key in ROLES:
            template = _lower_message(ctx, setting.value, scope)
            messages.append(ir.Message(role=cast(ir.Role, key), template=template, span=setting.span))
        elif key in OPTIONS:
            option = lower_option(setting, ctx.lower_constant, ctx.error)
            if option is not None:
                options.append(option)
        else:
            ctx.error(
                "unknown-option",
                f"unknown message role or option `{key}`",
                setting.key.span,
                "not a role or option",
                did_you_mean(key, [*ROLES, *OPTIONS]),
            )
    _check_duplicate_options(ctx, options)
    return ir.Prompt(messages=tuple(messages), options=tuple(options), span=span or body.span)


def _lower_message(ctx: LoweringContext, value: ast.Expr, scope: Scope) -> ir.Template:
    if isinstance(value, ast.TemplateLiteral):
        return lower_template(ctx, value, scope)
    if isinstance(value, ast.Name) and ctx.kind_of(value.name) == "snippet":
        return expand_snippet(ctx, value.name, value.span, scope)
    if isinstance(value, ast.Name) and ctx.kind_of(value.name) is None and value.name not in scope.locals:
        unknown_name(ctx, value, scope)  # `system MATH_EXPRT`: a misspelled snippet, not a type error
        return ir.Template(parts=(), span=value.span)
    ctx.error(
        "type-mismatch",
        "a message is a string (or the name of a snippet)",
        value.span,
        "not a string",
        ('write the text in quotes: user "..."; interpolate values with {name}',),
    )
    return ir.Template(parts=(), span=value.span)


def _check_duplicate_options(ctx: LoweringContext, options: list[ir.Option]) -> None:
    seen: dict[str, ir.Option] = {}
    for option in options:
        if option.name in seen:
            ctx.error(
                "duplicate-definition",
                f"option `{option.name}` is set more than once",
                option.span,
                "set again here",
                labels=(Label(seen[option.name].span, "first set here"),),
            )
        seen.setdefault(option.name, option)
