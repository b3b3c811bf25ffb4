"""The template syntax inside strings, parsed into the syntax tree's template nodes (harnessc.ast).

    {expr}                       the value of an expression (a name, `record.field`, a call)
    {if expr}...{else}...{end}   a segment shown only when `expr` is present / true
    {for x in expr}...{end}      a segment repeated for each item of a list
    {{ and }}                    literal braces; `{}` (nothing inside) is kept literally, for `\\boxed{}`

A block tag (`{if ...}`, `{else}`, `{end}`, `{for ...}`) alone on its line takes the whole line with it,
its indentation and line break included (Jinja's trim_blocks + lstrip_blocks), so blocks can be written on
lines of their own without leaving blank lines in the prompt. A tag on the string's last line has no line
break of its own: the text then renders without its final line break (`trim_final_newline`), so that a
string never ends with a line break it does not show. That line break is taken from the rendered text, not
from the source: the one before `{end}` belongs to the block's body, and every item of a `{for}` keeps it.
A tag sharing its line with text leaves the text and its whitespace alone.

The parser (harnessc/parser.py) calls `parse_template` for every string that is a template, and passes
its own expression parser for the placeholders: this module does not import the parser, which imports it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from harnessc import ast
from harnessc.diagnostics import Diagnostic, Label
from harnessc.limits import MAX_NESTING
from harnessc.source import SourceFile, Span

# (the placeholder's text, the source offset of each of its characters, the file) → its syntax tree
ExpressionParser = Callable[[str, Sequence[int], SourceFile], "tuple[ast.Expr | None, list[Diagnostic]]"]

_STANDALONE_TAG = re.compile(r"^[ \t]*(\{(?:if\s[^{}]*|for\s[^{}]*|else|end)\})[ \t]*$", re.M)
_FOR = re.compile(r"for\s+([A-Za-z_]\w*)\s+in\s+(.+)$", re.S)
_BRACE = re.compile(r"[{}]")


@dataclass
class _Block:
    """An open `{if}` or `{for}` while its body is being collected. Its condition, or its variable and
    iterable, are None when they are missing or malformed (reported): the block is then dropped."""

    kind: str  # "if" | "for"
    span: Span
    condition: ast.Expr | None = None
    variable: ast.Identifier | None = None
    iterable: ast.Expr | None = None
    parts: list[ast.TemplatePart] = field(default_factory=list)
    otherwise: list[ast.TemplatePart] | None = None
    else_span: Span | None = None  # where `{else}` was written, for "a second {else}"

    def add(self, part: ast.TemplatePart) -> None:
        (self.otherwise if self.otherwise is not None else self.parts).append(part)


def parse_template(
    text: ast.Text, source: SourceFile, parse_expression: ExpressionParser
) -> tuple[tuple[ast.TemplatePart, ...], list[Diagnostic], bool]:
    """Split a decoded string into template nodes; collects every template error instead of stopping at one.
    The flag: the last line is a lone block tag, so the rendering drops one final line break."""
    scanner = _Scanner(text, source, parse_expression)
    return scanner.run(), scanner.diagnostics, scanner.trim_final_newline


class _Scanner:
    def __init__(self, text: ast.Text, source: SourceFile, parse_expression: ExpressionParser) -> None:
        self.value, self.offsets, self.source = text.value, text.offsets, source
        self.parse_expression = parse_expression
        self.diagnostics: list[Diagnostic] = []
        self.root: list[ast.TemplatePart] = []
        self.stack: list[_Block] = []
        self.literal: list[str] = []
        self.literal_start = 0
        self.dropped, self.trim_final_newline = _standalone_whitespace(self.value)

    def span(self, start: int, end: int) -> Span:
        if not self.offsets:
            return self.source.span(0, 0)
        real_start = self.offsets[min(start, len(self.offsets) - 1)]
        real_end = self.offsets[min(end, len(self.offsets)) - 1] + 1 if end > start else real_start
        return self.source.span(real_start, real_end)

    def emit(self, part: ast.TemplatePart) -> None:
        (self.stack[-1].add if self.stack else self.root.append)(part)

    def flush(self, upto: int) -> None:
        if self.literal:
            self.emit(ast.TemplateText(value="".join(self.literal), span=self.span(self.literal_start, upto)))
            self.literal = []

    def literal_char(self, char: str, index: int) -> None:
        if index in self.dropped:
            return
        if not self.literal:
            self.literal_start = index
        self.literal.append(char)

    def run(self) -> tuple[ast.TemplatePart, ...]:
        index, value = 0, self.value
        while index < len(value):
            pair = value[index : index + 2]
            if pair in ("{{", "}}", "{}"):
                for char in "{" if pair == "{{" else "}" if pair == "}}" else "{}":
                    self.literal_char(char, index)
                index += 2
            elif value[index] == "{":
                index = self.tag(index)
            elif value[index] == "}":
                self.error(
                    "unbalanced-brace",
                    "`}` without a matching `{`",
                    index,
                    index + 1,
                    "write `}}` for a literal brace",
                    "nothing opens this",
                )
                index += 1
            else:  # plain text up to the next brace, in one piece
                brace = _BRACE.search(value, index)
                end = brace.start() if brace else len(value)
                if self.dropped:
                    for position in range(index, end):
                        self.literal_char(value[position], position)
                else:
                    if not self.literal:
                        self.literal_start = index
                    self.literal.append(value[index:end])
                index = end
        self.flush(len(value))
        for block in self.stack:
            self.diagnostics.append(
                Diagnostic(
                    code="template-block",
                    message=f"`{{{block.kind}}}` is never closed",
                    span=block.span,
                    label="opened here",
                    hints=("close it with `{end}`",),
                )
            )
        while self.stack:
            self.close_block(len(value))
        return tuple(self.root)

    def error(self, code: str, message: str, start: int, end: int, hint: str = "", label: str = "") -> None:
        self.diagnostics.append(
            Diagnostic(
                code=code,
                message=message,
                span=self.span(start, end),
                label=label,
                hints=(hint,) if hint else (),
            )
        )

    def tag(self, start: int) -> int:
        """Handle `{...}` starting at `start`; returns the index after it."""
        close = _find_close(self.value, start + 1)
        if close is None:
            self.error(
                "unbalanced-brace",
                "`{` is never closed",
                start,
                start + 1,
                "close the placeholder with `}`, or write `{{` for a literal brace",
                "opened here",
            )
            return len(self.value)
        self.flush(start)
        inner_start, inner_end = _strip_bounds(self.value, start + 1, close)
        content = self.value[inner_start:inner_end]
        whole = self.span(start, close + 1)
        if content == "end" or content == "else":
            self.block_keyword(content, whole, close + 1)
        elif content in ("if", "for"):
            # `{if}` / `{for}` with nothing after the keyword: report it and still open the block, so that
            # its `{end}` is not reported again as closing nothing.
            form = "{if CONDITION}" if content == "if" else "{for NAME in LIST}"
            missing = "condition" if content == "if" else "loop"
            self.error(
                "template-block",
                f"`{{{content}}}` without its {missing}",
                inner_start,
                inner_end,
                f"write `{form}`",
                "incomplete",
            )
            self.stack.append(_Block(content, whole))
        elif content.startswith("if ") or content.startswith("if\n"):
            self.open_if(inner_start + 3, inner_end, whole)
        elif content.startswith("for "):
            self.open_for(content, inner_start, inner_end, whole)
        else:
            written = self.value[start : close + 1]
            expr = self.expression(inner_start, inner_end, written)
            if expr is not None and _is_literal(expr):
                self.error(
                    "literal-placeholder",
                    f"`{written}` is a placeholder printing the constant {content}: the braces vanish",
                    start,
                    close + 1,
                    f"for literal braces (LaTeX, JSON) double them: `{_escaped(written)}`",
                    "a placeholder, not text",
                )
            elif expr is not None:
                latex = _LATEX_BEFORE.search(self.value, 0, start) is not None
                self.emit(ast.TemplatePlaceholder(expr=expr, span=whole, latex=latex))
        return close + 1

    def expression(self, start: int, end: int, written: str = "") -> ast.Expr | None:
        """Parse a placeholder's or a block's expression; `written` is the whole placeholder `{...}` (not
        for blocks): a syntax error in it then hints at doubled braces, as it may be literal text."""
        while start < end and self.value[start].isspace():
            start += 1
        if start >= end:
            hint = f"for literal braces write `{_escaped(written)}`" if written else ""
            self.error("syntax-error", "empty expression in template", start - 1, end + 1, hint)
            return None
        expr, errors = self.parse_expression(self.value[start:end], self.offsets[start:end], self.source)
        if written and errors and not _CALL_OR_FIELD.match(self.value, start):
            hint = f"if this is literal text (JSON, LaTeX), double the braces: `{_escaped(written)}`"
            errors = [replace(error, hints=(*error.hints, hint)) for error in errors]
        self.diagnostics.extend(errors)
        return expr

    def open_if(self, start: int, end: int, whole: Span) -> None:
        condition = self.expression(start, end)
        self.push(_Block("if", whole, condition=condition))

    def push(self, block: _Block) -> None:
        """Open a block; beyond MAX_NESTING levels it is reported and its contents dropped (later passes
        walk templates recursively)."""
        if len(self.stack) == MAX_NESTING:
            self.diagnostics.append(
                Diagnostic(
                    code="template-block",
                    message=f"template blocks nested more than {MAX_NESTING} levels deep",
                    span=block.span,
                    label="nested too deeply",
                )
            )
        if len(self.stack) >= MAX_NESTING:
            block.condition = block.variable = block.iterable = None
        self.stack.append(block)

    def open_for(self, content: str, start: int, end: int, whole: Span) -> None:
        match = _FOR.match(content)
        if match is None:
            self.error("template-block", "malformed loop: expected `{for NAME in LIST}`", start, end)
            self.push(_Block("for", whole))
            return
        name_start = start + match.start(1)
        variable = ast.Identifier(name=match[1], span=self.span(name_start, name_start + len(match[1])))
        iterable = self.expression(start + match.start(2), end)
        self.push(_Block("for", whole, variable=variable, iterable=iterable))

    def block_keyword(self, keyword: str, whole: Span, after: int) -> None:
        if not self.stack:
            self.diagnostics.append(
                Diagnostic(
                    code="template-block",
                    message=f"`{{{keyword}}}` without an open `{{if}}` or `{{for}}`",
                    span=whole,
                    label="nothing to close here",
                )
            )
            return
        block = self.stack[-1]
        if keyword == "end":
            self.close_block(after)
        elif block.kind != "if":
            self.diagnostics.append(
                Diagnostic(
                    code="template-block",
                    message="`{else}` inside `{for}`: only `{if}` has an `{else}`",
                    span=whole,
                    label="not allowed here",
                    labels=(Label(block.span, "the enclosing `{for}`"),),
                    hints=("close the loop with `{end}` first, or wrap this part in `{if ...}...{else}...{end}`",),
                )
            )
        elif block.otherwise is not None:
            self.diagnostics.append(
                Diagnostic(
                    code="template-block",
                    message="an `{if}` may have only one `{else}`",
                    span=whole,
                    label="second `{else}`",
                    labels=(Label(block.else_span or block.span, "first `{else}`"),),
                    hints=("for more cases nest another `{if}` inside the `{else}` branch",),
                )
            )
        else:
            block.otherwise = []
            block.else_span = whole

    def close_block(self, after: int) -> None:
        block = self.stack.pop()
        span = _join(block.span, self.span(after - 1, after)) if after else block.span
        if block.condition is not None:
            then, otherwise = tuple(block.parts), tuple(block.otherwise or ())
            self.emit(ast.TemplateIf(condition=block.condition, then=then, otherwise=otherwise, span=span))
        elif block.variable is not None and block.iterable is not None:
            body = tuple(block.parts)
            self.emit(ast.TemplateFor(variable=block.variable, iterable=block.iterable, body=body, span=span))


def _standalone_whitespace(value: str) -> tuple[set[int], bool]:
    """Indices of the indentation, trailing blanks and line break of lines holding only a block tag; and
    whether the last line is one (its line break is then the rendering's final one, dropped at render time:
    the line break before the tag may belong to a block's body, repeated or not shown)."""
    dropped: set[int] = set()
    last = False
    for match in _STANDALONE_TAG.finditer(value):
        dropped.update(range(match.start(), match.start(1)))
        dropped.update(range(match.end(1), match.end()))
        if match.end() < len(value):
            dropped.add(match.end())  # the line break ending the line
        elif match.start() > 0:
            last = True
    return dropped, last


# Text ending like LaTeX just before a placeholder: a command (`\\sqrt`), a super- or subscript, or a
# closed group (`\\frac{a}`), for the hint of an unknown name (`\\sqrt{x}`: write `\\sqrt{{x}}`).
_CALL_OR_FIELD = re.compile(r"[A-Za-z_]\w*\s*[(.]")  # `{join(...`, `{case.text`: an expression, not text
_LATEX_BEFORE = re.compile(r"(?:\\[A-Za-z]+|[\^_}])\Z")


def _is_literal(expr: ast.Expr) -> bool:
    """A constant written as a placeholder (`{10}`, `{-1}`, `{true}`, `{"a"}`, `{[1, 2]}`): printing a constant
    needs no placeholder, so the braces were surely meant as text."""
    if isinstance(expr, (ast.Number, ast.Boolean)):
        return True
    if isinstance(expr, ast.TemplateLiteral):
        return all(isinstance(part, ast.TemplateText) for part in expr.parts)
    if isinstance(expr, ast.ListLiteral):
        return all(_is_literal(item) for item in expr.items)
    return False


def _escaped(written: str) -> str:
    """A placeholder as literal text: every brace doubled."""
    return written.replace("{", "{{").replace("}", "}}")


def _join(first: Span, last: Span) -> Span:
    return Span(first.file, first.start, last.end, first.line, first.column, last.end_line, last.end_column)


def _strip_bounds(value: str, start: int, end: int) -> tuple[int, int]:
    while start < end and value[start].isspace():
        start += 1
    while end > start and value[end - 1].isspace():
        end -= 1
    return start, end


def _find_close(value: str, index: int) -> int | None:
    """The `}` closing a tag, skipping string literals inside it; None if a `{` or the end comes first."""
    while index < len(value):
        char = value[index]
        if char == '"':
            end = value.find('"', index + 1)
            if end < 0:
                return None
            index = end + 1
            continue
        if char == "}":
            return index
        if char == "{":
            return None
        index += 1
    return None
