"""The explicit registry of deterministic built-ins that harness expressions may call.

A built-in is a plain Python function with a typed signature written in the language's own type syntax:

    @builtin("strip_think(text: text) -> text")
    def strip_think(text: str) -> str: ...

The checker reads only the signatures; the runtime calls the functions. A `.harness` file can call what is
registered and nothing else, so it never executes arbitrary code. Users add their own built-ins from a
module named on the command line (`--builtins my_pkg.my_builtins`) or from a package that declares the
entry point group `harnessc.builtins`; either way the module registers its functions with `@builtin`.
"""

from __future__ import annotations

import importlib
import json
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any

from harnessc.types import Type, parse_type

ENTRY_POINT_GROUP = "harnessc.builtins"
_NO_DEFAULT = object()


@dataclass(frozen=True, slots=True)
class Parameter:
    name: str
    type: Type
    default: Any = _NO_DEFAULT

    @property
    def required(self) -> bool:
        return self.default is _NO_DEFAULT


@dataclass(frozen=True, slots=True)
class Signature:
    name: str
    parameters: tuple[Parameter, ...]
    returns: Type

    def __str__(self) -> str:
        def param(p: Parameter) -> str:
            return f"{p.name}: {p.type}" + ("" if p.required else f" = {json.dumps(p.default)}")

        return f"{self.name}({', '.join(param(p) for p in self.parameters)}) -> {self.returns}"


@dataclass(frozen=True, slots=True)
class Builtin:
    signature: Signature
    function: Callable[..., Any]
    doc: str
    module: str

    @property
    def name(self) -> str:
        return self.signature.name


_SIGNATURE = re.compile(r"^\s*(?P<name>[A-Za-z_]\w*)\s*\((?P<params>.*)\)\s*->\s*(?P<returns>.+?)\s*$", re.S)


def parse_signature(source: str) -> Signature:
    """Read `name(p: type, q: type = default) -> type`; defaults are JSON literals."""
    match = _SIGNATURE.match(source)
    if match is None:
        raise ValueError(f"malformed built-in signature {source!r}: expected `name(p: type, ...) -> type`")
    parameters = tuple(_parse_parameter(part, source) for part in _split_top_level(match["params"]))
    return Signature(match["name"], parameters, parse_type(match["returns"]))


def _parse_parameter(part: str, source: str) -> Parameter:
    name, sep, rest = part.partition(":")
    if not sep:
        raise ValueError(f"parameter {part.strip()!r} of {source!r} has no type")
    type_text, eq, default_text = rest.partition("=")
    default = json.loads(default_text) if eq else _NO_DEFAULT
    return Parameter(name.strip(), parse_type(type_text.strip()), default)


def _split_top_level(text: str) -> Iterator[str]:
    """Split parameters on commas outside brackets and string defaults."""
    depth, start, quoted = 0, 0, False
    for index, char in enumerate(text):
        if char == '"' and (index == 0 or text[index - 1] != "\\"):
            quoted = not quoted
        elif quoted:
            continue
        elif char in "[{(":
            depth += 1
        elif char in "]})":
            depth -= 1
        elif char == "," and depth == 0:
            yield text[start:index]
            start = index + 1
    if text[start:].strip():
        yield text[start:]


class Registry:
    """Name → built-in. Registering a name twice is an error unless `replace=True`."""

    def __init__(self) -> None:
        self._builtins: dict[str, Builtin] = {}

    def register(self, item: Builtin, *, replace: bool = False) -> None:
        if item.name in self._builtins and not replace:
            previous = self._builtins[item.name].module
            raise ValueError(f"built-in {item.name!r} is already registered by {previous}")
        self._builtins[item.name] = item

    def get(self, name: str) -> Builtin | None:
        return self._builtins.get(name)

    def names(self) -> list[str]:
        return sorted(self._builtins)

    def __iter__(self) -> Iterator[Builtin]:
        return iter(self._builtins[name] for name in self.names())

    def __contains__(self, name: object) -> bool:
        return name in self._builtins


REGISTRY = Registry()


def builtin(signature: str, *, registry: Registry | None = None, replace: bool = False):
    """Decorator: register `function` under `signature` (see the module docstring)."""

    def register(function: Callable[..., Any]) -> Callable[..., Any]:
        parsed = parse_signature(signature)
        doc = (function.__doc__ or "").strip()
        target = REGISTRY if registry is None else registry
        target.register(Builtin(parsed, function, doc, function.__module__), replace=replace)
        return function

    return register


def default_registry() -> Registry:
    """The registry with the standard library loaded (importing it registers its functions)."""
    importlib.import_module("harnessc.builtins.library")
    return REGISTRY


class BuiltinsImportError(ImportError):
    """A user built-ins module named on the command line could not be imported (a usage error)."""


def load_user_builtins(modules: Iterable[str] = (), *, entry_point_group: str = ENTRY_POINT_GROUP) -> Registry:
    """Import user modules named on the command line, then every installed `harnessc.builtins` entry point."""
    registry = default_registry()
    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError as error:
            raise BuiltinsImportError(f"cannot import the built-ins module {module!r}: {error}") from error
        except SyntaxError as error:  # a source that does not parse, or is not UTF-8 (without a coding line)
            where = f"{error.filename}, line {error.lineno}" if error.filename else "its source"
            raise BuiltinsImportError(f"cannot import the built-ins module {module!r}: {where}: {error.msg}") from error
        except Exception as error:  # noqa: BLE001 - the module's own code failed (a bad signature, ...)
            raise BuiltinsImportError(
                f"cannot import the built-ins module {module!r}: importing it raised {type(error).__name__}: {error}"
            ) from error
    for entry in entry_points(group=entry_point_group):
        entry.load()
    return registry
