"""Whole-harness checks on the IR: one small function per invariant, listed in CHECKS.

Each check reads the lowered harness and yields diagnostics; none of them stops the others, so a file
with five different mistakes gets five diagnostics in one run. The checks are grouped by what they read:
the stage graph (graph.py), option values (options.py), budgets no run can meet (budgets.py), the flow of
information between the views (flow.py), what a usable harness requires (requirements.py).
"""

from __future__ import annotations

from harnessc import ir
from harnessc.checks import budgets, flow, graph, options, requirements
from harnessc.checks.base import CheckContext
from harnessc.diagnostics import Diagnostic

CHECKS = (
    graph.check_cycles,
    graph.check_loop_order,
    graph.check_unused_stages,
    options.check_option_values,
    options.check_loop_bounds,
    options.check_constraints,
    requirements.check_prompts,
    flow.check_student_view,
    flow.check_oracle_in_output,
    flow.check_oracle_at_inference,
    flow.check_teacher_differs,
    flow.check_thinking_views,
    requirements.check_training_views,
    requirements.check_output,
    requirements.check_bank_filters,
    budgets.check_option_maxima,
    budgets.check_loop_maxima,
    budgets.check_repetitions,
)

__all__ = ["CHECKS", "CheckContext", "run_checks"]


def run_checks(harness: ir.Harness, context: CheckContext) -> list[Diagnostic]:
    return [diagnostic for check in CHECKS for diagnostic in check(harness, context)]
