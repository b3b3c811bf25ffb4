"""The front end's one entry point: file → sources → syntax tree → IR → checks → a Compilation.

    compilation = compile_file("harnesses/plan_solve.harness")
    if compilation.ok:
        harness = compilation.harness      # the typed stage graph (harnessc.ir.Harness)

Nothing here imports torch or vllm; the runtime and the trainer call `compile_file(...).require()`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import json
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from harnessc import ast, ir
from harnessc.builtins.registry import Registry, default_registry
from harnessc.checks import CheckContext, run_checks
from harnessc.diagnostics import CompileError, Diagnostic, sorted_unique
from harnessc.limits import float_in_range, int_in_range
from harnessc.lowering import lower_module
from harnessc.parser import parse_module
from harnessc.reading import Refusal, Roots, check_text_size, read_import, read_source
from harnessc.source import SourceFile, Span
from harnessc.syntax_errors import number_out_of_range
from harnessc.types import TEXT, ListOf, Scalar, Type, strip_optional


@dataclass
class Compilation:
    harness: ir.Harness | None
    diagnostics: list[Diagnostic]
    sources: dict[str, SourceFile] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.harness is not None and not any(item.is_error for item in self.diagnostics)

    def require(self) -> ir.Harness:
        """The harness, or CompileError carrying every diagnostic."""
        if not self.ok:
            raise CompileError([item for item in self.diagnostics if item.is_error], self.sources)
        assert self.harness is not None
        return self.harness


def compile_file(
    path: str | Path,
    *,
    registry: Registry | None = None,
    purpose: str = "any",
    overrides: Mapping[str, str] | None = None,
    allow_roots: Sequence[str | Path] = (),
) -> Compilation:
    """Compile a `.harness` file (see `compile_source`)."""
    display = str(path)
    source, refusal = read_source(path, display)
    if source is None:
        assert refusal is not None  # read_source gives a source or the reason for none
        return Compilation(None, [_file_diagnostic(refusal, display)], {})
    return compile_source(
        source.text, display, registry=registry, purpose=purpose, overrides=overrides, allow_roots=allow_roots
    )


def compile_source(
    text: str,
    path: str = "<string>",
    *,
    registry: Registry | None = None,
    purpose: str = "any",
    overrides: Mapping[str, str] | None = None,
    allow_roots: Sequence[str | Path] = (),
) -> Compilation:
    """Parse, lower and check `text`. Never raises for bad input: every problem is a diagnostic.

    `purpose` is "train", "run" or "any" (see CheckContext); `overrides` maps parameter names to values
    as written on a command line (`--set k=3`), applied before the checks. Imports resolve inside the
    folder tree of `path` and the `allow_roots` folders only (see harnessc/reading.py).
    """
    too_large = check_text_size(text, path)
    if too_large is not None:
        return Compilation(None, [_file_diagnostic(too_large, path)], {})
    roots = Roots.around(path, allow_roots)
    with _without_cyclic_gc():
        return _compile_source(text, path, registry=registry, purpose=purpose, overrides=overrides, roots=roots)


@contextlib.contextmanager
def _without_cyclic_gc() -> Iterator[None]:
    """The front end allocates a great many small objects, none in reference cycles that matter; on a
    large file Python's cyclic collector would traverse them again and again (about half of the time
    of a 10,000-stage file). Reference counting still frees them; the collector's state is restored."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _compile_source(
    text: str,
    path: str,
    *,
    registry: Registry | None,
    purpose: str,
    overrides: Mapping[str, str] | None,
    roots: Roots,
) -> Compilation:
    registry = registry or default_registry()
    source = SourceFile(path, text)
    sources = {path: source}
    module, diagnostics = parse_module(source)
    if module is None:
        return Compilation(None, diagnostics, sources)
    if module.header is None:
        diagnostics.append(
            Diagnostic(
                code="missing-header",
                message="a harness file must start with `harness NAME`",
                span=source.span(0, 0),
                label="expected `harness NAME` here",
                hints=('begin the file with e.g. `harness plan_solve "what it is for"`',),
            )
        )
    unread: list[str] = []
    snippets = _load_imports(module, Path(path).parent, roots, sources, diagnostics, unread)
    harness, lowering = lower_module(module, snippets, sources, registry, missing_imports=bool(unread), roots=roots)
    diagnostics += lowering
    if overrides:
        harness, problems = apply_overrides(harness, overrides)
        diagnostics += problems
        sources.update({_OVERRIDE_FILE: SourceFile(_OVERRIDE_FILE, _override_text(overrides))})
    diagnostics += run_checks(harness, CheckContext(purpose=purpose))
    return Compilation(harness, sorted_unique(diagnostics), sources)


def _file_diagnostic(refusal: Refusal, display: str) -> Diagnostic:
    """A refusal of the file named on the command line, at its top (invalid-encoding: at the invalid
    byte). The file's text is not among the sources, so no line of it is ever printed."""
    offset, line, column = refusal.position
    span = Span(display, offset, offset + 1, line, column, line, column + 1)
    label = "invalid byte" if refusal.code == "invalid-encoding" else ""
    return Diagnostic(code=refusal.code, message=refusal.message, span=span, label=label, hints=refusal.hints)


# ---- imports ------------------------------------------------------------------------------------------------


def _load_imports(
    module: ast.Module,
    directory: Path,
    roots: Roots,
    sources: dict[str, SourceFile],
    diagnostics: list[Diagnostic],
    unread: list[str],
    seen: frozenset[str] = frozenset(),
) -> dict[str, ast.SnippetDecl]:
    """Snippets from `import "file"` declarations (relative to the importing file), recursively. Only
    harness sources inside `roots` are read (harnessc/reading.py); a refusal is reported at the import.
    Imports refused or unparsable are added to `unread`: the snippets they may declare are unknown."""
    snippets: dict[str, ast.SnippetDecl] = {}
    for item in module.items:
        if not isinstance(item, ast.Import):
            continue
        display = str(directory / item.path.value)
        if display in sources or _real_path(directory / item.path.value) in seen:
            continue  # already imported (or an import cycle): each file's snippets are taken once
        target, source, refusal = read_import(directory, item.path.value, roots)
        if source is None:
            assert refusal is not None  # read_import gives a source or the reason for none
            diagnostics.append(_import_diagnostic(item, refusal))
            unread.append(display)
            continue
        sources[display] = source
        imported, errors = parse_module(source)
        diagnostics += errors
        if imported is None:
            unread.append(display)
            continue
        diagnostics += _non_snippets(imported)
        assert target is not None  # read, so resolved
        nested = _load_imports(imported, target.parent, roots, sources, diagnostics, unread, seen | {str(target)})
        snippets.update(nested)
        snippets.update({s.name.name: s for s in imported.items if isinstance(s, ast.SnippetDecl)})
    return snippets


def _real_path(path: Path) -> str:
    try:
        return os.path.realpath(path)
    except (OSError, ValueError):  # a NUL in the path: read_import reports it
        return str(path)


def _import_diagnostic(item: ast.Import, refusal: Refusal) -> Diagnostic:
    return Diagnostic(
        code=refusal.code,
        message=f"cannot import {item.path.value!r}: {refusal.reason or refusal.message}",
        span=item.path.span,
        label="imported here",
        hints=refusal.hints,
    )


def _non_snippets(module: ast.Module) -> list[Diagnostic]:
    problems: list[ast.Header | ast.Item] = [module.header] if module.header is not None else []
    problems += [item for item in module.items if not isinstance(item, (ast.SnippetDecl, ast.Import))]
    return [
        Diagnostic(
            code="import-content",
            message="an imported file may only declare snippets and imports",
            span=item.span,
            label="not a snippet",
            hints=("move this declaration into the harness that imports the file",),
        )
        for item in problems
    ]


# ---- parameter overrides --------------------------------------------------------------------------------------

_OVERRIDE_FILE = "<--set>"


def _override_text(overrides: Mapping[str, str]) -> str:
    return "\n".join(f"{name}={value}" for name, value in overrides.items())


def apply_overrides(harness: ir.Harness, overrides: Mapping[str, str]) -> tuple[ir.Harness, list[Diagnostic]]:
    """Replace parameter defaults with command-line values (`k=3`, `labels=["a","b"]`, `style=terse`)."""
    source = SourceFile(_OVERRIDE_FILE, _override_text(overrides))
    problems: list[Diagnostic] = []
    params = {param.name: param for param in harness.params}
    offset = 0
    for name, raw in overrides.items():
        span = source.span(offset, offset + len(name) + 1 + len(raw))
        offset += len(name) + len(raw) + 2
        param = params.get(name)
        if param is None:
            from harnessc.names import did_you_mean

            problems.append(
                Diagnostic(
                    code="invalid-override",
                    message=f"the harness has no parameter `{name}`",
                    span=span,
                    label="not a parameter",
                    hints=did_you_mean(name, params),
                )
            )
            continue
        try:
            value = _parse_override(raw, param.type)
        except _OutOfRange as error:
            text = error.args[0]
            problems.append(number_out_of_range(text, any(char in text for char in ".eEnN"), span))
            continue
        if value is None:
            problems.append(
                Diagnostic(
                    code="invalid-override",
                    message=f"parameter `{name}` is {param.type}; cannot read {_shorten(raw)!r} as that",
                    span=span,
                    label=f"expected {param.type}",
                )
            )
            continue
        default = dataclasses.replace(param.default, value=value)
        params[name] = dataclasses.replace(param, default=default)
    return dataclasses.replace(harness, params=tuple(params.values())), problems


def _shorten(raw: str) -> str:
    """A command-line value as a message quotes it: long ones (a whole file pasted in) are cut."""
    return raw if len(raw) <= 60 else f"{raw[:40]}...{raw[-10:]}"


class _OutOfRange(ValueError):
    """A number in a `--set` value beyond the ranges of harnessc.limits (args: the number as written)."""


def _bounded_int(text: str) -> int:
    value = int_in_range(text)
    if value is None:
        raise _OutOfRange(text)
    return value


def _bounded_float(text: str) -> float:
    value = float_in_range(text)
    if value is None:
        raise _OutOfRange(text)
    return value


def _no_constant(text: str) -> float:
    raise _OutOfRange(text)  # NaN, Infinity and -Infinity, which Python's json accepts


def _parse_override(raw: str, typ: Type):
    """The value of a `--set` string for a parameter of type `typ`, or None if it is not one; raises
    _OutOfRange for a number beyond the language's ranges (checked before any conversion)."""
    typ = strip_optional(typ)
    if typ == TEXT:
        return raw
    try:
        value = json.loads(raw, parse_int=_bounded_int, parse_float=_bounded_float, parse_constant=_no_constant)
    except _OutOfRange:
        raise
    except (ValueError, RecursionError):  # not JSON, or nested too deeply to read
        return None
    return _to_value(value, typ)


def _to_value(value, typ: Type):
    if isinstance(typ, ListOf):
        items = [_to_value(item, typ.item) for item in value] if isinstance(value, list) else None
        return tuple(items) if items is not None and None not in items else None
    if isinstance(typ, Scalar):
        accepted = {"text": (str,), "int": (int,), "float": (int, float), "bool": (bool,)}[typ.name]
        ok = isinstance(value, accepted) and not (typ.name != "bool" and isinstance(value, bool))
        return (float(value) if typ.name == "float" else value) if ok else None
    return None
