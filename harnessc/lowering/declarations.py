"""The first pass: every name the module declares, before anything is lowered.

A name is declared once; a second declaration, or a declaration of a reserved name, is reported and left
out, so that each later use resolves to the first definition and one mistake yields one diagnostic.
"""

from __future__ import annotations

from collections.abc import Mapping

from harnessc import ast
from harnessc.diagnostics import Label
from harnessc.lowering.context import KIND_WORDS, Declaration, DeclarationNode, LoweringContext, article

_DECLARATION_KINDS: dict[type, str] = {
    ast.InputDecl: "input",
    ast.ParamDecl: "param",
    ast.SnippetDecl: "snippet",
    ast.BankDecl: "bank",
    ast.LlmStage: "llm",
    ast.LetStage: "let",
    ast.LoopStage: "loop",
}
_DECLARATION_NODES = (
    ast.InputDecl,
    ast.ParamDecl,
    ast.SnippetDecl,
    ast.BankDecl,
    ast.LlmStage,
    ast.LetStage,
    ast.LoopStage,
)
# Declarations a harness has at most one of.
_SINGLE_DECLARATIONS: dict[type | tuple[type, ...], str] = {
    ast.StudentView: "the student view",
    ast.OutputDecl: "`output`",
    ast.StudentOutputDecl: "`student_output`",
    ast.GradeDecl: "`grade`",
    (ast.TeacherTemplate, ast.TeacherChain): "the teacher view",
}
# Names that the language itself gives a meaning: what they mean, and a name to suggest instead.
_RESERVED_NAMES = {
    "student": ("the student view and its completion", "attempt"),
    "output": ("the harness's answer (`output = ...`)", "answer"),
}


def collect_declarations(ctx: LoweringContext, snippets: Mapping[str, ast.SnippetDecl]) -> None:
    """Fill `ctx.declarations`: the imported `snippets` first, then the module's items in source order, a
    loop's steps right after the loop."""
    for snippet in snippets.values():
        _declare(ctx, snippet.name, snippet)
    for item in ctx.module.items:
        if isinstance(item, _DECLARATION_NODES):
            _declare(ctx, item.name, item)
        if isinstance(item, ast.LoopStage):
            # The inner stages of a loop whose name was rejected as a duplicate are declared outside
            # any loop, so that no stage belongs to a loop that is not in the graph.
            declared = ctx.declarations.get(item.name.name)
            loop = item.name.name if declared is not None and declared.node is item else None
            for inner in item.items:
                if isinstance(inner, (ast.LlmStage, ast.LetStage)):
                    _declare(ctx, inner.name, inner, loop=loop)
    _check_single_declarations(ctx)


def _declare(ctx: LoweringContext, name: ast.Identifier, node: DeclarationNode, loop: str | None = None) -> None:
    kind = _DECLARATION_KINDS[type(node)]
    previous = ctx.declarations.get(name.name)
    if name.name in _RESERVED_NAMES:
        meaning, instead = _RESERVED_NAMES[name.name]
        ctx.error(
            "duplicate-definition",
            f"`{name.name}` is reserved for {meaning} and cannot be redefined as {article(KIND_WORDS[kind])}",
            name.span,
            "reserved name",
            (f"rename it, e.g. `{instead}`",),
        )
        # Uses of the name are follow-ons of this one mistake: unknown_name stays quiet about them.
        ctx.rejected.add(name.name)
        return
    if previous is not None:
        ctx.error(
            "duplicate-definition",
            f"`{name.name}` is defined more than once",
            name.span,
            "defined again here",
            labels=(Label(previous.span, "first defined here"),),
        )
        return
    ctx.declarations[name.name] = Declaration(kind, node, name.span, loop)


def _check_single_declarations(ctx: LoweringContext) -> None:
    for kind, what in _SINGLE_DECLARATIONS.items():
        found = ctx.items(kind)
        for item in found[1:]:
            ctx.error(
                "duplicate-definition",
                f"{what} is declared more than once",
                item.span,
                "declared again here",
                labels=(Label(found[0].span, "first declared here"),),
            )


def is_declared(ctx: LoweringContext, node: DeclarationNode) -> bool:
    """Whether `node` is the declaration its name resolves to (not a rejected duplicate)."""
    declared = ctx.declarations.get(node.name.name)
    return declared is not None and declared.node is node
