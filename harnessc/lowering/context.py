"""The state of lowering one module, passed explicitly to every lowering function.

`LoweringContext` is what lowering knows so far (the declarations, the stages already lowered and their
types, what snippet expansion has cost) and where it reports (its diagnostics). `Scope` is where one
expression is lowered: its context, the local names bound around it, the names known to be present.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Union

from harnessc import ast, ir
from harnessc.builtins.registry import Registry
from harnessc.diagnostics import Diagnostic, Label
from harnessc.reading import Roots
from harnessc.source import SourceFile, Span
from harnessc.types import ANY, Type

# The words a diagnostic uses for each kind of declaration.
KIND_WORDS = {
    "input": "input",
    "param": "parameter",
    "snippet": "snippet",
    "bank": "memory bank",
    "llm": "LLM stage",
    "let": "`let` stage",
    "loop": "loop",
}
STAGE_KINDS = ("llm", "let", "loop")

DeclarationNode = Union[
    ast.InputDecl, ast.ParamDecl, ast.SnippetDecl, ast.BankDecl, ast.LlmStage, ast.LetStage, ast.LoopStage
]


@dataclass(frozen=True, slots=True)
class Declaration:
    """A name the module (or a file it imports) declares. `loop`: the loop a stage is a step of."""

    kind: str  # input | param | snippet | bank | llm | let | loop
    node: DeclarationNode
    span: Span
    loop: str | None = None


@dataclass(frozen=True, slots=True)
class Scope:
    """Where an expression is lowered: its context (`stage`, `option`, `param`, `bank`, `student`,
    `teacher`, `output`, `student_output`, `grade`), the loop it is inside, the locals bound around it
    (`{for x in ...}`, comprehensions) and the names an enclosing `{if}` proves present."""

    context: str
    loop: str | None = None
    locals: Mapping[str, Type] = field(default_factory=dict)
    present: frozenset[str] = frozenset()

    def bind(self, name: str, typ: Type) -> Scope:
        return Scope(self.context, self.loop, {**self.locals, name: typ}, self.present)

    def narrowed(self, names: set[str]) -> Scope:
        return Scope(self.context, self.loop, self.locals, self.present | names)


@dataclass
class SnippetExpansion:
    """What filling in snippets has cost so far (harnessc/lowering/snippets.py)."""

    expanding: list[str] = field(default_factory=list)  # the snippets being filled in, outermost first
    expanded: tuple[int, int] = (0, 0)  # characters and template pieces filled in (outside any snippet)
    refused: bool = False  # a use was refused for the budget (reported once)
    sizes: dict[str, tuple[int, int]] = field(default_factory=dict)  # what each snippet expands to
    reads: dict[str, tuple[list[str], int]] = field(default_factory=dict)  # snippets each one uses, its pieces


# Lowers one kind of syntax node: (context, node, scope) → IR expression.
ExpressionLowering = Callable[["LoweringContext", Any, Scope], ir.Expr]


@dataclass
class LoweringContext:
    """Everything lowering reads and writes besides the node at hand.

    `expressions` maps each expression node class to the function lowering it (the table is assembled by
    harnessc/lowering/__init__.py): modules that lower sub-expressions call `lower_expr`, which dispatches
    through it, instead of importing one another."""

    module: ast.Module
    sources: Mapping[str, SourceFile]
    registry: Registry
    expressions: Mapping[type, ExpressionLowering]
    roots: Roots | None = None  # where files the harness names may be (None: bank files taken as written)
    # Some import could not be read, so any snippet may exist: unknown names are then not reported.
    missing_imports: bool = False
    diagnostics: list[Diagnostic] = field(default_factory=list)
    declarations: dict[str, Declaration] = field(default_factory=dict)
    rejected: set[str] = field(default_factory=set)  # names refused (reserved): their uses are not reported
    stages: dict[str, ir.Stage] = field(default_factory=dict)  # the stages lowered so far
    # The types of the stages lowered so far: a stage read before it is lowered is part of a cycle (the
    # checker reports it) and has the type `any`. A loop's type is known once its initial value is.
    stage_types: dict[str, Type] = field(default_factory=dict)
    loop_heads: dict[str, tuple[ir.Expr, ir.Expr]] = field(default_factory=dict)  # loop → (initial, bound)
    output_type: Type = ANY  # what `grade` sees as `output`
    snippets: SnippetExpansion = field(default_factory=SnippetExpansion)

    def lower_expr(self, node: ast.Expr, scope: Scope) -> ir.Expr:
        return self.expressions[type(node)](self, node, scope)

    def lower_constant(self, node: ast.Expr) -> ir.Expr:
        """An option's value or a `max` bound: a literal or a `param` (or a list of them), so that it is
        known before the run and its range is checked after `--set` overrides. Anything computed is
        `not-constant` (a computed value would skip those checks)."""
        value = self.lower_expr(node, Scope("option"))
        if not _is_constant(value):
            self.error(
                "not-constant",
                "an option's value or a bound must be a constant",
                node.span,
                "computed",
                ("write a literal or a `param` (a `param` default and `--set` hold the value to use)",),
            )
        return value

    def error(
        self,
        code: str,
        message: str,
        span: Span,
        label: str = "",
        hints: tuple[str, ...] = (),
        labels: tuple[Label, ...] = (),
    ) -> None:
        self.diagnostics.append(
            Diagnostic(code=code, message=message, span=span, label=label, hints=hints, labels=labels)
        )

    def kind_of(self, name: str) -> str | None:
        declaration = self.declarations.get(name)
        return declaration.kind if declaration else None

    def items(self, kind: type | tuple[type, ...]) -> list[Any]:
        """The module's top-level items of a kind, in source order."""
        return [item for item in self.module.items if isinstance(item, kind)]

    def source_text(self, span: Span) -> str:
        source = self.sources.get(span.file)
        return source.text[span.start : span.end] if source is not None else ""


def article(words: str) -> str:
    return ("an " if words[0] in "aeiouAEIOU" or words.startswith("LLM") else "a ") + words


def _is_constant(value: ir.Expr) -> bool:
    if isinstance(value, ir.ListExpr):
        return all(_is_constant(item) for item in value.items)
    # a name that is not a constant is reported where it is lowered, with its type `any`
    return isinstance(value, (ir.Literal, ir.TemplateExpr)) or isinstance(value, ir.Ref) or value.type == ANY
