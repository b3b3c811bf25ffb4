"""Names: a local, the student's completion, the harness's output, or a declaration (an ir.Ref), in that order.

What a name may see depends on where it is read (`Scope.context`): options and parameter defaults only
`param`s; `student` only the output expressions; `output` only the grade. A stage seen from outside its
loop may not have run (`T?`); a snippet is filled in where it is used.
"""

from __future__ import annotations

from harnessc import ast, ir
from harnessc.lowering.context import KIND_WORDS, LoweringContext, Scope, article
from harnessc.lowering.templates import expand_snippet
from harnessc.lowering.type_expressions import declared_type
from harnessc.names import did_you_mean
from harnessc.types import ANY, TEXT, Type, make_optional, strip_optional

# The contexts that see the student's completion as `student`.
_CONTEXTS_SEEING_STUDENT = ("output", "student_output")
# What a reference to each kind of declaration is in the IR.
_REF_KINDS: dict[str, ir.RefKind] = {
    "input": "input",
    "param": "param",
    "bank": "bank",
    "llm": "stage",
    "let": "stage",
    "loop": "loop",
}


def lower_name(ctx: LoweringContext, node: ast.Name, scope: Scope) -> ir.Expr:
    name = node.name
    if name in scope.locals:
        return ir.Ref(name=name, kind="local", type=scope.locals[name], span=node.span)
    if name == "student" and scope.context in _CONTEXTS_SEEING_STUDENT:
        return ir.Ref(name=name, kind="student", type=TEXT, span=node.span)
    if name == "output" and scope.context == "grade":
        return ir.Ref(name=name, kind="output", type=ctx.output_type, span=node.span)
    kind = ctx.kind_of(name)
    if kind is None:
        return unknown_name(ctx, node, scope)
    if kind == "snippet":
        return ir.TemplateExpr(template=expand_snippet(ctx, name, node.span, scope), type=TEXT, span=node.span)
    if scope.context in ("option", "param") and kind != "param":
        ctx.error(
            "not-constant",
            f"`{name}` is not a constant",
            node.span,
            article(KIND_WORDS[kind]),
            ("options and defaults may use literals and `param`s only",),
        )
        return ir.Ref(name=name, kind=_REF_KINDS[kind], type=ANY, span=node.span)
    typ = _type_of(ctx, name, kind, scope)
    if name in scope.present:
        typ = strip_optional(typ)
    return ir.Ref(name=name, kind=_REF_KINDS[kind], type=typ, span=node.span)


def unknown_name(ctx: LoweringContext, node: ast.Name, scope: Scope) -> ir.Expr:
    """Reported (with the likely meant name), unless a rejected declaration or an unread import explains
    it; typed `any`, as an input that does not exist (the checker knows such references)."""
    if node.name in ctx.rejected or ctx.missing_imports:
        return ir.Ref(name=node.name, kind="input", type=ANY, span=node.span)
    hints = did_you_mean(node.name, [*ctx.declarations, *scope.locals])
    if node.name == "student":
        hints = ("the student's completion is visible only to `output` and `student_output`",)
    elif node.name == "output":
        hints = ("`output` is visible only to `grade`",)
    ctx.error("unknown-name", f"unknown name `{node.name}`", node.span, "not defined", hints)
    return ir.Ref(name=node.name, kind="input", type=ANY, span=node.span)


def _type_of(ctx: LoweringContext, name: str, kind: str, scope: Scope) -> Type:
    declaration = ctx.declarations[name]
    node = declaration.node
    if isinstance(node, (ast.InputDecl, ast.ParamDecl, ast.BankDecl)):
        return declared_type(ctx, node)
    # Stages are lowered in dependency order (lowering/order.py): one not lowered yet is read in a cycle.
    typ = ctx.stage_types.get(name, ANY)
    if kind == "loop" and scope.loop == name:
        return strip_optional(typ)  # the loop-carried value inside its own body: there is a value
    if declaration.loop is not None and declaration.loop != scope.loop:
        return make_optional(typ)  # seen from outside, a loop's stage may not have run
    return typ
