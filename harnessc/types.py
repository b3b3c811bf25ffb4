"""The harness language's value types: immutable data, comparable, printable the way users write them.

`text`, `int`, `float`, `bool`, `list[T]`, `record{field: T, ...}`, `bank[record{...}]`, an optional
`T?` (an input declared optional, a guarded stage, a stage inside a loop), and the type variables
(`T`, `R`) that built-in signatures use.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Union


@dataclass(frozen=True, slots=True)
class Scalar:
    name: str  # "text" | "int" | "float" | "bool"

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True, slots=True)
class ListOf:
    item: Type

    def __str__(self) -> str:
        return f"list[{self.item}]"


@dataclass(frozen=True, slots=True)
class Record:
    fields: tuple[tuple[str, Type], ...]

    def field(self, name: str) -> Type | None:
        return dict(self.fields).get(name)

    def __str__(self) -> str:
        inner = ", ".join(f"{name}: {typ}" for name, typ in self.fields)
        return f"record{{{inner}}}"


@dataclass(frozen=True, slots=True)
class Bank:
    entry: Type  # a Record, or a TypeVar inside a signature

    def __str__(self) -> str:
        return f"bank[{self.entry}]"


@dataclass(frozen=True, slots=True)
class Optional_:
    inner: Type

    def __str__(self) -> str:
        return f"{self.inner}?"


@dataclass(frozen=True, slots=True)
class TypeVar:
    name: str

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True, slots=True)
class AnyType:
    """The type of an expression that already failed to check: it matches everything, so that one mistake
    produces one diagnostic, not a cascade."""

    def __str__(self) -> str:
        return "any"


Type = Union[Scalar, ListOf, Record, Bank, Optional_, TypeVar, AnyType]

TEXT = Scalar("text")
INT = Scalar("int")
FLOAT = Scalar("float")
BOOL = Scalar("bool")
ANY = AnyType()
SCALARS = {t.name: t for t in (TEXT, INT, FLOAT, BOOL)}


def strip_optional(typ: Type) -> Type:
    return typ.inner if isinstance(typ, Optional_) else typ


def make_optional(typ: Type) -> Type:
    return typ if isinstance(typ, (Optional_, AnyType)) else Optional_(typ)


def is_renderable(typ: Type) -> bool:
    """Whether a template placeholder may print a value of this type directly."""
    return isinstance(typ, (Scalar, AnyType))


def unify(pattern: Type, actual: Type, bindings: dict[str, Type]) -> bool:
    """Match `actual` against a signature's `pattern`, binding type variables; int widens to float."""
    if isinstance(actual, AnyType) or isinstance(pattern, AnyType):
        return True
    if isinstance(pattern, TypeVar):
        bound = bindings.get(pattern.name)
        if bound is None:
            bindings[pattern.name] = actual
            return True
        return unify(bound, actual, bindings)
    if isinstance(pattern, Scalar) and isinstance(actual, Scalar):
        return pattern == actual or (pattern == FLOAT and actual == INT)
    if isinstance(pattern, ListOf) and isinstance(actual, ListOf):
        return unify(pattern.item, actual.item, bindings)
    if isinstance(pattern, Bank) and isinstance(actual, Bank):
        return unify(pattern.entry, actual.entry, bindings)
    if isinstance(pattern, Optional_) and isinstance(actual, Optional_):
        return unify(pattern.inner, actual.inner, bindings)
    if isinstance(pattern, Optional_):
        return unify(pattern.inner, actual, bindings)
    if isinstance(pattern, Record) and isinstance(actual, Record):
        return pattern == actual
    return False


def substitute(typ: Type, bindings: dict[str, Type]) -> Type:
    """Replace bound type variables in a signature's result type."""
    if isinstance(typ, TypeVar):
        return bindings.get(typ.name, ANY)
    if isinstance(typ, ListOf):
        return ListOf(substitute(typ.item, bindings))
    if isinstance(typ, Bank):
        return Bank(substitute(typ.entry, bindings))
    if isinstance(typ, Optional_):
        return make_optional(substitute(typ.inner, bindings))
    return typ


def to_json(typ: Type) -> object:
    """A JSON form of a type: its source spelling (parse_type reads it back)."""
    return str(typ)


class TypeSyntaxError(ValueError):
    pass


def parse_type(source: str) -> Type:
    """Read a type spelled as in the language (`list[text]`, `record{a: text}`, `bank[R]`, `text?`).

    Single upper-case letters are type variables; they appear only in built-in signatures.
    """
    parser = _TypeParser(source)
    typ = parser.type()
    parser.skip_space()
    if parser.pos != len(source):
        raise TypeSyntaxError(f"unexpected {source[parser.pos :]!r} in type {source!r}")
    return typ


class _TypeParser:
    def __init__(self, source: str) -> None:
        self.source = source
        self.pos = 0

    def skip_space(self) -> None:
        while self.pos < len(self.source) and self.source[self.pos].isspace():
            self.pos += 1

    def expect(self, char: str) -> None:
        self.skip_space()
        if not self.source.startswith(char, self.pos):
            raise TypeSyntaxError(f"expected {char!r} at {self.pos} in type {self.source!r}")
        self.pos += 1

    def word(self) -> str:
        self.skip_space()
        start = self.pos
        while self.pos < len(self.source) and (self.source[self.pos].isalnum() or self.source[self.pos] == "_"):
            self.pos += 1
        if start == self.pos:
            raise TypeSyntaxError(f"expected a type name at {start} in {self.source!r}")
        return self.source[start : self.pos]

    def type(self) -> Type:
        name = self.word()
        typ: Type
        if name in SCALARS:
            typ = SCALARS[name]
        elif name == "any":
            typ = ANY
        elif name == "list":
            self.expect("[")
            typ = ListOf(self.type())
            self.expect("]")
        elif name == "bank":
            self.expect("[")
            typ = Bank(self.type())
            self.expect("]")
        elif name == "record":
            typ = self.record()
        elif len(name) == 1 and name.isupper():
            typ = TypeVar(name)
        else:
            raise TypeSyntaxError(f"unknown type {name!r} in {self.source!r}")
        self.skip_space()
        if self.source.startswith("?", self.pos):
            self.pos += 1
            typ = make_optional(typ)
        return typ

    def record(self) -> Record:
        self.expect("{")
        fields: list[tuple[str, Type]] = []
        self.skip_space()
        while not self.source.startswith("}", self.pos):
            name = self.word()
            self.expect(":")
            fields.append((name, self.type()))
            self.skip_space()
            if self.source.startswith(",", self.pos):
                self.pos += 1
                self.skip_space()
        self.expect("}")
        return Record(tuple(fields))
