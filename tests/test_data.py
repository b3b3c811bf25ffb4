"""Data loading and input coercion: every format, every error naming its row and field, example data."""

from __future__ import annotations

import builtins
import importlib.util
import json
import sys
from pathlib import Path

import pytest

from harnessc.builtins.library import extract_boxed, math_equal
from harnessc.runtime.data import MISSING, DataError, Row, coerce_row, coerce_value, load_rows
from harnessc.types import parse_type

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "data"
ROWS = [
    {"question": "1+1?", "answer": "2"},
    {"question": "2+2?", "answer": "4"},
    {"question": "3+3?", "answer": "6"},
]


def write_jsonl(path: Path, rows: list, *, raw_lines: tuple[str, ...] = ()) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows) + "".join(raw_lines), encoding="utf-8")
    return path


def coerce(value, type_text: str, field: str = "x"):
    return coerce_value(value, parse_type(type_text), path="data.jsonl", row=3, field=field)


# ---- formats -------------------------------------------------------------------------------------------


def test_jsonl_rows_and_indices(tmp_path: Path) -> None:
    rows = load_rows(write_jsonl(tmp_path / "d.jsonl", ROWS))
    assert [row.index for row in rows] == [0, 1, 2]
    assert rows[1] == Row(1, {"question": "2+2?", "answer": "4"})


def test_jsonl_skips_blank_lines_without_counting_them(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    path.write_text('{"a": 1}\n\n   \n{"a": 2}\n', encoding="utf-8")
    assert [(row.index, row.values["a"]) for row in load_rows(path)] == [(0, 1), (1, 2)]


def test_jsonl_malformed_line_names_the_row_and_the_line(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "d.jsonl", ROWS[:2], raw_lines=("\n", '{"question": "x",\n'))
    with pytest.raises(DataError) as caught:
        load_rows(path)
    assert (caught.value.row_index, caught.value.line) == (2, 4)
    assert str(caught.value).startswith(f"{path}, row 2 (line 4): malformed JSON")


def test_jsonl_line_that_is_not_an_object(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "d.jsonl", [{"a": 1}, [1, 2]])
    with pytest.raises(DataError, match=r"d.jsonl, row 1 \(line 2\): is a list, not an object"):
        load_rows(path)


def test_limit_stops_before_a_later_broken_line(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "d.jsonl", ROWS, raw_lines=("not json\n",))
    assert len(load_rows(path, limit=2)) == 2
    assert load_rows(path, limit=0) == []
    with pytest.raises(ValueError, match="limit"):
        load_rows(path, limit=-1)


def test_json_list_and_data_member(tmp_path: Path) -> None:
    plain, wrapped = tmp_path / "plain.json", tmp_path / "wrapped.json"
    plain.write_text(json.dumps(ROWS), encoding="utf-8")
    wrapped.write_text(json.dumps({"data": ROWS, "version": 1}), encoding="utf-8")
    assert [row.values for row in load_rows(plain)] == ROWS
    assert [row.values for row in load_rows(wrapped)] == ROWS


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"rows": []}', r"expected a JSON list of objects"),
        ('[{"a": 1}, 5]', r"x.json, row 1: is int, not an object"),
        ('[{"a": 1},\n  oops]', r"x.json, line 2: malformed JSON"),
    ],
)
def test_json_errors(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "x.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(DataError, match=message):
        load_rows(path)


def test_csv_rows_are_text_and_short_rows_miss_fields(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_text('\ufeffquestion,answer,tags\n"1+1, quickly?",2,"[""a"", ""b""]"\n3+3?\n', encoding="utf-8")
    rows = load_rows(path)
    assert rows[0].values == {"question": "1+1, quickly?", "answer": "2", "tags": '["a", "b"]'}
    assert rows[1].values == {"question": "3+3?"}
    inputs = {"question": parse_type("text"), "answer": parse_type("int"), "tags": parse_type("list[text]")}
    assert coerce_row(rows[0], inputs, path=path) == {
        "question": "1+1, quickly?",
        "answer": 2,
        "tags": ("a", "b"),
    }
    with pytest.raises(DataError, match=r"d.csv, row 1: field 'answer' is missing"):
        coerce_row(rows[1], inputs, path=path)


def test_csv_errors(tmp_path: Path) -> None:
    too_long, duplicated = tmp_path / "long.csv", tmp_path / "dup.csv"
    too_long.write_text("a,b\n1,2\n1,2,3\n", encoding="utf-8")
    duplicated.write_text("a,a\n1,2\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"long.csv, row 1 \(line 3\): has 3 cells but the header names 2"):
        load_rows(too_long)
    with pytest.raises(DataError, match=r"more than once"):
        load_rows(duplicated)


def test_csv_with_only_a_header_has_no_rows(tmp_path: Path) -> None:
    path = tmp_path / "empty.csv"
    path.write_text("a,b\n", encoding="utf-8")
    assert load_rows(path) == []


def test_missing_file_unknown_suffix_and_plain_directory(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="file not found"):
        load_rows(tmp_path / "nope.jsonl")
    (tmp_path / "d.txt").write_text("x", encoding="utf-8")
    with pytest.raises(DataError, match=r"unsupported file type '.txt'"):
        load_rows(tmp_path / "d.txt")
    with pytest.raises(DataError, match="not a Hugging Face dataset"):
        load_rows(tmp_path)


def hide_module(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    """Make `import name` fail as if the package were not installed."""
    real_import = builtins.__import__

    def fake_import(module: str, *args, **kwargs):
        if module == name or module.startswith(name + "."):
            raise ImportError(f"No module named {module!r}")
        return real_import(module, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    for loaded in [key for key in sys.modules if key == name or key.startswith(name + ".")]:
        monkeypatch.delitem(sys.modules, loaded)


def test_parquet_without_pyarrow_names_the_install_command(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "d.parquet"
    path.write_bytes(b"PAR1")
    hide_module(monkeypatch, "pyarrow")
    with pytest.raises(DataError, match=r"d.parquet: reading .parquet files needs pyarrow: pip install pyarrow"):
        load_rows(path)


def test_hf_dataset_without_datasets_names_the_install_command(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "state.json").write_text("{}", encoding="utf-8")
    hide_module(monkeypatch, "datasets")
    with pytest.raises(DataError, match=r"pip install datasets"):
        load_rows(tmp_path)


@pytest.mark.skipif(importlib.util.find_spec("pyarrow") is None, reason="pyarrow is not installed")
def test_parquet_rows_and_errors(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "d.parquet"
    pq.write_table(pa.Table.from_pylist([{"text": "a", "tags": ["x"]}, {"text": None, "tags": []}]), path)
    rows = load_rows(path, columns={"query": "text"})
    assert rows[0].values == {"text": "a", "tags": ["x"], "query": "a"}
    with pytest.raises(DataError, match=r"d.parquet, row 1: field 'query' must be text, got null"):
        coerce_row(rows[1], {"query": parse_type("text")}, path=path)


@pytest.mark.skipif(importlib.util.find_spec("datasets") is None, reason="datasets is not installed")
def test_hf_dataset_rows_splits_and_errors(tmp_path: Path) -> None:
    from datasets import Dataset, DatasetDict

    dataset = Dataset.from_list([{"text": "a", "label": "x"}, {"text": "b", "label": None}])
    dataset.save_to_disk(str(tmp_path / "single"))
    rows = load_rows(tmp_path / "single", limit=5)
    assert [row.values["text"] for row in rows] == ["a", "b"]
    with pytest.raises(DataError, match=r"single, row 1: field 'label' must be text, got null"):
        coerce_row(rows[1], {"label": parse_type("text")}, path=tmp_path / "single")
    DatasetDict({"train": dataset, "test": dataset}).save_to_disk(str(tmp_path / "splits"))
    with pytest.raises(DataError, match=r"holds splits \['train', 'test'\]; pass one split's directory"):
        load_rows(tmp_path / "splits")
    assert len(load_rows(tmp_path / "splits" / "train")) == 2


# ---- column mapping ------------------------------------------------------------------------------------


def test_columns_map_inputs_to_columns(tmp_path: Path) -> None:
    rows = load_rows(write_jsonl(tmp_path / "d.jsonl", ROWS), columns={"problem": "question", "gold": "answer"})
    assert rows[0].values == {"question": "1+1?", "answer": "2", "problem": "1+1?", "gold": "2"}


def test_columns_missing_column_names_row_and_field(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "d.jsonl", [ROWS[0], {"question": "x"}])
    with pytest.raises(DataError) as caught:
        load_rows(path, columns={"gold": "answer"})
    error = caught.value
    assert (error.row_index, error.field) == (1, "answer")
    assert str(error) == f"{path}, row 1: field 'answer' is missing (needed by --map gold=answer)"


# ---- coercion ------------------------------------------------------------------------------------------


def test_error_message_format_matches_the_documented_one() -> None:
    with pytest.raises(DataError) as caught:
        coerce_row(Row(17, {"question": "q"}), {"answer": parse_type("text")}, path="examples/data/math.jsonl")
    assert str(caught.value) == "examples/data/math.jsonl, row 17: field 'answer' is missing"
    assert (caught.value.path, caught.value.row_index, caught.value.field) == (
        "examples/data/math.jsonl",
        17,
        "answer",
    )


@pytest.mark.parametrize(
    ("value", "type_text", "expected"),
    [
        ("hi", "text", "hi"),
        (7, "text", "7"),
        (2.5, "text", "2.5"),
        (7, "int", 7),
        (3.0, "int", 3),
        (" -12 ", "int", -12),
        (2, "float", 2.0),
        ("0.25", "float", 0.25),
        (True, "bool", True),
        ("no", "bool", False),
        (1, "bool", True),
        ([1, "2"], "list[int]", (1, 2)),
        ("[1, 2]", "list[int]", (1, 2)),
        ([], "list[text]", ()),
        ({"a": "x", "b": "2", "extra": 1}, "record{a: text, b: int}", {"a": "x", "b": 2}),
        ('{"a": "x"}', "record{a: text, b: int?}", {"a": "x", "b": None}),
        ([{"t": "a"}], "list[record{t: text}]", ({"t": "a"},)),
        (None, "int?", None),
        (MISSING, "text?", None),
        ("", "int?", None),
        ("", "text?", ""),
        ("5", "int?", 5),
        ({"anything": 1}, "any", {"anything": 1}),
    ],
)
def test_coerce_value_conversions(value, type_text: str, expected) -> None:
    assert coerce(value, type_text) == expected


@pytest.mark.parametrize(
    ("value", "type_text", "message"),
    [
        (MISSING, "text", "field 'x' is missing"),
        (None, "int", "field 'x' must be int, got null"),
        (True, "text", "field 'x' must be text, got bool true"),
        (["a"], "text", "field 'x' must be text, got a list of 1 item"),
        ("abc", "int", "field 'x' must be int, got text 'abc'"),
        (2.5, "int", "field 'x' must be int, got float 2.5"),
        (True, "int", "field 'x' must be int, got bool true"),
        ("nan", "float", "field 'x' is 'nan', which stands for a missing value, but the input is not optional"),
        ("maybe", "bool", "field 'x' must be bool, got text 'maybe'"),
        (2, "bool", "field 'x' must be bool, got int 2"),
        ("a, b", "list[text]", "field 'x' must be list[text], got text that is not JSON: 'a, b'"),
        ('{"a": 1}', "list[int]", "field 'x' must be list[int], got an object with fields"),
        ([1, "two"], "list[int]", "field 'x[1]' must be int, got text 'two'"),
        ({"a": "x"}, "record{a: text, b: int}", "field 'x.b' is missing"),
        ([{"t": 1.5}], "list[record{t: int}]", "field 'x[0].t' must be int, got float 1.5"),
        ("x", "bank[record{t: text}]", "declared as a bank"),
    ],
)
def test_coerce_value_errors_name_row_field_and_types(value, type_text: str, message: str) -> None:
    with pytest.raises(DataError) as caught:
        coerce(value, type_text)
    assert message in str(caught.value)  # a plain substring: the messages are full of regex brackets
    assert str(caught.value).startswith("data.jsonl, row 3: ")
    assert caught.value.row_index == 3


def test_long_values_are_shortened_in_messages() -> None:
    with pytest.raises(DataError) as caught:
        coerce("z" * 500, "int")
    assert len(str(caught.value)) < 120 and "..." in str(caught.value)


# ---- example data --------------------------------------------------------------------------------------


def load_generator(name: str):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_example_files_are_what_the_generators_write() -> None:
    math_module, classify_module = load_generator("make_math"), load_generator("make_classify")
    assert (EXAMPLES / "math.jsonl").read_text(encoding="utf-8") == math_module.render(math_module.generate())
    assert (EXAMPLES / "classify.jsonl").read_text(encoding="utf-8") == classify_module.render(
        classify_module.generate()
    )
    assert (EXAMPLES / "classify_labels.json").read_text(encoding="utf-8") == classify_module.render_labels()


def test_math_examples_are_well_formed_and_self_consistent() -> None:
    inputs = {name: parse_type("text") for name in ("question", "answer", "solution")}
    rows = [coerce_row(row, inputs, path="math.jsonl") for row in load_rows(EXAMPLES / "math.jsonl")]
    assert 64 <= len(rows) <= 100
    assert len({row["question"] for row in rows}) == len(rows)
    for row in rows[:24]:  # two rounds of every template; math-verify is slow enough to sample
        assert math_equal(extract_boxed(row["solution"]), row["answer"]), row


def test_classify_examples_use_only_known_labels() -> None:
    labels = json.loads((EXAMPLES / "classify_labels.json").read_text(encoding="utf-8"))
    rows = load_rows(EXAMPLES / "classify.jsonl")
    assert 100 <= len(rows) <= 140
    assert {row.values["label"] for row in rows} == set(labels)
    assert len({row.values["text"] for row in rows}) == len(rows)
