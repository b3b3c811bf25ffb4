"""The values of data rows: how they are read from JSON, checked, converted to declared types and written
as text.

The text a person wrote is the truth, so a conversion may never change what a value means:

- A JSON number keeps the text it was written as (`WrittenFloat`), and a number becomes text in plain
  decimal form of that text: `0.00001` stays `0.00001` (not `1e-05`), `1.10` stays `1.10`, `1e20`
  becomes `100000000000000000000`. A number read from a binary format (Parquet) has no written form: it
  becomes the plain decimal form of its shortest round-trip digits, with `.0` when it is whole.
- An integer input takes any number whose exact value is whole (`3`, `3.0`, `"3.0"`, `1e23`), computed
  from the written digits (`1e23` is 10**23, not the nearest double); a fraction is refused.
- NaN and Infinity (JSON's `NaN`, `Infinity`, `-Infinity`, a Parquet NaN, a CSV cell `nan` or `inf` read
  as a number) are how data frames write a missing value: an optional input gets None, a required one is
  a DataError naming row and field. They never become the text `nan`.
- A typed boolean (JSON `true`, a Parquet bool) is not text: a text input refuses it rather than guess a
  spelling (a CSV cell `true` is text, and stays as written).
- Every format follows the same rules (CSV cells are text, read as the declared type).

`coerce_value` applies them; `number_text` is the one way a number becomes text (data values here,
placeholders in prompts and the `to_text` built-in).
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

from harnessc.types import FLOAT, INT, TEXT, Bank, ListOf, Optional_, Record, Scalar, Type

PathLike = str | os.PathLike[str]

# Values nested deeper than this are refused: no data set needs more, and deeper values would exhaust the
# recursion of the code that converts and writes them.
MAX_NESTING = 100
# The most digits a number may have (Python's limit for reading integers from text): a longer number, or
# one whose plain decimal form would be longer (`1e999999`), is a bad value.
MAX_DIGITS = 4300


class DataError(ValueError):
    """A problem with a data file, located by row (0-based) and field where known, or by line."""

    def __init__(
        self,
        path: PathLike,
        row_index: int | None,
        field: str | None,
        message: str,
        *,
        line: int | None = None,
    ) -> None:
        self.path = str(path)
        self.row_index = row_index
        self.field = field
        self.message = message
        self.line = line
        super().__init__(self._render())

    def _render(self) -> str:
        if self.row_index is not None and self.line is not None:
            where = f"{self.path}, row {self.row_index} (line {self.line})"
        elif self.row_index is not None:
            where = f"{self.path}, row {self.row_index}"
        elif self.line is not None:
            where = f"{self.path}, line {self.line}"
        else:
            where = self.path
        return f"{where}: field '{self.field}' {self.message}" if self.field else f"{where}: {self.message}"

    def at_line(self, line: int | None) -> DataError:
        """The same error, located on `line` too (when it is known and not already)."""
        if line is None or self.line is not None:
            return self
        return DataError(self.path, self.row_index, self.field, self.message, line=line)


class _Missing:
    """The value of a field a row does not have (distinct from an explicit null)."""

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()

# --------------------------------------------------------------------------------------------------------
# Numbers as written
# --------------------------------------------------------------------------------------------------------


class WrittenFloat(float):
    """A JSON number with a fraction or an exponent: the float it reads as, and the text it was written as
    (`text`), which decides its text and its exact value. `1e999` is infinite as a float but a finite
    number as written."""

    __slots__ = ("text",)
    text: str

    def __new__(cls, text: str) -> WrittenFloat:
        number = super().__new__(cls, text)
        number.text = text
        return number

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return WrittenFloat, (self.text,)


class HugeNumber:
    """A JSON integer too long for Python to read (kept as its digits, reported by `check_values`)."""

    def __init__(self, digits: str) -> None:
        self.digits = digits


class TooDeep(ValueError):
    """JSON nested beyond what the parser's recursion allows."""


def _parse_int(digits: str) -> int | HugeNumber:
    try:
        return int(digits)
    except ValueError:  # longer than sys.get_int_max_str_digits(): a bad value, not a bad file
        return HugeNumber(digits)


def loads(text: str) -> Any:
    """json.loads keeping each decimal number's written text (WrittenFloat), turning over-long integers
    into HugeNumber and too-deep nesting into TooDeep. NaN and Infinity read as plain floats."""
    try:
        return json.loads(text, parse_int=_parse_int, parse_float=WrittenFloat)
    except RecursionError:
        raise TooDeep from None


# A number as text: what JSON and CSV cells write (no `1_000`, `0x10`, `nan` or `inf`).
_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_NON_FINITE_WORDS = frozenset(sign + word for sign in ("", "+", "-") for word in ("nan", "inf", "infinity"))


def exact_number(value: Any) -> Decimal | None:
    """The exact value of a finite number (as written, when it was), or of text that writes one; None for
    anything else (booleans, NaN, Infinity, text that is not a number)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, WrittenFloat):
        return Decimal(value.text)
    if isinstance(value, float):
        return Decimal(repr(value)) if math.isfinite(value) else None
    if isinstance(value, str) and _NUMBER.fullmatch(value.strip()):
        return Decimal(value.strip())
    return None


def _digits(number: Decimal) -> int:
    """How many digits the plain decimal form of a finite number has (before and after the point)."""
    exponent = number.as_tuple().exponent
    assert isinstance(exponent, int)  # finite
    whole = max(number.adjusted() + 1, 1)
    return whole + max(-exponent, 0)


class TooManyDigits(ValueError):
    """A number whose plain decimal form has more than MAX_DIGITS digits (args: how many)."""


def _too_many_digits(digits: int) -> str:
    return f"is a number of {digits} digits; more than {MAX_DIGITS} are not read"


def number_text(value: int | float) -> str:
    """A number as text in plain decimal form (no exponent): as written when it was (`WrittenFloat`),
    else the shortest digits that read back as the same float, with `.0` when it is whole. A float that
    is not finite prints as Python prints it (`nan`, `inf`). Raises TooManyDigits past MAX_DIGITS."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if not isinstance(value, WrittenFloat) and not math.isfinite(value):
        return repr(value)
    number = exact_number(value)
    assert number is not None
    if _digits(number) > MAX_DIGITS:
        raise TooManyDigits(_digits(number))
    text = format(number, "f")
    if not isinstance(value, WrittenFloat) and "." not in text:
        text += ".0"  # a float prints as one: `1e+16` is `10000000000000000.0`, like `1e15` is `1000000000000000.0`
    return text


def missing_number(value: Any, typ: Type) -> str | None:
    """How a value that stands for a missing number is written (`NaN`, `Infinity`, ...), or None when it
    is not one: a NaN or infinite float read as such (not a finite number written too long for a
    float), or, for an int or float input, text that spells one (a CSV cell `nan`)."""
    if isinstance(value, float) and not isinstance(value, WrittenFloat) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, str) and typ in (INT, FLOAT) and value.strip().casefold() in _NON_FINITE_WORDS:
        return repr(value.strip())
    return None


# --------------------------------------------------------------------------------------------------------
# Checking raw values
# --------------------------------------------------------------------------------------------------------


def check_values(path: Path, index: int, values: dict[str, Any], *, line: int | None = None) -> None:
    """Raise a DataError naming the field of the row's first value that is not valid data."""
    try:
        _check_values(path, index, values)
    except DataError as error:
        raise error.at_line(line) from None


def _check_values(path: Path, index: int, values: dict[str, Any]) -> None:
    for name in values:
        check_text(path, index, "(a field name)", str(name))
    for name, value in values.items():
        # Iterative, so a deep value cannot exhaust the recursion that this check guards.
        stack: list[tuple[Any, str, int]] = [(value, str(name), 1)]
        while stack:
            item, field, depth = stack.pop()
            if isinstance(item, str):
                check_text(path, index, field, item)
            elif isinstance(item, HugeNumber):
                raise DataError(path, index, field, _too_many_digits(len(item.digits.lstrip("+-"))))
            elif isinstance(item, (dict, list, tuple)):
                if depth >= MAX_NESTING:  # named by its top-level field: a path 100 levels long helps nobody
                    raise DataError(path, index, str(name), f"is nested more than {MAX_NESTING} levels deep")
                if isinstance(item, dict):
                    for key in item:
                        check_text(path, index, f"{field} (a key)", str(key))
                    stack.extend((inner, f"{field}.{key}", depth + 1) for key, inner in reversed(item.items()))
                else:
                    stack.extend((inner, f"{field}[{i}]", depth + 1) for i, inner in reversed(list(enumerate(item))))


def check_text(path: Path, index: int, field: str, text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        char = ord(text[error.start])
        if 0xDC80 <= char <= 0xDCFF:  # surrogateescape's stand-in for an undecodable byte
            message = f"is not valid UTF-8 text (byte 0x{char - 0xDC00:02x} at character {error.start})"
        else:
            message = f"contains a lone surrogate U+{char:04X} at character {error.start}, which is not valid text"
        raise DataError(path, index, field, message) from None


# --------------------------------------------------------------------------------------------------------
# Converting values to declared types
# --------------------------------------------------------------------------------------------------------

_TRUE_WORDS = frozenset({"true", "yes", "1"})
_FALSE_WORDS = frozenset({"false", "no", "0"})


def coerce_row(row: Any, inputs: Mapping[str, Type], *, path: PathLike) -> dict[str, Any]:
    """The value of a `Row` (harnessc/runtime/data.py) for every declared input, converted to the input's
    type (see `coerce_value`)."""
    return {
        name: coerce_value(row.values.get(name, MISSING), typ, path=path, row=row.index, field=name)
        for name, typ in inputs.items()
    }


def coerce_value(value: Any, typ: Type, *, path: PathLike, row: int, field: str) -> Any:
    """Convert a raw value to the runtime form of `typ`, or raise a DataError naming row and field.

    Conversions (the module docstring gives the rules; CSV cells are always text, so text is read as the
    declared type):
    - text: a string as is; a number becomes its plain decimal text (`number_text`); booleans, lists and
      objects are rejected rather than guessed at.
    - int: a number whose exact value is whole (3, 3.0, 1e3), or text that writes one.
      bool: true/false, text true/false/yes/no/1/0, or the numbers 0 and 1.
      float: any finite number, or text that writes one.
    - list[T]: a JSON list, or text holding a JSON-encoded list (as a CSV cell must); items are converted
      recursively and returned as a tuple.
    - record{...}: an object, or text holding a JSON-encoded object; each declared field is converted,
      undeclared keys are dropped.
    - T?: a missing field, null, NaN or Infinity gives None; so does empty text when T is not text (an
      empty CSV cell). For a required T, NaN and Infinity are an error.
    """
    return _Coercion(path, row).convert(value, typ, field)


class _Coercion:
    """Carries the location into the recursion so every error names the exact nested field."""

    def __init__(self, path: PathLike, row: int) -> None:
        self.path, self.row = path, row

    def fail(self, field: str, message: str) -> DataError:
        return DataError(self.path, self.row, field, message)

    def convert(self, value: Any, typ: Type, field: str) -> Any:
        if isinstance(typ, Optional_):
            absent = value is MISSING or value is None or missing_number(value, typ.inner) is not None
            if absent or (value == "" and typ.inner != TEXT):
                return None
            return self.convert(value, typ.inner, field)
        if value is MISSING:
            raise self.fail(field, "is missing")
        if value is None:
            raise self.fail(field, f"must be {typ}, got null")
        written = missing_number(value, typ)
        if written is not None:
            raise self.fail(field, f"is {written}, which stands for a missing value, but the input is not optional")
        if isinstance(typ, Scalar):
            return self.scalar(value, typ, field)
        if isinstance(typ, ListOf):
            return self.list_of(value, typ, field)
        if isinstance(typ, Record):
            return self.record(value, typ, field)
        if isinstance(typ, Bank):
            raise self.fail(field, "is declared as a bank, which cannot be read from a data row")
        return value  # `any` or a type variable: nothing to check

    def scalar(self, value: Any, typ: Scalar, field: str) -> Any:
        try:
            converted = {"text": _to_text, "int": _to_int, "float": _to_float, "bool": _to_bool}[typ.name](value)
        except TooManyDigits as error:
            raise self.fail(field, _too_many_digits(error.args[0])) from None
        except OverflowError:
            raise self.fail(field, f"is {_describe(value)}, beyond the range of float") from None
        if converted is None:
            raise self.fail(field, f"must be {typ}, got {_describe(value)}")
        return converted

    def list_of(self, value: Any, typ: ListOf, field: str) -> tuple[Any, ...]:
        value = self.decode_json(value, list, typ, field)
        return tuple(self.convert(item, typ.item, f"{field}[{i}]") for i, item in enumerate(value))

    def record(self, value: Any, typ: Record, field: str) -> dict[str, Any]:
        value = self.decode_json(value, dict, typ, field)
        return {name: self.convert(value.get(name, MISSING), ftype, f"{field}.{name}") for name, ftype in typ.fields}

    def decode_json(self, value: Any, kind: type, typ: Type, field: str) -> Any:
        """Accept the value itself or, for text (a CSV cell), the JSON it encodes."""
        if isinstance(value, str):
            try:
                value = loads(value)
            except json.JSONDecodeError:
                raise self.fail(field, f"must be {typ}, got text that is not JSON: {_preview(value)}") from None
            except TooDeep:
                raise self.fail(field, f"holds JSON nested more than {MAX_NESTING} levels deep") from None
            try:
                check_values(Path(self.path), self.row, {field: value})
            except DataError as error:
                raise self.fail(error.field or field, f"holds JSON that {error.message}") from None
        if kind is list and isinstance(value, tuple):
            value = list(value)
        if not isinstance(value, kind):
            raise self.fail(field, f"must be {typ}, got {_describe(value)}")
        return value


def _to_text(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):  # a typed true/false is not text; a CSV cell `true` is, as written
        return None
    if isinstance(value, (int, float)):
        return number_text(value)
    return None


def _to_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    number = exact_number(value)
    if number is None or number != number.to_integral_value():
        return None
    if number.adjusted() + 1 > MAX_DIGITS:
        raise TooManyDigits(number.adjusted() + 1)
    return int(number)


def _to_float(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        number = float(value)
    elif isinstance(value, str) and _NUMBER.fullmatch(value.strip()):
        number = float(value.strip())
    else:
        return None
    if not math.isfinite(number):  # written finite (`1e999`), read infinite: the float cannot hold it
        raise OverflowError
    return number


def _to_bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        word = value.strip().casefold()
        if word in _TRUE_WORDS:
            return True
        if word in _FALSE_WORDS:
            return False
    return None


def _describe(value: Any) -> str:
    """How an error message names a raw value: its type in the language's words, plus a preview."""
    if isinstance(value, bool):
        return f"bool {str(value).lower()}"
    if isinstance(value, WrittenFloat):
        return f"float {_preview(value.text)[1:-1]}"
    if isinstance(value, (int, float)):
        return f"{'int' if isinstance(value, int) else 'float'} {value!r}"
    if isinstance(value, str):
        return f"text {_preview(value)}"
    if isinstance(value, (list, tuple)):
        return f"a list of {len(value)} item(s)"
    if isinstance(value, dict):
        return f"an object with fields {sorted(value)[:5]}"
    return type(value).__name__


def _preview(text: str, width: int = 40) -> str:
    return repr(text if len(text) <= width else text[: width - 3] + "...")
