"""The command-line contract: exit codes, the JSON diagnostics schema, user built-ins, no tracebacks."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import REPO

from harnessc.cli import main

FIVE_MISTAKES = textwrap.dedent("""\
    harness five
    input question: text
    llm plan { user "{questoin}" max_tokens 10 }
    llm solve { user "{plan}" temperature -1 max_tokens 10 }
    let a = f(b)
    let b = strip(a)
    student { user "{question} {solve}" }
    teacher = solve
    output = extract_boxed(solve, 3)
    """)


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harnessc.cli", *args], capture_output=True, text=True, cwd=REPO)


def test_clean_files_exit_0() -> None:
    result = run("check", *map(str, sorted((REPO / "harnesses").glob("*.harness"))))
    assert result.returncode == 0 and "no problems" in result.stdout


def test_six_mistakes_give_six_located_errors(tmp_path: Path, capsys) -> None:
    path = tmp_path / "five.harness"
    path.write_text(FIVE_MISTAKES)
    assert main(["check", "--for", "train", "--format", "json", str(path)]) == 1
    payload = json.loads(capsys.readouterr().out)
    errors = [d for d in payload["diagnostics"] if d["severity"] == "error"]
    assert sorted({d["code"] for d in errors}) == sorted(
        ["unknown-name", "invalid-option-value", "unknown-builtin", "cycle", "student-reads-stage", "argument-count"]
    )
    assert all(d["span"]["line"] >= 3 and d["span"]["column"] >= 1 for d in errors)
    assert payload["errors"] == len(errors) and payload["version"] == 1


def test_json_schema(tmp_path: Path, capsys) -> None:
    path = tmp_path / "bad.harness"
    path.write_text('harness bad\ninput q: text\nllm a { user "{qq}" max_tokens 4 }\noutput = a\n')
    main(["check", "--for", "run", "--format", "json", str(path)])
    payload = json.loads(capsys.readouterr().out)
    assert set(payload) == {"version", "files", "errors", "warnings", "diagnostics"}
    diagnostic = payload["diagnostics"][0]
    assert set(diagnostic) == {"code", "severity", "message", "span", "label", "labels", "hints"}
    assert set(diagnostic["span"]) == {"file", "start", "end", "line", "column", "end_line", "end_column"}
    assert diagnostic["span"]["line"] == 3 and diagnostic["hints"] == ["did you mean `q`?"]


@pytest.mark.parametrize(
    "args",
    [
        ["check"],
        ["check", "--format", "xml", "x"],
        ["graph"],
        ["nonsense"],
        ["explain", "no-such-code"],
        ["check", "--builtins", "no_such_module", "x"],
    ],
)
def test_usage_errors_exit_2_without_traceback(args: list[str]) -> None:
    result = run(*args)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_user_builtins_from_a_module(tmp_path: Path) -> None:
    (tmp_path / "my_builtins.py").write_text(
        textwrap.dedent('''\
        from harnessc.builtins import builtin

        @builtin("shout(text: text) -> text")
        def shout(text):
            """Upper-case the text."""
            return text.upper()
        ''')
    )
    harness = tmp_path / "s.harness"
    harness.write_text("harness s\ninput q: text\nlet x = shout(q)\noutput = x\n")
    env_run = lambda *args: subprocess.run(  # noqa: E731
        [sys.executable, "-m", "harnessc.cli", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**__import__("os").environ, "PYTHONPATH": str(tmp_path)},
    )
    assert env_run("check", "--for", "run", str(harness)).returncode == 1  # unknown without the module
    with_module = env_run("check", "--for", "run", "--builtins", "my_builtins", str(harness))
    assert with_module.returncode == 0, with_module.stdout
    listed = env_run("builtins", "--builtins", "my_builtins")
    assert "shout(text: text) -> text" in listed.stdout


def test_graph_formats(capsys) -> None:
    for style, marker in (("mermaid", "flowchart TD"), ("dot", "digraph"), ("tree", "harness plan_solve")):
        assert main(["graph", "--format", style, str(REPO / "harnesses/plan_solve.harness")]) == 0
        assert marker in capsys.readouterr().out


def test_compile_writes_the_ir(tmp_path: Path) -> None:
    from harnessc import ir

    out = tmp_path / "ps.json"
    assert main(["compile", str(REPO / "harnesses/plan_solve.harness"), "-o", str(out)]) == 0
    assert ir.loads(out.read_text()).name == "plan_solve"
