"""The views and results, lowered after every stage: the student and teacher prompts, `output`,
`student_output` and `grade` (the first of each; a second one is reported by lowering/declarations.py)."""

from __future__ import annotations

from harnessc import ast, ir
from harnessc.lowering.context import KIND_WORDS, LoweringContext, Scope
from harnessc.lowering.prompts import lower_prompt
from harnessc.names import did_you_mean


def lower_student(ctx: LoweringContext) -> ir.Prompt | None:
    views = ctx.items(ast.StudentView)
    return lower_prompt(ctx, views[0].body, Scope("student"), views[0].span) if views else None


def lower_teacher(ctx: LoweringContext) -> ir.TeacherChain | ir.Prompt | None:
    views = ctx.items((ast.TeacherTemplate, ast.TeacherChain))
    if not views:
        return None
    view = views[0]
    if isinstance(view, ast.TeacherTemplate):
        return lower_prompt(ctx, view.body, Scope("teacher"), view.span)
    for name in view.names:
        _check_teacher_source(ctx, name)
    return ir.TeacherChain(stages=tuple(name.name for name in view.names), span=view.span)


def _check_teacher_source(ctx: LoweringContext, name: ast.Identifier) -> None:
    if name.name == "student":
        return
    kind = ctx.kind_of(name.name)
    if kind is None:
        llm_names = [item for item, declared in ctx.declarations.items() if declared.kind == "llm"] + ["student"]
        ctx.error(
            "unknown-name",
            f"unknown stage `{name.name}`",
            name.span,
            "not defined",
            did_you_mean(name.name, llm_names),
        )
    elif kind != "llm":
        ctx.error(
            "teacher-not-llm",
            f"the teacher context must come from an LLM stage, and `{name.name}` is a {KIND_WORDS[kind]}",
            name.span,
            "not an LLM stage",
            ("the teacher sees the rendered messages of an `llm` stage, or of an explicit `teacher { ... }`",),
        )
    else:
        node = ctx.declarations[name.name].node
        if isinstance(node, ast.LlmStage) and node.each is not None:
            ctx.error(
                "teacher-not-llm",
                f"the teacher context must come from one prompt, and fan-out `{name.name}` has one per item",
                name.span,
                "a fan-out",
                ("name the stage that reads its answers, or write an explicit `teacher { ... }`",),
            )


def lower_result(
    ctx: LoweringContext, kind: type[ast.OutputDecl | ast.StudentOutputDecl | ast.GradeDecl], context: str
) -> ir.Expr | None:
    """`output`, `student_output` or `grade`, lowered in their own context (what each may read differs)."""
    found = ctx.items(kind)
    return ctx.lower_expr(found[0].value, Scope(context)) if found else None
