"""Exit 3 means a bug in our code, nothing else: a sweep of mistakes a user can make with every command
(missing files, directories for files, bad models, empty or broken data, bad settings, unreadable
inputs) must each end in exit 1 or 2 with a message and no traceback. The mistakes are chosen to fail
before a model loads, so the sweep is fast."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import REPO

from harnessc.cli import main as harnessc_main

HARNESS = str(REPO / "harnesses/plan_solve.harness")
MATH = str(REPO / "examples/data/math.jsonl")


@pytest.fixture
def files(tmp_path: Path) -> dict[str, str]:
    """Named paths for the mistakes: each a file or directory of the kind its name says."""
    made = {
        "missing": tmp_path / "missing.jsonl",
        "missing_harness": tmp_path / "missing.harness",
        "directory": tmp_path / "a-directory",
        "empty_data": tmp_path / "empty.jsonl",
        "binary_harness": tmp_path / "binary.harness",
        "empty_harness": tmp_path / "empty.harness",
        "bad_json": tmp_path / "engine.json",
        "bad_toml": tmp_path / "run.toml",
        "model_without_config": tmp_path / "model-dir",
        "plain_file": tmp_path / "plain.txt",
        "bad_rows": tmp_path / "bad.jsonl",
        "run_without_config": tmp_path / "run-empty",
        "run_bad_config": tmp_path / "run-bad",
        "run_bad_metrics": tmp_path / "run-metrics",
        "no_output_dir": tmp_path / "plain.txt" / "out.jsonl",
        "fake_model": tmp_path / "fake-model",  # passes the fast model check; engine options fail first
        # files as people save them: other encodings, values that stand for missing ones
        "utf16_harness": tmp_path / "utf16.harness",
        "latin1_jsonl": tmp_path / "latin1.jsonl",
        "latin1_csv": tmp_path / "latin1.csv",
        "utf16_jsonl": tmp_path / "utf16.jsonl",
        "nan_rows": tmp_path / "nan.jsonl",
        "latin1_toml": tmp_path / "latin1.toml",
        "json_list": tmp_path / "list.json",
        "bank_harness": tmp_path / "banked" / "bank.harness",  # its bank file's only row has no search text
        "bank_missing_harness": tmp_path / "unbanked" / "bank.harness",  # its bank file does not exist
        "bank_texts": tmp_path / "texts.jsonl",
    }
    made["directory"].mkdir()
    made["empty_data"].write_bytes(b"")
    made["binary_harness"].write_bytes(b"\xff\xfe\x00harness \x80")
    made["empty_harness"].write_bytes(b"")
    made["bad_json"].write_text("{not json")
    made["bad_toml"].write_text("max_steps = = 3")
    made["model_without_config"].mkdir()
    made["fake_model"].mkdir()
    (made["fake_model"] / "config.json").write_text("{}")
    made["plain_file"].write_text("hello")
    made["bad_rows"].write_bytes(b'{"question": "\xff"}\n')
    made["run_without_config"].mkdir()
    made["run_bad_config"].mkdir()
    (made["run_bad_config"] / "config.json").write_text('{"harness": ')
    made["run_bad_metrics"].mkdir()
    (made["run_bad_metrics"] / "metrics.jsonl").write_text("garbage\n")
    made["utf16_harness"].write_bytes(b"\xff\xfe" + Path(HARNESS).read_text(encoding="utf-8").encode("utf-16-le"))
    made["latin1_jsonl"].write_bytes('{"question": "Was kostet ein Br\u00f6tchen?", "answer": "1"}\n'.encode("latin-1"))
    made["latin1_csv"].write_bytes("question,answer\nBr\u00f6tchen?,1\n".encode("latin-1"))
    made["utf16_jsonl"].write_bytes(b"\xff\xfe" + '{"question": "q", "answer": "1"}\n'.encode("utf-16-le"))
    made["nan_rows"].write_text('{"question": NaN, "answer": "1"}\n{"question": -Infinity, "answer": "1"}\n')
    made["json_list"].write_text("[1, 2]")
    made["latin1_toml"].write_bytes("dtype = 'f\u00fcnf'\n".encode("latin-1"))
    (tmp_path / "mistake_latin1_builtins.py").write_bytes('NAME = "f\u00fcnf"\n'.encode("latin-1"))
    (tmp_path / "mistake_raising_builtins.py").write_text("raise RuntimeError('needs a GPU')\n")
    bank = 'harness b\ninput text: text\nbank cases { text: text = text search text file "cases.jsonl" }\n'
    bank += 'llm a { user "{for c in retrieve(cases, text)}{c.text}{end}{text}" }\noutput = a\n'
    for harness in (made["bank_harness"], made["bank_missing_harness"]):
        harness.parent.mkdir()
        harness.write_text(bank)
    (made["bank_harness"].parent / "cases.jsonl").write_text('{"text": null}\n')
    made["bank_texts"].write_text('{"text": "hi"}\n')
    return {name: str(path) for name, path in made.items()}


HARNESSC_MISTAKES = {
    "check missing file": ["check", "{missing_harness}"],
    "check a directory": ["check", "{directory}"],
    "check a binary file": ["check", "{binary_harness}"],
    "check an empty file": ["check", "{empty_harness}"],
    "graph missing file": ["graph", "{missing_harness}"],
    "graph a directory": ["graph", "{directory}"],
    "compile missing file": ["compile", "{missing_harness}"],
    "compile into a missing directory": ["compile", HARNESS, "-o", "{no_output_dir}"],
    "compile onto a directory": ["compile", HARNESS, "-o", "{directory}"],
    "explain unknown code": ["explain", "no-such-code"],
    "run missing harness": ["run", "{missing_harness}", "--data", MATH],
    "run harness is a directory": ["run", "{directory}", "--data", MATH],
    "run missing data": ["run", HARNESS, "--data", "{missing}"],
    "run data is a plain directory": ["run", HARNESS, "--data", "{directory}"],
    "run data of unknown type": ["run", HARNESS, "--data", "{plain_file}"],
    "run empty data": ["run", HARNESS, "--data", "{empty_data}"],
    "run only bad rows": ["run", HARNESS, "--data", "{bad_rows}"],
    "run model folder missing": ["run", HARNESS, "--data", MATH, "--model", "{directory}/nope"],
    "run model folder without config": ["run", HARNESS, "--data", MATH, "--model", "{model_without_config}"],
    "run model is a file": ["run", HARNESS, "--data", MATH, "--model", "{plain_file}"],
    "run missing engine config": ["run", HARNESS, "--data", MATH, "--engine-config", "{missing}"],
    "run malformed engine config": ["run", HARNESS, "--data", MATH, "--engine-config", "{bad_json}"],
    "run malformed engine toml": ["run", HARNESS, "--data", MATH, "--engine-config", "{bad_toml}"],
    "run engine config is a directory": ["run", HARNESS, "--data", MATH, "--engine-config", "{directory}"],
    "run engine option without =": ["run", HARNESS, "--data", MATH, "--engine-option", "dtype"],
    "run out is a directory": ["run", HARNESS, "--data", MATH, "--out", "{directory}"],
    "run out under a file": ["run", HARNESS, "--data", MATH, "--out", "{no_output_dir}"],
    "run negative limit": ["run", HARNESS, "--data", MATH, "--limit", "-1"],
    "run zero limit": ["run", HARNESS, "--data", MATH, "--limit", "0"],
    "run zero samples": ["run", HARNESS, "--data", MATH, "--n", "0"],
    "run unknown bank": ["run", HARNESS, "--data", MATH, "--bank", "nope={missing}"],
    "run malformed map": ["run", HARNESS, "--data", MATH, "--map", "question"],
    "run map to a missing column": ["run", HARNESS, "--data", MATH, "--map", "question=nope", "--limit", "1"],
    "run unknown param": ["run", HARNESS, "--data", MATH, "--set", "nope=1"],
    "run bad param value": ["run", HARNESS, "--data", MATH, "--set", "plan_tokens=many"],
    "run missing builtins module": ["run", HARNESS, "--data", MATH, "--builtins", "no_such_module_x"],
    "check a UTF-16 harness": ["check", "{utf16_harness}"],
    "run Latin-1 JSONL": ["run", HARNESS, "--data", "{latin1_jsonl}"],
    "run Latin-1 CSV": ["run", HARNESS, "--data", "{latin1_csv}"],
    "run UTF-16 data": ["run", HARNESS, "--data", "{utf16_jsonl}"],
    "run NaN and Infinity in required fields": ["run", HARNESS, "--data", "{nan_rows}"],
    "run engine config that is not UTF-8": ["run", HARNESS, "--data", MATH, "--engine-config", "{latin1_toml}"],
    "run engine config that is a JSON list": ["run", HARNESS, "--data", MATH, "--engine-config", "{json_list}"],
    "run builtins module that is not UTF-8": ["run", HARNESS, "--data", MATH, "--builtins", "mistake_latin1_builtins"],
    "run builtins module that raises": ["run", HARNESS, "--data", MATH, "--builtins", "mistake_raising_builtins"],
    "run openai without a base URL": ["run", HARNESS, "--data", MATH, "--engine", "openai"],
    "run base URL without openai": ["run", HARNESS, "--data", MATH, "--base-url", "http://127.0.0.1:9"],
    "run openai server unreachable": [
        "run",
        HARNESS,
        "--data",
        MATH,
        "--engine",
        "openai",
        "--base-url",
        "http://127.0.0.1:9",
    ],
    "run openai base URL without scheme": [
        "run",
        HARNESS,
        "--data",
        MATH,
        "--engine",
        "openai",
        "--base-url",
        "localhost:9",
    ],
    "run openai zero in flight": [
        *("run", HARNESS, "--data", MATH, "--engine", "openai", "--base-url", "http://127.0.0.1:9"),
        *("--engine-option", "max_in_flight=0"),
    ],
    "run bank file row without search text": ["run", "{bank_harness}", "--data", "{bank_texts}"],
    "run bank file missing": ["run", "{bank_missing_harness}", "--data", "{bank_texts}"],
    **{
        f"run engine option {option}": [
            "run",
            HARNESS,
            "--data",
            MATH,
            "--limit",
            "1",
            "--engine",
            "transformers",
            "--model",
            "{fake_model}",
            "--engine-option",
            option,
        ]
        for option in (
            'max_model_len="abc"',
            "max_model_len=0",
            "batch_size=0",
            'device="cuda:7"',
            'device="no-such-device"',
            "nonsense=1",
            "special_tokens_in_data=ignore",
        )
    },
    "run bad special-token policy": [
        "run",
        HARNESS,
        "--data",
        MATH,
        "--engine",
        "transformers",
        "--model",
        "{model_without_config}",
        "--engine-option",
        "special_tokens_in_data=ignore",
    ],
}


@pytest.mark.parametrize("mistake", HARNESSC_MISTAKES)
def test_harnessc_user_mistakes_never_exit_3(mistake: str, files, tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)  # the default --out goes under runs/ here
    monkeypatch.syspath_prepend(str(tmp_path))  # where the mistaken --builtins modules are
    args = [part.format(**files) for part in HARNESSC_MISTAKES[mistake]]
    try:
        code = harnessc_main(args)
    except SystemExit as exit:  # argparse usage errors
        code = exit.code
    captured = capsys.readouterr()
    assert code in (1, 2), f"{mistake}: exit {code}\n{captured.err}"
    assert "internal error" not in captured.err and "Traceback" not in captured.err
    assert (captured.err + captured.out).strip(), f"{mistake}: no message"


def test_harnessc_resume_of_a_different_run_is_exit_1(files, tmp_path: Path, capsys) -> None:
    out = tmp_path / "o.jsonl"
    data = tmp_path / "d.jsonl"
    data.write_text('{"question": true}\n')  # only a bad row: the run ends without an engine
    assert harnessc_main(["run", HARNESS, "--data", str(data), "--out", str(out)]) == 1
    code = harnessc_main(["run", HARNESS, "--data", str(data), "--out", str(out), "--resume", "--seed", "2"])
    err = capsys.readouterr().err
    assert code == 1 and "different run" in err and "--seed" in err


OPHSD_MISTAKES = {
    "train missing harness": ["train", "--harness", "{missing_harness}", "--data", MATH, "--output", "{out}"],
    "train harness is a directory": ["train", "--harness", "{directory}", "--data", MATH, "--output", "{out}"],
    "train missing data": ["train", "--harness", HARNESS, "--data", "{missing}", "--output", "{out}"],
    "train empty data": ["train", "--harness", HARNESS, "--data", "{empty_data}", "--output", "{out}"],
    "train bad rows": ["train", "--harness", HARNESS, "--data", "{bad_rows}", "--output", "{out}"],
    "train model folder missing": [
        "train",
        "--harness",
        HARNESS,
        "--data",
        MATH,
        "--output",
        "{out}",
        "--model",
        "{directory}/nope",
    ],
    "train model without config": [
        "train",
        "--harness",
        HARNESS,
        "--data",
        MATH,
        "--output",
        "{out}",
        "--model",
        "{model_without_config}",
    ],
    "train output is a file": ["train", "--harness", HARNESS, "--data", MATH, "--output", "{plain_file}"],
    "train missing config": ["train", "--config", "{missing}", "--output", "{out}"],
    "train config is a directory": ["train", "--config", "{directory}", "--output", "{out}"],
    "train malformed config": ["train", "--config", "{bad_toml}", "--output", "{out}"],
    "train unknown setting": ["train", "--harness", HARNESS, "--data", MATH, "--output", "{out}", "--set", "nope=1"],
    "train bad setting value": [
        "train",
        "--harness",
        HARNESS,
        "--data",
        MATH,
        "--output",
        "{out}",
        "--set",
        "batch_size=0",
    ],
    "train set without =": ["train", "--harness", HARNESS, "--data", MATH, "--output", "{out}", "--set", "lora"],
    "train openai without a base URL": ["train", "--harness", HARNESS, "--data", MATH, "--output", "{out}"]
    + ["--engine", "openai"],
    "train base URL with another engine": ["train", "--harness", HARNESS, "--data", MATH, "--output", "{out}"]
    + ["--engine", "vllm", "--base-url", "http://127.0.0.1:9/v1"],
    "train zero steps": ["train", "--harness", HARNESS, "--data", MATH, "--output", "{out}", "--max-steps", "0"],
    "train without harness": ["train", "--data", MATH, "--output", "{out}"],
    "train resume without checkpoints": ["train", "--output", "{run_without_config}", "--resume"],
    "train resume with a broken config.json": ["train", "--output", "{run_bad_config}", "--resume"],
    "train harness with errors": ["train", "--harness", "{binary_harness}", "--data", MATH, "--output", "{out}"],
    "eval missing run": ["eval", "{missing}"],
    "eval run without config": ["eval", "{run_without_config}"],
    "eval broken config": ["eval", "{run_bad_config}"],
    "eval run is a file": ["eval", "{plain_file}"],
    "report missing run": ["report", "{missing}"],
    "report run without metrics": ["report", "{run_without_config}"],
    "report broken metrics": ["report", "{run_bad_metrics}"],
    "report run is a file": ["report", "{plain_file}"],
    "train config that is not UTF-8": ["train", "--config", "{latin1_toml}", "--output", "{out}"],
    "train Latin-1 data": ["train", "--harness", HARNESS, "--data", "{latin1_jsonl}", "--output", "{out}"],
    "train UTF-16 data": ["train", "--harness", HARNESS, "--data", "{utf16_jsonl}", "--output", "{out}"],
    "train NaN in a required field": ["train", "--harness", HARNESS, "--data", "{nan_rows}", "--output", "{out}"],
    "train builtins module that raises": [
        "train",
        "--harness",
        HARNESS,
        "--data",
        MATH,
        "--output",
        "{out}",
        "--set",
        'builtins=["mistake_raising_builtins"]',
    ],
}


@pytest.mark.parametrize("mistake", OPHSD_MISTAKES)
def test_ophsd_user_mistakes_never_exit_3(mistake: str, files, tmp_path: Path, capsys, monkeypatch) -> None:
    pytest.importorskip("torch")
    monkeypatch.syspath_prepend(str(tmp_path))  # where the mistaken `builtins` modules are
    from ophsd.cli import main as ophsd_main

    args = [part.format(out=str(tmp_path / "run"), **files) for part in OPHSD_MISTAKES[mistake]]
    try:
        code = ophsd_main(args)
    except SystemExit as exit:
        code = exit.code
    captured = capsys.readouterr()
    assert code in (1, 2), f"{mistake}: exit {code}\n{captured.err}"
    assert "internal error" not in captured.err and "Traceback" not in captured.err
    assert (captured.err + captured.out).strip(), f"{mistake}: no message"


def test_eval_of_an_unknown_checkpoint_is_exit_1(tmp_path: Path, capsys) -> None:
    pytest.importorskip("torch")
    from ophsd.cli import main as ophsd_main

    run = tmp_path / "run"
    run.mkdir()
    config = {"harness": HARNESS, "data": MATH, "output": str(run)}
    (run / "config.json").write_text(json.dumps(config))
    assert ophsd_main(["eval", str(run), "--checkpoint", "step-000009"]) == 1
    assert "no checkpoint 'step-000009'" in capsys.readouterr().err
