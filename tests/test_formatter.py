"""`harnessc fmt` (harnessc/formatter.py): idempotent, comments and strings kept, the compiled IR unchanged.

Checked on every shipped harness, every example, every ```harness block of docs/language.md and every
`harnessc explain` example that parses. Comments are counted with Lark's own lexer (an independent
finder: the COMMENT terminal's callback), not with the formatter's.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import tomllib
from conftest import REPO
from lark import Lark, Token
from test_docs_language import HARNESS_BLOCKS

from harnessc import formatter, ir
from harnessc.cli import main as harnessc_main
from harnessc.compiler import compile_source
from harnessc.formatter import FormatError, format_source
from harnessc.parser import _LARK_OPTIONS, grammar_text


def _cases() -> list[Any]:
    cases = []
    for path in sorted([*REPO.glob("harnesses/**/*.harness"), *REPO.glob("examples/*.harness")]):
        cases.append(pytest.param(path.read_text(encoding="utf-8"), path, id=str(path.relative_to(REPO))))
    for line, block in HARNESS_BLOCKS:
        cases.append(pytest.param(block, REPO / "harnesses" / "docs.harness", id=f"docs/language.md:{line}"))
    for path in sorted((REPO / "harnessc" / "explanations" / "examples").glob("*.toml")):
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        for key in ("example", "fixed"):
            if isinstance(data.get(key), str):
                cases.append(pytest.param(data[key], REPO / "harnesses" / "x.harness", id=f"{path.name}:{key}"))
    for number, text in enumerate(AWKWARD):
        cases.append(pytest.param(text, REPO / "harnesses" / "x.harness", id=f"awkward-{number}"))
    return cases


# Layouts that once made `fmt` refuse or change on a second pass (break-it reports), each one of its kind:
# a comment after `else {`, headers written over several lines (fan-out, guard, loop).
AWKWARD = [
    'input q: text\nllm a when q != "" {\n  user "{q}"\n} else { # otherwise\n  user "none" # said\n}\noutput = a\n',
    'input q: text\nllm a for x in\n    [q, q]\n    max 2 {\n  user "{x}"\n}\noutput = a\n',
    'input q: text\nllm a when\n    q != ""\n    and q != "x" {\n  user "{q}"\n}\noutput = a\n',
    'input q: text\nllm a { user "{q}" }\nloop r from a\n  max 2 {\n  llm b { user "{r}" }\n  next b\n}\noutput = r\n',
]


def test_comments_with_no_canonical_place_are_refused_not_moved() -> None:
    between = 'input q: text\nllm a when q != "" {\n  user "{q}"\n}\n# here\nelse {\n  user "n"\n}\noutput = a\n'
    with pytest.raises(FormatError, match="between `}` and `else`"):
        format_source(between)
    inside = 'input q: text\nllm a for x in # the list\n    [q] {\n  user "{x}"\n}\noutput = a\n'
    with pytest.raises(FormatError, match="inside a fan-out"):
        format_source(inside)


CASES = _cases()


@pytest.fixture(scope="module")
def comment_lexer() -> tuple[Lark, list[Token]]:
    found: list[Token] = []
    return Lark(grammar_text(), lexer_callbacks={"COMMENT": found.append}, **_LARK_OPTIONS), found


def _comments(text: str, comment_lexer: tuple[Lark, list[Token]]) -> list[str] | None:
    parser, found = comment_lexer
    found.clear()
    try:
        parser.parse(text, start="start")
    except Exception:  # noqa: BLE001 - a deliberately broken example
        return None
    return [str(token).rstrip() for token in found]


def _strip_spans(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            k: _strip_spans(v) for k, v in value.items() if not (isinstance(v, dict) and {"start", "end"} <= v.keys())
        }
    if isinstance(value, list):
        return [_strip_spans(item) for item in value]
    return value


def _ir(text: str, path: Path) -> str:
    compilation = compile_source(text, str(path))
    codes = sorted((d.code, d.message) for d in compilation.diagnostics)
    harness = _strip_spans(ir.to_json(compilation.harness)) if compilation.harness is not None else None
    return json.dumps({"harness": harness, "diagnostics": codes}, sort_keys=True)


@pytest.mark.parametrize(("text", "path"), CASES)
def test_format_is_idempotent_and_keeps_meaning(text: str, path: Path, comment_lexer, monkeypatch) -> None:
    before = _comments(text, comment_lexer)
    if before is None:
        with pytest.raises(FormatError):
            format_source(text)
        return
    formatted = format_source(text)
    assert format_source(formatted) == formatted
    assert _comments(formatted, comment_lexer) == before
    monkeypatch.chdir(REPO / "harnesses")  # imports resolve as in the docs test
    assert _ir(formatted, path) == _ir(text, path)


def test_shipped_harnesses_are_formatted(capsys) -> None:
    """The CI check: `harnessc fmt --check harnesses/ examples/`."""
    assert harnessc_main(["fmt", "--check", str(REPO / "harnesses"), str(REPO / "examples")]) == 0


MESSY = """\
# head


harness x   "d"  # after the header
input a:text    # aligned
input b : list[ record{ t: text,u:int, } ] oracle
param p:int=3
llm s when (a=="x" or not b)and true {   # after the brace
  # first
      user "a#b \\" # not a comment"  # a comment
  temperature 0.5


  # before the brace
} else {
  user \"\"\"
    keep   this  # as is
  \"\"\"
}
llm e {}
loop l from a max 3 {
  llm r { user "{l}" }
  next f(r, k = 2, [1,2,])
  until (r).x == "y"
}
let q = [
  1,  # one
  2,
]
output = q
# end
"""

TIDY = """\
# head

harness x "d"  # after the header
input a: text    # aligned
input b: list[record{t: text, u: int}] oracle
param p: int = 3
llm s when (a == "x" or not b) and true {   # after the brace
  # first
  user "a#b \\" # not a comment"  # a comment
  temperature 0.5

  # before the brace
} else {
  user \"\"\"
    keep   this  # as is
  \"\"\"
}
llm e {}
loop l from a max 3 {
  llm r {
    user "{l}"
  }
  next f(r, k=2, [1, 2])
  until r.x == "y"
}
let q = [
  1,  # one
  2,
]
output = q
# end
"""


def test_canonical_layout() -> None:
    assert format_source(MESSY) == TIDY
    assert format_source(TIDY) == TIDY


def test_parentheses_are_kept_where_needed() -> None:
    text = "output = not (a or b) and (c and d or e)\ngrade = (a == b).x\n"
    assert format_source(text) == "output = not (a or b) and (c and d or e)\ngrade = (a == b).x\n"


def test_unknown_construct_is_refused(monkeypatch) -> None:
    monkeypatch.delitem(formatter._EXPRESSIONS, "comprehension")
    with pytest.raises(FormatError, match="comprehension"):
        format_source("output = [x for x in xs]\n")
    monkeypatch.delitem(formatter._LINE_ITEMS, "grade_decl")
    with pytest.raises(FormatError, match="grade_decl"):
        format_source("grade = 1\n")


def test_cli_rewrites_checks_and_diffs(tmp_path, capsys, monkeypatch) -> None:
    import io

    path = tmp_path / "h.harness"
    path.write_text("let x=f( 1 )\n")
    assert harnessc_main(["fmt", "--check", "--diff", str(path)]) == 1
    captured = capsys.readouterr()
    assert "would reformat" in captured.err and "+let x = f(1)" in captured.out
    assert path.read_text() == "let x=f( 1 )\n"
    assert harnessc_main(["fmt", "--diff", str(path)]) == 0  # a diff alone changes nothing either
    assert "+let x = f(1)" in capsys.readouterr().out and path.read_text() == "let x=f( 1 )\n"
    monkeypatch.setattr("sys.stdin", io.StringIO("output  =  a\n"))
    assert harnessc_main(["fmt", "--diff", "-"]) == 0
    assert "+output = a" in capsys.readouterr().out
    assert harnessc_main(["fmt", str(path)]) == 0
    assert path.read_text() == "let x = f(1)\n"
    assert harnessc_main(["fmt", "--check", str(path)]) == 0
    monkeypatch.setattr("sys.stdin", io.StringIO("output  =  a\n"))
    assert harnessc_main(["fmt", "-"]) == 0
    assert capsys.readouterr().out == "output = a\n"
    bad = tmp_path / "bad.harness"
    bad.write_text("llm {\n")
    assert harnessc_main(["fmt", str(bad)]) == 1
    assert "syntax error" in capsys.readouterr().err and bad.read_text() == "llm {\n"
