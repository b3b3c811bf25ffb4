"""`harnessc fmt`: print a harness in one canonical layout, keeping every comment and every string verbatim.

The formatter works on Lark's syntax tree (harnessc/grammar.lark), one printer per grammar rule:
`_LINE_ITEMS` (declarations printed on one line), `_BLOCK_ITEMS` (declarations with `{ ... }` bodies),
`_TYPES` and `_EXPRESSIONS`. A rule with no printer (a construct added to the grammar after this file)
makes `format_source` raise `FormatError` naming it: the file is refused, never printed with text lost.
Adding a construct is one entry in the right table.

Layout: 2-space indentation in blocks, one item per line, one space around `=` and binary operators,
`name: type`, `f(a, k=v)`, `[a, b]`, `record{a: T}`; the author's grouping is kept, with blank lines
between items collapsed to one and none at the start or end of a block. String literals (`"..."` and
`\"\"\"...\"\"\"`) are copied from the source, byte for byte. A declaration or setting whose expression spans
several lines outside strings is copied verbatim too (its first line re-indented). Comments: a comment on
its own line stays before the item it precedes (or before the closing `}` of its block); a comment after
code stays at the end of that line, with the author's spacing before it. If a comment is somewhere no
rule can place it, the file is refused (FormatError) rather than the comment dropped.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from lark import Token, Tree, UnexpectedInput

INDENT = "  "


class FormatError(Exception):
    """The file cannot be formatted (syntax error, a construct this formatter does not know, a comment it
    cannot place). The message says why; the file is left as it was."""


@dataclass
class _Comment:
    start: int
    line: int  # 1-based source line
    text: str
    own_line: bool  # nothing but whitespace before it on its line
    gap: str  # the whitespace between the code and a trailing comment


def _find_comments(text: str, tree: Tree) -> list[_Comment]:
    """Comments are `#` outside string literals (no other token can contain `#`)."""
    strings = sorted(
        (t.start_pos, t.end_pos) for t in tree.scan_values(lambda v: isinstance(v, Token)) if t.type in _STRING_TYPES
    )
    comments: list[_Comment] = []
    position, index = 0, 0
    while True:
        hash_at = text.find("#", position)
        if hash_at < 0:
            return comments
        while index < len(strings) and strings[index][1] <= hash_at:
            index += 1
        if index < len(strings) and strings[index][0] <= hash_at:
            position = strings[index][1]  # inside a string literal: go on after it
            continue
        line_end = text.find("\n", hash_at)
        line_end = len(text) if line_end < 0 else line_end
        line_start = text.rfind("\n", 0, hash_at) + 1
        before = text[line_start:hash_at]
        stripped = before.rstrip(" \t\f\r")
        comments.append(
            _Comment(
                start=hash_at,
                line=text.count("\n", 0, hash_at) + 1,
                text=text[hash_at:line_end].rstrip(" \t\f\r"),
                own_line=not stripped,
                gap=before[len(stripped) :] or " ",
            )
        )
        position = line_end


_STRING_TYPES = {"STRING", "LONG_STRING"}


class _Printer:
    def __init__(self, text: str, tree: Tree) -> None:
        self.text = text
        self.comments = _find_comments(text, tree)
        self.next_comment = 0
        self.placed = 0
        self.lines: list[str] = []

    # ---- comments and blank lines -------------------------------------------------------------

    def _blank_before(self, position: int, previous_end: int | None) -> bool:
        if previous_end is None:
            return False
        return "\n\n" in re.sub(r"[ \t\f\r]+", "", self.text[previous_end:position])

    def leading(self, start: int, indent: str, previous_end: int | None) -> int | None:
        """Own-line comments before `start`, each on its line; returns the end of the last one emitted
        (for the blank-line rule), or previous_end."""
        while self.next_comment < len(self.comments) and self.comments[self.next_comment].start < start:
            comment = self.comments[self.next_comment]
            if not comment.own_line:
                raise FormatError(f"line {comment.line}: cannot place the comment {comment.text!r}")
            if self._blank_before(comment.start, previous_end) and self.lines and self.lines[-1] != "":
                self.lines.append("")
            self.lines.append(indent + comment.text)
            self.next_comment += 1
            self.placed += 1
            previous_end = comment.start + len(comment.text)
        return previous_end

    def trailing(self, end: int) -> None:
        """A comment after code on the line where the source of the last printed line ended."""
        if self.next_comment >= len(self.comments):
            return
        comment = self.comments[self.next_comment]
        if comment.own_line or comment.start < end:
            return
        if "\n" in self.text[end : comment.start]:
            return
        self.lines[-1] += comment.gap + comment.text
        self.next_comment += 1
        self.placed += 1

    def skip_inside(self, start: int, end: int) -> None:
        """Comments inside a span copied verbatim are kept by the copy."""
        while self.next_comment < len(self.comments) and start <= self.comments[self.next_comment].start < end:
            self.next_comment += 1
            self.placed += 1

    # ---- items --------------------------------------------------------------------------------

    def items(self, items: list[Tree], indent: str, block_start: int | None) -> int | None:
        previous_end = block_start
        for item in items:
            start, end = item.meta.start_pos, item.meta.end_pos
            first_blank = self._blank_before(start, previous_end) if previous_end is not None else False
            had = len(self.lines)
            after_comments = self.leading(start, indent, previous_end)
            if len(self.lines) == had:
                if first_blank and block_start != previous_end and self.lines and self.lines[-1] != "":
                    self.lines.append("")
            elif self._blank_before(start, after_comments) and self.lines[-1] != "":
                self.lines.append("")
            self.item(item, indent)
            previous_end = end
        return previous_end

    def item(self, item: Tree, indent: str) -> None:
        name = item.data
        if name in _BLOCK_ITEMS:
            _BLOCK_ITEMS[name](self, item, indent)
        elif name in _LINE_ITEMS:
            start, end = item.meta.start_pos, item.meta.end_pos
            if self.multiline(start, end):
                self.lines.append(indent + self.text[start:end])
                self.skip_inside(start, end)
            else:
                self.lines.append(indent + _LINE_ITEMS[name](item))
            self.trailing(end)
        else:
            raise FormatError(f"line {item.meta.line}: `harnessc fmt` does not know the construct `{name}` yet")

    def joinable(self, node: Tree, what: str, *, end: int | None = None) -> None:
        """A header part written over several lines is printed on one; FormatError if that would move a
        comment written inside it."""
        start, stop = node.meta.start_pos, node.meta.end_pos if end is None else end
        inside = [c for c in self.comments[self.next_comment :] if start <= c.start < stop]
        if inside:
            raise FormatError(f"line {inside[0].line}: cannot place a comment inside {what} (move it above)")

    def multiline(self, start: int, end: int) -> bool:
        """Does the source from start to end span lines outside string literals?"""
        segment = self.text[start:end]
        if "\n" not in segment:
            return False
        without_strings = _STRINGS_RE.sub('""', segment)
        return "\n" in without_strings

    def block(
        self, header: str, body: Tree, indent: str, children: list[Tree], *, continues: bool = False, trail: bool = True
    ) -> None:
        """`header {` items `}` at `indent`; with `continues`, the header goes on the last line printed
        (`} else {`); without `trail`, a comment after the `}` is left to what follows (`} else { # ...`)."""
        if continues:
            self.lines[-1] += " " + header + " {"
        else:
            self.lines.append(indent + header + " {")
        self.trailing(body.meta.start_pos + 1)  # a comment after the `{`
        last = self.items(children, indent + INDENT, body.meta.start_pos + 1)
        close = body.meta.end_pos - 1
        had = len(self.lines)
        self.leading(close, indent + INDENT, last)
        if not children and len(self.lines) == had and "\n" not in self.text[body.meta.start_pos : body.meta.end_pos]:
            self.lines[-1] = self.lines[-1] + "}"
        else:
            self.lines.append(indent + "}")
        if trail:
            self.trailing(body.meta.end_pos)


_STRINGS_RE = re.compile(r'"""(?:[^"]++|"(?!""))*+"""|"(?:[^"\\\n]++|\\.)*+"', re.S)


# ---- helpers ------------------------------------------------------------------------------------


def _tok(node: object) -> str:
    assert isinstance(node, Token)
    return str(node)


def _string(node: object) -> str:
    """A string literal exactly as written (`string` wraps one STRING or LONG_STRING token)."""
    assert isinstance(node, Tree) and node.data == "string"
    token = node.children[0]
    assert isinstance(token, Token)
    return str(token)


# ---- types --------------------------------------------------------------------------------------


def fmt_type(node: object) -> str:
    if not isinstance(node, Tree) or node.data not in _TYPES:
        what = node.data if isinstance(node, Tree) else type(node).__name__
        raise FormatError(f"`harnessc fmt` does not know the type construct `{what}` yet")
    return _TYPES[node.data](node)


def _record_type(node: Tree) -> str:
    fields = [c for c in node.children if c is not None]
    return "record{" + ", ".join(f"{_tok(f.children[0])}: {fmt_type(f.children[1])}" for f in fields) + "}"


_TYPES: dict[str, Callable[[Tree], str]] = {
    "named_type": lambda n: _tok(n.children[0]),
    "generic_type": lambda n: f"{_tok(n.children[0])}[{fmt_type(n.children[1])}]",
    "record_type": _record_type,
}


# ---- expressions --------------------------------------------------------------------------------

# precedence: or 1 < and 2 < not 3 < comparison 4 < sum 5 < product 6 < atom 7; a child printed below its
# context's level gets parentheses (the tree does not keep the source's parentheses).
_SUM, _PRODUCT, _ATOM = 5, 6, 7


def fmt_expr(node: object, context: int = 0) -> str:
    if isinstance(node, Tree) and node.data in _EXPRESSIONS:
        level, printer = _EXPRESSIONS[node.data]
        level = level(node) if callable(level) else level
        text = printer(node)
        return f"({text})" if level < context else text
    what = node.data if isinstance(node, Tree) else getattr(node, "type", type(node).__name__)
    raise FormatError(f"`harnessc fmt` does not know the expression construct `{what}` yet")


def _argument(node: object) -> str:
    if isinstance(node, Tree) and node.data == "keyword_argument":
        return f"{_tok(node.children[0])}={fmt_expr(node.children[1])}"
    return fmt_expr(node)


def _present(children: list) -> list:
    return [c for c in children if c is not None]


def _arithmetic_level(node: Tree) -> int:
    return _SUM if str(node.children[1]) in ("+", "-") else _PRODUCT


def _arithmetic(node: Tree) -> str:
    # left-associative: the right operand binds tighter (`a - (b - c)` keeps its parentheses)
    level = _arithmetic_level(node)
    return f"{fmt_expr(node.children[0], level)} {node.children[1]} {fmt_expr(node.children[2], level + 1)}"


def _slice(node: Tree) -> str:
    start, stop = (fmt_expr(child) if child is not None else "" for child in node.children[1:3])
    return f"{fmt_expr(node.children[0], _ATOM)}[{start}:{stop}]"


_EXPRESSIONS: dict[str, tuple[int | Callable[[Tree], int], Callable[[Tree], str]]] = {
    "or_": (1, lambda n: f"{fmt_expr(n.children[0], 1)} or {fmt_expr(n.children[1], 2)}"),
    "and_": (2, lambda n: f"{fmt_expr(n.children[0], 2)} and {fmt_expr(n.children[1], 3)}"),
    "not_": (3, lambda n: f"not {fmt_expr(n.children[0], 3)}"),
    "compare": (4, lambda n: f"{fmt_expr(n.children[0], _SUM)} {n.children[1]} {fmt_expr(n.children[2], _SUM)}"),
    "arithmetic": (_arithmetic_level, _arithmetic),
    "index": (_ATOM, lambda n: f"{fmt_expr(n.children[0], _ATOM)}[{fmt_expr(n.children[1])}]"),
    "slice": (_ATOM, _slice),
    "name": (_ATOM, lambda n: _tok(n.children[0])),
    "field": (_ATOM, lambda n: f"{fmt_expr(n.children[0], _ATOM)}.{_tok(n.children[1])}"),
    "call": (_ATOM, lambda n: f"{_tok(n.children[0])}(" + ", ".join(map(_argument, _present(n.children[1:]))) + ")"),
    "template": (_ATOM, lambda n: _string(n.children[0])),
    "number": (_ATOM, lambda n: _tok(n.children[0])),
    "true": (_ATOM, lambda n: "true"),
    "false": (_ATOM, lambda n: "false"),
    "list": (_ATOM, lambda n: "[" + ", ".join(fmt_expr(c) for c in _present(n.children)) + "]"),
    "comprehension": (
        _ATOM,
        lambda n: f"[{fmt_expr(n.children[0])} for {_tok(n.children[1])} in {fmt_expr(n.children[2])}]",
    ),
}


# ---- declarations -------------------------------------------------------------------------------


def _header(n: Tree) -> str:
    description = n.children[1]
    return f"harness {_tok(n.children[0])}" + (f" {_string(description)}" if description is not None else "")


_LINE_ITEMS: dict[str, Callable[[Tree], str]] = {
    "header": _header,
    "import_decl": lambda n: f"import {_string(n.children[0])}",
    "input_decl": lambda n: " ".join(
        [f"input {_tok(n.children[0])}: {fmt_type(n.children[1])}", *map(_tok, n.children[2:])]
    ),
    "param_decl": lambda n: f"param {_tok(n.children[0])}: {fmt_type(n.children[1])} = {fmt_expr(n.children[2])}",
    "snippet_decl": lambda n: f"snippet {_tok(n.children[0])} = {_string(n.children[1])}",
    "let_stage": lambda n: f"let {_tok(n.children[0])} = {fmt_expr(n.children[1])}",
    "output_decl": lambda n: f"output = {fmt_expr(n.children[0])}",
    "student_output_decl": lambda n: f"student_output = {fmt_expr(n.children[0])}",
    "grade_decl": lambda n: f"grade = {fmt_expr(n.children[0])}",
    "teacher_chain": lambda n: "teacher = " + " else ".join(map(_tok, n.children)),
    "until_clause": lambda n: f"until {fmt_expr(n.children[0])}",
    "next_clause": lambda n: f"next {fmt_expr(n.children[0])}",
    "setting": lambda n: f"{_tok(n.children[0])} {fmt_expr(n.children[1])}",
    "bank_field": lambda n: f"{_tok(n.children[0])}: {fmt_type(n.children[1])} = {fmt_expr(n.children[2])}",
}


def _llm_stage(p: _Printer, n: Tree, indent: str) -> None:
    name, fan_out, guard, body, else_body = n.children
    header = f"llm {_tok(name)}"
    if fan_out is not None:  # `for ITEM in LIST [max N]`: one call per item
        assert isinstance(fan_out, Tree)
        p.joinable(fan_out, "a fan-out")
        item, items, bound = fan_out.children
        header += f" for {_tok(item)} in {fmt_expr(items)}"
        if bound is not None:
            assert isinstance(bound, Tree)
            header += f" max {fmt_expr(bound.children[0])}"
    if guard is not None:
        assert isinstance(guard, Tree)
        p.joinable(guard, "a `when` guard")
        header += f" when {fmt_expr(guard.children[0])}"
    assert isinstance(body, Tree)
    p.block(header, body, indent, list(body.children), trail=else_body is None)
    if else_body is not None:
        assert isinstance(else_body, Tree)
        inner = else_body.children[0]
        assert isinstance(inner, Tree)
        between = [c for c in p.comments[p.next_comment :] if body.meta.end_pos <= c.start < inner.meta.start_pos]
        if between:  # `}`, a comment line, then `else {`: no canonical place keeps it there
            raise FormatError(f"line {between[0].line}: cannot place a comment between `}}` and `else`")
        p.block("else", inner, indent, list(inner.children), continues=True)


def _body_block(keyword: str) -> Callable[[_Printer, Tree, str], None]:
    def print_block(p: _Printer, n: Tree, indent: str) -> None:
        body = n.children[0]
        assert isinstance(body, Tree)
        p.block(keyword, body, indent, list(body.children))

    return print_block


def _bank_decl(p: _Printer, n: Tree, indent: str) -> None:
    # bank_decl has no body node: the block runs from the `{` after the name to the end of the node
    name = n.children[0]
    assert isinstance(name, Token)
    brace = p.text.index("{", name.end_pos)
    body = Tree("body", list(n.children[1:]))
    body.meta.start_pos, body.meta.end_pos, body.meta.line = brace, n.meta.end_pos, n.meta.line
    body.meta.empty = False
    p.block(f"bank {name}", body, indent, [c for c in n.children[1:] if isinstance(c, Tree)])


def _loop_stage(p: _Printer, n: Tree, indent: str) -> None:
    name, start, bound, *items = n.children
    header = f"loop {_tok(name)} from {fmt_expr(start)}"
    if bound is not None:
        assert isinstance(bound, Tree)
        header += f" max {fmt_expr(bound.children[0])}"
    last_head = bound if bound is not None else start
    assert isinstance(last_head, Tree)
    p.joinable(n, "a loop header", end=last_head.meta.end_pos)
    brace = p.text.index("{", last_head.meta.end_pos)
    body = Tree("body", list(items))
    body.meta.start_pos, body.meta.end_pos, body.meta.line = brace, n.meta.end_pos, n.meta.line
    body.meta.empty = False
    p.block(header, body, indent, [c for c in items if isinstance(c, Tree)])


_BLOCK_ITEMS: dict[str, Callable[[_Printer, Tree, str], None]] = {
    "llm_stage": _llm_stage,
    "student_view": _body_block("student"),
    "teacher_template": _body_block("teacher"),
    "bank_decl": _bank_decl,
    "loop_stage": _loop_stage,
}


# ---- entry point --------------------------------------------------------------------------------


def format_source(text: str) -> str:
    """The canonical layout of `text`. Raises FormatError (syntax error, unknown construct, a comment
    that cannot be placed); never returns text with a comment or a string changed."""
    from harnessc.parser import lark_parser

    try:
        tree = lark_parser().parse(text, start="start")
    except UnexpectedInput as error:
        line = getattr(error, "line", "?")
        raise FormatError(f"line {line}: syntax error (run `harnessc check` for details)") from None
    printer = _Printer(text, tree)
    items = [c for c in tree.children if isinstance(c, Tree)]
    printer.items(items, "", None)
    printer.leading(len(text) + 1, "", items[-1].meta.end_pos if items else None)
    if printer.placed != len(printer.comments):
        raise FormatError("a comment could not be placed")
    while printer.lines and printer.lines[0] == "":
        printer.lines.pop(0)
    return "\n".join(printer.lines) + "\n" if printer.lines else ""
