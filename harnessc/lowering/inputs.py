"""What a harness is given: its inputs, its parameters (constants, overridable with `--set`) and its memory
banks (entries built from each training example, searched with `retrieve`)."""

from __future__ import annotations

from pathlib import Path

from harnessc import ast, ir
from harnessc.lowering.context import LoweringContext, Scope
from harnessc.lowering.type_expressions import check_unique_fields, expect_type, lower_type
from harnessc.names import did_you_mean
from harnessc.reading import check_data_path
from harnessc.types import TEXT, AnyType, Record

_INPUT_FLAGS = ("optional", "oracle")
_BANK_SETTINGS = ("search", "label", "file")


def lower_input(ctx: LoweringContext, node: ast.InputDecl) -> ir.Input:
    flags = {flag.name for flag in node.flags}
    for flag in node.flags:
        if flag.name not in _INPUT_FLAGS:
            ctx.error(
                "unknown-flag",
                f"unknown input flag `{flag.name}`",
                flag.span,
                "not a flag",
                did_you_mean(flag.name, _INPUT_FLAGS) or ("input flags are `optional` and `oracle`",),
            )
    typ = lower_type(ctx, node.type)
    return ir.Input(
        name=node.name.name, type=typ, optional="optional" in flags, oracle="oracle" in flags, span=node.span
    )


def lower_param(ctx: LoweringContext, node: ast.ParamDecl) -> ir.Param:
    typ = lower_type(ctx, node.type)
    default = ctx.lower_expr(node.default, Scope("param"))
    if not isinstance(default, ir.Literal) and not isinstance(default.type, AnyType):
        ctx.error(
            "not-constant",
            "a parameter's default must be a constant",
            node.default.span,
            "not a constant",
            ("write a literal: a number, a string, true/false or a list of them",),
        )
    expect_type(ctx, default, typ, "the parameter's default")
    value = default.value if isinstance(default, ir.Literal) else None
    return ir.Param(
        name=node.name.name, type=typ, default=ir.Literal(value=value, type=typ, span=default.span), span=node.span
    )


def lower_bank(ctx: LoweringContext, node: ast.BankDecl) -> ir.Bank:
    check_unique_fields(ctx, node.fields, f"bank `{node.name.name}`")
    fields = tuple(_lower_bank_field(ctx, item) for item in node.fields)
    entry = Record(tuple((item.name, item.type) for item in fields))
    settings = {setting.key.name: setting for setting in node.settings}
    misspelled: set[str] = set()  # settings that an unknown one most likely meant
    for setting in node.settings:
        if setting.key.name not in _BANK_SETTINGS:
            hint = did_you_mean(setting.key.name, _BANK_SETTINGS)
            misspelled.update(name for name in _BANK_SETTINGS if hint and f"`{name}`" in hint[0])
            ctx.error(
                "unknown-option",
                f"unknown bank setting `{setting.key.name}`",
                setting.key.span,
                "not a bank setting",
                hint,
            )
    # A misspelled `search` is reported once, as unknown, not again as missing.
    search = _field_setting(ctx, settings.get("search"), entry, node, required="search" not in misspelled)
    label = _field_setting(ctx, settings.get("label"), entry, node, required=False)
    return ir.Bank(
        name=node.name.name,
        entry=entry,
        fields=fields,
        search_field=search or "",
        label_field=label,
        file=_bank_file(ctx, settings.get("file")),
        span=node.span,
    )


def _lower_bank_field(ctx: LoweringContext, node: ast.BankField) -> ir.BankField:
    typ = lower_type(ctx, node.type)
    value = ctx.lower_expr(node.value, Scope("bank"))
    expect_type(ctx, value, typ, f"bank field `{node.name.name}`")
    return ir.BankField(name=node.name.name, type=typ, value=value, span=node.span)


def _field_setting(
    ctx: LoweringContext, setting: ast.Setting | None, entry: Record, bank: ast.BankDecl, required: bool
) -> str | None:
    """The entry field a `search` or `label` setting names."""
    if setting is None:
        if required:
            texts = [name for name, typ in entry.fields if typ == TEXT]
            example = f", e.g. `search {texts[0]}`" if texts else ""
            ctx.error(
                "bank-without-search",
                f"bank `{bank.name.name}` does not say which field to search",
                bank.name.span,
                "declared here",
                (f"add `search FIELD` naming a text field of the entry{example}",),
            )
        return None
    value = setting.value
    if not isinstance(value, ast.Name):
        ctx.error("type-mismatch", f"`{setting.key.name}` takes a field name", value.span, "not a field name")
        return None
    field_type = entry.field(value.name)
    if field_type is None:
        ctx.error(
            "unknown-field",
            f"bank `{bank.name.name}` has no field `{value.name}`",
            value.span,
            "no such field",
            did_you_mean(value.name, [name for name, _ in entry.fields]),
        )
        return None
    if field_type != TEXT:
        ctx.error("type-mismatch", f"the `{setting.key.name}` field must be text, not {field_type}", value.span)
    return value.name


def _bank_file(ctx: LoweringContext, setting: ast.Setting | None) -> str | None:
    """A bank's `file`, relative to the harness and confined like an import (harnessc/reading.py): the
    path the run reads it at."""
    written = _constant_text(ctx, setting)
    if written is None or ctx.roots is None:
        return written
    path, refusal = check_data_path(Path(ctx.module.path).parent, written, ctx.roots)
    if refusal is not None:
        assert setting is not None  # a file was written, so the setting exists
        ctx.error(
            refusal.code,
            f"bank file {written!r}: {refusal.reason or refusal.message}",
            setting.value.span,
            "named here",
            refusal.hints,
        )
        if ctx.diagnostics[-1].is_error:  # a warning (a file not written yet) keeps the path to read
            return None
    return path


def _constant_text(ctx: LoweringContext, setting: ast.Setting | None) -> str | None:
    if setting is None:
        return None
    value = ctx.lower_expr(setting.value, Scope("option"))
    if isinstance(value, ir.Literal) and isinstance(value.value, str):
        return value.value
    ctx.error("type-mismatch", f"`{setting.key.name}` takes a constant string", setting.value.span)
    return None
