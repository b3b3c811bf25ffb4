"""A bad row is that row's problem: in every data format, a value that is not valid data (bytes that are not
UTF-8, a lone surrogate, a 5,000-digit number, nesting 100,000 deep, a malformed line) is a DataError naming
file, row and field; `harnessc run` records it as that row's failure and runs every other row."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
from conftest import REPO

from harnessc.cli import main
from harnessc.engines.scripted import ScriptedEngine
from harnessc.runtime.data import MAX_NESTING, DataError, load_rows
from harnessc.runtime.runner import RunOptions, read_records, run

PLAN_SOLVE = str(REPO / "harnesses/plan_solve.harness")
GOOD = {"question": "What is 2 + 2?", "answer": "4"}

# Each bad value as raw JSON text, and what its error must say.
BAD_JSON_VALUES = {
    "invalid-utf8": (b'"caf\xe9 \xff"', "is not valid UTF-8 text (byte 0xe9"),
    "lone-surrogate": (b'"x \\ud800 y"', "contains a lone surrogate U+D800"),
    "low-surrogate": (b'"\\udfff"', "contains a lone surrogate U+DFFF"),
    "huge-number": (b"1" + b"7" * 5000, "a number of 5001 digits"),
    "deep-nesting": (b"[" * 100_000 + b"]" * 100_000, f"nested more than {MAX_NESTING} levels deep"),
    "moderately-deep": (b"[" * 150 + b"]" * 150, f"nested more than {MAX_NESTING} levels deep"),
    "deep-object": (b'{"a": ' * 5000 + b"1" + b"}" * 5000, f"nested more than {MAX_NESTING} levels deep"),
}


def rows_with(bad: bytes) -> list[bytes]:
    good = json.dumps(GOOD).encode()
    return [good, b'{"question": ' + bad + b', "answer": "4"}', good]


def assert_bad_row_named(path: Path, message: str, *, field: str | None = "question") -> None:
    errors: list[DataError] = []
    rows = load_rows(path, errors=errors)
    assert [row.index for row in rows] == [0, 2]  # the other rows keep their indices
    [error] = errors
    assert (error.path, error.row_index) == (str(path), 1)
    if field is not None:
        assert error.field == field
    assert message in str(error)
    with pytest.raises(DataError, match="row 1"):  # without an errors list: raised, naming the row
        load_rows(path)


@pytest.mark.parametrize("kind", BAD_JSON_VALUES)
def test_jsonl_bad_values(tmp_path: Path, kind: str) -> None:
    bad, message = BAD_JSON_VALUES[kind]
    path = tmp_path / "d.jsonl"
    path.write_bytes(b"\n".join(rows_with(bad)) + b"\n")
    deep = kind == "deep-nesting" or kind == "deep-object"  # the parser gives up: the row, not the field
    assert_bad_row_named(path, message, field=None if deep else "question")


@pytest.mark.parametrize("kind", BAD_JSON_VALUES)
def test_json_document_bad_values(tmp_path: Path, kind: str) -> None:
    bad, message = BAD_JSON_VALUES[kind]
    for wrapped in (False, True):
        path = tmp_path / f"d{wrapped}.json"
        items = b"[" + b",\n".join(rows_with(bad)) + b"]"
        path.write_bytes(b'{"version": [[1]], "data": ' + items + b"}" if wrapped else items)
        deep = kind == "deep-nesting" or kind == "deep-object"
        assert_bad_row_named(path, message, field=None if deep else "question")


def test_jsonl_malformed_and_non_object_lines_are_row_errors(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    path.write_bytes(b'{"question": "a"}\n{"question": \n[1, 2]\n\xff\xfe\n{"question": "b"}\n')
    errors: list[DataError] = []
    rows = load_rows(path, errors=errors)
    assert [row.index for row in rows] == [0, 4]
    assert [(error.row_index, error.line) for error in errors] == [(1, 2), (2, 3), (3, 4)]


@pytest.mark.parametrize(
    ("cell", "message"),
    [
        (b"caf\xe9", "is not valid UTF-8 text (byte 0xe9"),
        (b'"' + b"x" * 200_000 + b'"', "is not a readable CSV row"),  # over the csv module's field limit
    ],
)
def test_csv_bad_cells(tmp_path: Path, cell: bytes, message: str) -> None:
    path = tmp_path / "d.csv"
    path.write_bytes(b"question,answer\nfine,4\n" + cell + b",4\nalso fine,4\n")
    assert_bad_row_named(path, message, field=None if b"x" * 10 in cell else "question")


@pytest.mark.parametrize(
    ("cell", "type_text", "message"),
    [
        ("1" * 5000, "int", "is a number of 5000 digits; more than 4300 are not read"),
        ("[" * 100_000 + "]" * 100_000, "list[int]", "nested more than"),
        ("[" + "1" * 5000 + "]", "list[int]", "holds JSON that is a number of 5000 digits; more than 4300"),
    ],
)
def test_csv_text_that_is_read_as_a_type(cell: str, type_text: str, message: str) -> None:
    from harnessc.runtime.data import coerce_value
    from harnessc.types import parse_type

    with pytest.raises(DataError, match=message) as caught:
        coerce_value(cell, parse_type(type_text), path="d.csv", row=5, field="x")
    assert caught.value.row_index == 5 and caught.value.field.startswith("x")


def table_with_a_bad_string():
    """An Arrow table whose row 1 holds bytes that are not UTF-8 in a string column (as a careless writer
    produces: Arrow does not validate buffers it is handed)."""
    import pyarrow as pa

    values = [b"fine", b"caf\xe9", b"also fine"]
    offsets = pa.array([0, 4, 8, 17], type=pa.int32()).buffers()[1]
    question = pa.Array.from_buffers(pa.string(), 3, [None, offsets, pa.py_buffer(b"".join(values))])
    return pa.table({"question": question, "answer": ["4", "4", "4"]})


@pytest.mark.skipif(importlib.util.find_spec("pyarrow") is None, reason="pyarrow is not installed")
def test_parquet_string_that_is_not_utf8(tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    path = tmp_path / "d.parquet"
    pq.write_table(table_with_a_bad_string(), path)
    errors: list[DataError] = []
    rows = load_rows(path, errors=errors)
    assert [row.index for row in rows] == [0, 2]
    assert [(error.row_index, error.field) for error in errors] == [(1, "question")]


@pytest.mark.skipif(importlib.util.find_spec("datasets") is None, reason="datasets is not installed")
def test_hf_dataset_string_that_is_not_utf8(tmp_path: Path) -> None:
    from datasets import Dataset

    Dataset(table_with_a_bad_string()).save_to_disk(str(tmp_path / "saved"))
    errors: list[DataError] = []
    rows = load_rows(tmp_path / "saved", errors=errors)
    assert [row.index for row in rows] == [0, 2]
    assert [error.row_index for error in errors] == [1]


class _FakeDataset:
    """Stands in for a loaded `datasets.Dataset` whose row 1 cannot be decoded."""

    def __len__(self) -> int:
        return 3

    def __getitem__(self, index: int) -> dict:
        if index == 1:
            raise UnicodeDecodeError("utf-8", b"\xe9", 0, 1, "invalid continuation byte")
        return dict(GOOD)


def fake_datasets(monkeypatch, load_from_disk) -> None:
    import sys
    import types

    module = types.ModuleType("datasets")
    module.DatasetDict = type("DatasetDict", (dict,), {})
    module.load_from_disk = load_from_disk
    monkeypatch.setitem(sys.modules, "datasets", module)


def test_hf_dataset_rows_that_cannot_be_read_are_row_errors(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "state.json").write_text("{}")
    fake_datasets(monkeypatch, lambda path: _FakeDataset())
    errors: list[DataError] = []
    assert [row.index for row in load_rows(tmp_path, errors=errors)] == [0, 2]
    assert [(error.row_index, "cannot be read" in error.message) for error in errors] == [(1, True)]


def test_hf_dataset_directory_that_is_damaged(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "state.json").write_text("{not json")

    def damaged(path):
        raise FileNotFoundError("dataset_info.json")

    fake_datasets(monkeypatch, damaged)
    with pytest.raises(DataError, match="cannot be read as a saved Hugging Face dataset"):
        load_rows(tmp_path)


# ---- harnessc run: the rest of the run goes on, nothing computed is lost -------------------------------------


def answer(request, sample: int) -> str:
    return "plan" if "tutor" in request.messages[0].content else "\\boxed{4}"


def mixed_data(tmp_path: Path) -> Path:
    path = tmp_path / "mixed.jsonl"
    bad = [value for value, _ in BAD_JSON_VALUES.values()]
    lines = []
    for value in bad:
        lines += [json.dumps(GOOD).encode(), b'{"question": ' + value + b', "answer": "4"}']
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def test_run_records_bad_rows_and_runs_the_others(tmp_path: Path) -> None:
    data, out = mixed_data(tmp_path), tmp_path / "out.jsonl"
    options = RunOptions(harness=PLAN_SOLVE, data=str(data), out=str(out), chunk_size=3)
    summary = run(options, lambda: ScriptedEngine(answer))
    records = {record.index: record for record in read_records(out)}
    count = 2 * len(BAD_JSON_VALUES)
    assert sorted(records) == list(range(count)) and summary.records == count
    assert all(records[i].failure is None and records[i].grade for i in range(0, count, 2))
    assert all(records[i].failure.reason == "data-error" for i in range(1, count, 2))
    assert len(summary.data_errors) == len(BAD_JSON_VALUES) and summary.failures == {"data-error": 7}
    assert all(f"row {i}" in records[i].failure.message for i in range(1, count, 2))
    # Resume finds nothing to redo and does not crash on anything it wrote.
    again = run(RunOptions(harness=PLAN_SOLVE, data=str(data), out=str(out), resume=True), lambda: 1 / 0)
    assert again.records == count


def test_cli_exits_1_naming_each_bad_row(tmp_path: Path, capsys) -> None:
    data = tmp_path / "bad.jsonl"
    data.write_bytes(b'{"question": "\xff"}\n{"question": "\\ud800"}\n{"question": 1' + b"0" * 5000 + b"}\n")
    code = main(["run", PLAN_SOLVE, "--data", str(data), "--out", str(tmp_path / "o.jsonl"), "--format", "json"])
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err and "internal error" not in err
    for row in range(3):
        assert f"bad.jsonl, row {row}" in err and "field 'question'" in err


def test_a_lone_surrogate_in_a_result_loses_nothing(tmp_path: Path) -> None:
    """A value no check can catch beforehand (here a model output) is repaired when written; the bad
    record and the rest of its chunk are kept, and resume reads the file back."""
    data = tmp_path / "d.jsonl"
    data.write_text("".join(json.dumps(GOOD) + "\n" for _ in range(4)), encoding="utf-8")

    def broken(request, sample: int) -> str:
        return "plan \ud800" if "tutor" in request.messages[0].content else "\\boxed{4}"

    out = tmp_path / "out.jsonl"
    run(RunOptions(harness=PLAN_SOLVE, data=str(data), out=str(out), chunk_size=4), lambda: ScriptedEngine(broken))
    records = list(read_records(out))
    assert [record.index for record in records] == [0, 1, 2, 3]
    assert all(record.grade for record in records)
    assert records[0].calls[0].samples[0].text == "plan \ufffd"
    assert [failure.reason for failure in records[0].failures] == ["invalid-text"]
    run(RunOptions(harness=PLAN_SOLVE, data=str(data), out=str(out), resume=True), lambda: 1 / 0)


@pytest.mark.parametrize("content", [b"", b"\n\n", b"[]"])
def test_empty_data_is_a_data_error_about_the_data(tmp_path: Path, content: bytes, capsys) -> None:
    data = tmp_path / ("empty.json" if content == b"[]" else "empty.jsonl")
    data.write_bytes(content)
    code = main(["run", PLAN_SOLVE, "--data", str(data), "--out", str(tmp_path / "o.jsonl")])
    err = capsys.readouterr().err
    assert code == 1 and f"{data}: has no rows" in err and "o.jsonl" not in err
