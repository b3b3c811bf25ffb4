"""Reading dataset rows for a harness run, and checking them against the harness's declared inputs.

`load_rows` reads .jsonl, .json, .csv, .parquet (with pyarrow) and Hugging Face datasets saved with
`save_to_disk` (with `datasets`) into `Row`s. `coerce_row` / `coerce_value` then convert each raw value to
the type its input declares. Every problem is a `DataError` that names the file, the row and the field:

    examples/data/math.jsonl, row 17: field 'answer' is missing

Rows are numbered from 0 in file order (`Row.index`), the same numbers a run reports its results under.
"""

from __future__ import annotations

import csv
import json
import math
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any

from harnessc.types import TEXT, Bank, ListOf, Optional_, Record, Scalar, Type

PathLike = str | os.PathLike[str]


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
        if self.row_index is not None:
            where = f"{self.path}, row {self.row_index}"
        elif self.line is not None:
            where = f"{self.path}, line {self.line}"
        else:
            where = self.path
        return f"{where}: field '{self.field}' {self.message}" if self.field else f"{where}: {self.message}"


@dataclass(frozen=True, slots=True)
class Row:
    """One record of a data file: its 0-based position and its values by column (or mapped input) name."""

    index: int
    values: dict[str, Any]


class _Missing:
    """The value of a field a row does not have (distinct from an explicit null)."""

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()

# --------------------------------------------------------------------------------------------------------
# Reading files
# --------------------------------------------------------------------------------------------------------

_HF_MARKERS = ("dataset_info.json", "state.json", "dataset_dict.json")


def load_rows(
    path: PathLike,
    *,
    limit: int | None = None,
    columns: Mapping[str, str] | None = None,
) -> list[Row]:
    """Read the rows of a data file (format chosen by extension; a directory is a Hugging Face dataset).

    `limit` keeps the first rows only (the rest of the file is not read). `columns` maps a harness input
    name to the column that feeds it (`--map question=problem`): each row gets the column's value under
    the input's name too, and a row lacking the column is an error naming that row.
    """
    if limit is not None and limit < 0:
        raise ValueError(f"limit must be >= 0, got {limit}")
    source = Path(path)
    # islice stops reading at the limit, so a broken line after it does not fail the run.
    records = islice(_read_records(source), limit)
    return [Row(index, _map_columns(values, columns or {}, source, index)) for index, values in enumerate(records)]


def _read_records(path: Path) -> Iterator[dict[str, Any]]:
    if path.is_dir():
        return _read_hf_dataset(path)
    if not path.exists():
        raise DataError(path, None, None, "file not found")
    readers = {".jsonl": _read_jsonl, ".ndjson": _read_jsonl, ".json": _read_json, ".csv": _read_csv}
    readers[".parquet"] = _read_parquet
    reader = readers.get(path.suffix.lower())
    if reader is None:
        supported = ", ".join(sorted(readers))
        raise DataError(path, None, None, f"unsupported file type {path.suffix!r} (supported: {supported})")
    return reader(path)


def _record(path: Path, index: int, value: Any, *, line: int | None = None) -> dict[str, Any]:
    if not isinstance(value, dict):
        kind = "a list" if isinstance(value, list) else type(value).__name__
        raise DataError(path, index, None, f"is {kind}, not an object with named fields", line=line)
    return value


def _read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    """One JSON object per line; blank lines are skipped and do not count as rows."""
    index = 0
    with path.open(encoding="utf-8-sig") as handle:
        for line_number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except json.JSONDecodeError as error:
                raise DataError(path, None, None, f"malformed JSON: {error.msg}", line=line_number) from None
            yield _record(path, index, value, line=line_number)
            index += 1


def _read_json(path: Path) -> Iterator[dict[str, Any]]:
    """A JSON list of objects, or an object whose "data" member is that list."""
    try:
        with path.open(encoding="utf-8-sig") as handle:
            document = json.load(handle)
    except json.JSONDecodeError as error:
        raise DataError(path, None, None, f"malformed JSON: {error.msg}", line=error.lineno) from None
    if isinstance(document, dict) and isinstance(document.get("data"), list):
        document = document["data"]
    if not isinstance(document, list):
        raise DataError(path, None, None, 'expected a JSON list of objects, or {"data": [...]}')
    for index, value in enumerate(document):
        yield _record(path, index, value)


def _read_csv(path: Path) -> Iterator[dict[str, Any]]:
    """A header line, then one row per record; every value arrives as text (see `coerce_value`)."""
    with path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None:
            return
        duplicates = sorted({name for name in header if header.count(name) > 1})
        if duplicates:
            raise DataError(path, None, None, f"the header names column(s) {duplicates} more than once")
        for index, cells in enumerate(reader):
            if len(cells) > len(header):
                raise DataError(path, index, None, f"has {len(cells)} cells but the header names {len(header)}")
            # A short row lacks its last fields: they are missing, not empty text (zip stops early).
            yield dict(zip(header, cells, strict=False))


def _read_parquet(path: Path) -> Iterator[dict[str, Any]]:
    try:
        import pyarrow.parquet as parquet
    except ImportError:
        raise DataError(path, None, None, "reading .parquet files needs pyarrow: pip install pyarrow") from None
    for batch in parquet.ParquetFile(path).iter_batches():
        yield from batch.to_pylist()


def _read_hf_dataset(path: Path) -> Iterator[dict[str, Any]]:
    """A dataset written by `datasets.Dataset.save_to_disk`; a DatasetDict must hold exactly one split."""
    if not any((path / marker).exists() for marker in _HF_MARKERS):
        raise DataError(path, None, None, "is a directory but not a Hugging Face dataset saved with save_to_disk")
    try:
        from datasets import DatasetDict, load_from_disk
    except ImportError:
        raise DataError(
            path, None, None, "reading a saved Hugging Face dataset needs it: pip install datasets"
        ) from None
    dataset = load_from_disk(str(path))
    if isinstance(dataset, DatasetDict):
        splits = list(dataset)
        if len(splits) != 1:
            raise DataError(
                path,
                None,
                None,
                f"holds splits {splits}; pass one split's directory, e.g. {path / splits[0]}",
            )
        dataset = dataset[splits[0]]
    for item in dataset:
        yield dict(item)


def _map_columns(values: dict[str, Any], columns: Mapping[str, str], path: Path, index: int) -> dict[str, Any]:
    if not columns:
        return values
    mapped = dict(values)
    for input_name, column in columns.items():
        if column not in values:
            raise DataError(path, index, column, f"is missing (needed by --map {input_name}={column})")
        mapped[input_name] = values[column]
    return mapped


# --------------------------------------------------------------------------------------------------------
# Checking values against declared types
# --------------------------------------------------------------------------------------------------------

_INTEGER = re.compile(r"[+-]?\d+")
_TRUE_WORDS = frozenset({"true", "yes", "1"})
_FALSE_WORDS = frozenset({"false", "no", "0"})


def coerce_row(row: Row, inputs: Mapping[str, Type], *, path: PathLike) -> dict[str, Any]:
    """The row's value for every declared input, converted to the input's type (see `coerce_value`)."""
    return {
        name: coerce_value(row.values.get(name, MISSING), typ, path=path, row=row.index, field=name)
        for name, typ in inputs.items()
    }


def coerce_value(value: Any, typ: Type, *, path: PathLike, row: int, field: str) -> Any:
    """Convert a raw value to the runtime form of `typ`, or raise a DataError naming row and field.

    Conversions (CSV cells are always text, so text is read as the declared type):
    - text: a string as is; an int or float becomes its decimal text (7 -> "7", 2.5 -> "2.5"); booleans,
      lists and objects are rejected rather than guessed at.
    - int: an int, an integral float (3.0), or text of digits. bool: true/false, text true/false/yes/no/1/0,
      or the numbers 0 and 1. float: any number, or text that parses as one.
    - list[T]: a JSON list, or text holding a JSON-encoded list (as a CSV cell must); items are converted
      recursively and returned as a tuple.
    - record{...}: an object, or text holding a JSON-encoded object; each declared field is converted,
      undeclared keys are dropped.
    - T?: a missing field or null gives None; so does empty text when T is not text (an empty CSV cell).
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
            if value is MISSING or value is None or (value == "" and typ.inner != TEXT):
                return None
            return self.convert(value, typ.inner, field)
        if value is MISSING:
            raise self.fail(field, "is missing")
        if value is None:
            raise self.fail(field, f"must be {typ}, got null")
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
        converted = {"text": _to_text, "int": _to_int, "float": _to_float, "bool": _to_bool}[typ.name](value)
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
                value = json.loads(value)
            except json.JSONDecodeError:
                raise self.fail(field, f"must be {typ}, got text that is not JSON: {_preview(value)}") from None
        if kind is list and isinstance(value, tuple):
            value = list(value)
        if not isinstance(value, kind):
            raise self.fail(field, f"must be {typ}, got {_describe(value)}")
        return value


def _to_text(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return repr(value)
    return None


def _to_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() else None
    if isinstance(value, str) and _INTEGER.fullmatch(value.strip()):
        return int(value.strip())
    return None


def _to_float(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return None
        return None if math.isnan(number) else number
    return None


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
