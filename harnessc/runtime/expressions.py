"""Evaluating IR expressions and rendering templates for one example.

Values: text → str, int, float, bool, list → tuple, record → dict, bank → MemoryBank, absent → None.

Absence: a built-in called with an absent argument where its signature does not accept absence returns
absent; a field of an absent record is absent; in conditions (`when`, `until`, `{if}`, and/or/not) absent
counts as false. Printing an absent value with `{x}` is an error of that example (`MissingValue`); the
checker rejects it statically except where an oracle input is absent at inference.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from harnessc import ir
from harnessc.builtins.registry import Registry
from harnessc.types import Optional_


class EvaluationError(Exception):
    """An example-level failure while evaluating: carries a short machine-readable `reason`."""

    reason = "evaluation-error"


class MissingValue(EvaluationError):
    reason = "missing-value"


class BuiltinFailure(EvaluationError):
    reason = "builtin-error"


def truthy(value: Any) -> bool:
    """The condition semantics of the language: absent, empty text/list, false and zero are false."""
    if value is None:
        return False
    if isinstance(value, str):
        return bool(value.strip())
    if isinstance(value, (tuple, list, dict)):
        return len(value) > 0
    return bool(value)


def to_text(value: Any) -> str:
    """How a placeholder prints a scalar."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


_COMPARE = {
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}


class Evaluator:
    """Evaluates expressions against `values` (inputs, params, banks, stage values by name)."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self._absence_accepting: dict[str, tuple[bool, ...]] = {}

    def evaluate(self, expr: ir.Expr, values: Mapping[str, Any], local: Mapping[str, Any] | None = None) -> Any:
        return getattr(self, f"_eval_{type(expr).__name__}")(expr, values, local or {})

    def condition(self, expr: ir.Expr, values: Mapping[str, Any]) -> bool:
        return truthy(self.evaluate(expr, values))

    def render(self, template: ir.Template, values: Mapping[str, Any], local: Mapping[str, Any] | None = None) -> str:
        pieces: list[str] = []
        self._render_parts(template.parts, values, dict(local or {}), pieces)
        return "".join(pieces)

    # ---- templates -----------------------------------------------------------------------------------------

    def _render_parts(
        self, parts: tuple[ir.Part, ...], values: Mapping[str, Any], local: dict[str, Any], out: list[str]
    ) -> None:
        for part in parts:
            if isinstance(part, ir.TextPart):
                out.append(part.value)
            elif isinstance(part, ir.ValuePart):
                value = self.evaluate(part.value, values, local)
                if value is None:
                    raise MissingValue(f"{_describe(part.value)} is absent (line {part.span.line} of {part.span.file})")
                out.append(to_text(value))
            elif isinstance(part, ir.IfPart):
                branch = part.then if truthy(self.evaluate(part.condition, values, local)) else part.otherwise
                self._render_parts(branch, values, local, out)
            else:
                for item in self.evaluate(part.iterable, values, local) or ():
                    self._render_parts(part.body, values, {**local, part.variable: item}, out)

    # ---- expressions ----------------------------------------------------------------------------------------

    def _eval_Literal(self, expr: ir.Literal, values, local) -> Any:
        return expr.value

    def _eval_Ref(self, expr: ir.Ref, values, local) -> Any:
        if expr.kind == "local":
            return local.get(expr.name)
        return values.get(expr.name)

    def _eval_FieldRef(self, expr: ir.FieldRef, values, local) -> Any:
        record = self.evaluate(expr.value, values, local)
        return None if record is None else record.get(expr.field)

    def _eval_CallExpr(self, expr: ir.CallExpr, values, local) -> Any:
        arguments = [self.evaluate(argument, values, local) for argument in expr.arguments]
        accepts_absent = self._accepts_absent(expr.function)
        if any(value is None and not ok for value, ok in zip(arguments, accepts_absent)):
            return None
        builtin = self.registry.get(expr.function)
        if builtin is None:  # compiled with built-ins this registry does not have
            raise BuiltinFailure(f"{expr.function}(...) is not a registered built-in")
        try:
            return builtin.function(*arguments)
        except Exception as error:  # a built-in's failure is the example's, never the batch's
            raise BuiltinFailure(f"{expr.function}(...) failed: {error}") from error

    def _accepts_absent(self, function: str) -> tuple[bool, ...]:
        cached = self._absence_accepting.get(function)
        if cached is None:
            builtin = self.registry.get(function)
            if builtin is None:
                raise EvaluationError(f"built-in `{function}` is not registered in this process")
            cached = tuple(isinstance(p.type, Optional_) for p in builtin.signature.parameters)
            self._absence_accepting[function] = cached
        return cached

    def _eval_ListExpr(self, expr: ir.ListExpr, values, local) -> Any:
        return tuple(self.evaluate(item, values, local) for item in expr.items)

    def _eval_ComprehensionExpr(self, expr: ir.ComprehensionExpr, values, local) -> Any:
        items = self.evaluate(expr.iterable, values, local)
        if items is None:
            return None
        return tuple(self.evaluate(expr.element, values, {**local, expr.variable: item}) for item in items)

    def _eval_NotExpr(self, expr: ir.NotExpr, values, local) -> Any:
        return not truthy(self.evaluate(expr.operand, values, local))

    def _eval_LogicExpr(self, expr: ir.LogicExpr, values, local) -> Any:
        left = truthy(self.evaluate(expr.left, values, local))
        if expr.operator == "and":
            return left and truthy(self.evaluate(expr.right, values, local))
        return left or truthy(self.evaluate(expr.right, values, local))

    def _eval_CompareExpr(self, expr: ir.CompareExpr, values, local) -> Any:
        left = self.evaluate(expr.left, values, local)
        right = self.evaluate(expr.right, values, local)
        if (left is None or right is None) and expr.operator not in ("==", "!="):
            return False
        return _COMPARE[expr.operator](left, right)

    def _eval_TemplateExpr(self, expr: ir.TemplateExpr, values, local) -> Any:
        return self.render(expr.template, values, local)


def _describe(expr: ir.Expr) -> str:
    if isinstance(expr, ir.Ref):
        return f"`{expr.name}`"
    if isinstance(expr, ir.FieldRef):
        return f"{_describe(expr.value)[:-1]}.{expr.field}`"
    return "a value"
