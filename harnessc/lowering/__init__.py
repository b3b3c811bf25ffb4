"""Syntax tree → IR: resolve every name, type every expression, fill defaults.

The passes, in order: collect the declarations (lowering/declarations.py); lower inputs and parameters
(lowering/inputs.py); order the stages by what they read (lowering/order.py) and lower them in that order
(lowering/stages.py), then the banks and the views (lowering/views.py). Expressions are lowered by one
function per syntax node kind, through the table below; templates arrive parsed (harnessc/parser.py).

Lowering reports what it cannot resolve (unknown names, fields, built-ins, options, types; wrong argument
counts and types; duplicate definitions) and keeps going with the type `any`, so that one mistake yields
one diagnostic and the rest of the file is still checked. Whole-graph properties (cycles, information
flow, unused stages, sampling ranges) are checked afterwards on the IR, in harnessc/checks/.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import PurePath

from harnessc import ast, ir
from harnessc.builtins.registry import Registry
from harnessc.dependencies import topological_order
from harnessc.diagnostics import Diagnostic
from harnessc.lowering import calls, expressions, references, templates
from harnessc.lowering.context import ExpressionLowering, LoweringContext
from harnessc.lowering.declarations import collect_declarations
from harnessc.lowering.inputs import lower_bank, lower_input, lower_param
from harnessc.lowering.order import lowering_order
from harnessc.lowering.stages import finish_loop, lower_stage
from harnessc.lowering.views import lower_result, lower_student, lower_teacher
from harnessc.reading import Roots
from harnessc.source import SourceFile

# One function per expression node kind (LoweringContext.lower_expr dispatches through this table).
EXPRESSIONS: Mapping[type, ExpressionLowering] = {
    ast.Name: references.lower_name,
    ast.FieldAccess: expressions.lower_field_access,
    ast.Call: calls.lower_call,
    ast.TemplateLiteral: templates.lower_template_literal,
    ast.StringLiteral: expressions.lower_string,
    ast.Number: expressions.lower_number,
    ast.Boolean: expressions.lower_boolean,
    ast.ListLiteral: expressions.lower_list,
    ast.Comprehension: expressions.lower_comprehension,
    ast.Not: expressions.lower_not,
    ast.Logical: expressions.lower_logical,
    ast.Comparison: expressions.lower_comparison,
    ast.Arithmetic: expressions.lower_arithmetic,
    ast.Index: expressions.lower_index,
    ast.Slice: expressions.lower_slice,
}


def lower_module(
    module: ast.Module,
    snippets: Mapping[str, ast.SnippetDecl],
    sources: Mapping[str, SourceFile],
    registry: Registry,
    *,
    missing_imports: bool = False,
    roots: Roots | None = None,
) -> tuple[ir.Harness, list[Diagnostic]]:
    """`snippets`: those the module's imports declare; `missing_imports`: some import (perhaps a nested
    one) could not be read; `roots`: where files the harness names may be (None: bank files are taken as
    written)."""
    # An import that could not be read (reported as import-not-found, or refused), here or in an imported
    # file, may declare any snippet: names that are unknown here are then most likely its snippets, and
    # are not reported a second time.
    directory = PurePath(module.path).parent
    unread = missing_imports or any(
        str(directory / item.path.value) not in sources for item in module.items if isinstance(item, ast.Import)
    )
    ctx = LoweringContext(
        module=module, sources=sources, registry=registry, expressions=EXPRESSIONS, roots=roots, missing_imports=unread
    )
    collect_declarations(ctx, snippets)
    inputs = tuple(lower_input(ctx, node) for node in ctx.items(ast.InputDecl))
    params = tuple(lower_param(ctx, node) for node in ctx.items(ast.ParamDecl))
    for task in lowering_order(ctx):
        (finish_loop if task.loop_end else lower_stage)(ctx, task.name)
    # Bank entries are built from each example: their fields may read inputs (and stages, lowered above).
    banks = tuple(lower_bank(ctx, node) for node in ctx.items(ast.BankDecl))
    student = lower_student(ctx)
    teacher = lower_teacher(ctx)
    output = lower_result(ctx, ast.OutputDecl, "output")
    if output is not None:
        ctx.output_type = output.type  # what `grade` reads as `output`
    student_output = lower_result(ctx, ast.StudentOutputDecl, "student_output")
    grade = lower_result(ctx, ast.GradeDecl, "grade")
    header = module.header
    harness = ir.Harness(
        name=header.name.name if header else "",
        description=header.description.value if header and header.description else "",
        inputs=inputs,
        params=params,
        banks=banks,
        # Dependency order (declaration order among independent stages), loop steps after their loop;
        # stages in a cycle keep declaration order (the checker reports the cycle).
        stages=topological_order(ctx.stages, ctx.declarations),
        student=student,
        teacher=teacher,
        output=output,
        student_output=student_output,
        grade=grade,
        files=tuple(sources),
        name_span=header.name.span if header else module.span,
        span=module.span,
    )
    return harness, ctx.diagnostics
