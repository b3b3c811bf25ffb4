"""Completion: what may be written at the cursor, from the outline's slots (harnessc/lsp/outline.py).

- between declarations: the declaration keywords (and `else` after a stage's body, the operators after
  a complete expression);
- in a body of an `llm` stage or a view, at a key: the message roles and the options not set yet; at an
  option's value: the parameters (option values are constants), those of the option's type first, or
  `on`/`off` for `thinking`; at a message: the snippets; in a bank: `search`, `label`, `file` and the
  entry fields;
- in an expression and inside a template placeholder `{...}`: the names in scope there (comprehension
  and `{for}` variables, declarations, imported snippets), the built-ins, and in a call the built-in's
  keyword arguments; at the start of a placeholder also `if`, `for`, `else`, `end`;
- after `name.`: the fields of the record the name holds;
- after `input NAME:` and the like: the types; after an input's type: its flags;
- inside an `import` path: the `.harness` files under the document's folder.
"""

from __future__ import annotations

import inspect
import os
import re
from pathlib import Path

from lsprotocol import types

from harnessc.lsp.analysis import Analysis, Target
from harnessc.lsp.diagnostics import lsp_range
from harnessc.lsp.hover import BANK_SETTINGS, FLAGS, KEYWORDS, ROLE_DOCS, TYPES
from harnessc.lsp.outline import Outline, Slot, StringInfo
from harnessc.lsp.tokens import DECLARATION_WORDS, NAME, PUNCT, VIEW_WORDS, Placeholder
from harnessc.options import OPTIONS
from harnessc.types import BOOL, Optional_, Type, unify

_KIND = {
    "input": types.CompletionItemKind.Field,
    "param": types.CompletionItemKind.Constant,
    "snippet": types.CompletionItemKind.Text,
    "bank": types.CompletionItemKind.Struct,
    "bank-field": types.CompletionItemKind.Field,
    "llm": types.CompletionItemKind.Function,
    "let": types.CompletionItemKind.Variable,
    "loop": types.CompletionItemKind.Variable,
    "student": types.CompletionItemKind.Interface,
    "output": types.CompletionItemKind.Interface,
}
_VIEW_SNIPPETS = {"student": "student {", "teacher": "teacher = ", "output": "output = ", "grade": "grade = "}
_MAX_FILES = 200


def completion(analysis: Analysis, offset: int, encoding: str) -> types.CompletionList:
    """The completion items at a character offset of the document."""
    return types.CompletionList(is_incomplete=False, items=_items(analysis, offset, encoding))


def _items(analysis: Analysis, offset: int, encoding: str) -> list[types.CompletionItem]:
    text, outline = analysis.text, analysis.outline
    start = offset
    while start > 0 and (text[start - 1].isalnum() or text[start - 1] == "_"):
        start -= 1
    if any(item.start < offset <= item.end for item in outline.comments):
        return []
    string = outline.string_at(offset)
    if string is not None:
        return _in_string(analysis, string, start, offset, encoding)
    if start > 0 and text[start - 1] == ".":
        return _fields(analysis, start)
    index = outline.token_before(start)
    slot = outline.slots.get(index, Slot("none")) if index is not None else Slot("declaration")
    return _for_slot(analysis, slot, start, index)


def _for_slot(analysis: Analysis, slot: Slot, offset: int, index: int | None) -> list[types.CompletionItem]:
    kind = slot.kind
    if kind == "declaration":
        return _declaration_words(slot.words)
    if kind == "after-expression":
        return _keywords(("and", "or")) + _declaration_words(slot.words)
    if kind == "expression":
        return _call_arguments(analysis, index) + _expression(analysis, offset)
    if kind == "key":
        return _keys(analysis, slot, offset)
    if kind == "value":
        return _value(analysis, slot, offset)
    if kind == "type":
        return [_item(name, types.CompletionItemKind.TypeParameter, doc=doc) for name, doc in TYPES.items()] + [
            _item("record", types.CompletionItemKind.TypeParameter, doc=KEYWORDS["record"])
        ]
    if kind == "flag":
        flags = [_item(name, types.CompletionItemKind.EnumMember, doc=doc) for name, doc in FLAGS.items()]
        return flags + _declaration_words(())
    if kind == "chain":
        stages = [
            target
            for target in analysis.visible(offset)
            if target.declaration is not None and target.declaration.kind in ("llm", "student")
        ]
        return [_declared(analysis, target) for target in stages]
    if kind == "keywords":
        words = tuple(word for word in slot.words if word.isidentifier())
        if slot.owner is not None and slot.owner.kind == "loop" and "llm" in words:
            return _keywords(words) + _declaration_words(())
        if "else" in words and len(words) == 1:
            return _keywords(words) + _declaration_words(())
        return _keywords(words)
    return []


# ---- items ------------------------------------------------------------------------------------------------


def _item(
    label: str,
    kind: types.CompletionItemKind,
    detail: str | None = None,
    doc: str = "",
    sort: str = "5",
    insert: str | None = None,
) -> types.CompletionItem:
    return types.CompletionItem(
        label=label,
        kind=kind,
        detail=detail,
        documentation=types.MarkupContent(kind=types.MarkupKind.Markdown, value=doc) if doc else None,
        sort_text=f"{sort}{label}",
        insert_text=insert,
    )


def _keywords(words: tuple[str, ...] | list[str], sort: str = "4") -> list[types.CompletionItem]:
    return [_item(word, types.CompletionItemKind.Keyword, doc=KEYWORDS.get(word, ""), sort=sort) for word in words]


def _declaration_words(extra: tuple[str, ...]) -> list[types.CompletionItem]:
    words = [word for word in extra if word.isidentifier()] + list(DECLARATION_WORDS) + list(VIEW_WORDS)
    return _keywords(list(dict.fromkeys(words)))


def _declared(analysis: Analysis, target: Target, sort: str = "1") -> types.CompletionItem:
    """A completion item for a declared name (or a bound variable)."""
    if target.kind == "binding" and target.occurrence is not None:
        typ = analysis.binding_type(target.occurrence)
        return _item(target.name, types.CompletionItemKind.Variable, str(typ) if typ else "variable", sort="0")
    declaration = target.declaration
    assert declaration is not None
    typ = analysis.declared_type(declaration) if target.path == analysis.path else None
    kind = _KIND.get(declaration.kind, types.CompletionItemKind.Variable)
    detail = f"{declaration.kind}: {typ}" if typ is not None else declaration.kind
    if target.path != analysis.path:
        detail += f" (from {os.path.basename(target.path)})"
    return _item(target.name, kind, detail, sort=sort)


def _builtins(analysis: Analysis) -> list[types.CompletionItem]:
    return [
        _item(
            item.name, types.CompletionItemKind.Function, str(item.signature), doc=inspect.cleandoc(item.doc), sort="2"
        )
        for item in analysis.registry
    ]


def _expression(analysis: Analysis, offset: int) -> list[types.CompletionItem]:
    targets = analysis.visible(offset)
    where = analysis.outline.declaration_at(offset)
    if where is not None and where.kind == "student":  # the student view reads no stage, bank or oracle
        targets = [target for target in targets if _student_may_read(target)]
    names = [_declared(analysis, target) for target in targets]
    return names + _builtins(analysis) + _keywords(("not", "true", "false"))


def _student_may_read(target: Target) -> bool:
    declaration = target.declaration
    if declaration is None:
        return True
    if declaration.kind == "input":
        return "oracle" not in declaration.flags
    return declaration.kind in ("param", "snippet")


def _call_arguments(analysis: Analysis, index: int | None) -> list[types.CompletionItem]:
    """`name=` for each parameter of the built-in whose call's parentheses hold the cursor."""
    if index is None:
        return []
    function = _enclosing_call(analysis.outline, index)
    builtin = analysis.registry.get(function) if function else None
    if builtin is None:
        return []
    return [
        _item(
            f"{parameter.name}=",
            types.CompletionItemKind.Property,
            f"{parameter.name}: {parameter.type}",
            doc=f"argument of `{builtin.signature}`",
            sort="0",
        )
        for parameter in builtin.signature.parameters
    ]


def _enclosing_call(outline: Outline, index: int) -> str:
    """The function whose `(` is the innermost bracket open at the token `index` (or after it)."""
    depth = 0
    for position in range(index, -1, -1):
        token = outline.tokens[position]
        if token.kind != PUNCT:
            continue
        if token.text in ")]":
            depth += 1
        elif token.text in "([":
            if depth == 0:
                before = outline.tokens[position - 1] if position else None
                if token.text == "(" and before is not None and before.kind == NAME:
                    return before.text
                return ""
            depth -= 1
        elif token.text in "{}":
            return ""
    return ""


# ---- bodies -----------------------------------------------------------------------------------------------


def _keys(analysis: Analysis, slot: Slot, offset: int) -> list[types.CompletionItem]:
    owner = slot.owner
    if owner is None:
        return []
    if owner.kind == "bank":
        return [_item(name, types.CompletionItemKind.Property, doc=doc) for name, doc in BANK_SETTINGS.items()]
    in_fallback = any(item.key_start < offset for item in owner.else_settings)
    written = {item.key for item in (owner.else_settings if in_fallback else owner.settings)}
    roles = [
        _item(role, types.CompletionItemKind.Keyword, "message", doc=doc, sort="0") for role, doc in ROLE_DOCS.items()
    ]
    options = [
        _item(
            name,
            types.CompletionItemKind.Property,
            f"{name}: {spec.type}",
            doc=f"{spec.summary}\n\nexample: `{spec.example}`",
            sort="1",
        )
        for name, spec in OPTIONS.items()
        if name not in written
    ]
    return roles + options


def _value(analysis: Analysis, slot: Slot, offset: int) -> list[types.CompletionItem]:
    key, owner = slot.key, slot.owner
    if owner is not None and owner.kind == "bank":
        if key in ("search", "label"):
            return [
                _item(child.name, types.CompletionItemKind.Field, "bank entry field")
                for child in owner.children
                if child.name
            ]
        return [] if key == "file" else _expression(analysis, offset)
    visible = analysis.visible(offset)
    if key in ROLE_DOCS:  # a message: a string or a snippet
        return [
            _declared(analysis, target)
            for target in visible
            if target.declaration is not None and target.declaration.kind == "snippet"
        ]
    spec = OPTIONS.get(key)
    if spec is None:
        return _expression(analysis, offset)
    items = []
    if spec.type == BOOL:
        items += _keywords(("on", "off", "true", "false"), sort="0")
    for target in visible:
        if target.declaration is None or target.declaration.kind != "param":
            continue
        typ = analysis.declared_type(target.declaration) if target.path == analysis.path else None
        items.append(_declared(analysis, target, sort="1" if _fits(spec.type, typ) else "3"))
    return items


def _fits(expected: Type, actual: Type | None) -> bool:
    while isinstance(actual, Optional_):
        actual = actual.inner
    return actual is not None and unify(expected, actual, {})


# ---- strings ------------------------------------------------------------------------------------------------

TEMPLATE_WORDS_AT_START = ("if", "for", "else", "end")
_FOR_NAME = re.compile(r"\s*for\s+\w*$")
_FOR_IN = re.compile(r"\s*for\s+\w+\s+\w*$")


def _in_string(
    analysis: Analysis, string: StringInfo, start: int, offset: int, encoding: str
) -> list[types.CompletionItem]:
    token = string.token
    if any(item.kind == "import" and item.name_start == token.start for item in analysis.outline.declarations):
        return _import_paths(analysis, string, offset, encoding)
    hole = next(
        (item for item in string.placeholders if item.inner_start <= offset <= item.inner_end),
        None,
    )
    if hole is None and analysis.text[offset - 1 : offset + 1] == "{}" and analysis.text[offset - 2 : offset] != "{{":
        hole = Placeholder(offset - 1, offset + 1, offset, offset, True)  # `{|}`: a `}` the editor closed
    if hole is None:
        return []
    before = analysis.text[hole.inner_start : start]
    if start > 0 and analysis.text[start - 1] == ".":
        return _fields(analysis, start)
    if _FOR_NAME.fullmatch(before + "x"):  # naming the variable of `{for x in ...}`
        return []
    if _FOR_IN.fullmatch(before):
        return _keywords(("in",))
    items = _template_arguments(analysis, hole.inner_start, start) + _expression(analysis, offset)
    if not before.strip():
        items = _keywords(TEMPLATE_WORDS_AT_START, sort="3") + items
    return items


def _template_arguments(analysis: Analysis, inner_start: int, offset: int) -> list[types.CompletionItem]:
    """Keyword arguments of a call left open before `offset` inside a placeholder."""
    depth = 0
    text = analysis.text
    for position in range(offset - 1, inner_start - 1, -1):
        char = text[position]
        if char == ")":
            depth += 1
        elif char == "(":
            if depth == 0:
                match = re.search(r"([A-Za-z_]\w*)\s*$", text[inner_start:position])
                builtin = analysis.registry.get(match.group(1)) if match else None
                if builtin is None:
                    return []
                return [
                    _item(f"{item.name}=", types.CompletionItemKind.Property, f"{item.name}: {item.type}", sort="0")
                    for item in builtin.signature.parameters
                ]
            depth -= 1
    return []


def _fields(analysis: Analysis, start: int) -> list[types.CompletionItem]:
    """After `name.`: the record's fields."""
    match = re.search(r"([A-Za-z_]\w*)$", analysis.text[: start - 1])
    if match is None:
        return []
    return [
        _item(name, types.CompletionItemKind.Field, str(typ), sort="0")
        for name, typ in analysis.record_fields(match.group(1), start)
    ]


def _import_paths(analysis: Analysis, string: StringInfo, offset: int, encoding: str) -> list[types.CompletionItem]:
    """The `.harness` files under the document's folder, relative to it (replacing the whole path)."""
    folder = Path(analysis.path).parent
    if not folder.is_dir():
        return []
    found: list[str] = []
    for directory, subfolders, files in os.walk(folder):
        subfolders[:] = sorted(name for name in subfolders if not name.startswith("."))
        if len(Path(directory).relative_to(folder).parts) > 3:
            subfolders[:] = []
        for name in sorted(files):
            path = Path(directory) / name
            if name.endswith(".harness") and path != Path(analysis.path):
                found.append(path.relative_to(folder).as_posix())
        if len(found) >= _MAX_FILES:
            break
    token = string.token
    end = token.content_end
    edit_range = lsp_range(analysis.lines(encoding), token.content_start, max(end, offset))
    return [
        types.CompletionItem(
            label=path,
            kind=types.CompletionItemKind.File,
            text_edit=types.TextEdit(range=edit_range, new_text=path),
            sort_text=path,
        )
        for path in found[:_MAX_FILES]
    ]
