"""Text → syntax tree (harnessc.ast), or a friendly syntax diagnostic. Lark's internals never reach users."""

from __future__ import annotations

import functools
import re
from array import array
from collections.abc import Sequence
from importlib import resources

from lark import Lark, Token, Tree, UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from harnessc import ast
from harnessc.diagnostics import Diagnostic, Label
from harnessc.limits import MAX_INT, MIN_INT, float_in_range, int_in_range
from harnessc.source import SourceFile


@functools.cache
def lark_parser() -> Lark:
    grammar = resources.files("harnessc").joinpath("grammar.lark").read_text(encoding="utf-8")
    return Lark(grammar, parser="lalr", propagate_positions=True, maybe_placeholders=True, start=["start", "expr"])


def parse_module(source: SourceFile) -> tuple[ast.Module | None, list[Diagnostic]]:
    """Parse one file. On a syntax error returns (None, [the diagnostic]); LALR stops at the first one."""
    try:
        tree = lark_parser().parse(source.text, start="start")
    except UnexpectedInput as error:
        return None, [syntax_diagnostic(error, source)]
    too_deep = _nesting_diagnostic(tree, source)
    if too_deep:
        return None, [too_deep]
    problems: list[Diagnostic] = []
    return _to_ast(tree, source, problems), problems


def parse_expression(text: str, offsets: Sequence[int], source: SourceFile) -> tuple[ast.Expr | None, list[Diagnostic]]:
    """Parse an expression found inside a template placeholder; spans map back through `offsets`."""
    shifted = _ShiftedSource(source, text, offsets)
    simple = dotted_name(text, shifted)
    if simple is not None:
        return simple, []
    try:
        tree = lark_parser().parse(text, start="expr")
    except UnexpectedInput as error:
        return None, [syntax_diagnostic(error, shifted)]
    too_deep = _nesting_diagnostic(tree, shifted)
    if too_deep:
        return None, [too_deep]
    problems: list[Diagnostic] = []
    return _to_ast(tree, shifted, problems), problems


_DOTTED_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")


def dotted_name(text: str, source) -> ast.Expr | None:
    """`name` or `name.field.field`, most placeholders, built without running the parser: the nodes and
    spans that the grammar's `name` and `field` rules make. None for anything else."""
    from harnessc.names import KEYWORDS

    if _DOTTED_NAME.fullmatch(text) is None:
        return None
    parts = text.split(".")
    if len(parts) > 16 or any(part in KEYWORDS for part in parts):
        return None
    expr: ast.Expr = ast.Name(name=parts[0], span=source.span(0, len(parts[0])))
    end = len(parts[0])
    for part in parts[1:]:
        start, end = end + 1, end + 1 + len(part)
        field = ast.Identifier(name=part, span=source.span(start, end))
        expr = ast.FieldAccess(value=expr, field=field, span=source.span(0, end))
    return expr


# How deep the syntax tree may nest (declaration levels included): every later pass walks trees
# recursively, so a pathological `not not not ...` or `[[[[...]]]]` gets a diagnostic, not a RecursionError.
MAX_NESTING = 64


def _nesting_diagnostic(tree: Tree, source) -> Diagnostic | None:
    stack = [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_NESTING:
            start = getattr(node.meta, "start_pos", 0)
            return Diagnostic(
                code="syntax-error",
                message=f"this is nested more than {MAX_NESTING} levels deep",
                span=source.span(start, getattr(node.meta, "end_pos", start)),
                label="nested too deeply",
                hints=("split the expression into several `let` stages",),
            )
        stack.extend((child, depth + 1) for child in node.children if isinstance(child, Tree))
    return None


class _ShiftedSource:
    """Quacks like SourceFile for a substring: maps substring offsets to the real file's spans."""

    where = "placeholder"  # what "unexpected end of ..." is the end of

    def __init__(self, source: SourceFile, text: str, offsets: tuple[int, ...]) -> None:
        self.source = source
        self.offsets = offsets
        self.path = source.path
        self.text = text

    def real(self, offset: int) -> int:
        if not self.offsets:
            return 0
        if offset >= len(self.offsets):
            return self.offsets[-1] + 1
        return self.offsets[offset]

    def span(self, start: int, end: int | None = None):
        end = start if end is None else end
        real_end = self.real(end - 1) + 1 if end > start else self.real(start)
        return self.source.span(self.real(start), real_end)

    def end_span(self):
        stripped = self.text.rstrip()
        return self.span(len(stripped), len(stripped))


# ---- syntax errors ----------------------------------------------------------------------------------

_TOKEN_NAMES = {
    "NAME": "a name",
    "STRING": "a string",
    "LONG_STRING": "a string",
    "NUMBER": "a number",
    "LBRACE": "`{`",
    "RBRACE": "`}`",
    "LPAR": "`(`",
    "RPAR": "`)`",
    "LSQB": "`[`",
    "RSQB": "`]`",
    "COLON": "`:`",
    "COMMA": "`,`",
    "EQUAL": "`=`",
    "DOT": "`.`",
    "COMPARE": "a comparison",
    "$END": "end of file",
}
_OPENERS = {"{": "}", "(": ")", "[": "]"}
_CLOSER_TOKENS = {"}": "RBRACE", ")": "RPAR", "]": "RSQB"}
# The tokens an expression can start with: when all of them are acceptable, "a value" says it in two words.
_VALUE_STARTS = frozenset({"NAME", "STRING", "LONG_STRING", "NUMBER", "TRUE", "FALSE", "LPAR", "LSQB"})
# Listing order: what closes or separates first (the likeliest fix), operators last.
_PRIORITY = (
    "RPAR",
    "RSQB",
    "RBRACE",
    "COMMA",
    "COLON",
    "EQUAL",
    "NAME",
    "STRING",
    "LONG_STRING",
    "NUMBER",
    "LBRACE",
    "LSQB",
    "LPAR",
)
# Characters people bring from other languages, with what to write instead.
_CHARACTER_HINTS = {
    ";": "declarations and options end at the end of the line: remove the `;`",
    "'": 'strings are written in double quotes: "..."',
    "+": 'there are no arithmetic operators; build text with a template: "{a} {b}"',
    "&": "write `and`",
    "|": "write `or`",
    "!": "write `not` (or `!=` to compare)",
}


def _describe_expected(expected: set[str]) -> str:
    expected = set(expected)
    # Where a separator or closer fits, it is the likely fix: the operators that could also continue the
    # expression (`and`, `.`, `(`, a comparison) would only bury it.
    separators = expected & {"RPAR", "RSQB", "RBRACE", "COMMA", "COLON"}
    if separators and expected & {"AND", "OR", "DOT", "COMPARE", "LPAR", "EQUAL"}:
        expected = separators
    groups: list[str] = []
    if _VALUE_STARTS <= expected:
        expected -= _VALUE_STARTS | {"NOT"}
        groups.append("a value")
    rank = {name: index for index, name in enumerate(_PRIORITY)}
    ordered = sorted(expected, key=lambda name: (rank.get(name, len(rank)), name))
    names = list(
        dict.fromkeys(groups + [_TOKEN_NAMES.get(name, f"`{name.strip(chr(34)).lower()}`") for name in ordered])
    )
    if not names:  # Lark lists nothing where only the end of an expression (in a template) may follow
        return "the end of the expression"
    if len(names) > 6:
        return ", ".join(names[:5]) + " or another token"
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]


def syntax_diagnostic(error: UnexpectedInput, source) -> Diagnostic:
    if isinstance(error, UnexpectedEOF) or (isinstance(error, UnexpectedToken) and error.token.type == "$END"):
        return _end_of_file(source, set(getattr(error, "expected", ()) or ()))
    if isinstance(error, UnexpectedCharacters):
        return _unexpected_character(error, source)
    assert isinstance(error, UnexpectedToken)
    token = error.token
    span = source.span(token.start_pos, token.end_pos)
    shown = str(token) if len(str(token)) <= 30 else str(token)[:27] + "..."
    unclosed = _unclosed_before(source.text, token.start_pos, set(error.expected))
    if unclosed is not None:
        # A delimiter left open makes the parser trip over whatever comes next (often the following
        # declaration, lines later); the opener is where the fix goes, so that is the primary span.
        offset, opener = unclosed
        closer = _OPENERS[opener]
        return Diagnostic(
            code="unclosed-delimiter",
            message=f"`{opener}` is never closed",
            span=source.span(offset, offset + 1),
            label=f"this `{opener}` needs a matching `{closer}`",
            labels=(Label(span, f"expected `{closer}` before `{shown}`"),),
        )
    return Diagnostic(
        code="syntax-error",
        message=f"unexpected `{shown}`, expected {_describe_expected(set(error.expected))}",
        span=span,
        label="unexpected here",
        hints=_keyword_hints(str(token), set(error.expected)),
    )


def _keyword_hints(token: str, expected: set[str]) -> tuple[str, ...]:
    """Only where nothing but a name fits does a keyword mean "a reserved word used as a name"; elsewhere
    (e.g. `output` after an unfinished stage body) the keyword is fine and the hint would mislead."""
    from harnessc.names import KEYWORDS

    if token in KEYWORDS and expected == {"NAME"}:
        return (f"`{token}` is a reserved word; it cannot name an input, stage or field",)
    if token == "harness":
        return ("a file has one `harness NAME` header, at its top",)
    return ()


def _unexpected_character(error: UnexpectedCharacters, source) -> Diagnostic:
    offset = error.pos_in_stream
    text = source.text
    # An unclosed `"""` lexes as the empty string `""` followed by a lone `"`: report the `"""`.
    for start in (offset, offset - 2):
        if start >= 0 and text.startswith('"""', start):
            return Diagnostic(
                code="unterminated-string",
                message="this multi-line string is never closed",
                span=source.span(start, start + 3),
                label='opened here; close it with """',
            )
    if text[offset] == '"':
        return Diagnostic(
            code="unterminated-string",
            message="this string is never closed on its line",
            span=source.span(offset, offset + 1),
            label="opened here",
            hints=('close it with `"` on the same line, or use """...""" for text over several lines',),
        )
    char = text[offset]
    hint = _CHARACTER_HINTS.get(char)
    return Diagnostic(
        code="unexpected-character",
        message=f"unexpected character {char!r}",
        span=source.span(offset, offset + 1),
        label="not part of the language",
        hints=(hint,) if hint else (),
    )


def _end_of_file(source, expected: set[str]) -> Diagnostic:
    unclosed = _first_unclosed_delimiter(source.text)
    end = source.end_span()
    where = getattr(source, "where", "file")  # "placeholder" for an expression inside a template
    if unclosed is not None:
        offset, opener = unclosed
        return Diagnostic(
            code="unclosed-delimiter",
            message=f"`{opener}` is never closed",
            span=source.span(offset, offset + 1),
            label=f"this `{opener}` needs a matching `{_OPENERS[opener]}`",
            labels=(Label(end, f"the {where} ends here"),),
        )
    wanted = f", expected {_describe_expected(expected)}" if expected else ""
    return Diagnostic(
        code="unexpected-eof",
        message=f"unexpected end of {where}{wanted}",
        span=end,
        label=f"the {'declaration' if where == 'file' else 'expression'} here is incomplete",
    )


def _unclosed_before(text: str, position: int, expected: set[str]) -> tuple[int, str] | None:
    """The innermost delimiter open at `position` when the file never closes it and the parser would
    accept its closer here; None otherwise (then the token itself is the likelier mistake)."""
    open_here = _open_delimiters(text[:position])
    if not open_here:
        return None
    offset, opener = open_here[-1]
    never_closed = set(_open_delimiters(text))
    if (offset, opener) in never_closed and _CLOSER_TOKENS[_OPENERS[opener]] in expected:
        return offset, opener
    return None


def _first_unclosed_delimiter(text: str) -> tuple[int, str] | None:
    """The innermost opener still open at the end, skipping strings and comments."""
    stack = _open_delimiters(text)
    return stack[-1] if stack else None


def _open_delimiters(text: str) -> list[tuple[int, str]]:
    """The openers (offset, char) still open at the end of `text`, outermost first; strings and comments
    are skipped, and a closer that does not match the innermost opener is ignored."""
    stack: list[tuple[int, str]] = []
    index = 0
    while index < len(text):
        char = text[index]
        if text.startswith('"""', index):
            close = text.find('"""', index + 3)
            index = len(text) if close < 0 else close + 3
            continue
        if char == '"':
            index = _skip_short_string(text, index)
            continue
        if char == "#":
            newline = text.find("\n", index)
            index = len(text) if newline < 0 else newline
            continue
        if char in _OPENERS:
            stack.append((index, char))
        elif char in _OPENERS.values() and stack and _OPENERS[stack[-1][1]] == char:
            stack.pop()
        index += 1
    return stack


def _skip_short_string(text: str, index: int) -> int:
    index += 1
    while index < len(text) and text[index] not in '"\n':
        index += 2 if text[index] == "\\" else 1
    return index + 1


def number_out_of_range(text: str, decimal: bool, span) -> Diagnostic:
    """A numeric literal (or `--set` value) that no value of its type can hold; never quoted in full."""
    shown = text if len(text) <= 24 else f"{text[:10]}...{text[-6:]} ({len(text):,} characters)"
    allowed = "a finite decimal number" if decimal else f"an integer from {MIN_INT:,} to {MAX_INT:,}"
    return Diagnostic(
        code="number-out-of-range",
        message=f"the number {shown} is out of range: a value must be {allowed}",
        span=span,
        label="out of range",
    )


# ---- string literals --------------------------------------------------------------------------------

_ESCAPES = {"\\": "\\", '"': '"', "n": "\n", "t": "\t"}


def decode_string(token: Token, source) -> ast.Text:
    """Decode a literal: escapes `\\\\ \\" \\n \\t` (any other backslash is kept as written, so LaTeX such
    as `\\boxed` needs no doubling); triple-quoted strings are dedented like Python's textwrap.dedent after
    dropping a blank first and last line. Offsets stay compact (a range, or an array): see ast.Text."""
    raw = str(token)
    long = raw.startswith('"""')
    quote = 3 if long else 1
    body = raw[quote:-quote]
    offsets: Sequence[int] = range(token.start_pos + quote, token.end_pos - quote)
    if isinstance(source, _ShiftedSource):
        # A string inside a template placeholder (`{join(labels, ", ")}`): its offsets are positions in the
        # placeholder's text and must be mapped back to the file, or its diagnostics land on another line.
        offsets = array("q", (source.real(offset) for offset in offsets))
    pieces: list[str] = [body]
    if long:
        pieces, offsets = _dedent(body, offsets)
    value, value_offsets = _unescape(pieces, offsets)
    return ast.Text(
        value="".join(value), offsets=value_offsets, span=source.span(token.start_pos, token.end_pos), long=long
    )


_ESCAPE = re.compile(r'\\[\\"nt]')


def _unescape(chars: Sequence[str], offsets: Sequence[int]) -> tuple[list[str], Sequence[int]]:
    """Decode the escapes, left to right; `offsets` has one entry per character of `"".join(chars)`, and so
    has the result (whose items may be longer pieces of text: only their concatenation matters)."""
    text = "".join(chars)
    if "\\" not in text:
        return [text], offsets
    out, out_offsets, done = [], array("q"), 0
    for match in _ESCAPE.finditer(text):
        start = match.start()
        out += [text[done:start], _ESCAPES[text[start + 1]]]
        out_offsets.extend(offsets[done:start])
        out_offsets.append(offsets[start])
        done = start + 2
    out.append(text[done:])
    out_offsets.extend(offsets[done:])
    return out, out_offsets


def _dedent(chars: Sequence[str], offsets: Sequence[int]) -> tuple[list[str], Sequence[int]]:
    """Drop a blank first and last line and the common indentation; one offset per character kept."""
    lines = _split_lines("".join(chars))
    if lines and not lines[0][0].strip():
        lines = lines[1:]
    if lines and not lines[-1][0].strip():
        lines = lines[:-1]
    indents = [len(text) - len(text.lstrip(" \t")) for text, _ in lines if text.strip()]
    cut = min(indents, default=0)
    out: list[str] = []
    out_offsets = array("q")
    for number, (text, begin) in enumerate(lines):
        if number:
            out.append("\n")
            out_offsets.append(offsets[begin] - 1 if text else (out_offsets[-1] if out_offsets else 0))
        out.append(text[cut:])
        out_offsets.extend(offsets[begin + cut : begin + len(text)])
    return out, out_offsets


def _split_lines(text: str) -> list[tuple[str, int]]:
    """Each line (without its line break, nor the carriage returns of a CRLF file) and where it starts."""
    lines: list[tuple[str, int]] = []
    start = 0
    for piece in text.split("\n"):
        lines.append((piece.rstrip("\r"), start))
        start += len(piece) + 1
    return lines


# ---- parse tree → AST --------------------------------------------------------------------------------


def _to_ast(tree: Tree, source, problems: list[Diagnostic] | None = None):
    """Build the syntax tree bottom-up: each rule's method of _ToAst makes its node from the rule's meta and
    its children's nodes. Iterative, and faster than Lark's recursive Transformer (which also creates a
    wrapper per call): this is most of the time spent parsing a large file. Literals out of range are
    added to `problems`."""
    builder = _ToAst(source, problems if problems is not None else [])
    handlers: dict[str, object] = {}
    order, pending = [], [tree]
    while pending:  # pre-order; reversed, every node comes after all of its descendants
        node = pending.pop()
        order.append(node)
        pending.extend(child for child in node.children if isinstance(child, Tree))
    built: dict[int, object] = {}
    for node in reversed(order):
        handler = handlers.get(node.data)
        if handler is None:
            handler = handlers[node.data] = getattr(builder, node.data)
        children = [built.pop(id(child)) if isinstance(child, Tree) else child for child in node.children]
        built[id(node)] = handler(node.meta, children)
    return built[id(tree)]


class _ToAst:
    """One method per grammar rule (and alias): `rule(meta, children) -> AST node`."""

    def __init__(self, source, problems: list[Diagnostic]) -> None:
        self.source = source
        self.problems = problems

    def _span(self, meta):
        return self.source.span(meta.start_pos, meta.end_pos)

    def _id(self, token: Token) -> ast.Identifier:
        return ast.Identifier(name=str(token), span=self.source.span(token.start_pos, token.end_pos))

    def string(self, meta, children):
        return decode_string(children[0], self.source)

    def start(self, meta, children):
        header = children[0] if children and isinstance(children[0], ast.Header) else None
        items = tuple(child for child in children if not isinstance(child, ast.Header))
        whole = self.source.span(0, len(self.source.text))
        return ast.Module(path=self.source.path, header=header, items=items, span=whole)

    def header(self, meta, children):
        name, description = children
        return ast.Header(name=self._id(name), description=description, span=self._span(meta))

    def import_decl(self, meta, children):
        return ast.Import(path=children[0], span=self._span(meta))

    def input_decl(self, meta, children):
        name, typ, *flags = children
        return ast.InputDecl(
            name=self._id(name), type=typ, flags=tuple(self._id(flag) for flag in flags), span=self._span(meta)
        )

    def param_decl(self, meta, children):
        name, typ, default = children
        return ast.ParamDecl(name=self._id(name), type=typ, default=default, span=self._span(meta))

    def snippet_decl(self, meta, children):
        name, text = children
        return ast.SnippetDecl(name=self._id(name), text=text, span=self._span(meta))

    def bank_decl(self, meta, children):
        name, *items = children
        fields = tuple(item for item in items if isinstance(item, ast.BankField))
        settings = tuple(item for item in items if isinstance(item, ast.Setting))
        return ast.BankDecl(name=self._id(name), fields=fields, settings=settings, span=self._span(meta))

    def bank_field(self, meta, children):
        name, typ, value = children
        return ast.BankField(name=self._id(name), type=typ, value=value, span=self._span(meta))

    def setting(self, meta, children):
        key, value = children
        return ast.Setting(key=self._id(key), value=value, span=self._span(meta))

    def body(self, meta, children):
        return ast.Body(settings=tuple(children), span=self._span(meta))

    def guard(self, meta, children):
        return children[0]

    def else_body(self, meta, children):
        return children[0]

    def llm_stage(self, meta, children):
        name, guard, body, otherwise = children
        return ast.LlmStage(name=self._id(name), guard=guard, body=body, otherwise=otherwise, span=self._span(meta))

    def let_stage(self, meta, children):
        name, value = children
        return ast.LetStage(name=self._id(name), value=value, span=self._span(meta))

    def loop_bound(self, meta, children):
        return children[0]

    def loop_stage(self, meta, children):
        name, initial, bound, *items = children
        return ast.LoopStage(
            name=self._id(name), initial=initial, bound=bound, items=tuple(items), span=self._span(meta)
        )

    def until_clause(self, meta, children):
        return ast.Until(condition=children[0], span=self._span(meta))

    def next_clause(self, meta, children):
        return ast.Next(value=children[0], span=self._span(meta))

    def student_view(self, meta, children):
        return ast.StudentView(body=children[0], span=self._span(meta))

    def teacher_template(self, meta, children):
        return ast.TeacherTemplate(body=children[0], span=self._span(meta))

    def teacher_chain(self, meta, children):
        return ast.TeacherChain(names=tuple(self._id(name) for name in children), span=self._span(meta))

    def output_decl(self, meta, children):
        return ast.OutputDecl(value=children[0], span=self._span(meta))

    def student_output_decl(self, meta, children):
        return ast.StudentOutputDecl(value=children[0], span=self._span(meta))

    def grade_decl(self, meta, children):
        return ast.GradeDecl(value=children[0], span=self._span(meta))

    # types
    def named_type(self, meta, children):
        return ast.NamedType(name=self._id(children[0]), span=self._span(meta))

    def generic_type(self, meta, children):
        name, argument = children
        return ast.GenericType(name=self._id(name), argument=argument, span=self._span(meta))

    def record_type(self, meta, children):
        fields = tuple(child for child in children if child is not None)
        return ast.RecordType(fields=fields, span=self._span(meta))

    def field_type(self, meta, children):
        name, typ = children
        return ast.FieldType(name=self._id(name), type=typ, span=self._span(meta))

    # expressions
    def or_(self, meta, children):
        return ast.Logical(operator="or", left=children[0], right=children[1], span=self._span(meta))

    def and_(self, meta, children):
        return ast.Logical(operator="and", left=children[0], right=children[1], span=self._span(meta))

    def not_(self, meta, children):
        return ast.Not(operand=children[0], span=self._span(meta))

    def compare(self, meta, children):
        left, operator, right = children
        return ast.Comparison(operator=str(operator), left=left, right=right, span=self._span(meta))

    def name(self, meta, children):
        return ast.Name(name=str(children[0]), span=self._span(meta))

    def field(self, meta, children):
        value, name = children
        return ast.FieldAccess(value=value, field=self._id(name), span=self._span(meta))

    def call(self, meta, children):
        function, *arguments = children
        arguments = tuple(argument for argument in arguments if argument is not None)
        return ast.Call(function=self._id(function), arguments=arguments, span=self._span(meta))

    def keyword_argument(self, meta, children):
        name, value = children
        return ast.KeywordArgument(name=self._id(name), value=value, span=self._span(meta))

    def template(self, meta, children):
        return ast.TemplateLiteral(text=children[0], span=self._span(meta))

    def number(self, meta, children):
        text = str(children[0])
        decimal = any(char in text for char in ".eE")
        value = float_in_range(text) if decimal else int_in_range(text)
        if value is None:
            self.problems.append(number_out_of_range(text, decimal, self._span(meta)))
            return ast.Number(value=0.0 if decimal else 0, span=self._span(meta), out_of_range=True)
        return ast.Number(value=value, span=self._span(meta))

    def true(self, meta, children):
        return ast.Boolean(value=True, span=self._span(meta))

    def false(self, meta, children):
        return ast.Boolean(value=False, span=self._span(meta))

    def list(self, meta, children):
        return ast.ListLiteral(items=tuple(child for child in children if child is not None), span=self._span(meta))

    def comprehension(self, meta, children):
        element, variable, iterable = children
        return ast.Comprehension(element=element, variable=self._id(variable), iterable=iterable, span=self._span(meta))
