"""Output constraints (`regex`, `json`, `choice`) checked by the rules of the engines' decoding backend.

Both engines constrain decoding with xgrammar (the transformers engine directly, vLLM through its
structured-output backend), and xgrammar reads a regular expression in its own dialect, not Python's:
no lookaround, backreferences, word boundaries, `\\p{...}` classes or inline flags, no raw line break inside
`[...]`, and a few constructs it accepts but reads differently (`\\Z` matches the letter Z; a `^` that is
not first is ignored). A pattern that Python's `re` compiles can therefore still fail every request of a
run. The checker must refuse first, yet the compiler never imports the engines (xgrammar loads torch), so
this module restates xgrammar's rules in pure Python: `regex_problems` follows the order and the messages
of xgrammar's regex converter (cpp/regex_converter.cc) and of the grammar parser it feeds
(cpp/grammar_parser.cc). tests/test_constraints.py holds the two to the same verdict, on a table of cases
and on generated patterns, with xgrammar itself.

A problem is an error when the backend refuses the constraint, a warning when it accepts the constraint
but would constrain the output to something else than the pattern says.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

Severity = Literal["error", "warning"]


@dataclass(frozen=True, slots=True)
class Problem:
    """One reason a constraint would fail or mislead; `index` is a character offset into the pattern (or
    the schema text), None when no one character is to blame."""

    message: str
    index: int | None
    severity: Severity = "error"
    hint: str = ""


class _Refused(Exception):
    def __init__(self, problem: Problem) -> None:
        self.problem = problem


# ---- regular expressions ----------------------------------------------------------------------------

# Escapes that stand for one character, as xgrammar reads them (outside and inside `[...]`); `-` is a
# character escape only inside a class.
_ESCAPED = {
    **{c: c for c in "^$.*+?\\()[]{}|/'\""},
    "a": "\a",
    "b": "\b",
    "f": "\f",
    "n": "\n",
    "r": "\r",
    "t": "\t",
    "v": "\v",
    "0": "\0",
    "e": "\x1b",
}
# `\d \D \w \W \s \S` inside a class, as the characters and range dashes xgrammar writes for them
# (None is a range dash): only their end points matter for the range checks.
_CLASS_SHORTHANDS: dict[str, tuple[str | None, ...]] = {
    "d": ("0", None, "9"),
    "D": ("\x00", None, "\x2f", "\x3a", None, "\U0010ffff"),
    "w": ("a", None, "z", "A", None, "Z", "0", None, "9", "_"),
    "W": ("\x00", None, "\x2f", "\x3a", None, "\x40", "\x5b", None, "\x5e", "\x60", "\x7b", None, "\U0010ffff"),
    "s": ("\f", "\n", "\r", "\t", "\v", " ", "\xa0"),
    "S": ("\x00", None, "\x08", "\x0e", None, "\x1f", "\x21", None, "\x9f", "\xa1", None, "\U0010ffff"),
}
_HEX = "0123456789abcdefABCDEF"


class _RegexReader:
    """One pass over a pattern, raising `_Refused` at the first error xgrammar's converter raises and
    collecting what its grammar parser would refuse afterwards (`later`) and its warnings."""

    def __init__(self, pattern: str, in_schema: bool) -> None:
        self.p = pattern
        # a JSON schema's `pattern` first goes through a step that drops lookaheads and group flags (with a
        # warning) before the converter sees it
        self.in_schema = in_schema
        self.i = 0
        self.later: list[Problem] = []  # refused by the grammar parser, which runs after the converter
        self.warnings: list[Problem] = []
        # what the converted grammar ends with: nothing yet, an opening `(`, an alternation `|` (after which
        # a quantifier has nothing to repeat) or an element
        self.last: Literal["start", "(", "|", "element"] = "start"

    def at(self, offset: int = 0) -> str:
        index = self.i + offset
        return self.p[index] if index < len(self.p) else ""

    def refuse(self, message: str, index: int | None = None, hint: str = "") -> None:
        raise _Refused(Problem(message, self.i if index is None else index, "error", hint))

    def read(self) -> None:
        opened: list[int] = []  # where each unclosed `(` is
        while self.i < len(self.p):
            char = self.p[self.i]
            if char == "^":
                if self.i != 0:
                    self.warn("a `^` that is not the first character is ignored", "remove it, or escape it: `\\^`")
                self.i += 1
            elif char == "$":
                if self.i != len(self.p) - 1:
                    self.warn("a `$` that is not the last character is ignored", "remove it, or escape it: `\\$`")
                self.i += 1
            elif char == "[":
                self.character_class()
                self.last = "element"
            elif char == "(":
                opened.append(self.i)
                self.i += 1
                self.last = "("
                if self.at() == "?":
                    self.i += 1
                    self.group_modifier()
            elif char == ")":
                if not opened:
                    self.refuse("unmatched `)`", hint="escape it to match a parenthesis: `\\)`")
                opened.pop()
                self.last = "element"
                self.i += 1
            elif char in "*+?":
                self.nothing_to_repeat()
                self.i += 1
                self.after_quantifier()
            elif char == "{":
                self.nothing_to_repeat()
                self.repetition_range()
                self.after_quantifier()
            elif char == "|":
                self.last = "|"
                self.i += 1
            elif char == "\\":
                self.escape()
                self.last = "element"
            else:
                self.last = "element"
                self.i += 1
        if opened:
            self.refuse("this `(` is never closed", opened[-1], "close the group with `)`, or write `\\(`")

    def warn(self, message: str, hint: str) -> None:
        self.warnings.append(Problem(message, self.i, "warning", hint))

    def nothing_to_repeat(self) -> None:
        if self.last != "element":
            self.later.append(
                Problem(
                    f"`{self.p[self.i]}` has nothing to repeat",
                    self.i,
                    hint=f"escape it to match it literally: `\\{self.p[self.i]}`",
                )
            )

    def after_quantifier(self) -> None:
        if self.at() == "?":  # lazy: accepted (and meaningless under constrained decoding)
            self.i += 1
        if not self.at() or self.at() not in "{*+?":
            return
        if not self.in_schema:
            self.refuse(
                "two repetition operators in a row",
                hint="group the repeated part first, e.g. `(a+)*`, or escape the second one",
            )
        if self.at() == "{":  # a schema's pattern: possessive and repeated operators are taken as one
            self.repetition_range()
        else:
            self.i += 1
        self.after_quantifier()

    def repetition_range(self) -> None:
        start = self.i
        self.i += 1
        bounds = [self.digits()]
        if bounds[0] is None or self.at() not in (",", "}") or not self.at():
            self.refuse(
                "invalid repetition count",
                hint="write `{n}`, `{n,}` or `{n,m}` with digits only (no spaces; `{,m}` is `{0,m}`)",
            )
        self.i += 1
        if self.p[self.i - 1] == ",":
            upper = self.digits()
            if self.at() != "}":
                self.refuse("invalid repetition count", hint="write `{n}`, `{n,}` or `{n,m}` with digits only")
            self.i += 1
            bounds.append(upper)
        low, high = bounds[0], bounds[-1] if len(bounds) == 2 else bounds[0]
        if high is not None and low is not None and low > high:
            self.later.append(Problem(f"the repetition `{self.p[start : self.i]}` has {low} > {high}", start))

    def followed_by_operator(self, offset: int) -> bool:
        return bool(self.at(offset)) and self.at(offset) in "*+?{"

    def digits(self) -> int | None:
        start = self.i
        while self.at() and self.at() in "0123456789":
            self.i += 1
        return int(self.p[start : self.i]) if self.i > start else None

    def group_modifier(self) -> None:
        char = self.at()
        if not char:
            self.refuse("`(?` is not finished")
        if char == ":":
            self.i += 1
        elif char in "=!" and self.in_schema:
            self.warn("the decoding backend ignores lookaheads in a schema's pattern", "remove the lookahead")
            self.i += 1
        elif char in "=!":
            self.refuse("lookahead `(?=...)` / `(?!...)` is not supported by the decoding backend")
        elif char == "P" and self.in_schema and self.at(1) == "<":  # Python's spelling, read as `(?<name>`
            self.i += 1
            self.group_modifier()
        elif char == "i" and self.in_schema and self.i == 2 and self.at(1) == ")" and not self.followed_by_operator(2):
            # a leading `(?i)` that no operator follows is taken off before the converter reads the pattern
            self.warn("the decoding backend may not honour `(?i)`", "spell out the cases, e.g. `[Yy]es`")
            self.i += 1
        elif char == "<" and self.at(1) in ("=", "!"):
            self.refuse("lookbehind `(?<=...)` / `(?<!...)` is not supported by the decoding backend")
        elif char == "<":
            self.i += 1
            while self.at() and self.at().isascii() and self.at().isalpha():
                self.i += 1
            if self.at() != ">":
                self.refuse(
                    "invalid group name: the backend takes ASCII letters only",
                    hint="rename the group, or use `(?:...)`",
                )
            self.i += 1
        else:
            self.refuse(
                f"the group modifier `(?{char}` is not supported by the decoding backend",
                hint="inline flags such as `(?i)` are not supported: spell out the cases, e.g. `[Yy]es`",
            )

    def escape(self) -> None:
        if self.i + 1 >= len(self.p):
            self.refuse("the pattern ends with a lone `\\`", hint="write `\\\\` for a backslash")
        char = self.at(1)
        if char in "dDwWsS":
            self.i += 2
        elif char in "123456789k":
            self.refuse("backreferences are not supported by the decoding backend")
        elif char in "pP":
            self.refuse(
                "Unicode property classes `\\p{...}` are not supported by the decoding backend",
                hint="list the characters or ranges instead, e.g. `[A-Za-zÀ-ÿ]`",
            )
        elif char in "bB":
            self.refuse(
                "word boundaries `\\b` / `\\B` are not supported by the decoding backend",
                hint="the output is matched as a whole, so a boundary is rarely needed: drop it",
            )
        else:
            self.character_escape(in_class=False)

    def character_escape(self, in_class: bool) -> str:
        """The character an escape stands for, advancing past it."""
        remaining = len(self.p) - self.i
        char = self.at(1)
        if remaining < 2 or (char == "u" and remaining < 5) or (char == "x" and remaining < 4):
            self.refuse("an escape sequence is not finished")
        if char == "c" and remaining < 3:
            self.refuse("an escape sequence is not finished")
        if ord(char) <= 128 and (char in _ESCAPED or (in_class and char == "-")):
            self.i += 2
            return _ESCAPED.get(char, char)
        if char == "x" and self.at(2) in _HEX and self.at(2):
            end = self.i + 2
            while end < len(self.p) and self.p[end] in _HEX:
                end += 1
            value = int(self.p[self.i + 2 : end], 16)
            self.i = end
            return chr(min(value, 0x10FFFF))
        if char in "uU" and self.hex_run(self.i + 2, 4 if char == "u" else 8):
            width = 4 if char == "u" else 8
            value = int(self.p[self.i + 2 : self.i + 2 + width], 16)
            self.i += 2 + width
            return chr(min(value, 0x10FFFF))
        if char == "u" and self.at(2) == "{":
            start = self.i + 3
            end = start
            while end < len(self.p) and self.p[end] in _HEX and end - start <= 6:
                end += 1
            if end == start or end - start > 6 or end >= len(self.p) or self.p[end] != "}":
                self.refuse("invalid Unicode escape: write `\\u{...}` with 1 to 6 hex digits")
            self.i = end + 1
            return chr(min(int(self.p[start:end], 16), 0x10FFFF))
        if char == "c":
            self.i += 2
            if not (self.at().isascii() and self.at().isalpha()):
                self.refuse("`\\c` must be followed by a letter (a control character)")
            self.i += 1
            return chr(ord(self.p[self.i - 1]) % 32)
        if char.isalnum():  # punctuation escapes match themselves in Python's `re` too: only letters mislead
            self.warn(
                f"`\\{char}` is not an escape the decoding backend knows: it matches the character `{char}`",
                f"write `{char}` if that is meant; anchors such as `\\A` and `\\Z` are implied (the output "
                "is matched as a whole)",
            )
        self.i += 2
        return char

    def hex_run(self, start: int, width: int) -> bool:
        run = self.p[start : start + width]
        return len(run) == width and all(c in _HEX for c in run)

    def character_class(self) -> None:
        start = self.i
        self.i += 1
        if self.at() == "]":
            self.refuse("an empty character class `[]` matches nothing", hint="write `\\[\\]` for the brackets")
        items: list[str | None] = []  # characters and, as None, the dashes that may form a range
        while self.i < len(self.p) and self.p[self.i] != "]":
            char = self.p[self.i]
            if char == "\\":
                if self.i + 1 >= len(self.p):
                    self.refuse("an escape sequence is not finished")
                shorthand = _CLASS_SHORTHANDS.get(self.at(1))
                if shorthand is not None:
                    items.extend(shorthand)
                    self.i += 2
                    continue
                items.append(self.character_escape(in_class=True))
                continue
            if char in "\n\r":
                self.later.append(
                    Problem(
                        "a line break inside `[...]`: the decoding backend refuses it",
                        self.i,
                        hint="write the escape `\\\\n` in the harness (the pattern then holds `\\n`, not a line "
                        'break), e.g. regex "[^\\\\n]*"',
                    )
                )
            items.append(None if char == "-" else char)
            self.i += 1
        if self.i >= len(self.p):
            self.refuse("a `[` is never closed", start, "close the class with `]`, or write `\\[`")
        self.i += 1
        self.check_ranges(items[1:] if items[:1] == ["^"] else items, start)

    def check_ranges(self, items: list[str | None], start: int) -> None:
        k = 0
        while k < len(items):
            low = items[k] if items[k] is not None else "-"
            if k + 2 < len(items) and items[k + 1] is None:  # `a-z`; a dash first or last is itself
                high = items[k + 2] if items[k + 2] is not None else "-"
                if low > high:  # type: ignore[operator]
                    self.later.append(
                        Problem(
                            f"the range `{_show(low)}-{_show(high)}` in a character class runs backwards",
                            start,
                            hint="put the smaller character first, or escape the dash to match it: `\\-`",
                        )
                    )
                    return
                k += 3
            else:
                k += 1


def _show(char: str | None) -> str:
    return repr(char)[1:-1] if char else "-"


def regex_problems(pattern: str, in_schema: bool = False) -> list[Problem]:
    """What the decoding backend makes of `pattern` (a `regex` option, or with `in_schema` a JSON schema's
    `pattern` or `patternProperties` key): errors (it refuses the constraint) first, at most one, then
    warnings (it accepts a different one)."""
    if "\0" in pattern:
        return [Problem("the pattern holds a NUL character", pattern.index("\0"))]
    reader = _RegexReader(pattern, in_schema)
    try:
        reader.read()
    except _Refused as refused:
        return [refused.problem]
    return reader.later[:1] + reader.warnings


# ---- JSON schemas -----------------------------------------------------------------------------------

_BOUNDS = (
    ("minimum", "maximum"),
    ("minLength", "maxLength"),
    ("minItems", "maxItems"),
    ("minProperties", "maxProperties"),
)


def json_schema_problems(text: str) -> list[Problem]:
    """What is wrong with the text of a `json` option: not JSON, not a schema (checked against the JSON
    Schema 2020-12 meta-schema with the `jsonschema` library), or a schema the decoding backend refuses
    (local `$ref`s that resolve nowhere, bounds that cross, an empty `enum`, a `pattern` in a dialect it
    does not read). Indices point into `text` for JSON syntax errors only."""
    try:
        schema = json.loads(text)
    except json.JSONDecodeError as error:
        where = f"line {error.lineno}, column {error.colno} of the schema"
        hint = 'JSON needs double quotes; write the schema in a """...""" string' if "'" in text else ""
        return [Problem(f"the JSON schema is not valid JSON: {error.msg} ({where})", error.pos, hint=hint)]
    if not isinstance(schema, dict):
        return [
            Problem(
                f"a JSON schema must be a JSON object, not a JSON {_json_kind(schema)}",
                None,
                hint='e.g. json """{"type": "object", "properties": {"label": {"type": "string"}}}"""',
            )
        ]
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import best_match

    # the meta-schema without its format checks: those would judge `pattern`s by Python's `re`, and the
    # backend's own dialect is checked below
    invalid = best_match(Draft202012Validator(Draft202012Validator.META_SCHEMA).iter_errors(schema))
    if invalid is not None:
        where = "/".join(str(part) for part in invalid.absolute_path) or "the top level"
        return [Problem(f"not a JSON schema: at {where}, {invalid.message}", None)]
    return list(_backend_problems(schema, schema, "#"))


def _backend_problems(node: Any, root: dict, where: str) -> Iterator[Problem]:
    if isinstance(node, list):
        for index, item in enumerate(node):
            yield from _backend_problems(item, root, f"{where}/{index}")
        return
    if not isinstance(node, dict):
        return
    for low, high in _BOUNDS:
        if _number(node.get(low)) and _number(node.get(high)) and node[low] > node[high]:
            yield Problem(f"the schema at {where} has `{low}` {node[low]} greater than `{high}` {node[high]}", None)
    if node.get("enum") == []:
        yield Problem(f"the schema at {where} has an empty `enum`, which allows no value", None)
    reference = node.get("$ref")
    if isinstance(reference, str) and not _resolves(reference, root):
        yield Problem(
            f"the `$ref` {reference!r} at {where} does not resolve inside this schema",
            None,
            hint="the decoding backend resolves only local references such as `#/$defs/name`",
        )
    patterns = [("pattern", node.get("pattern"))] if not where.endswith("/properties") else []
    patterns += [(f"patternProperties/{key}", key) for key in node.get("patternProperties", {})]
    for key, pattern in patterns:
        for problem in regex_problems(pattern, in_schema=True) if isinstance(pattern, str) else ():
            yield Problem(f"the pattern at {where}/{key}: {problem.message}", None, problem.severity, problem.hint)
    for key, value in node.items():
        if key not in ("enum", "const", "default", "examples"):  # values, not schemas
            yield from _backend_problems(value, root, f"{where}/{key}")


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _resolves(reference: str, root: dict) -> bool:
    if reference == "#":
        return True
    if not reference.startswith("#/"):
        return False
    node: Any = root
    for part in reference[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return False
    return True


def _json_kind(value: Any) -> str:
    return {list: "list", str: "string", bool: "boolean", type(None): "null"}.get(type(value), "number")
