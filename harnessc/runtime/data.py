"""Reading dataset rows for a harness run, and checking them against the harness's declared inputs.

`load_rows` reads .jsonl, .json, .csv, .parquet (with pyarrow) and Hugging Face datasets saved with
`save_to_disk` (with `datasets`) into `Row`s. `coerce_row` / `coerce_value` (harnessc/runtime/values.py,
which also says how numbers, NaN and booleans convert) then convert each raw value to the type its input
declares. Every problem is a `DataError` that names the file, the row and the field:

    examples/data/math.jsonl, row 17: field 'answer' is missing

Rows are numbered from 0 in file order (`Row.index`), the same numbers a run reports its results under.
Text files are UTF-8 (a leading byte-order mark is skipped; a UTF-16 or UTF-32 file is refused as a whole,
harnessc/textfile.py); a byte that is not UTF-8 is its row's error, naming the field and the byte.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any

from harnessc.runtime.values import MAX_NESTING, MISSING, DataError, TooDeep, check_text, check_values, loads
from harnessc.runtime.values import coerce_row as coerce_row
from harnessc.runtime.values import coerce_value as coerce_value
from harnessc.textfile import SAVE_AS_UTF8, UTF8_BOM, foreign_encoding

__all__ = ["MAX_NESTING", "MISSING", "DataError", "Row", "coerce_row", "coerce_value", "fingerprint", "load_rows"]

PathLike = str | os.PathLike[str]
# A record as a reader yields it: the row's values, or the DataError of a row that cannot be read, and the
# line of the file the row starts on (None where lines mean nothing: a JSON document, Parquet).
RawRow = tuple[dict[str, Any] | DataError, int | None]


@dataclass(frozen=True, slots=True)
class Row:
    """One record of a data file: its 0-based position and its values by column (or mapped input) name."""

    index: int
    values: dict[str, Any]


# --------------------------------------------------------------------------------------------------------
# Reading files
# --------------------------------------------------------------------------------------------------------

_HF_MARKERS = ("dataset_info.json", "state.json", "dataset_dict.json")
_TEXT_FORMATS = (".jsonl", ".ndjson", ".json", ".csv")


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
        for index, (record, line) in enumerate(islice(_read_records(source), limit)):
            try:
                if isinstance(record, DataError):
                    raise record.at_line(line)
                check_values(source, index, record, line=line)
                rows.append(Row(index, _map_columns(record, columns or {}, source, index)))
            except DataError as error:
                if errors is None:
                    raise
                errors.append(error)
    except OSError as error:
        raise DataError(source, None, None, f"cannot be read: {error.strerror or error}") from None
    return rows


def _read_records(path: Path) -> Iterator[RawRow]:
    """The file's records in order, each with the line it starts on (see `RawRow`)."""
    if path.is_dir():
        return _read_hf_dataset(path)
    if not path.exists():
        raise DataError(path, None, None, "file not found")
    if path.suffix.lower() in _TEXT_FORMATS:
        with path.open("rb") as handle:
            encoding = foreign_encoding(handle.read(4))
        if encoding is not None:
            raise DataError(path, None, None, f"is {encoding} text, not UTF-8; {SAVE_AS_UTF8}")
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


def _parse_record(path: Path, index: int, text: str, *, line: int | None = None) -> dict[str, Any] | DataError:
    try:
        value = loads(text)
    except json.JSONDecodeError as error:
        return DataError(path, index, None, f"malformed JSON: {error.msg}", line=line)
    except TooDeep:
        return DataError(path, index, None, f"is nested more than {MAX_NESTING} levels deep", line=line)
    return _record(path, index, value, line=line)


def _decode(data: bytes) -> str:
    """UTF-8 text; undecodable bytes become lone surrogates, reported per value by `check_values`."""
    return data.decode("utf-8", errors="surrogateescape")


def _read_jsonl(path: Path) -> Iterator[RawRow]:
    """One JSON object per line; blank lines are skipped and do not count as rows."""
    index = 0
    with path.open("rb") as handle:
        for line_number, raw in enumerate(handle, start=1):
            line = _decode(raw.removeprefix(UTF8_BOM) if line_number == 1 else raw)
            if not line.strip():
                continue
            yield _parse_record(path, index, line, line=line_number), line_number
            index += 1


def _read_json(path: Path) -> Iterator[RawRow]:
    """A JSON list of objects, or an object whose "data" member is that list."""
    text = _decode(path.read_bytes().removeprefix(UTF8_BOM))
    try:
        document = loads(text)
    except json.JSONDecodeError as error:
        raise DataError(path, None, None, f"malformed JSON: {error.msg}", line=error.lineno) from None
    except TooDeep:
        # Some row is nested too deeply for the parser: find the rows without parsing, then parse each.
        spans = _row_spans(text)
        if spans is None:
            raise DataError(path, None, None, f"is nested more than {MAX_NESTING} levels deep") from None
        for index, (start, end) in enumerate(spans):
            line = text.count("\n", 0, start) + 1
            yield _parse_record(path, index, text[start:end], line=line), line
        return
    if isinstance(document, dict) and isinstance(document.get("data"), list):
        document = document["data"]
    if not isinstance(document, list):
        raise DataError(path, None, None, 'expected a JSON list of objects, or {"data": [...]}')
    for index, value in enumerate(document):
        yield _record(path, index, value), None


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


def _read_csv(path: Path) -> Iterator[RawRow]:
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
            line = reader.line_num + 1  # where this row starts (a quoted cell may span lines)
            try:
                cells = next(reader)
            except StopIteration:
                return
            except csv.Error as error:  # e.g. a cell over the csv module's size limit: this row only
                yield DataError(path, index, None, f"is not a readable CSV row: {error}"), line
                index += 1
                continue
            if len(cells) > len(header):
                yield DataError(path, index, None, f"has {len(cells)} cells but the header names {len(header)}"), line
            else:
                # A short row lacks its last fields: they are missing, not empty text (zip stops early).
                yield dict(zip(header, cells, strict=False)), line
            index += 1


def _read_parquet(path: Path) -> Iterator[RawRow]:
    try:
        import pyarrow
        import pyarrow.parquet as parquet
    except ImportError:
        raise DataError(path, None, None, "reading .parquet files needs pyarrow: pip install pyarrow") from None
    try:
        batches = parquet.ParquetFile(path).iter_batches()
        index = 0
        for batch in batches:
            yield from ((row, None) for row in _arrow_rows(path, index, batch))
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
                row[name] = _arrow_value(path, first + offset, name, batch.column(name).slice(offset, 1))
            except DataError as error:
                problem = problem or error
        rows.append(problem or row)
    return rows


def _arrow_value(path: Path, index: int, name: str, cell: Any) -> Any:
    """The value of a one-row Arrow array, or the DataError of row `index`, field `name`: for a string
    that is not UTF-8, naming the byte as for every other format."""
    try:
        return cell.to_pylist()[0]
    except Exception as error:  # noqa: BLE001 - this value only
        problem = DataError(path, index, name, f"cannot be read: {error}")
    import pyarrow

    if pyarrow.types.is_string(cell.type) or pyarrow.types.is_large_string(cell.type):
        binary = pyarrow.large_binary() if pyarrow.types.is_large_string(cell.type) else pyarrow.binary()
        raw = cell.cast(binary).to_pylist()[0]  # the bytes as stored: a cast to binary checks nothing
        check_text(path, index, name, _decode(raw))  # raises the located error
    raise problem


def _read_hf_dataset(path: Path) -> Iterator[RawRow]:
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
    yield from ((row, None) for row in _dataset_rows(path, dataset))


def _dataset_rows(path: Path, dataset: Any) -> Iterator[dict[str, Any] | DataError]:
    for index in range(len(dataset)):
        try:
            yield dict(dataset[index])
        except Exception as error:  # noqa: BLE001 - this row only (e.g. a string that is not UTF-8)
            yield _dataset_row_problem(path, dataset, index, error)


def _dataset_row_problem(path: Path, dataset: Any, index: int, error: Exception) -> DataError:
    """Why row `index` of a saved dataset does not read: located in its Arrow table (field and byte) when
    the dataset is a plain table (no index mapping), else the error as it is."""
    try:
        if getattr(dataset, "_indices", None) is None:  # row `index` is row `index` of the table
            table = dataset.data.table
            for name in table.column_names if index < table.num_rows else ():
                _arrow_value(path, index, name, table.column(name).slice(index, 1).combine_chunks())
    except DataError as problem:
        return problem
    except Exception:  # noqa: BLE001 - locating is a courtesy: the error below says what went wrong
        pass
    return DataError(path, index, None, f"cannot be read: {error}")


def _map_columns(values: dict[str, Any], columns: Mapping[str, str], path: Path, index: int) -> dict[str, Any]:
    if not columns:
        return values
    mapped = dict(values)
    for input_name, column in columns.items():
        if column not in values:
            raise DataError(path, index, column, f"is missing (needed by --map {input_name}={column})")
        mapped[input_name] = values[column]
    return mapped


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
