"""Reading dataset rows for a harness run, and checking them against the harness's declared inputs.

`load_rows` reads .jsonl, .json, .csv, .parquet (with pyarrow) and Hugging Face datasets saved with
`save_to_disk` (with `datasets`) into `Row`s. `coerce_row` / `coerce_value` then convert each raw value to
the type its input declares. Every problem is a `DataError` that names the file, the row and the field:

    examples/data/math.jsonl, row 17: field 'answer' is missing

Rows are numbered from 0 in file order (`Row.index`), the same numbers a run reports its results under.
"""

from __future__ import annotations

import csv
import hashlib
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
        if self.row_index is not None and self.line is not None:
            where = f"{self.path}, row {self.row_index} (line {self.line})"
        elif self.row_index is not None:
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

# Values nested deeper than this are refused: no data set needs more, and deeper values would exhaust the
# recursion of the code that converts and writes them.
MAX_NESTING = 100


def load_rows(
    path: PathLike,
    *,
    limit: int | None = None,
    columns: Mapping[str, str] | None = None,
    errors: list[DataError] | None = None,
) -> list[Row]:
    """Read the rows of a data file (format chosen by extension; a directory is a Hugging Face dataset).

    `limit` keeps the first rows only (the rest of the file is not read). `columns` maps a harness input
    name to the column that feeds it (`--map question=problem`): each row gets the column's value under
    the input's name too, and a row lacking the column is an error naming that row.

    Every value is checked: text must be valid Unicode (invalid UTF-8 bytes and lone surrogates are
    refused), numbers must fit Python's integer parsing (at most 4300 digits), nesting is limited to
    `MAX_NESTING` levels. A problem with one row (these, a malformed line, a row that is not an object)
    raises a `DataError` naming the row and field; when `errors` is given it is appended there instead and
    the row is left out (the other rows keep their indices). Problems with the whole file (missing,
    unreadable, unsupported, a JSON document that does not parse) always raise.
    """
    if limit is not None and limit < 0:
        raise ValueError(f"limit must be >= 0, got {limit}")
    source = Path(path)
    rows = []
    try:
        # islice stops reading at the limit, so a broken line after it does not fail the run.
        for index, record in enumerate(islice(_read_records(source), limit)):
            try:
                if isinstance(record, DataError):
                    raise record
                _check_values(source, index, record)
                rows.append(Row(index, _map_columns(record, columns or {}, source, index)))
            except DataError as error:
                if errors is None:
                    raise
                errors.append(error)
    except OSError as error:
        raise DataError(source, None, None, f"cannot be read: {error.strerror or error}") from None
    return rows


def _read_records(path: Path) -> Iterator[dict[str, Any] | DataError]:
    """The file's records in order: a dict per row, or the DataError of a row that cannot be read."""
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


def _record(path: Path, index: int, value: Any, *, line: int | None = None) -> dict[str, Any] | DataError:
    if not isinstance(value, dict):
        kind = "a list" if isinstance(value, list) else type(value).__name__
        return DataError(path, index, None, f"is {kind}, not an object with named fields", line=line)
    return value


class _HugeNumber:
    """A JSON integer too long for Python to read (kept as its digits, reported by `_check_values`)."""

    def __init__(self, digits: str) -> None:
        self.digits = digits


class _TooDeep(ValueError):
    """JSON nested beyond what the parser's recursion allows."""


def _parse_int(digits: str) -> int | _HugeNumber:
    try:
        return int(digits)
    except ValueError:  # longer than sys.get_int_max_str_digits(): a bad value, not a bad file
        return _HugeNumber(digits)


def _loads(text: str) -> Any:
    """json.loads that turns over-long integers into _HugeNumber and too-deep nesting into _TooDeep."""
    try:
        return json.loads(text, parse_int=_parse_int)
    except RecursionError:
        raise _TooDeep from None


def _parse_record(path: Path, index: int, text: str, *, line: int | None = None) -> dict[str, Any] | DataError:
    try:
        value = _loads(text)
    except json.JSONDecodeError as error:
        return DataError(path, index, None, f"malformed JSON: {error.msg}", line=line)
    except _TooDeep:
        return DataError(path, index, None, f"is nested more than {MAX_NESTING} levels deep", line=line)
    return _record(path, index, value, line=line)


def _decode(data: bytes) -> str:
    """UTF-8 text; undecodable bytes become lone surrogates, reported per value by `_check_values`."""
    return data.decode("utf-8", errors="surrogateescape")


def _read_jsonl(path: Path) -> Iterator[dict[str, Any] | DataError]:
    """One JSON object per line; blank lines are skipped and do not count as rows."""
    index = 0
    with path.open("rb") as handle:
        for line_number, raw in enumerate(handle, start=1):
            line = _decode(raw.removeprefix(b"\xef\xbb\xbf") if line_number == 1 else raw)
            if not line.strip():
                continue
            yield _parse_record(path, index, line, line=line_number)
            index += 1


def _read_json(path: Path) -> Iterator[dict[str, Any] | DataError]:
    """A JSON list of objects, or an object whose "data" member is that list."""
    text = _decode(path.read_bytes().removeprefix(b"\xef\xbb\xbf"))
    try:
        document = _loads(text)
    except json.JSONDecodeError as error:
        raise DataError(path, None, None, f"malformed JSON: {error.msg}", line=error.lineno) from None
    except _TooDeep:
        # Some row is nested too deeply for the parser: find the rows without parsing, then parse each.
        spans = _row_spans(text)
        if spans is None:
            raise DataError(path, None, None, f"is nested more than {MAX_NESTING} levels deep") from None
        for index, (start, end) in enumerate(spans):
            yield _parse_record(path, index, text[start:end], line=text.count("\n", 0, start) + 1)
        return
    if isinstance(document, dict) and isinstance(document.get("data"), list):
        document = document["data"]
    if not isinstance(document, list):
        raise DataError(path, None, None, 'expected a JSON list of objects, or {"data": [...]}')
    for index, value in enumerate(document):
        yield _record(path, index, value)


_JSON_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{},:]', re.DOTALL)


def _row_spans(text: str) -> list[tuple[int, int]] | None:
    """(start, end) of each item of the document's row list (the top-level list, or the list under the
    top-level "data" key), found by matching brackets only; None when the document has no such list."""
    depth, key, start, spans, rows_depth = 0, None, 0, [], None
    tokens = list(_JSON_TOKEN.finditer(text))
    for position, match in enumerate(tokens):
        token = match.group()
        if token in "[{":
            depth += 1
            opens_rows = token == "[" and (depth == 1 or (depth == 2 and key == '"data"'))
            if opens_rows and rows_depth is None:
                rows_depth, start = depth, match.end()
        elif token in "]}":
            if depth == rows_depth:
                if text[start : match.start()].strip():
                    spans.append((start, match.start()))
                return spans
            depth -= 1
        elif token == "," and depth == rows_depth:
            spans.append((start, match.start()))
            start = match.end()
        elif token.startswith('"') and depth == 1:
            following = tokens[position + 1].group() if position + 1 < len(tokens) else ""
            key = token if following == ":" else key
    return None


def _read_csv(path: Path) -> Iterator[dict[str, Any] | DataError]:
    """A header line, then one row per record; every value arrives as text (see `coerce_value`)."""
    with path.open(encoding="utf-8-sig", errors="surrogateescape", newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None:
            return
        duplicates = sorted({name for name in header if header.count(name) > 1})
        if duplicates:
            raise DataError(path, None, None, f"the header names column(s) {duplicates} more than once")
        index = 0
        while True:
            try:
                cells = next(reader)
            except StopIteration:
                return
            except csv.Error as error:  # e.g. a cell over the csv module's size limit: this row only
                yield DataError(path, index, None, f"is not a readable CSV row: {error}", line=reader.line_num)
                index += 1
                continue
            if len(cells) > len(header):
                yield DataError(path, index, None, f"has {len(cells)} cells but the header names {len(header)}")
            else:
                # A short row lacks its last fields: they are missing, not empty text (zip stops early).
                yield dict(zip(header, cells, strict=False))
            index += 1


def _read_parquet(path: Path) -> Iterator[dict[str, Any] | DataError]:
    try:
        import pyarrow
        import pyarrow.parquet as parquet
    except ImportError:
        raise DataError(path, None, None, "reading .parquet files needs pyarrow: pip install pyarrow") from None
    try:
        batches = parquet.ParquetFile(path).iter_batches()
        index = 0
        for batch in batches:
            yield from _arrow_rows(path, index, batch)
            index += batch.num_rows
    except pyarrow.ArrowException as error:
        raise DataError(path, None, None, f"cannot be read as Parquet: {error}") from None


def _arrow_rows(path: Path, first: int, batch: Any) -> list[dict[str, Any] | DataError]:
    """A record batch as dicts; when the batch does not convert (a string that is not UTF-8, ...), row by
    row and column by column, so the error names the row and field."""
    try:
        return batch.to_pylist()
    except Exception:  # noqa: BLE001 - located below
        pass
    rows: list[dict[str, Any] | DataError] = []
    for offset in range(batch.num_rows):
        row, problem = {}, None
        for name in batch.schema.names:
            try:
                row[name] = batch.column(name).slice(offset, 1).to_pylist()[0]
            except Exception as error:  # noqa: BLE001 - this value only
                problem = problem or DataError(path, first + offset, name, f"cannot be read: {error}")
        rows.append(problem or row)
    return rows


def _read_hf_dataset(path: Path) -> Iterator[dict[str, Any] | DataError]:
    """A dataset written by `datasets.Dataset.save_to_disk`; a DatasetDict must hold exactly one split."""
    if not any((path / marker).exists() for marker in _HF_MARKERS):
        raise DataError(path, None, None, "is a directory but not a Hugging Face dataset saved with save_to_disk")
    try:
        from datasets import DatasetDict, load_from_disk
    except ImportError:
        raise DataError(
            path, None, None, "reading a saved Hugging Face dataset needs it: pip install datasets"
        ) from None
    try:
        dataset = load_from_disk(str(path))
    except Exception as error:  # noqa: BLE001 - datasets raises many kinds for a damaged directory
        raise DataError(path, None, None, f"cannot be read as a saved Hugging Face dataset: {error}") from None
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
    yield from _dataset_rows(path, dataset)


def _dataset_rows(path: Path, dataset: Any) -> Iterator[dict[str, Any] | DataError]:
    for index in range(len(dataset)):
        try:
            yield dict(dataset[index])
        except Exception as error:  # noqa: BLE001 - this row only (e.g. a string that is not UTF-8)
            yield DataError(path, index, None, f"cannot be read: {error}")


def _check_values(path: Path, index: int, values: dict[str, Any]) -> None:
    """Raise a DataError naming the field of the row's first value that is not valid data."""
    for name in values:
        _check_text(path, index, "(a field name)", str(name))
    for name, value in values.items():
        # Iterative, so a deep value cannot exhaust the recursion that this check guards.
        stack: list[tuple[Any, str, int]] = [(value, str(name), 1)]
        while stack:
            item, field, depth = stack.pop()
            if isinstance(item, str):
                _check_text(path, index, field, item)
            elif isinstance(item, _HugeNumber):
                digits = len(item.digits.lstrip("+-"))
                raise DataError(path, index, field, f"is a number of {digits} digits; more than 4300 are not read")
            elif isinstance(item, (dict, list, tuple)):
                if depth >= MAX_NESTING:  # named by its top-level field: a path 100 levels long helps nobody
                    raise DataError(path, index, str(name), f"is nested more than {MAX_NESTING} levels deep")
                if isinstance(item, dict):
                    for key in item:
                        _check_text(path, index, f"{field} (a key)", str(key))
                    stack.extend((inner, f"{field}.{key}", depth + 1) for key, inner in reversed(item.items()))
                else:
                    stack.extend((inner, f"{field}[{i}]", depth + 1) for i, inner in reversed(list(enumerate(item))))


def _check_text(path: Path, index: int, field: str, text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        char = ord(text[error.start])
        if 0xDC80 <= char <= 0xDCFF:  # surrogateescape's stand-in for an undecodable byte
            message = f"is not valid UTF-8 text (byte 0x{char - 0xDC00:02x} at character {error.start})"
        else:
            message = f"contains a lone surrogate U+{char:04X} at character {error.start}, which is not valid text"
        raise DataError(path, index, field, message) from None


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
                value = _loads(value)
            except json.JSONDecodeError:
                raise self.fail(field, f"must be {typ}, got text that is not JSON: {_preview(value)}") from None
            except _TooDeep:
                raise self.fail(field, f"holds JSON nested more than {MAX_NESTING} levels deep") from None
            try:
                _check_values(Path(self.path), self.row, {field: value})
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
        try:
            return int(value.strip())
        except ValueError:  # more digits than Python reads
            return None
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


def fingerprint(path: PathLike) -> str:
    """The sha256 (hex) of a data file's bytes, or of a dataset directory's files (names and bytes).

    Raises DataError when the path does not exist or cannot be read.
    """
    source = Path(path)
    digest = hashlib.sha256()
    try:
        if source.is_dir():
            for file in sorted(item for item in source.rglob("*") if item.is_file()):
                digest.update(str(file.relative_to(source)).encode("utf-8", "surrogateescape") + b"\0")
                _hash_file(digest, file)
        else:
            _hash_file(digest, source)
    except FileNotFoundError:
        raise DataError(source, None, None, "file not found") from None
    except OSError as error:
        raise DataError(source, None, None, f"cannot be read: {error.strerror or error}") from None
    return digest.hexdigest()


def _hash_file(digest: Any, file: Path) -> None:
    with file.open("rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
