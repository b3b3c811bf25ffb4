"""What a harness needs to be usable: prompts that a model can answer, the views and results each purpose
requires, a numeric grade, and a label field for banks filtered on labels."""

from __future__ import annotations

from collections.abc import Iterator

from harnessc import ir
from harnessc.checks.base import CheckContext, anchored_prompts
from harnessc.diagnostics import Diagnostic, Label, Severity
from harnessc.types import BOOL, FLOAT, INT, TEXT, AnyType, strip_optional


def check_prompts(harness: ir.Harness, context: CheckContext) -> Iterator[Diagnostic]:
    """Every prompt can be answered: it has messages, a system message comes first only, and it ends with
    a user message (the model replies to the last one)."""
    for what, prompt, anchor in anchored_prompts(harness):
        roles = [message.role for message in prompt.messages]
        if not roles:
            yield Diagnostic(
                code="empty-prompt",
                message=f"{what} has no messages",
                span=anchor,
                label="no system/user/assistant message",
                hints=('add at least `user "..."`',),
            )
            continue
        misplaced = [message for message in prompt.messages[1:] if message.role == "system"]
        for message in misplaced:
            yield Diagnostic(
                code="message-order",
                message="a system message must come first",
                span=message.span,
                label="system message after another message",
                hints=("move it to the top of the prompt",),
            )
        # A misplaced system message at the end is one mistake, already reported above.
        if roles[-1] != "user" and prompt.messages[-1] not in misplaced:
            article = "an" if roles[-1][0] in "aeiou" else "a"
            yield Diagnostic(
                code="message-order",
                message=f"{what} ends with {article} {roles[-1]} message",
                span=prompt.messages[-1].span,
                label="the model replies to the last user message",
                hints=("end the prompt with a `user` message",),
            )


def check_training_views(harness: ir.Harness, context: CheckContext) -> Iterator[Diagnostic]:
    """Training needs both views, a `student` and a `teacher`: an error `--for train`, a warning for
    `--for any`, nothing `--for run`."""
    if context.purpose == "run":
        return
    severity = None if context.purpose == "train" else "warning"
    # The examples use the harness's own names: its first non-oracle input, its last LLM stage.
    visible = [item.name for item in harness.inputs if not item.oracle] or ["question"]
    stages = [stage.name for stage in harness.llm_stages()]
    teacher = f"teacher = {stages[-1]} else student" if stages else 'teacher { user "...more context..." }'
    for missing, code, example in (
        (harness.student is None, "missing-student", f'student {{ user "{{{visible[0]}}}" }}'),
        (harness.teacher is None, "missing-teacher", teacher),
    ):
        if missing:
            view = code.split("-")[1]
            yield _purpose_diagnostic(
                code,
                f"the harness has no `{view}` view, which training needs",
                harness,
                severity,
                f"declare one, e.g. `{example}`",
            )


def check_output(harness: ir.Harness, context: CheckContext) -> Iterator[Diagnostic]:
    """A harness run without training answers with something: an `output` or a `student` view (except
    `--for train`); and `grade`, when declared, is a bool or a number."""
    if harness.output is None and harness.student is None and context.purpose != "train":
        top = [stage.name for stage in harness.stages if stage.loop is None]
        last = top[-1] if top else "EXPRESSION"
        yield _purpose_diagnostic(
            "missing-output",
            "the harness declares neither `output` nor a `student` view",
            harness,
            None,
            f"declare what the harness answers, e.g. `output = {last}`",
        )
    if harness.grade is not None:
        grade_type = strip_optional(harness.grade.type)
        if not isinstance(grade_type, AnyType) and grade_type not in (BOOL, FLOAT, INT):
            yield Diagnostic(
                code="type-mismatch",
                message=f"`grade` must be bool or a number, but it is {grade_type}",
                span=harness.grade.span,
                label=f"this is {grade_type}",
                hints=("compare with a grader: math_equal(output, answer), label_equal(...), set_f1(...)",),
            )


def _purpose_diagnostic(code: str, message: str, harness: ir.Harness, severity: str | None, hint: str) -> Diagnostic:
    return Diagnostic(
        code=code,
        message=message,
        span=harness.name_span,
        label="in this harness",
        hints=(hint,),
        severity=Severity(severity) if severity else None,
    )


def check_bank_filters(harness: ir.Harness, context: CheckContext) -> Iterator[Diagnostic]:
    """Label filters on `retrieve(..., label_in=..., label_not_in=...)` need a bank that declares its
    `label` field."""
    banks = {bank.name: bank for bank in harness.banks}
    for node in ir.walk(harness):
        if not (isinstance(node, ir.CallExpr) and node.function == "retrieve" and node.arguments):
            continue
        bank_ref = node.arguments[0]
        bank = banks.get(bank_ref.name) if isinstance(bank_ref, ir.Ref) else None
        # retrieve(bank, query, k, label_in, label_not_in): an empty literal list is no filter.
        filters = [
            argument for argument in node.arguments[3:] if not (isinstance(argument, ir.Literal) and not argument.value)
        ]
        if bank is not None and bank.label_field is None and filters:
            yield Diagnostic(
                code="bank-without-label",
                message=f"bank `{bank.name}` has no `label` field to filter on",
                span=filters[0].span,
                label="label filter",
                labels=(Label(bank.span, "declared here"),),
                hints=(_label_hint(bank),),
            )


def _label_hint(bank: ir.Bank) -> str:
    texts = [name for name, typ in bank.entry.fields if typ == TEXT and name != bank.search_field]
    preferred = "label" if "label" in texts else (texts[0] if texts else "FIELD")
    return f"add `label {preferred}` to the bank, naming the entry's label field"
