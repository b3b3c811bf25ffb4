"""Syntax tree → IR: resolve every name, type every expression, parse every template, fill defaults.

Lowering reports what it cannot resolve (unknown names, fields, built-ins, options, types; wrong argument
counts and types; duplicate definitions) and keeps going with the type `any`, so that one mistake yields
one diagnostic and the rest of the file is still checked. Whole-graph properties (cycles, information
flow, unused stages, sampling ranges) are checked afterwards on the IR, in checker.py.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePath

from harnessc import ast, ir
from harnessc.builtins.registry import Registry
from harnessc.dependencies import topological_order
from harnessc.diagnostics import Diagnostic, Label
from harnessc.lower_expressions import (
    KIND_WORDS,
    ExpressionLowering,
    Scope,
    article,
)
from harnessc.names import did_you_mean
from harnessc.options import OPTIONS, ROLES, lower_option
from harnessc.reading import Roots, check_data_path
from harnessc.source import SourceFile, Span
from harnessc.types import (
    ANY,
    INT,
    SCALARS,
    TEXT,
    AnyType,
    ListOf,
    Optional_,
    Record,
    Type,
    make_optional,
    strip_optional,
    unify,
)


@dataclass
class _Declaration:
    kind: str  # input | param | snippet | bank | llm | let | loop
    node: object
    span: Span
    loop: str | None = None


class Lowerer(ExpressionLowering):
    def __init__(
        self,
        module: ast.Module,
        snippets: Mapping[str, ast.SnippetDecl],
        sources: Mapping[str, SourceFile],
        registry: Registry,
        missing_imports: bool = False,
        roots: Roots | None = None,
    ) -> None:
        self.module = module
        self.roots = roots
        self.sources = sources
        self.registry = registry
        self.diagnostics: list[Diagnostic] = []
        self.declarations: dict[str, _Declaration] = {}
        self.stage_types: dict[str, Type] = {}
        self.in_progress: set[str] = set()
        self.lowered: dict[str, ir.Stage] = {}
        self.output_type: Type = ANY
        self.imported_snippets = snippets
        self.rejected: set[str] = set()  # names refused (reserved): their uses are not reported again
        self.expanding: list[str] = []  # the snippets being filled in, outermost first
        self.expanded = (0, 0)  # characters and template pieces filled in from snippets (charge_expansion)
        self.expansion_refused = False
        self.snippet_sizes: dict[str, tuple[int, int]] = {}
        self.snippet_reads: dict[str, tuple[list[str], int]] = {}
        self.templates: dict[int, tuple] = {}  # id(ast.Text) -> (the Text, its parsed parts)
        # An import that could not be read (reported as import-not-found, or refused), here or in an imported
        # file, may declare any snippet: names that are unknown here are then most likely its snippets, and
        # are not reported a second time.
        directory = PurePath(module.path).parent
        self.missing_imports = missing_imports or any(
            str(directory / item.path.value) not in sources for item in module.items if isinstance(item, ast.Import)
        )

    # ---- entry point ------------------------------------------------------------------------------------

    def lower(self) -> ir.Harness:
        self.collect_declarations()
        inputs = tuple(self.lower_input(node) for node in self.items(ast.InputDecl))
        params = tuple(self.lower_param(node) for node in self.items(ast.ParamDecl))
        banks = tuple(self.lower_bank(node) for node in self.items(ast.BankDecl))
        for name in self.lowering_order():
            self.lower_stage(name)
        student = self.lower_student()
        teacher = self.lower_teacher()
        output = self.lower_single(ast.OutputDecl, "output")
        self.output_type = output.type if output is not None else ANY
        student_output = self.lower_single(ast.StudentOutputDecl, "student_output")
        grade = self.lower_single(ast.GradeDecl, "grade")
        header = self.module.header
        return ir.Harness(
            name=header.name.name if header else "",
            description=header.description.value if header and header.description else "",
            inputs=inputs,
            params=params,
            banks=banks,
            stages=self.ordered_stages(),
            student=student,
            teacher=teacher,
            output=output,
            student_output=student_output,
            grade=grade,
            files=tuple(self.sources),
            name_span=header.name.span if header else self.module.span,
            span=self.module.span,
        )

    def source_text(self, span: Span) -> str:
        source = self.sources.get(span.file)
        return source.text[span.start : span.end] if source is not None else ""

    def items(self, kind: type) -> list:
        return [item for item in self.module.items if isinstance(item, kind)]

    def lowering_order(self) -> list[str]:
        """Every stage, those a stage (probably) reads before it: lowering a stage lowers what it reads
        first, recursively, and a long chain declared last-first would exhaust Python's stack. The reads
        are over-approximated by the stage names among the identifiers in a stage's source text; a loop
        stands for its inner stages, which it lowers itself."""
        stages = {name: item for name, item in self.declarations.items() if item.kind in ("llm", "let", "loop")}
        owner = {name: item.loop or name for name, item in stages.items()}
        reads: dict[str, list[str]] = {}
        for name, item in stages.items():
            span = item.node.span
            source = self.sources.get(span.file)
            words = _IDENTIFIER.findall(source.text, span.start, span.end) if source is not None else ()
            reads[name] = [owner[word] for word in dict.fromkeys(words) if word in owner and owner[word] != name]
        order: list[str] = []
        seen: set[str] = set()
        for root in stages:  # an iterative depth-first post-order
            if root in seen:
                continue
            seen.add(root)
            work = [(root, iter(reads[root]))]
            while work:
                name, pending = work[-1]
                for read in pending:
                    if read not in seen:
                        seen.add(read)
                        work.append((read, iter(reads[read])))
                        break
                else:
                    work.pop()
                    order.append(name)
        return order

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

    # ---- declarations -------------------------------------------------------------------------------------

    def collect_declarations(self) -> None:
        for snippet in self.imported_snippets.values():
            self.declare(snippet.name, "snippet", snippet)
        for item in self.module.items:
            kind = _DECLARATION_KINDS.get(type(item))
            if kind is not None:
                self.declare(item.name, kind, item)
            if isinstance(item, ast.LoopStage):
                # The inner stages of a loop whose name was rejected as a duplicate are declared outside
                # any loop, so that no stage belongs to a loop that is not in the graph.
                declared = self.declarations.get(item.name.name)
                loop = item.name.name if declared is not None and declared.node is item else None
                for inner in item.items:
                    if isinstance(inner, (ast.LlmStage, ast.LetStage)):
                        self.declare(inner.name, _DECLARATION_KINDS[type(inner)], inner, loop=loop)
        self.check_single_declarations()

    def declare(self, name: ast.Identifier, kind: str, node: object, loop: str | None = None) -> None:
        previous = self.declarations.get(name.name)
        if name.name in _RESERVED_NAMES:
            meaning, instead = _RESERVED_NAMES[name.name]
            self.error(
                "duplicate-definition",
                f"`{name.name}` is reserved for {meaning} and cannot be redefined as {article(KIND_WORDS[kind])}",
                name.span,
                "reserved name",
                (f"rename it, e.g. `{instead}`",),
            )
            # Uses of the name are follow-ons of this one mistake: unknown_name stays quiet about them.
            self.rejected.add(name.name)
            return
        if previous is not None:
            self.error(
                "duplicate-definition",
                f"`{name.name}` is defined more than once",
                name.span,
                "defined again here",
                labels=(Label(previous.span, "first defined here"),),
            )
            return
        self.declarations[name.name] = _Declaration(kind, node, name.span, loop)

    def check_single_declarations(self) -> None:
        for kind, what in _SINGLE_DECLARATIONS.items():
            found = [item for item in self.module.items if isinstance(item, kind)]
            for item in found[1:]:
                self.error(
                    "duplicate-definition",
                    f"{what} is declared more than once",
                    item.span,
                    "declared again here",
                    labels=(Label(found[0].span, "first declared here"),),
                )

    # ---- inputs, params, banks ----------------------------------------------------------------------------

    def lower_input(self, node: ast.InputDecl) -> ir.Input:
        flags = {flag.name for flag in node.flags}
        for flag in node.flags:
            if flag.name not in ("optional", "oracle"):
                self.error(
                    "unknown-flag",
                    f"unknown input flag `{flag.name}`",
                    flag.span,
                    "not a flag",
                    did_you_mean(flag.name, ("optional", "oracle")) or ("input flags are `optional` and `oracle`",),
                )
        typ = self.lower_type(node.type, allow_bank=False)
        return ir.Input(
            name=node.name.name, type=typ, optional="optional" in flags, oracle="oracle" in flags, span=node.span
        )

    def input_type(self, name: str) -> Type:
        node = self.declarations[name].node
        typ = self.lower_type(node.type, allow_bank=False, report=False)
        optional = any(flag.name == "optional" for flag in node.flags)
        return make_optional(typ) if optional else typ

    def lower_param(self, node: ast.ParamDecl) -> ir.Param:
        typ = self.lower_type(node.type, allow_bank=False)
        default = self.lower_constant(node.default, Scope("param"))
        if not isinstance(default, ir.Literal) and not isinstance(default.type, AnyType):
            self.error(
                "not-constant",
                "a parameter's default must be a constant",
                node.default.span,
                "not a constant",
                ("write a literal: a number, a string, true/false or a list of them",),
            )
        self.expect_type(default, typ, "the parameter's default")
        value = default.value if isinstance(default, ir.Literal) else None
        return ir.Param(
            name=node.name.name, type=typ, default=ir.Literal(value=value, type=typ, span=default.span), span=node.span
        )

    def check_unique_fields(self, fields: tuple, what: str) -> None:
        first: dict[str, Span] = {}
        for item in fields:
            if item.name.name in first:
                self.error(
                    "duplicate-definition",
                    f"the {what} has two fields named `{item.name.name}`",
                    item.name.span,
                    "defined again here",
                    labels=(Label(first[item.name.name], "first defined here"),),
                )
            first.setdefault(item.name.name, item.name.span)

    def lower_bank(self, node: ast.BankDecl) -> ir.Bank:
        self.check_unique_fields(node.fields, f"bank `{node.name.name}`")
        fields = tuple(self.lower_bank_field(item) for item in node.fields)
        entry = Record(tuple((item.name, item.type) for item in fields))
        settings = {setting.key.name: setting for setting in node.settings}
        misspelled: set[str] = set()  # settings that an unknown one most likely meant
        for setting in node.settings:
            if setting.key.name not in _BANK_SETTINGS:
                hint = did_you_mean(setting.key.name, _BANK_SETTINGS)
                misspelled.update(name for name in _BANK_SETTINGS if hint and f"`{name}`" in hint[0])
                self.error(
                    "unknown-option",
                    f"unknown bank setting `{setting.key.name}`",
                    setting.key.span,
                    "not a bank setting",
                    hint,
                )
        # A misspelled `search` is reported once, as unknown, not again as missing.
        search = self.bank_field_setting(settings.get("search"), entry, node, required="search" not in misspelled)
        label = self.bank_field_setting(settings.get("label"), entry, node, required=False)
        file = self.bank_file(settings.get("file"))
        return ir.Bank(
            name=node.name.name,
            entry=entry,
            fields=fields,
            search_field=search or "",
            label_field=label,
            file=file,
            span=node.span,
        )

    def lower_bank_field(self, node: ast.BankField) -> ir.BankField:
        typ = self.lower_type(node.type, allow_bank=False)
        value = self.lower_expr(node.value, Scope("bank"))
        self.expect_type(value, typ, f"bank field `{node.name.name}`")
        return ir.BankField(name=node.name.name, type=typ, value=value, span=node.span)

    def bank_field_setting(
        self, setting: ast.Setting | None, entry: Record, bank: ast.BankDecl, required: bool
    ) -> str | None:
        if setting is None:
            if required:
                texts = [name for name, typ in entry.fields if typ == TEXT]
                example = f", e.g. `search {texts[0]}`" if texts else ""
                self.error(
                    "bank-without-search",
                    f"bank `{bank.name.name}` does not say which field to search",
                    bank.name.span,
                    "declared here",
                    (f"add `search FIELD` naming a text field of the entry{example}",),
                )
            return None
        value = setting.value
        if not isinstance(value, ast.Name):
            self.error("type-mismatch", f"`{setting.key.name}` takes a field name", value.span, "not a field name")
            return None
        field_type = entry.field(value.name)
        if field_type is None:
            self.error(
                "unknown-field",
                f"bank `{bank.name.name}` has no field `{value.name}`",
                value.span,
                "no such field",
                did_you_mean(value.name, [name for name, _ in entry.fields]),
            )
            return None
        if field_type != TEXT:
            self.error("type-mismatch", f"the `{setting.key.name}` field must be text, not {field_type}", value.span)
        return value.name

    def bank_file(self, setting: ast.Setting | None) -> str | None:
        """A bank's `file`, relative to the harness and confined like an import (harnessc/reading.py): the
        path the run reads it at."""
        written = self.constant_text(setting)
        if written is None or self.roots is None:
            return written
        path, refusal = check_data_path(Path(self.module.path).parent, written, self.roots)
        if refusal is not None:
            assert setting is not None  # a file was written, so the setting exists
            self.error(
                refusal.code,
                f"bank file {written!r}: {refusal.reason or refusal.message}",
                setting.value.span,
                "named here",
                refusal.hints,
            )
            if self.diagnostics[-1].is_error:  # a warning (a file not written yet) keeps the path to read
                return None
        return path

    def constant_text(self, setting: ast.Setting | None) -> str | None:
        if setting is None:
            return None
        value = self.lower_constant(setting.value, Scope("option"))
        if isinstance(value, ir.Literal) and isinstance(value.value, str):
            return value.value
        self.error("type-mismatch", f"`{setting.key.name}` takes a constant string", setting.value.span)
        return None

    # ---- types ----------------------------------------------------------------------------------------------

    def lower_type(self, node: ast.TypeExpr, *, allow_bank: bool, report: bool = True) -> Type:
        if isinstance(node, ast.RecordType):
            if report:
                self.check_unique_fields(node.fields, "record")
            return Record(
                tuple(
                    (item.name.name, self.lower_type(item.type, allow_bank=False, report=report))
                    for item in node.fields
                )
            )
        if isinstance(node, ast.GenericType):
            if node.name.name == "list":
                return ListOf(self.lower_type(node.argument, allow_bank=False, report=report))
            if report:
                self.error(
                    "unknown-type",
                    f"unknown type `{node.name.name}[...]`",
                    node.name.span,
                    "not a type",
                    did_you_mean(node.name.name, ["list"]) or ("the generic type is `list[T]`",),
                )
            return ANY
        name = node.name.name
        if name in SCALARS:
            return SCALARS[name]
        if report:
            if name == "list":
                hint: tuple[str, ...] = ("a list is written `list[text]`",)
            elif name.lower() in _TYPE_SYNONYMS:
                hint = (f"the language calls this type `{_TYPE_SYNONYMS[name.lower()]}`",)
            else:
                hint = did_you_mean(name, [*SCALARS, "list", "record"])
            self.error("unknown-type", f"unknown type `{name}`", node.name.span, "not a type", hint)
        return ANY

    def expect_type(self, value: ir.Expr, expected: Type, what: str) -> None:
        if not unify(expected, value.type, {}) or (
            isinstance(value.type, Optional_) and not isinstance(expected, Optional_)
        ):
            self.error(
                "type-mismatch",
                f"{what} must be {expected}, but this is {value.type}",
                value.span,
                f"this is {value.type}",
            )

    # ---- stages -----------------------------------------------------------------------------------------------

    def lower_stage(self, name: str) -> Type:
        """Lower a stage (once) and return its type; a stage met again while lowering it is part of a
        cycle, which the checker reports: here it just gets the type `any`."""
        if name in self.stage_types:
            return self.stage_types[name]
        if name in self.in_progress or len(self.in_progress) >= _MAX_LOWERING_DEPTH:
            # Past the depth limit (a long chain in a cycle or declared last-first that lowering_order
            # could not foresee) the stage is lowered later, by `lower`: only this read is typed `any`.
            return ANY
        self.in_progress.add(name)
        declaration = self.declarations[name]
        scope = Scope("stage", loop=declaration.loop)
        node = declaration.node
        if isinstance(node, ast.LlmStage):
            stage: ir.Stage = self.lower_llm(node, scope, declaration.loop)
        elif isinstance(node, ast.LetStage):
            value = self.lower_expr(node.value, scope)
            stage = ir.LetStage(
                name=name, value=value, loop=declaration.loop, type=value.type, name_span=node.name.span, span=node.span
            )
        else:
            stage = self.lower_loop(node)
        self.in_progress.discard(name)
        self.lowered[name] = stage
        self.stage_types[name] = stage.type
        return stage.type

    def lower_llm(self, node: ast.LlmStage, scope: Scope, loop: str | None) -> ir.LlmStage:
        guard = self.lower_condition(node.guard, scope) if node.guard is not None else None
        prompt = self.lower_prompt(node.body, scope)
        fallback = self.lower_prompt(node.otherwise, scope) if node.otherwise is not None else None
        # Any `n` makes the value a list, so the type does not depend on a parameter's current value.
        typ: Type = ListOf(TEXT) if prompt.option("n") is not None else TEXT
        if guard is not None and fallback is None:
            typ = make_optional(typ)
        return ir.LlmStage(
            name=node.name.name,
            prompt=prompt,
            guard=guard,
            fallback=fallback,
            loop=loop,
            type=typ,
            name_span=node.name.span,
            span=node.span,
        )

    def lower_prompt(self, body: ast.Body, scope: Scope, span: Span | None = None) -> ir.Prompt:
        """`span`: the whole declaration for a view (`student { ... }`), so diagnostics about the view point
        at its keyword rather than at its `{`; a stage's prompt spans its body."""
        messages, options = [], []
        for setting in body.settings:
            key = setting.key.name
            if key in ROLES:
                messages.append(
                    ir.Message(role=key, template=self.lower_message(setting.value, scope), span=setting.span)
                )
            elif key in OPTIONS:
                option = lower_option(setting, lambda raw: self.lower_constant(raw, Scope("option")), self.error)
                if option is not None:
                    options.append(option)
            else:
                self.error(
                    "unknown-option",
                    f"unknown message role or option `{key}`",
                    setting.key.span,
                    "not a role or option",
                    did_you_mean(key, [*ROLES, *OPTIONS]),
                )
        self.check_duplicate_options(options)
        return ir.Prompt(messages=tuple(messages), options=tuple(options), span=span or body.span)

    def check_duplicate_options(self, options: list[ir.Option]) -> None:
        seen: dict[str, ir.Option] = {}
        for option in options:
            if option.name in seen:
                self.error(
                    "duplicate-definition",
                    f"option `{option.name}` is set more than once",
                    option.span,
                    "set again here",
                    labels=(Label(seen[option.name].span, "first set here"),),
                )
            seen.setdefault(option.name, option)

    def lower_message(self, value: ast.Expr, scope: Scope) -> ir.Template:
        if isinstance(value, ast.TemplateLiteral):
            return self.lower_template(value.text, scope)
        if isinstance(value, ast.Name) and self.kind_of(value.name) == "snippet":
            return self.expand_snippet(value.name, value.span, scope)
        undeclared = isinstance(value, ast.Name) and self.kind_of(value.name) is None
        if undeclared and value.name not in scope.locals:
            self.unknown_name(value, scope)  # `system MATH_EXPRT`: a misspelled snippet, not a type error
            return ir.Template(parts=(), span=value.span)
        self.error(
            "type-mismatch",
            "a message is a string (or the name of a snippet)",
            value.span,
            "not a string",
            ('write the text in quotes: user "..."; interpolate values with {name}',),
        )
        return ir.Template(parts=(), span=value.span)

    def lower_loop(self, node: ast.LoopStage) -> ir.LoopStage:
        outer = Scope("stage")
        initial = self.lower_expr(node.initial, outer)
        self.stage_types[node.name.name] = (
            strip_optional(initial.type) if not isinstance(initial.type, AnyType) else ANY
        )
        bound = self.loop_bound(node)
        inner = Scope("stage", loop=node.name.name)
        steps: list[str | ir.Until] = []
        nexts = [item for item in node.items if isinstance(item, ast.Next)]
        for item in node.items:
            if isinstance(item, (ast.LlmStage, ast.LetStage)):
                declared = self.declarations.get(item.name.name)
                if declared is not None and declared.node is item:  # not a rejected duplicate name
                    steps.append(item.name.name)
            elif isinstance(item, ast.Until):
                steps.append(ir.Until(condition=self.lower_condition(item.condition, inner), span=item.span))
        self.check_loop_clauses(node, nexts)
        for name in [step for step in steps if isinstance(step, str)]:
            self.lower_stage(name)
        next_value = (
            self.lower_expr(nexts[0].value, inner)
            if nexts
            else ir.Ref(name=node.name.name, kind="loop", type=initial.type, span=node.name.span)
        )
        if nexts:
            self.expect_type(next_value, strip_optional(initial.type), "the value of `next`")
        return ir.LoopStage(
            name=node.name.name,
            initial=initial,
            max_iterations=bound,
            steps=tuple(steps),
            next=next_value,
            type=initial.type,
            name_span=node.name.span,
            span=node.span,
        )

    def loop_bound(self, node: ast.LoopStage) -> ir.Expr:
        if node.bound is None:
            initial = self.source_text(node.initial.span)
            example = (
                f"loop {node.name.name} from {initial} max 3 {{"
                if "\n" not in initial
                else "loop refine from draft max 3 {"
            )
            self.error(
                "unbounded-loop",
                f"loop `{node.name.name}` has no bound",
                node.name.span,
                "this loop could run forever",
                (f"add `max N` after the initial value: `{example}`",),
            )
            return ir.Literal(value=None, type=ANY, span=node.name.span)
        bound = self.lower_expr(node.bound, Scope("option"))
        self.expect_type(bound, INT, "a loop's bound")
        return bound

    def check_loop_clauses(self, node: ast.LoopStage, nexts: list[ast.Next]) -> None:
        untils = [item for item in node.items if isinstance(item, ast.Until)]
        for extra in untils[1:] + nexts[1:]:
            first = (untils if isinstance(extra, ast.Until) else nexts)[0]
            self.error(
                "duplicate-definition",
                "a loop has at most one `until` and one `next`",
                extra.span,
                "declared again here",
                labels=(Label(first.span, "first declared here"),),
            )
        if not nexts:
            steps = [item.name.name for item in node.items if isinstance(item, (ast.LlmStage, ast.LetStage))]
            example = f", e.g. `next {steps[-1]}` after the last step" if steps else ""
            self.error(
                "loop-without-next",
                f"loop `{node.name.name}` never updates its value",
                node.name.span,
                "no `next` in this loop",
                (f"add `next STAGE` saying which value the next iteration works on{example}",),
            )

    def ordered_stages(self) -> tuple[ir.Stage, ...]:
        """Stages in dependency order (declaration order among independent ones); loop bodies follow their
        loop. Stages in a cycle keep declaration order: the checker reports the cycle."""
        return topological_order(self.lowered, self.declarations)

    # ---- views --------------------------------------------------------------------------------------------------

    def lower_student(self) -> ir.Prompt | None:
        views = self.items(ast.StudentView)
        return self.lower_prompt(views[0].body, Scope("student"), views[0].span) if views else None

    def lower_teacher(self) -> ir.TeacherChain | ir.Prompt | None:
        views = self.items(ast.TeacherTemplate) + self.items(ast.TeacherChain)
        if not views:
            return None
        view = min(views, key=lambda item: item.span.start)
        if isinstance(view, ast.TeacherTemplate):
            return self.lower_prompt(view.body, Scope("teacher"), view.span)
        for name in view.names:
            self.check_teacher_source(name)
        return ir.TeacherChain(stages=tuple(name.name for name in view.names), span=view.span)

    def check_teacher_source(self, name: ast.Identifier) -> None:
        if name.name == "student":
            return
        kind = self.kind_of(name.name)
        if kind is None:
            llm_names = [n for n, d in self.declarations.items() if d.kind == "llm"] + ["student"]
            self.error(
                "unknown-name",
                f"unknown stage `{name.name}`",
                name.span,
                "not defined",
                did_you_mean(name.name, llm_names),
            )
        elif kind != "llm":
            self.error(
                "teacher-not-llm",
                f"the teacher context must come from an LLM stage, and `{name.name}` is a {KIND_WORDS[kind]}",
                name.span,
                "not an LLM stage",
                ("the teacher sees the rendered messages of an `llm` stage, or of an explicit `teacher { ... }`",),
            )

    def lower_single(self, kind: type, context: str) -> ir.Expr | None:
        found = self.items(kind)
        return self.lower_expr(found[0].value, Scope(context)) if found else None


_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_MAX_LOWERING_DEPTH = 40  # stages lowered recursively, one inside the other (each takes ~10 Python frames)
_DECLARATION_KINDS = {
    ast.InputDecl: "input",
    ast.ParamDecl: "param",
    ast.SnippetDecl: "snippet",
    ast.BankDecl: "bank",
    ast.LlmStage: "llm",
    ast.LetStage: "let",
    ast.LoopStage: "loop",
}
_SINGLE_DECLARATIONS = {
    ast.StudentView: "the student view",
    ast.OutputDecl: "`output`",
    ast.StudentOutputDecl: "`student_output`",
    ast.GradeDecl: "`grade`",
    (ast.TeacherTemplate, ast.TeacherChain): "the teacher view",
}
_BANK_SETTINGS = ("search", "label", "file")
# Names that the language itself gives a meaning: what they mean, and a name to suggest instead.
_RESERVED_NAMES = {
    "student": ("the student view and its completion", "attempt"),
    "output": ("the harness's answer (`output = ...`)", "answer"),
}


# Type names from other languages, mapped to the harness language's own (for the "unknown type" hint).
_TYPE_SYNONYMS = {
    "string": "text",
    "str": "text",
    "integer": "int",
    "boolean": "bool",
    "number": "float",
    "double": "float",
    "array": "list[T]",
    "dict": "record{...}",
    "object": "record{...}",
}


def lower_module(
    module: ast.Module,
    snippets: Mapping[str, ast.SnippetDecl],
    sources: Mapping[str, SourceFile],
    registry: Registry,
    *,
    missing_imports: bool = False,
    roots: Roots | None = None,
) -> tuple[ir.Harness, list[Diagnostic]]:
    """`missing_imports`: some import (perhaps a nested one) could not be read; `roots`: where files the
    harness names may be (None: bank files are taken as written)."""
    lowerer = Lowerer(module, snippets, sources, registry, missing_imports, roots)
    harness = lowerer.lower()
    return harness, lowerer.diagnostics
