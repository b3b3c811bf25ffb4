"""Lowering of templates and expressions: names resolved against scopes, types computed, absence tracked.

The expression half of `harnessc.lower.Lowerer` (a mixin it inherits): `lower_expr` dispatches on the
syntax node (`lower_Name`, `lower_Call`, ...), `lower_template` parses a string's template syntax and
lowers its parts. Everything needs the lowerer's declarations and error sink, hence a mixin rather than
free functions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from harnessc import ast, ir
from harnessc.limits import MAX_SNIPPET_EXPANSION, MAX_SNIPPET_NODES
from harnessc.names import did_you_mean
from harnessc.source import Span
from harnessc.template import IfPart, Part, PlaceholderPart, TextPart, names_read, parse_template
from harnessc.types import (
    ANY,
    BOOL,
    FLOAT,
    INT,
    TEXT,
    AnyType,
    Bank,
    ListOf,
    Optional_,
    Record,
    Type,
    make_optional,
    strip_optional,
    unify,
)

# What each context may see: `student` is the student's completion (only output expressions read it),
# `output` the harness's output (only the grade reads it).
CONTEXTS_SEEING_STUDENT = {"output", "student_output"}

KIND_WORDS = {
    "input": "input",
    "param": "parameter",
    "snippet": "snippet",
    "bank": "memory bank",
    "llm": "LLM stage",
    "let": "`let` stage",
    "loop": "loop",
}

MAX_SNIPPET_DEPTH = 16  # snippets filled in one inside the other

REF_KIND = {"input": "input", "param": "param", "bank": "bank", "llm": "stage", "let": "stage", "loop": "loop"}


@dataclass
class Scope:
    """Where an expression is being lowered: its context, the locals bound around it, narrowed names."""

    context: str
    loop: str | None = None
    locals: dict[str, Type] = field(default_factory=dict)
    present: frozenset[str] = frozenset()

    def bind(self, name: str, typ: Type) -> Scope:
        return Scope(self.context, self.loop, {**self.locals, name: typ}, self.present)

    def narrowed(self, names: set[str]) -> Scope:
        return Scope(self.context, self.loop, self.locals, self.present | names)


def article(words: str) -> str:
    return ("an " if words[0] in "aeiouAEIOU" or words.startswith("LLM") else "a ") + words


def describe(node: ast.Expr) -> str:
    if isinstance(node, ast.Name):
        return f"`{node.name}`"
    if isinstance(node, ast.FieldAccess):
        inner = describe(node.value).strip("`")
        return f"`{inner}.{node.field.name}`"
    return "this value"


def presence_names(condition: ast.Expr) -> set[str]:
    """Names that `{if condition}` proves present: the condition itself or a conjunction of them."""
    if isinstance(condition, ast.Name):
        return {condition.name}
    if isinstance(condition, ast.Logical) and condition.operator == "and":
        return presence_names(condition.left) | presence_names(condition.right)
    if isinstance(condition, ast.Call) and condition.function.name == "nonempty" and len(condition.arguments) == 1:
        return presence_names(condition.arguments[0])
    return set()


class ExpressionLowering:
    """Templates and expressions (mixed into Lowerer, which provides declarations, errors and stages)."""

    if TYPE_CHECKING:  # what the host class (harnessc.lower.Lowerer) provides, declared for the type checker
        from harnessc.diagnostics import Diagnostic, Label
        from harnessc.source import SourceFile

        diagnostics: list[Diagnostic]
        declarations: dict[str, Any]
        sources: dict[str, SourceFile]
        rejected: set[str]
        missing_imports: bool
        output_type: Type
        expanding: list[str]
        expanded: tuple[int, int]
        expansion_refused: bool
        snippet_sizes: dict[str, tuple[int, int]]
        snippet_reads: dict[str, tuple[list[str], int]]
        templates: dict[int, tuple]

        def error(
            self,
            code: str,
            message: str,
            span: Span,
            label: str = "",
            hints: tuple[str, ...] = (),
            labels: tuple[Label, ...] = (),
        ) -> None: ...
        def input_type(self, name: str) -> Type: ...
        def lower_stage(self, name: str) -> Type: ...
        def lower_type(self, node: ast.TypeExpr, *, allow_bank: bool, report: bool = True) -> Type: ...

    # ---- templates ------------------------------------------------------------------------------------------------

    def expand_snippet(self, name: str, span: Span, scope: Scope) -> ir.Template:
        """A snippet's template, filled in where it is used. A snippet that includes itself (directly or
        through others) is reported, as is a chain of snippets too deep to expand or a use that would take
        the harness past MAX_SNIPPET_EXPANSION; the use is left empty."""
        if name in self.expanding or len(self.expanding) >= MAX_SNIPPET_DEPTH:
            self.report_snippet_nesting(name, span)
            return ir.Template(parts=(), span=span)
        if not self.expanding and not self.charge_expansion(name, span):
            return ir.Template(parts=(), span=span)
        self.expanding.append(name)
        try:
            return self.lower_template(self.declarations[name].node.text, scope)
        finally:
            self.expanding.pop()

    def report_snippet_nesting(self, name: str, span: Span) -> None:
        if name in self.expanding:
            chain = " → ".join(f"`{item}`" for item in [*self.expanding[self.expanding.index(name) :], name])
            self.error(
                "cycle",
                f"snippet `{name}` includes itself: {chain}",
                span,
                "included again here",
                ("a snippet may use other snippets, but not itself",),
            )
        else:
            self.error(
                "syntax-error",
                f"snippets include each other more than {MAX_SNIPPET_DEPTH} levels deep",
                span,
                "nested too deeply",
            )

    def charge_expansion(self, name: str, span: Span) -> bool:
        """Count a use of snippet `name` (outside any snippet) against the harness's expansion budget, by
        what it expands to, measured before expanding it; False (reported once) when it does not fit.
        Without this, snippets that each use the previous one several times expand exponentially."""
        characters, nodes = self.snippet_size(name)
        total = (self.expanded[0] + characters, self.expanded[1] + nodes)
        if total[0] <= MAX_SNIPPET_EXPANSION and total[1] <= MAX_SNIPPET_NODES:
            self.expanded = total
            return True
        if not self.expansion_refused:
            self.expansion_refused = True
            self.error(
                "limit-exceeded",
                f"snippet `{name}` expands to {characters:,} characters ({nodes:,} template pieces) here, "
                f"more than the harness's snippets may expand to in total ({MAX_SNIPPET_EXPANSION:,} "
                f"characters, {MAX_SNIPPET_NODES:,} pieces)",
                span,
                "expands too much",
                ("a snippet that uses others several times multiplies their size: use each one less",),
            )
        return False

    def snippet_size(self, root: str) -> tuple[int, int]:
        """(characters, template pieces) snippet `root` expands to, every snippet it uses filled in: an
        upper bound (both branches of an `{if}` count). Computed once per snippet and iteratively (chains
        may be long); a snippet in a cycle counts once (the cycle is reported when it is expanded)."""
        sizes = self.snippet_sizes
        pending: list[tuple[str, bool]] = [(root, False)]
        while pending:
            name, ready = pending.pop()
            if ready:
                used, nodes = self.snippets_read(name)
                sizes[name] = (
                    len(self.snippet_text(name).value) + sum(sizes[item][0] for item in used),
                    nodes + sum(sizes[item][1] for item in used),
                )
            elif name not in sizes:
                sizes[name] = (0, 0)
                pending.append((name, True))
                pending.extend((used, False) for used in self.snippets_read(name)[0] if used not in sizes)
        return sizes[root]

    def snippet_text(self, name: str) -> ast.Text:
        return self.declarations[name].node.text

    def snippets_read(self, name: str) -> tuple[list[str], int]:
        """The snippets snippet `name` uses (once per use) and the template pieces of its own text (cached)."""
        found = self.snippet_reads.get(name)
        if found is None:
            names, nodes = names_read(self.parsed_template(self.snippet_text(name)), self.parsed_template)
            found = self.snippet_reads[name] = ([item for item in names if self.kind_of(item) == "snippet"], nodes)
        return found

    def parsed_template(self, text: ast.Text) -> tuple[Part, ...]:
        """A string's template parts, parsed once (a snippet is filled in at each use); its syntax errors
        are reported once."""
        cached = self.templates.get(id(text))
        if cached is None or cached[0] is not text:
            parts, errors = parse_template(text, self.sources[text.span.file])
            self.diagnostics.extend(errors)
            cached = self.templates[id(text)] = (text, parts)
        return cached[1]

    def lower_template(self, text: ast.Text, scope: Scope) -> ir.Template:
        return ir.Template(parts=self.lower_parts(self.parsed_template(text), scope), span=text.span)

    def lower_parts(self, parts: tuple[Part, ...], scope: Scope) -> tuple[ir.Part, ...]:
        return tuple(self.lower_part(part, scope) for part in parts)

    def lower_part(self, part: Part, scope: Scope) -> ir.Part:
        if isinstance(part, TextPart):
            return ir.TextPart(value=part.value, span=part.span)
        if isinstance(part, PlaceholderPart):
            return ir.ValuePart(value=self.lower_placeholder(part, scope), span=part.span)
        if isinstance(part, IfPart):
            condition = self.lower_expr(part.condition, scope)
            inside = scope.narrowed(presence_names(part.condition))
            return ir.IfPart(
                condition=condition,
                then=self.lower_parts(part.then, inside),
                otherwise=self.lower_parts(part.otherwise, scope),
                span=part.span,
            )
        iterable = self.lower_expr(part.iterable, scope)
        item = self.item_type(iterable, "`{for}` iterates over")
        return ir.ForPart(
            variable=part.variable.name,
            iterable=iterable,
            body=self.lower_parts(part.body, scope.bind(part.variable.name, item)),
            span=part.span,
        )

    def lower_placeholder(self, part: PlaceholderPart, scope: Scope) -> ir.Expr:
        value = self.lower_expr(part.expr, scope)
        typ = value.type
        # The hints spell out the fix with the names actually written (`{if hint}...{hint}...{end}`).
        named = isinstance(part.expr, (ast.Name, ast.FieldAccess))
        written = describe(part.expr).strip("`") if named else ""
        if isinstance(typ, Optional_):
            hint = (
                f"show it only when present: {{if {written}}}...{{{written}}}...{{end}}"
                if written
                else "show it only when present, inside {if CONDITION}...{end} testing the absent value"
            )
            self.error(
                "optional-placeholder", f"{describe(part.expr)} may be absent here", part.expr.span, f"{typ}", (hint,)
            )
        elif isinstance(typ, ListOf):
            shown = written or "LIST"
            hint = f"repeat a segment with {{for item in {shown}}}...{{item}}...{{end}}"
            if typ.item == TEXT:
                hint += f', or print join({shown}, ", ")'
            self.error(
                "placeholder-type", f"a list cannot be printed directly ({typ})", part.expr.span, "a list", (hint,)
            )
        elif isinstance(typ, Record):
            fields = [f"{{{written or 'entry'}.{name}}}" for name, _ in typ.fields]
            self.error(
                "placeholder-type",
                f"a {typ} cannot be printed directly",
                part.expr.span,
                "not printable",
                ("print one of its fields: " + " or ".join(fields[:3]),),
            )
        elif isinstance(typ, Bank):
            self.error(
                "placeholder-type",
                f"a memory bank ({typ}) cannot be printed directly",
                part.expr.span,
                "not printable",
                (
                    f"print entries found with retrieve({written or 'BANK'}, QUERY) in "
                    "{for case in ...}...{case.FIELD}...{end}",
                ),
            )
        return value

    # ---- expressions ----------------------------------------------------------------------------------------

    def lower_condition(self, node: ast.Expr, scope: Scope) -> ir.Expr:
        value = self.lower_expr(node, scope)
        if not unify(BOOL, strip_optional(value.type), {}):
            self.error(
                "type-mismatch",
                f"a condition must be bool, but this is {value.type}",
                node.span,
                f"this is {value.type}",
                ("test text or lists with nonempty(...)",),
            )
        return value

    def lower_expr(self, node: ast.Expr, scope: Scope) -> ir.Expr:
        return getattr(self, f"lower_{type(node).__name__}")(node, scope)

    def lower_Number(self, node: ast.Number, scope: Scope) -> ir.Expr:
        # A number out of range (reported by the parser) has no value: no range check compares it again.
        value = None if node.out_of_range else node.value
        return ir.Literal(value=value, type=INT if isinstance(node.value, int) else FLOAT, span=node.span)

    def lower_Boolean(self, node: ast.Boolean, scope: Scope) -> ir.Expr:
        return ir.Literal(value=node.value, type=BOOL, span=node.span)

    def lower_TemplateLiteral(self, node: ast.TemplateLiteral, scope: Scope) -> ir.Expr:
        template = self.lower_template(node.text, scope)
        if all(isinstance(part, ir.TextPart) for part in template.parts):
            text = "".join(part.value for part in template.parts)
            return ir.Literal(value=text, type=TEXT, span=node.span)
        return ir.TemplateExpr(template=template, type=TEXT, span=node.span)

    def lower_constant(self, node: ast.Expr, scope: Scope) -> ir.Expr:
        """An option value or a parameter default. These are constants, so a string literal there is taken
        verbatim, never as a template: a regex (`"[0-9]{3}"`) or a JSON schema (`{"type": "object"}`)
        needs no doubled braces, and its braces are not mistaken for placeholders."""
        if isinstance(node, ast.TemplateLiteral):
            return ir.Literal(value=node.text.value, type=TEXT, span=node.span)
        if isinstance(node, ast.ListLiteral):
            return self.typed_list(tuple(self.lower_constant(item, scope) for item in node.items), node.span)
        return self.lower_expr(node, scope)

    def lower_ListLiteral(self, node: ast.ListLiteral, scope: Scope) -> ir.Expr:
        return self.typed_list(tuple(self.lower_expr(item, scope) for item in node.items), node.span)

    def typed_list(self, items: tuple[ir.Expr, ...], span: Span) -> ir.Expr:
        item_type: Type = ANY
        for item in items:
            if isinstance(item_type, AnyType):
                item_type = item.type
            elif not unify(item_type, item.type, {}):
                self.error(
                    "type-mismatch",
                    f"list items must share one type: {item_type} and {item.type}",
                    item.span,
                    f"this is {item.type}",
                )
        typ = ListOf(item_type)
        if all(isinstance(item, ir.Literal) for item in items):
            return ir.Literal(value=tuple(item.value for item in items), type=typ, span=span)
        return ir.ListExpr(items=items, type=typ, span=span)

    def lower_Name(self, node: ast.Name, scope: Scope) -> ir.Expr:
        name = node.name
        if name in scope.locals:
            return ir.Ref(name=name, kind="local", type=scope.locals[name], span=node.span)
        if name == "student" and scope.context in CONTEXTS_SEEING_STUDENT:
            return ir.Ref(name=name, kind="student", type=TEXT, span=node.span)
        if name == "output" and scope.context == "grade":
            return ir.Ref(name=name, kind="output", type=self.output_type, span=node.span)
        kind = self.kind_of(name)
        if kind is None:
            return self.unknown_name(node, scope)
        if kind == "snippet":
            return ir.TemplateExpr(template=self.expand_snippet(name, node.span, scope), type=TEXT, span=node.span)
        if scope.context in ("option", "param") and kind != "param":
            self.error(
                "not-constant",
                f"`{name}` is not a constant",
                node.span,
                article(KIND_WORDS[kind]),
                ("options and defaults may use literals and `param`s only",),
            )
            return ir.Ref(name=name, kind=REF_KIND[kind], type=ANY, span=node.span)
        typ = self.type_of(name, kind, scope)
        if name in scope.present:
            typ = strip_optional(typ)
        return ir.Ref(name=name, kind=REF_KIND[kind], type=typ, span=node.span)

    def unknown_name(self, node: ast.Name, scope: Scope) -> ir.Expr:
        if node.name in self.rejected or self.missing_imports:
            return ir.Ref(name=node.name, kind="input", type=ANY, span=node.span)
        hints = did_you_mean(node.name, [*self.declarations, *scope.locals])
        if node.name == "student":
            hints = ("the student's completion is visible only to `output` and `student_output`",)
        elif node.name == "output":
            hints = ("`output` is visible only to `grade`",)
        self.error("unknown-name", f"unknown name `{node.name}`", node.span, "not defined", hints)
        return ir.Ref(name=node.name, kind="input", type=ANY, span=node.span)

    def kind_of(self, name: str) -> str | None:
        declaration = self.declarations.get(name)
        return declaration.kind if declaration else None

    def type_of(self, name: str, kind: str, scope: Scope) -> Type:
        if kind == "input":
            return self.input_type(name)
        if kind == "param":
            return self.lower_type(self.declarations[name].node.type, allow_bank=False, report=False)
        if kind == "bank":
            node = self.declarations[name].node
            return Bank(
                Record(
                    tuple((f.name.name, self.lower_type(f.type, allow_bank=False, report=False)) for f in node.fields)
                )
            )
        typ = self.lower_stage(name)
        if kind == "loop" and scope.loop == name:
            return typ  # the loop-carried value inside its own body
        inner_loop = self.declarations[name].loop
        if inner_loop is not None and inner_loop != scope.loop:
            return make_optional(typ)  # seen from outside, a loop's stage may not have run
        return typ

    def lower_FieldAccess(self, node: ast.FieldAccess, scope: Scope) -> ir.Expr:
        value = self.lower_expr(node.value, scope)
        base = strip_optional(value.type)
        typ: Type = ANY
        if isinstance(base, Record):
            found = base.field(node.field.name)
            if found is None:
                self.error(
                    "unknown-field",
                    f"{describe(node.value)} has no field `{node.field.name}`",
                    node.field.span,
                    "no such field",
                    did_you_mean(node.field.name, [name for name, _ in base.fields]),
                )
            else:
                typ = make_optional(found) if isinstance(value.type, Optional_) else found
        elif not isinstance(base, AnyType):
            self.error(
                "unknown-field",
                f"{describe(node.value)} is {base}, which has no fields",
                node.field.span,
                "no such field",
            )
        return ir.FieldRef(value=value, field=node.field.name, type=typ, span=node.span)

    def lower_Comprehension(self, node: ast.Comprehension, scope: Scope) -> ir.Expr:
        iterable = self.lower_expr(node.iterable, scope)
        item = self.item_type(iterable, "a comprehension iterates over")
        element = self.lower_expr(node.element, scope.bind(node.variable.name, item))
        typ: Type = ListOf(element.type)
        if isinstance(iterable.type, Optional_):
            typ = make_optional(typ)
        return ir.ComprehensionExpr(
            variable=node.variable.name, iterable=iterable, element=element, type=typ, span=node.span
        )

    def item_type(self, iterable: ir.Expr, what: str) -> Type:
        base = strip_optional(iterable.type)
        if isinstance(base, ListOf):
            return base.item
        if not isinstance(base, AnyType):
            self.error(
                "type-mismatch",
                f"{what} a list, but this is {iterable.type}",
                iterable.span,
                f"this is {iterable.type}",
            )
        return ANY

    def lower_Not(self, node: ast.Not, scope: Scope) -> ir.Expr:
        operand = self.lower_condition(node.operand, scope)
        return ir.NotExpr(operand=operand, type=BOOL, span=node.span)

    def lower_Logical(self, node: ast.Logical, scope: Scope) -> ir.Expr:
        left = self.lower_condition(node.left, scope)
        right = self.lower_condition(node.right, scope)
        return ir.LogicExpr(operator=node.operator, left=left, right=right, type=BOOL, span=node.span)

    def lower_Comparison(self, node: ast.Comparison, scope: Scope) -> ir.Expr:
        left = self.lower_expr(node.left, scope)
        right = self.lower_expr(node.right, scope)
        left_type, right_type = strip_optional(left.type), strip_optional(right.type)
        numeric = {INT, FLOAT}
        if node.operator in ("==", "!="):
            compatible = unify(left_type, right_type, {}) or unify(right_type, left_type, {})
        else:
            compatible = all(isinstance(t, AnyType) or t in numeric for t in (left_type, right_type))
        if not compatible:
            self.error(
                "type-mismatch",
                f"cannot compare {left.type} {node.operator} {right.type}",
                node.span,
                "incompatible operands",
            )
        return ir.CompareExpr(operator=node.operator, left=left, right=right, type=BOOL, span=node.span)

    def lower_Call(self, node: ast.Call, scope: Scope) -> ir.Expr:
        from harnessc.calls import bind_call

        return bind_call(self, node, scope)
