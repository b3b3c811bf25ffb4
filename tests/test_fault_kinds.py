"""Kinds of faults from a review of public bug reports, each tested through several of its members.

- Files as people really have them: a byte-order mark, another encoding, in every file the tools read
  (harness sources and imports, data in every format, bank files, engine and training configurations,
  `--builtins` modules). A BOM is skipped; anything else is an error naming file, line or row, and byte;
  nothing reaches exit 3.
- Values whose conversion would change their meaning: numbers keep their written form as text, NaN and
  Infinity are missing values, the same in every format and in bank files, and in prompts.
- Grading that says equal when it is not: exact comparison of rational answers, TeX's one-token `\\boxed`.
- Paths a harness names resolve from its folder, and `check` reports a missing bank file.

(Docs that say otherwise than the tools: tests/test_docs_commands.py.)
"""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import pytest
from conftest import REPO

from harnessc.builtins.library import extract_boxed, math_equal, to_text
from harnessc.cli import main as harnessc_main
from harnessc.compiler import compile_file
from harnessc.engines.scripted import ScriptedEngine
from harnessc.runtime.data import DataError, coerce_value, load_rows
from harnessc.runtime.runner import read_records
from harnessc.runtime.values import loads
from harnessc.types import parse_type

PLAN_SOLVE = REPO / "harnesses" / "plan_solve.harness"
BOM = b"\xef\xbb\xbf"


def utf16(text: str) -> bytes:
    return b"\xff\xfe" + text.encode("utf-16-le")


@pytest.fixture
def scripted(monkeypatch) -> list:
    """`harnessc run` answers with a scripted engine that boxes what `answers` holds (default `34`) and
    records every prompt it is sent."""
    prompts: list[str] = []
    answers = ["34"]

    def respond(request, sample: int) -> str:
        prompts.append("\n".join(message.content for message in request.messages))
        return "plan" if "tutor" in request.messages[0].content else f"\\boxed{{{answers[0]}}}"

    monkeypatch.setattr("harnessc.engines.check_model", lambda model: None)
    monkeypatch.setattr("harnessc.runtime.runner.create_run_engine", lambda options: ScriptedEngine(respond))
    return [prompts, answers]


def run_cli(*argv: str | Path) -> tuple[int, str]:
    """The exit code of `harnessc ARGV`, and what it printed (stdout and stderr together)."""
    import contextlib
    import io

    printed = io.StringIO()
    with contextlib.redirect_stderr(printed), contextlib.redirect_stdout(printed):
        try:
            code = harnessc_main([str(arg) for arg in argv])
        except SystemExit as exit:
            code = exit.code
    assert "Traceback" not in printed.getvalue() and "internal error" not in printed.getvalue(), printed.getvalue()
    return code, printed.getvalue()


# ---- 2. files as people save them -------------------------------------------------------------------------


def test_files_as_people_save_them(tmp_path: Path, scripted, monkeypatch) -> None:
    text = PLAN_SOLVE.read_text(encoding="utf-8")
    row = '{"question": "What is 30 + 4?", "answer": "34"}\n'
    out = tmp_path / "out.jsonl"

    # A harness with a byte-order mark checks clean and runs; so does one importing a file with one.
    (tmp_path / "bom.harness").write_bytes(BOM + text.encode())
    (tmp_path / "common").mkdir()
    (tmp_path / "common" / "prompts.harness").write_bytes(BOM + b'snippet ASK = "Answer: {question}"\n')
    importing = 'harness i\nimport "common/prompts.harness"\ninput question: text\nllm a { user ASK }\noutput = a\n'
    (tmp_path / "importing.harness").write_bytes(BOM + importing.encode())
    assert run_cli("check", tmp_path / "bom.harness", tmp_path / "importing.harness")[0] == 0
    (tmp_path / "d.jsonl").write_bytes(BOM + row.encode())
    assert run_cli("run", tmp_path / "bom.harness", "--data", tmp_path / "d.jsonl", "--out", out)[0] == 0

    # A harness saved as UTF-16 (Notepad's "Unicode") or Latin-1 is an error naming the encoding or byte.
    (tmp_path / "u16.harness").write_bytes(utf16(text))
    code, err = run_cli("check", tmp_path / "u16.harness")
    assert code == 1 and "invalid-encoding" in err and "UTF-16 (little-endian)" in err
    (tmp_path / "latin.harness").write_bytes(text.replace("tutor", "tut\u00f6r").encode("latin-1"))
    code, err = run_cli("check", tmp_path / "latin.harness")
    assert code == 1 and "byte 0xf6" in err and "latin.harness:" in err

    # Data with a BOM reads in every text format; Latin-1 data is a data error naming the row, the line
    # (where lines mean something), the field and the byte; UTF-16 data is refused naming its encoding.
    csv_row, json_rows = 'question,answer\n"What is 30 + 4?",34\n', "[" + row.strip() + "]"
    for name, content in (("b.jsonl", row), ("b.json", json_rows), ("b.csv", csv_row)):
        (tmp_path / name).write_bytes(BOM + content.encode())
        assert [r.values["answer"] for r in load_rows(tmp_path / name)] == ["34"], name
        latin = tmp_path / f"latin-{name}"
        latin.write_bytes(content.replace("What", "Wh\u00e4t").encode("latin-1"))
        with pytest.raises(DataError) as caught:
            load_rows(latin)
        message = str(caught.value)
        assert str(latin) in message and "row 0" in message and "'question'" in message and "byte 0xe4" in message
        if name != "b.json":
            assert caught.value.line == (1 if name == "b.jsonl" else 2), message
        code, err = run_cli("run", PLAN_SOLVE, "--data", latin, "--out", tmp_path / f"o-{name}.jsonl")
        assert code == 1 and "byte 0xe4" in err, err
        (tmp_path / f"u16-{name}").write_bytes(utf16(content))
        code, err = run_cli("run", PLAN_SOLVE, "--data", tmp_path / f"u16-{name}", "--out", tmp_path / "o16.jsonl")
        assert code == 1 and "is UTF-16 (little-endian) text, not UTF-8" in err, err

    # Engine configurations: a BOM is skipped; a Latin-1 file is a usage error naming line and byte.
    (tmp_path / "engine.json").write_bytes(BOM + b'{"batch_size": 2}')
    (tmp_path / "engine.toml").write_bytes(BOM + b"batch_size = 2\n")
    for config in ("engine.json", "engine.toml"):
        args = ("--data", tmp_path / "d.jsonl", "--out", tmp_path / f"{config}.jsonl", "--engine-config")
        assert run_cli("run", PLAN_SOLVE, *args, tmp_path / config)[0] == 0, config
    (tmp_path / "latin.toml").write_bytes("dtype = 'f\u00fcnf'\n".encode("latin-1"))
    args = ("--data", tmp_path / "d.jsonl", "--out", tmp_path / "x.jsonl", "--engine-config", tmp_path / "latin.toml")
    code, err = run_cli("run", PLAN_SOLVE, *args)
    assert code == 2 and "latin.toml, line 1, column 11: byte 0xfc" in err, err

    # A --builtins module that is not UTF-8, does not parse or raises is a usage error, not a crash.
    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "latin_builtins.py").write_bytes('NAME = "f\u00fcnf"\n'.encode("latin-1"))
    (tmp_path / "broken_builtins.py").write_text("def f(:\n", encoding="utf-8")
    (tmp_path / "raising_builtins.py").write_text("raise RuntimeError('no GPU here')\n", encoding="utf-8")
    for module in ("latin_builtins", "broken_builtins", "raising_builtins"):
        code, err = run_cli("check", "--builtins", module, PLAN_SOLVE)
        assert code == 2 and f"cannot import the built-ins module {module!r}" in err, err

    # A bank file in Latin-1 stops the run with the bank file's data error.
    _bank_harness(tmp_path)
    (tmp_path / "data" / "cases.jsonl").write_bytes('{"text": "gr\u00fc\u00df", "label": "hi"}\n'.encode("latin-1"))
    code, err = run_cli(
        "run", tmp_path / "bank.harness", "--data", tmp_path / "texts.jsonl", "--out", out, "--overwrite"
    )
    assert code == 1 and "cases.jsonl, row 0 (line 1): field 'text' is not valid UTF-8 text (byte 0xfc" in err, err


def test_training_configuration_files_as_people_save_them(tmp_path: Path) -> None:
    pytest.importorskip("pydantic")
    from ophsd.config import ConfigError, load_config

    required = {"harness": str(PLAN_SOLVE), "data": "d.jsonl", "output": "out"}
    (tmp_path / "bom.toml").write_bytes(BOM + b"max_steps = 3\n")
    assert load_config(str(tmp_path / "bom.toml"), required, []).max_steps == 3
    (tmp_path / "latin.toml").write_bytes("max_steps = 3 # f\u00fcnf\n".encode("latin-1"))
    with pytest.raises(ConfigError, match=r"latin.toml, line 1, column 18: byte 0xfc \(offset 17\) is not valid"):
        load_config(str(tmp_path / "latin.toml"), required, [])
    (tmp_path / "u16.toml").write_bytes(utf16("max_steps = 3\n"))
    with pytest.raises(ConfigError, match="UTF-16"):
        load_config(str(tmp_path / "u16.toml"), required, [])


# ---- 3. values keep their meaning -------------------------------------------------------------------------


def test_values_keep_their_meaning(tmp_path: Path, scripted) -> None:
    prompts, answers = scripted

    def coerce(value, type_text: str):
        return coerce_value(value, parse_type(type_text), path="d.jsonl", row=0, field="x")

    # The reported case: a gold answer 0.00001 written as a JSON number, and the right output grades 1.
    data = tmp_path / "small.jsonl"
    data.write_text('{"question": "What is 1/100000?", "answer": 0.00001}\n', encoding="utf-8")
    answers[0] = "0.00001"
    assert run_cli("run", PLAN_SOLVE, "--data", data, "--out", tmp_path / "small-out.jsonl")[0] == 0
    [record] = read_records(tmp_path / "small-out.jsonl")
    assert record.inputs["answer"] == "0.00001" and record.grade == 1

    # Numbers become text in plain decimal form, as written; in every format, and inside lists.
    rows = '{"x": 0.00001, "y": 1e20, "z": 1.10, "w": -0.0, "v": 100000000000000000000, "l": [1E-5, 2]}\n'
    (tmp_path / "n.jsonl").write_text(rows, encoding="utf-8")
    (tmp_path / "n.json").write_text("[" + rows + "]", encoding="utf-8")
    (tmp_path / "n.csv").write_text('x,y,z,w,v,l\n0.00001,1e20,1.10,-0.0,100000000000000000000,"[1E-5, 2]"\n')
    expected = {"x": "0.00001", "y": "100000000000000000000", "z": "1.10", "w": "-0.0", "v": "100000000000000000000"}
    for name in ("n.jsonl", "n.json", "n.csv"):
        [row] = load_rows(tmp_path / name)
        if name == "n.csv":  # a CSV cell is text, and text stays as written
            expected["y"] = "1e20"
        assert {field: coerce(row.values[field], "text") for field in expected} == expected, name
        assert coerce(row.values["l"], "list[text]") == ("0.00001", "2"), name
        assert coerce(row.values["y"], "int") == 10**20 and coerce(row.values["z"], "float") == 1.1
    assert coerce(loads("1e23"), "int") == 10**23  # from its digits, not the nearest double
    assert [coerce(value, "int") for value in ("3.0", "1e3", 3.0)] == [3, 1000, 3]
    with pytest.raises(DataError, match="must be int, got float 2.50"):
        coerce(loads("2.50"), "int")
    assert coerce(1e-05, "text") == "0.00001" and coerce(1e16, "text") == "10000000000000000.0"  # no written form

    # NaN and Infinity are missing values: absent when optional, a data error when required; never `nan`.
    for written in ("NaN", "Infinity", "-Infinity"):
        [row] = load_rows(_jsonl(tmp_path / "nan.jsonl", f'{{"x": {written}}}'))
        assert coerce(row.values["x"], "text?") is None and coerce(row.values["x"], "float?") is None
        with pytest.raises(DataError, match=f"field 'x' is {written}, which stands for a missing value"):
            coerce(row.values["x"], "text")
    assert coerce("nan", "float?") is None and coerce("nan", "text") == "nan"  # a CSV cell: text is text
    with pytest.raises(DataError, match="beyond the range of float"):
        coerce(load_rows(_jsonl(tmp_path / "big.jsonl", '{"x": 1e999}'))[0].values["x"], "float")

    # The reported prompt: an optional hint that is NaN is absent, so the prompt has no `Hint: nan`.
    hinted = tmp_path / "hint.harness"
    hinted.write_text(
        "harness hint\ninput question: text\ninput hint: text optional\n"
        'llm solve { user "{question}{if hint} Hint: {hint}{end}" }\noutput = solve\n',
        encoding="utf-8",
    )
    data = _jsonl(tmp_path / "hints.jsonl", '{"question": "Q1", "hint": NaN}', '{"question": "Q2", "hint": 0.00001}')
    prompts.clear()
    assert run_cli("run", hinted, "--data", data, "--out", tmp_path / "hint-out.jsonl")[0] == 0
    assert prompts == ["Q1", "Q2 Hint: 0.00001"]

    # Numbers in prompts and in to_text print in plain decimal form too.
    param = tmp_path / "param.harness"
    param.write_text(
        'harness p\ninput question: text\nparam eps: float = 0.00001\nllm a { user "{question} within {eps}" }\n'
        "output = a\n",
        encoding="utf-8",
    )
    prompts.clear()
    assert (
        run_cli(
            "run", param, "--data", _jsonl(tmp_path / "q.jsonl", '{"question": "Q"}'), "--out", tmp_path / "p.jsonl"
        )[0]
        == 0
    )
    assert prompts == ["Q within 0.00001"]
    assert (to_text(0.00001), to_text(1e20), to_text(2.5), to_text(True)) == (
        "0.00001",
        "100000000000000000000.0",
        "2.5",
        "true",
    )

    # Bank files follow the same rules: a number in a text field is its written text, not a crash.
    _bank_harness(tmp_path)
    _jsonl(tmp_path / "data" / "cases.jsonl", '{"text": 0.00001, "label": 7}', '{"text": "hello", "label": "hi"}')
    prompts.clear()
    code, _ = run_cli(
        "run", tmp_path / "bank.harness", "--data", tmp_path / "texts.jsonl", "--out", tmp_path / "b.jsonl"
    )
    assert code == 0 and "0.00001 -> 7" in prompts[0]
    _jsonl(tmp_path / "data" / "cases.jsonl", '{"text": null, "label": "hi"}')
    code, err = run_cli(
        "run", tmp_path / "bank.harness", "--data", tmp_path / "texts.jsonl", "--out", tmp_path / "c.jsonl"
    )
    assert code == 1 and "cases.jsonl, row 0: field 'text' must be text, got null" in err


def _jsonl(path: Path, *lines: str) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def _bank_harness(folder: Path) -> Path:
    """A harness with a bank filled from data/cases.jsonl next to it, and a data file for it."""
    (folder / "data").mkdir(exist_ok=True)
    (folder / "texts.jsonl").write_text('{"text": "hey", "label": "hi"}\n', encoding="utf-8")
    harness = folder / "bank.harness"
    harness.write_text(
        """harness bank_demo
input text: text
input label: text oracle
bank cases {
  text: text = text
  label: text = label
  search text
  label label
  file "data/cases.jsonl"
}
llm classify {
  user "{for case in retrieve(cases, text, k=2)}{case.text} -> {case.label}; {end}{text}"
}
output = classify
""",
        encoding="utf-8",
    )
    return harness


@pytest.mark.skipif(importlib.util.find_spec("pyarrow") is None, reason="pyarrow is not installed")
def test_values_keep_their_meaning_in_parquet(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "d.parquet"
    pq.write_table(pa.table({"x": [1e-05, float("nan"), 2.0], "n": [10**18, 3, 4]}), path)
    rows = load_rows(path)
    text = parse_type("text?")
    values = [coerce_value(row.values["x"], text, path=path, row=row.index, field="x") for row in rows]
    assert values == ["0.00001", None, "2.0"]
    assert coerce_value(rows[0].values["n"], parse_type("text"), path=path, row=0, field="n") == str(10**18)


# ---- 5. grading says equal only when equal ------------------------------------------------------------------


def test_grading_says_equal_only_when_equal() -> None:
    not_equal = [
        (r"\frac{1}{2006!}", r"\frac{1}{2004!}"),  # the reported case: both tiny
        (r"10^{30}+1", r"10^{30}"),  # both huge
        (r"2\cdot 10^{-30}", r"10^{-30}"),
        ("0.0000011", "0.000001"),
        ("0.3333333", r"\frac{1}{3}"),
        ("3.14159265358979323847", "3.14159265358979323846"),  # beyond a float's digits
        ("The answer is $\\frac{1}{2004!}$.", r"\frac{1}{2006!}"),  # exact after extraction, too
        ("2^{100}-1", "1267650600228229401496703205376"),
    ]
    for predicted, gold in not_equal:
        assert not math_equal(predicted, gold), (predicted, gold)
    equal = [
        ("0.5", r"\frac12"),
        (r"\dfrac{3}{4}", "0.75"),
        ("1.0", "1"),
        ("-0", "0"),
        ("0.1+0.2", "0.3"),  # exact, unlike floats
        ("2^{100}", "1267650600228229401496703205376"),
        (r"\frac{1}{2004!}", r"\frac{2005 \cdot 2006}{2006!}"),
        (r"\sqrt{4}", "2"),  # not rational arithmetic: math-verify decides
        ("The answer is 7", "7"),
    ]
    for predicted, gold in equal:
        assert math_equal(predicted, gold), (predicted, gold)

    # \boxed and \fbox without braces take one token, as TeX does.
    boxes = {
        r"so \boxed 5": "5",
        r"\fbox 5": "5",
        r"\boxed {5}": "5",
        r"\boxed\pi": r"\pi",
        r"\boxed 42": "4",  # TeX boxes the 4 only
        r"\boxed{\frac{1}{2}}": r"\frac{1}{2}",
        r"\boxed{3} then \boxed{": "3",  # an unclosed last box is ignored
        r"\boxedfoo{3}": "",  # not the command \boxed
        "\\boxed": "",
    }
    for text, content in boxes.items():
        assert extract_boxed(text) == content, text


# ---- 8. paths in a harness ---------------------------------------------------------------------------------


def test_paths_a_harness_names_resolve_from_its_folder(tmp_path: Path, scripted, monkeypatch) -> None:
    project = tmp_path / "project"
    (project / "common").mkdir(parents=True)
    harness = _bank_harness(project)
    # The same harness, its prompt from an imported snippet: both paths are relative to the harness.
    (project / "common" / "ask.harness").write_text('snippet ASK = "{text}"\n', encoding="utf-8")
    source = harness.read_text(encoding="utf-8").replace('{text}"\n}', '"\n  user ASK\n}')
    harness.write_text(source.replace("\n", '\nimport "common/ask.harness"\n', 1), encoding="utf-8")
    _jsonl(project / "data" / "cases.jsonl", '{"text": "hello", "label": "hi"}')
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)

    # From another folder, the import and the bank file are found next to the harness.
    assert compile_file(harness).require().banks[0].file == str(project / "data" / "cases.jsonl")
    assert run_cli("check", harness)[0] == 0
    code, _ = run_cli("run", harness, "--data", project / "texts.jsonl", "--out", "out.jsonl")
    assert code == 0 and "hello -> hi" in scripted[0][0] and scripted[0][0].endswith("hey")

    # A missing bank file: `check` warns naming where it looked; the run stops with a data error (exit 1),
    # unless it is given the bank's data on the command line.
    shutil.move(project / "data" / "cases.jsonl", elsewhere / "cases.jsonl")
    code, err = run_cli("check", harness)
    assert code == 0 and "warning[bank-file-not-found]" in err and str(project / "data" / "cases.jsonl") in err
    code, err = run_cli("run", harness, "--data", project / "texts.jsonl", "--out", "out2.jsonl")
    assert code == 1 and f"{project / 'data' / 'cases.jsonl'}: file not found" in err
    bank = ("--bank", "cases=cases.jsonl")
    assert run_cli("run", harness, "--data", project / "texts.jsonl", "--out", "out3.jsonl", *bank)[0] == 0
