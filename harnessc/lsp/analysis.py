"""What a name in an open document means: its declaration, its type, the files it comes from.

An `Analysis` joins the two views of one document: the tolerant outline of its current text
(harnessc/lsp/outline.py: always available, also while the text does not parse) and the compiler's last
`Compilation` of it (the typed IR: types of declarations and of each use, narrowed inside `{if}`). The
feature modules (hover, definition, completion, symbols) ask it questions; nothing here imports pygls.

Imported files are read the way the compiler reads them (harnessc/reading.py: relative to the importing
file, confined to the harness's folder tree and the allowed roots), from the editor's unsaved text when
the file is open there.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from harnessc import ir
from harnessc.builtins.registry import Builtin, Registry
from harnessc.compiler import Compilation
from harnessc.lsp.outline import Declaration, Occurrence, Outline
from harnessc.lsp.positions import LineIndex
from harnessc.lsp.reader import outline
from harnessc.options import OPTIONS, ROLES
from harnessc.reading import Roots, read_import
from harnessc.types import Bank, ListOf, Optional_, Record, Type, TypeSyntaxError, parse_type

# Reads the editor's text of an open file by its real path (None: not open, read it from disk).
OpenText = Callable[[str], "str | None"]

_MAX_IMPORTED_FILES = 200  # a bound on the files followed through nested imports


@dataclass(frozen=True)
class ImportedFile:
    """A file reached through the document's imports. `display` is the path as the compiler names it in
    spans; `via` is the document's own `import` that leads to it (directly or through others)."""

    display: str
    real: str
    text: str
    outline: Outline
    via: Declaration


@dataclass(frozen=True)
class Target:
    """What a name refers to.

    kinds: `declaration` (in `path`, with `declaration`), `binding` (a comprehension or `{for}`
    variable, `occurrence`), `builtin` (`builtin`), `parameter` (a built-in's keyword argument:
    `builtin` and `name`), `option` and `role` (a body key), `import` (`path` is the imported file,
    empty when it cannot be read), `keyword`, `type`, `flag`, `switch`, `field`.
    """

    kind: str
    name: str
    path: str = ""
    text: str = ""
    declaration: Declaration | None = None
    occurrence: Occurrence | None = None
    builtin: Builtin | None = None


class Analysis:
    """One document: its path, current text, outline and (when it compiled far enough) its IR.

    `compilation` is the last one with an IR; it is `fresh` when it was made from the current text. A
    stale one (the text changed since, and does not parse now) still gives the types of declarations by
    name, but not the types at a position: its offsets no longer match."""

    def __init__(
        self,
        path: str,
        text: str,
        compilation: Compilation | None,
        registry: Registry,
        allow_roots: tuple[str, ...] = (),
        open_text: OpenText | None = None,
        fresh: bool = True,
    ) -> None:
        self.path = path
        self.text = text
        self.outline = outline(text)
        self.compilation = compilation
        self.fresh = fresh
        self.registry = registry
        self.allow_roots = allow_roots
        self.open_text = open_text or (lambda real: None)
        self._imports: list[ImportedFile] | None = None
        self._lines: dict[str, LineIndex] = {}

    def lines(self, encoding: str) -> LineIndex:
        """The line index of the text for positions in `encoding` (made once)."""
        if encoding not in self._lines:
            self._lines[encoding] = LineIndex(self.text, encoding)
        return self._lines[encoding]

    @property
    def harness(self) -> ir.Harness | None:
        return self.compilation.harness if self.compilation is not None else None

    # -- imports --------------------------------------------------------------------------------------------

    def imports(self) -> list[ImportedFile]:
        """Every file the document's imports reach, depth first, each once (as the compiler reads them)."""
        if self._imports is None:
            roots = Roots.around(self.path, self.allow_roots)
            found: list[ImportedFile] = []
            seen: set[str] = set()
            for item in self.outline.declarations:
                if item.kind == "import" and item.name:
                    self._follow(Path(self.path).parent, item.name, item, roots, found, seen)
            self._imports = found
        return self._imports

    def _follow(
        self,
        directory: Path,
        written: str,
        via: Declaration,
        roots: Roots,
        found: list[ImportedFile],
        seen: set[str],
    ) -> None:
        display = str(directory / written)
        if display in seen or len(found) >= _MAX_IMPORTED_FILES:
            return
        target, source, _refusal = read_import(directory, written, roots)
        seen.add(display)
        if target is None or source is None or any(item.real == str(target) for item in found):
            return  # unreadable (the compiler reports it), or read already: each file counts once
        text = self.open_text(str(target))
        text = source.text if text is None else text
        imported = ImportedFile(display, str(target), text, outline(text), via)
        found.append(imported)
        for item in imported.outline.declarations:
            if item.kind == "import" and item.name:
                self._follow(target.parent, item.name, via, roots, found, seen)

    def resolve_import(self, written: str) -> str | None:
        """The real path of the file `import "written"` names, or None when it cannot be read."""
        target, source, _refusal = read_import(
            Path(self.path).parent, written, Roots.around(self.path, self.allow_roots)
        )
        return str(target) if target is not None and source is not None else None

    def imported_snippets(self) -> Iterator[tuple[ImportedFile, Declaration]]:
        for imported in self.imports():
            for item in imported.outline.declarations:
                if item.kind == "snippet" and item.name:
                    yield imported, item

    # -- names ----------------------------------------------------------------------------------------------

    def target_at(self, offset: int) -> tuple[Occurrence, Target] | None:
        """The name at `offset` and what it refers to; None on whitespace, punctuation and unknown names."""
        occurrence = self.outline.occurrence_at(offset)
        if occurrence is None:
            return None
        target = self.resolve(occurrence)
        return (occurrence, target) if target is not None else None

    def resolve(self, occurrence: Occurrence) -> Target | None:
        role, name = occurrence.role, occurrence.name
        if role == "decl" and occurrence.declaration is not None:
            return Target("declaration", name, self.path, self.text, occurrence.declaration)
        if role == "binding":
            return Target("binding", name, self.path, self.text, occurrence=occurrence)
        if role in ("ref", "call"):
            return self.lookup(name, occurrence.start, prefer_builtin=role == "call")
        if role == "keyword-arg":
            function = self.registry.get(occurrence.detail)
            return Target("parameter", name, builtin=function) if function is not None else None
        if role == "key":
            if occurrence.detail == "bank":
                return Target("option", name) if name in ("search", "label", "file") else None
            if name in ROLES:
                return Target("role", name)
            return Target("option", name) if name in OPTIONS else None
        if role == "bank-field-ref":
            bank = self.outline.named(occurrence.detail)
            field = next((item for item in bank.children if item.name == name), None) if bank else None
            return Target("declaration", name, self.path, self.text, field) if field is not None else None
        if role == "import":
            real = self.resolve_import(occurrence.detail)
            return Target("import", occurrence.detail, real or "")
        if role in ("keyword", "type", "flag", "switch", "field"):
            return Target(role, name)
        return None

    def lookup(self, name: str, offset: int, prefer_builtin: bool = False) -> Target | None:
        """A name read at `offset`: a variable bound around it, a declaration of the document, a snippet
        of an imported file, or a built-in."""
        builtin = self.registry.get(name)
        if prefer_builtin and builtin is not None:
            return Target("builtin", name, builtin=builtin)
        for binding in reversed(self.outline.bindings_at(offset)):
            if binding.name == name and binding.start != offset:
                return Target("binding", name, self.path, self.text, occurrence=binding)
        declaration = self.outline.named(name)
        if declaration is not None:
            return Target("declaration", name, self.path, self.text, declaration)
        for imported, snippet in self.imported_snippets():
            if snippet.name == name:
                return Target("declaration", name, imported.real, imported.text, snippet)
        if builtin is not None:
            return Target("builtin", name, builtin=builtin)
        return None

    def visible(self, offset: int) -> list[Target]:
        """Every name that may be read at `offset`: bound variables, declarations, imported snippets (not
        built-ins); the first of each name."""
        seen: set[str] = set()
        found: list[Target] = []
        for binding in reversed(self.outline.bindings_at(offset)):
            if binding.name not in seen and not binding.start <= offset <= binding.end:
                seen.add(binding.name)
                found.append(Target("binding", binding.name, self.path, self.text, occurrence=binding))
        for item in self.outline.all_declarations():
            if item.kind in ("harness", "import", "bank-field", "teacher", "student_output", "grade"):
                continue
            if item.name and item.name not in seen and not item.name_start <= offset <= item.name_end:
                seen.add(item.name)
                found.append(Target("declaration", item.name, self.path, self.text, item))
        for imported, snippet in self.imported_snippets():
            if snippet.name not in seen:
                seen.add(snippet.name)
                found.append(Target("declaration", snippet.name, imported.real, imported.text, snippet))
        return found

    # -- types from the IR ----------------------------------------------------------------------------------

    def declared_type(self, declaration: Declaration) -> Type | None:
        """The type the compiler gave a declaration of this document; before it compiled, the type written
        in an input's, parameter's or bank field's declaration."""
        harness = self.harness
        if not declaration.name:
            return None
        if harness is None:
            return self.written_type(declaration)
        kind, name = declaration.kind, declaration.name
        if kind == "input":
            item = harness.input(name)
            return (Optional_(item.type) if item.optional else item.type) if item is not None else None
        if kind == "param":
            param = harness.param(name)
            return param.type if param is not None else None
        if kind == "bank":
            bank = next((item for item in harness.banks if item.name == name), None)
            return Bank(bank.entry) if bank is not None else None
        if kind == "bank-field" and declaration.parent is not None:
            bank = next((item for item in harness.banks if item.name == declaration.parent.name), None)
            return bank.entry.field(name) if bank is not None else None
        if kind in ("llm", "let", "loop"):
            stage = harness.stage(name)
            return stage.type if stage is not None else None
        return None

    def written_type(self, declaration: Declaration) -> Type | None:
        """The type as written in the declaration (`input x: list[text] optional` is `list[text]?`)."""
        if declaration.type_range is None:
            return None
        start, end = declaration.type_range
        try:
            typ = parse_type(" ".join(self.text[start:end].split()))
        except (TypeSyntaxError, ValueError, RecursionError):
            return None
        if declaration.kind == "input" and "optional" in declaration.flags:
            return Optional_(typ)
        return typ

    def use_type(self, occurrence: Occurrence) -> Type | None:
        """The type of a name at this use, as the compiler computed it there (narrowed by `{if}`)."""
        harness = self.harness
        if harness is None or not self.fresh:
            return None
        for node in ir.walk(harness):
            if isinstance(node, ir.Ref) and node.name == occurrence.name and node.span.file == self.path:
                if node.span.start == occurrence.start:
                    return node.type
            elif isinstance(node, ir.FieldRef) and node.field == occurrence.name and node.span.file == self.path:
                if node.span.end == occurrence.end:
                    return node.type
        return None

    def binding_type(self, binding: Occurrence, depth: int = 0) -> Type | None:
        """The type of a comprehension or `{for}` variable: that of a use of it inside its scope, or else
        the item type of the list it iterates over when that is a plain name."""
        harness = self.harness
        if binding.scope is None:
            return None
        start, end = binding.scope
        if harness is not None and self.fresh:
            for node in ir.walk(harness):
                if isinstance(node, ir.Ref) and node.kind == "local" and node.name == binding.name:
                    if node.span.file == self.path and start <= node.span.start <= end:
                        return node.type
        if not binding.detail or depth > 8:
            return None
        return element_type(self.name_type(binding.detail, binding.start, depth + 1))

    def name_type(self, name: str, offset: int, depth: int = 0) -> Type | None:
        """The type of a name read at `offset`, from its declaration (or its binding)."""
        target = self.lookup(name, offset)
        if target is None:
            return None
        if target.kind == "binding" and target.occurrence is not None:
            return self.binding_type(target.occurrence, depth)
        if target.declaration is not None and target.path == self.path:
            return self.declared_type(target.declaration)
        return None

    def record_fields(self, receiver: str, offset: int) -> list[tuple[str, Type]]:
        """The fields of the record that the plain name `receiver` holds at `offset` (completion after
        `name.`; `offset` is after the dot)."""
        typ: Type | None = None
        occurrence = self.outline.occurrence_at(offset - 1)
        if occurrence is not None and occurrence.name == receiver and occurrence.end == offset - 1:
            typ = self.use_type(occurrence)
        if typ is None:
            typ = self.name_type(receiver, offset - 1)
        while isinstance(typ, Optional_):
            typ = typ.inner
        return list(typ.fields) if isinstance(typ, Record) else []


def element_type(typ: Type | None) -> Type | None:
    """The item type of a list type (through an optional), else None."""
    while isinstance(typ, Optional_):
        typ = typ.inner
    return typ.item if isinstance(typ, ListOf) else None


def declaration_source(text: str, declaration: Declaration, limit: int = 400) -> str:
    """The declaration as written, comments dropped and shortened to `limit` characters."""
    lines = []
    for line in text[declaration.start : declaration.end].splitlines():
        code = line.split("#", 1)[0].rstrip() if '"' not in line else line.rstrip()
        if code.strip():
            lines.append(code)
    source = "\n".join(lines)
    return source if len(source) <= limit else source[: limit - 3].rstrip() + "..."


def same_file(first: str, second: str) -> bool:
    """Whether two paths name the same file (after resolving links)."""
    try:
        return os.path.realpath(first) == os.path.realpath(second)
    except (OSError, ValueError):
        return first == second


def replace(target: Target, **changes: object) -> Target:
    return dataclasses.replace(target, **changes)  # type: ignore[arg-type]
