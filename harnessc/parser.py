"""Text → syntax tree (harnessc.ast), or a friendly syntax diagnostic. Lark's internals never reach users.

The tree is complete when parsing ends: string literals are decoded (harnessc/strings.py) and the
template syntax inside them is parsed (harnessc/template_parser.py), so template syntax errors are
reported here too, once per string, whether or not a stage uses it. Syntax errors become diagnostics in
harnessc/syntax_errors.py.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
import sys
import tempfile
from collections.abc import Callable, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from lark import Lark, Token, Tree, UnexpectedInput
from lark.tree import Meta

from harnessc import ast
from harnessc.diagnostics import Diagnostic
from harnessc.limits import float_in_range, int_in_range
from harnessc.names import KEYWORDS
from harnessc.options import ROLES
from harnessc.source import AnySource, ShiftedSource, SourceFile
from harnessc.strings import decode_string
from harnessc.syntax_errors import nesting_diagnostic, number_out_of_range, syntax_diagnostic
from harnessc.template_parser import parse_template

_LARK_OPTIONS: dict[str, Any] = {
    "parser": "lalr",
    "propagate_positions": True,
    "maybe_placeholders": True,
    "start": ["start", "expr"],
}


def grammar_text() -> str:
    return resources.files("harnessc").joinpath("grammar.lark").read_text(encoding="utf-8")


def parser_cache_path(grammar: str) -> Path | None:
    """Where the LALR tables built from `grammar` are cached, or None when caching is off.

    Building the tables takes ~0.4 s, most of a cold `harnessc check`; loading them takes a few ms. The
    file name is a hash of everything the tables depend on (the grammar text, the Lark options, Lark's and
    Python's versions), so a changed grammar or upgraded Lark never loads stale tables: it misses and
    writes a new file. The directory is $HARNESSC_CACHE_DIR, else $XDG_CACHE_HOME/harnessc, else
    ~/.cache/harnessc (per user, never the installed package, which may be read-only);
    HARNESSC_NO_PARSER_CACHE=1 turns the cache off.
    """
    if os.environ.get("HARNESSC_NO_PARSER_CACHE", "") not in ("", "0"):
        return None
    directory = os.environ.get("HARNESSC_CACHE_DIR")
    if not directory:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        directory = os.path.join(base, "harnessc")
    import lark

    key = grammar + repr(sorted(_LARK_OPTIONS.items())) + lark.__version__ + repr(sys.version_info[:2])
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]
    return Path(directory) / f"lalr-{digest}.lark-cache"


def build_lark(grammar: str) -> Lark:
    """The LALR parser for `grammar`, loaded from the cache when a matching file is there, else built and
    cached (Lark's public `save`/`load`; Lark's own `cache=` option hashes the cache path into its key, so
    it cannot write atomically under a temporary name). Concurrent processes are safe: a new file is
    written under a unique temporary name and renamed into place (atomic), so a reader sees either no
    file or a complete one. Any cache problem (unwritable directory, damaged file) falls back to
    building the tables in memory."""
    path = parser_cache_path(grammar)
    if path is not None and path.is_file():
        try:
            with path.open("rb") as file:
                return Lark.load(file)
        except Exception:  # noqa: BLE001 - a damaged cache file: build afresh (and replace it) below
            pass
    parser = Lark(grammar, **_LARK_OPTIONS)
    if path is not None:
        temporary = None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".lark-cache")
            with os.fdopen(fd, "wb") as file:
                parser.save(file)
            os.replace(temporary, path)
            temporary = None
        except OSError:
            pass
        finally:
            if temporary is not None and os.path.exists(temporary):
                os.unlink(temporary)
    return parser


@functools.cache
def lark_parser() -> Lark:
    return build_lark(grammar_text())


def parse_module(source: SourceFile) -> tuple[ast.Module | None, list[Diagnostic]]:
    """Parse one file. On a syntax error returns (None, [the diagnostic]); LALR stops at the first one.
    Otherwise the module, and the problems found in its literals (templates, numbers out of range)."""
    try:
        tree = lark_parser().parse(source.text, start="start")
    except UnexpectedInput as error:
        return None, [syntax_diagnostic(error, source)]
    too_deep = nesting_diagnostic(tree, source)
    if too_deep:
        return None, [too_deep]
    problems: list[Diagnostic] = []
    module = _to_ast(tree, source, source, problems)
    assert isinstance(module, ast.Module)
    return module, problems


def parse_expression(text: str, offsets: Sequence[int], source: SourceFile) -> tuple[ast.Expr | None, list[Diagnostic]]:
    """Parse an expression found inside a template placeholder; spans map back through `offsets`."""
    shifted = ShiftedSource(source, text, offsets)
    simple = dotted_name(text, shifted)
    if simple is not None:
        return simple, []
    try:
        tree = lark_parser().parse(text, start="expr")
    except UnexpectedInput as error:
        return None, [syntax_diagnostic(error, shifted)]
    too_deep = nesting_diagnostic(tree, shifted)
    if too_deep:
        return None, [too_deep]
    problems: list[Diagnostic] = []
    return _to_ast(tree, shifted, source, problems), problems


_DOTTED_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")


def dotted_name(text: str, source: AnySource) -> ast.Expr | None:
    """`name` or `name.field.field`, most placeholders, built without running the parser: the nodes and
    spans that the grammar's `name` and `field` rules make. None for anything else."""
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


# ---- parse tree → AST --------------------------------------------------------------------------------


def _to_ast(tree: Tree, source: AnySource, file: SourceFile, problems: list[Diagnostic]) -> Any:
    """Build the syntax tree bottom-up: each rule's method of _ToAst makes its node from the rule's meta and
    its children's nodes. Iterative, and faster than Lark's recursive Transformer (which also creates a
    wrapper per call): this is most of the time spent parsing a large file. `file` is the file `source`
    is (part of); the problems of literals (templates, numbers out of range) are added to `problems`.
    The result is the start rule's node: an ast.Module, or an expression."""
    builder = _ToAst(source, file, problems)
    handlers: dict[str, Callable[[Meta, list[Any]], Any]] = {}
    order, pending = [], [tree]
    while pending:  # pre-order; reversed, every node comes after all of its descendants
        node = pending.pop()
        order.append(node)
        if node.data in _CONSTANT_HOLDERS:
            _mark_constants(node)
        pending.extend(child for child in node.children if isinstance(child, Tree))
    built: dict[int, object] = {}
    for node in reversed(order):
        handler = handlers.get(node.data)
        if handler is None:
            handler = handlers[node.data] = getattr(builder, node.data)
        children = [built.pop(id(child)) if isinstance(child, Tree) else child for child in node.children]
        built[id(node)] = handler(node.meta, children)
    return built[id(tree)]


# The rules whose items hold constants: options in a body (every setting but a message), bank settings,
# a parameter's default.
_CONSTANT_HOLDERS = frozenset({"body", "bank_decl", "param_decl"})


def _mark_constants(node: Tree) -> None:
    """Strings where a constant goes become `constant` nodes (ast.StringLiteral), taken verbatim instead of
    parsed as templates: a regex `"[0-9]{3}"` or a JSON schema `{"type": "object"}` is not a template.
    A constant is the whole value or an item of a list literal (what lowering takes as a constant); strings
    deeper inside (`stop f("{x}")`) are expressions, hence templates."""
    if node.data == "param_decl":
        values = [node.children[2]]
    else:  # the settings of a body (but its messages) or of a bank (all of them)
        settings = [child for child in node.children if isinstance(child, Tree) and child.data == "setting"]
        values = [item.children[1] for item in settings if node.data == "bank_decl" or item.children[0] not in ROLES]
    while values:
        value = values.pop()
        if isinstance(value, Tree) and value.data == "template":
            value.data = "constant"
        elif isinstance(value, Tree) and value.data == "list":
            values.extend(value.children)


class _ToAst:
    """One method per grammar rule (and alias): `rule(meta, children) -> AST node`."""

    def __init__(self, source: AnySource, file: SourceFile, problems: list[Diagnostic]) -> None:
        self.source = source
        self.file = file
        self.problems = problems

    def _template(self, text: ast.Text) -> ast.TemplateLiteral:
        parts, problems, trim = parse_template(text, self.file, parse_expression)
        self.problems += problems
        return ast.TemplateLiteral(text=text, parts=parts, span=text.span, trim_final_newline=trim)

    def _span(self, meta):
        return self.source.span(meta.start_pos, meta.end_pos)

    def _id(self, token: Token) -> ast.Identifier:
        assert token.start_pos is not None and token.end_pos is not None  # the lexer sets both
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
        return ast.SnippetDecl(name=self._id(name), template=self._template(text), span=self._span(meta))

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
        name, each, guard, body, otherwise = children
        return ast.LlmStage(
            name=self._id(name), guard=guard, body=body, otherwise=otherwise, each=each, span=self._span(meta)
        )

    def fan_out(self, meta, children):
        variable, iterable, bound = children
        return ast.FanOut(variable=self._id(variable), iterable=iterable, bound=bound, span=self._span(meta))

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

    def arithmetic(self, meta, children):
        left, operator, right = children
        return ast.Arithmetic(operator=str(operator), left=left, right=right, span=self._span(meta))

    def index(self, meta, children):
        value, index = children
        return ast.Index(value=value, index=index, span=self._span(meta))

    def slice(self, meta, children):
        value, start, stop = children
        return ast.Slice(value=value, start=start, stop=stop, span=self._span(meta))

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
        return self._template(children[0])

    def constant(self, meta, children):  # a `template` in a constant's place (_mark_constants)
        return ast.StringLiteral(text=children[0], span=self._span(meta))

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
