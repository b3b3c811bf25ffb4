"""Hover: what the name under the cursor is, as Markdown.

- a declared name (at its declaration or at a use): the declaration as written, its type as the compiler
  computed it and, at a use, the type there (narrowed inside `{if x}`); for an LLM stage also its guard,
  its messages and its options;
- a built-in (called, or a keyword argument of a call): its signature and documentation;
- a body key: the option's type, meaning and an example, or the message role;
- a comprehension or `{for}` variable, a snippet (its template), an import (the file it reads), a type,
  an input flag or a keyword: a short description.
"""

from __future__ import annotations

import inspect

from lsprotocol import types

from harnessc.lsp.analysis import Analysis, Target, declaration_source
from harnessc.lsp.diagnostics import lsp_range
from harnessc.lsp.outline import Declaration, Occurrence
from harnessc.options import OPTIONS

KEYWORDS = {
    "harness": '`harness NAME "description"`: the header, first in the file, exactly once.',
    "import": '`import "file.harness"`: the snippets of another file, relative to this one.',
    "input": "`input NAME: TYPE FLAGS`: a field of each example (a data set column).",
    "param": "`param NAME: TYPE = VALUE`: a constant, overridable with `--set NAME=VALUE`.",
    "snippet": '`snippet NAME = "template"`: a reusable piece of prompt text, filled in where it is used.',
    "bank": "`bank NAME { ... }`: a memory bank of past examples to retrieve from.",
    "llm": "`llm NAME { ... }`: an LLM call (a stage); its value is the completion's text.",
    "let": "`let NAME = EXPRESSION`: a deterministic step (a stage): no model call.",
    "loop": "`loop NAME from VALUE max N { ... }`: a bounded refinement loop.",
    "when": "`llm NAME when CONDITION { ... }`: the stage runs only where the condition holds.",
    "else": "`else`: the fallback prompt of a guarded stage, or the next stage of a teacher chain.",
    "from": "`loop NAME from VALUE`: the loop value's initial value.",
    "max": "`max N`: the most iterations of a loop (a constant, 1 to 1,000).",
    "until": "`until CONDITION`: the loop stops when the condition holds.",
    "next": "`next EXPRESSION`: the loop value after each iteration.",
    "student": "`student { ... }`: the student view, the bare prompt of the trained model.",
    "teacher": "`teacher = A else B else student` or `teacher { ... }`: the teacher context for training.",
    "output": "`output = EXPRESSION`: what the harness answers.",
    "student_output": "`student_output = EXPRESSION`: what the student alone answers.",
    "grade": "`grade = EXPRESSION`: how an answer is scored.",
    "record": "`record{name: TYPE, ...}`: a record type.",
    "and": "`a and b`: true when both `bool` operands are (absent counts as false).",
    "or": "`a or b`: true when either `bool` operand is (absent counts as false).",
    "not": "`not a`: the negation of a `bool` (absent counts as false).",
    "true": "the `bool` value true.",
    "false": "the `bool` value false.",
    "for": "`[EXPR for x in LIST]` or `{for x in LIST}...{end}`: once per item of a list.",
    "in": "`for x in LIST`: the list iterated over.",
    "if": "`{if CONDITION}...{else}...{end}`: a template segment shown only when the condition holds.",
    "end": "`{end}`: closes an `{if}` or `{for}` block.",
}
TYPES = {
    "text": "`text`: a string.",
    "int": "`int`: a 64-bit whole number.",
    "float": "`float`: a finite number; an `int` is accepted wherever a `float` is expected.",
    "bool": "`bool`: `true` or `false`.",
    "list": "`list[T]`: a sequence of `T`.",
}
FLAGS = {
    "optional": "`optional`: the field may be missing in some rows; the input's type is `T?`.",
    "oracle": "`oracle`: privileged information (a gold answer): prompts see it only in training, `grade` always.",
}
ROLE_DOCS = {
    "system": "a **system** message: the instructions; only as the first message.",
    "user": "a **user** message; the last message of a prompt is one.",
    "assistant": "an **assistant** message: a few-shot turn.",
}
BANK_SETTINGS = {
    "search": "`search FIELD`: the text field that retrieval compares with a query (required).",
    "label": "`label FIELD`: the text field that label filters compare.",
    "file": '`file "path.jsonl"`: entries to load at inference, relative to the harness.',
}


def hover(analysis: Analysis, offset: int, encoding: str) -> types.Hover | None:
    """The hover at a character offset of the document, or None where there is nothing to say."""
    found = analysis.target_at(offset)
    if found is None:
        return None
    occurrence, target = found
    text = describe(analysis, occurrence, target)
    if not text:
        return None
    return types.Hover(
        contents=types.MarkupContent(kind=types.MarkupKind.Markdown, value=text),
        range=lsp_range(analysis.lines(encoding), occurrence.start, occurrence.end),
    )


def describe(analysis: Analysis, occurrence: Occurrence, target: Target) -> str:
    """The Markdown text for `target`, named at `occurrence`."""
    kind, name = target.kind, target.name
    if kind == "declaration" and target.declaration is not None:
        return _declaration(analysis, occurrence, target)
    if kind == "binding" and target.occurrence is not None:
        typ = analysis.use_type(occurrence) or analysis.binding_type(target.occurrence)
        where = "a `{for}` block" if analysis.text[: target.occurrence.start].rstrip().endswith("{for") else None
        what = f"a variable of {where}" if where else "a comprehension or `{for}` variable"
        return _code(f"{name}: {typ}" if typ else name) + f"\n\n{what}"
    if kind in ("builtin", "parameter") and target.builtin is not None:
        builtin = target.builtin
        head = _code(str(builtin.signature), "")
        if kind == "parameter":
            parameter = next((item for item in builtin.signature.parameters if item.name == name), None)
            if parameter is None:
                return head + f"\n\n`{builtin.name}` takes no argument `{name}`"
            default = "" if parameter.required else " (optional)"
            return _code(f"{name}: {parameter.type}", "") + f"\n\nargument of `{builtin.name}`{default}\n\n" + head
        doc = inspect.cleandoc(builtin.doc) if builtin.doc else ""
        return head + (f"\n\n{doc}" if doc else "") + f"\n\n*built-in, from `{builtin.module}`*"
    if kind == "option":
        if occurrence.detail == "bank":
            return BANK_SETTINGS.get(name, "")
        spec = OPTIONS[name]
        return _code(f"{name}: {spec.type}", "") + f"\n\noption: {spec.summary}\n\nexample: `{spec.example}`"
    if kind == "role":
        return ROLE_DOCS[name]
    if kind == "import":
        return _import(analysis, target)
    if kind == "keyword":
        return KEYWORDS.get(name, "")
    if kind == "type":
        return TYPES.get(name, "")
    if kind == "flag":
        return FLAGS.get(name, "")
    if kind == "switch":
        return "`on`/`off` (also `yes`/`no`, `true`/`false`): the chat template's thinking switch."
    if kind == "field":
        typ = analysis.use_type(occurrence)
        return _code(f"{name}: {typ}" if typ else name) + "\n\na record field"
    return ""


def _declaration(analysis: Analysis, occurrence: Occurrence, target: Target) -> str:
    declaration = target.declaration
    assert declaration is not None
    here = target.path == analysis.path
    declared = analysis.declared_type(declaration) if here else None
    at_use = analysis.use_type(occurrence) if occurrence.role != "decl" else None
    kind = declaration.kind
    title = {
        "input": "input",
        "param": "parameter",
        "snippet": "snippet",
        "bank": "memory bank",
        "bank-field": "bank entry field",
        "llm": "LLM stage",
        "let": "let stage",
        "loop": "loop",
        "student": "the student view",
        "teacher": "the teacher view",
        "output": "the output",
    }.get(kind, kind)
    if declaration.parent is not None and kind in ("llm", "let"):
        title += f" inside loop `{declaration.parent.name}`"
    source = declaration_source(target.text, declaration)
    as_written = kind in ("param", "snippet") and source  # the declaration says it all: no signature
    parts = [_code(source if as_written else _signature(target, declared))]
    line = f"*{title}*"
    if at_use is not None and at_use != declared:
        line += f"; here: `{at_use}`"
    parts.append(line)
    if kind == "input" and "oracle" in declaration.flags:
        parts.append("oracle: visible to prompts in training only; `grade` always sees it")
    if kind == "llm":
        parts.append(_llm_details(target.text, declaration))
    elif source and not as_written and kind in ("let", "loop", "bank", "output", "teacher", "student_output", "grade"):
        parts.append(_code(source))
    if not here:
        parts.append(f"from `{target.path}`")
    return "\n\n".join(part for part in parts if part)


def _signature(target: Target, declared: object) -> str:
    declaration = target.declaration
    assert declaration is not None
    if declaration.kind in ("student", "teacher", "output", "student_output", "grade"):
        return declaration.kind
    keyword = "" if declaration.kind == "bank-field" else declaration.kind + " "
    if declared is not None:
        return f"{keyword}{declaration.name}: {declared}"
    if declaration.type_range is not None:
        start, end = declaration.type_range
        return f"{keyword}{declaration.name}: {' '.join(target.text[start:end].split())}"
    return f"{keyword}{declaration.name}"


def _llm_details(text: str, declaration: Declaration) -> str:
    """An LLM stage's guard, messages and options, as written."""
    lines = []
    head = text[declaration.name_end : declaration.end]
    brace = head.find("{")
    guard = " ".join(head[:brace].split()) if brace > 0 else ""
    if guard.startswith("when "):
        lines.append(f"runs `{guard}`" + (" (else the fallback prompt)" if declaration.else_settings else ""))
    for label, settings in (("", declaration.settings), ("fallback: ", declaration.else_settings)):
        if not settings:
            continue
        roles = [item.key for item in settings if item.key in ROLE_DOCS]
        options = [item for item in settings if item.key not in ROLE_DOCS]
        if len(roles) > 6:
            lines.append(f"{label}{len(roles)} messages: " + ", ".join(roles[:5]) + ", ..., " + roles[-1])
        elif roles:
            lines.append(f"{label}messages: " + ", ".join(roles))
        if options:
            rows = ["| option | value |", "| --- | --- |"]
            for item in options:
                value = " ".join(text[item.value_start : item.value_end].split())
                value = (value if len(value) <= 60 else value[:57] + "...").replace("|", "\\|")
                rows.append(f"| `{item.key}` | `{value}` |")
            lines.append(f"{label}options:\n\n" + "\n".join(rows))
    return "\n\n".join(lines)


def _import(analysis: Analysis, target: Target) -> str:
    if not target.path:
        return f'`import "{target.name}"`: the file cannot be read (see the diagnostic)'
    snippets = [
        snippet.name
        for imported, snippet in analysis.imported_snippets()
        if imported.real == target.path and snippet.name
    ]
    listed = ", ".join(f"`{name}`" for name in snippets) if snippets else "no snippets"
    return f"imports `{target.path}`\n\ndeclares {listed}"


def _code(text: str, language: str = "harness") -> str:
    return f"```{language}\n{text}\n```"
