"""`harnessc explain` and docs/diagnostics.md: every code has an example that produces it, and only it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO

from harnessc.cli import main as harnessc_main
from harnessc.codes import CODES
from harnessc.explanations import (
    EXPLANATIONS,
    Explanation,
    example_name,
    explain,
    load_explanations,
    markdown,
    run_example,
)

DOCS = REPO / "docs" / "diagnostics.md"
REGENERATE = "python -m harnessc.explanations --markdown > docs/diagnostics.md"

# Where each example's diagnostic points (line, column): the token the fix is about. Written by hand from
# the examples in harnessc/explanations/examples/; an example or a span that moves makes its test fail.
LOCATIONS = {
    "unreadable-file": (1, 1),
    "invalid-encoding": (3, 8),  # the Latin-1 `è` of "Problème"
    "syntax-error": (3, 16),  # `text` where `:` belongs
    "number-out-of-range": (8, 8),  # the seed
    "unexpected-character": (7, 18),  # `;`
    "unterminated-string": (6, 8),  # the opening `"`
    "unclosed-delimiter": (10, 28),  # the `(` of `strip_think(plan`
    "unexpected-eof": (10, 9),  # just after `output =`
    "missing-header": (1, 1),
    "import-not-found": (3, 8),  # the path string
    "import-content": (2, 1),  # `input` in the imported file
    "path-outside-root": (3, 8),  # the path string
    "not-a-regular-file": (3, 8),
    "file-too-large": (3, 8),
    "not-harness-source": (3, 8),
    "duplicate-definition": (10, 5),  # the second `solve`
    "unknown-name": (6, 19),  # `questoin`
    "unknown-field": (14, 48),  # `txt`
    "unknown-builtin": (10, 10),  # `extract_boxd`
    "unknown-type": (3, 17),  # `string`
    "unknown-option": (7, 3),  # `temprature`
    "unknown-flag": (4, 20),  # `orcale`
    "unknown-argument": (12, 35),  # `top_k`
    "duplicate-argument": (12, 38),  # `k=5`
    "argument-count": (12, 9),  # the call `math_equal(output)`
    "argument-type": (10, 29),  # `"billing"`
    "type-mismatch": (7, 14),  # `"1024"`
    "not-constant": (9, 14),  # `budget`
    "unbalanced-brace": (6, 28),  # the second `}`
    "template-block": (9, 5),  # `{if answer}`
    "optional-placeholder": (7, 37),  # `hint`
    "placeholder-type": (14, 50),  # `answers`
    "literal-placeholder": (6, 25),  # `{2}`
    "oracle-in-output": (11, 15),  # `answer` in the condition
    "cycle": (6, 49),  # `{solve}` inside `plan`
    "loop-order": (11, 7),  # `critique`
    "unbounded-loop": (10, 6),  # the loop's name
    "loop-without-next": (10, 6),  # the loop's name
    "unbounded-fan-out": (12, 13),  # `for q in subs`
    "fan-out-bound": (5, 23),  # the list literal
    "empty-prompt": (5, 5),  # the stage's name
    "message-order": (7, 3),  # the late `system`
    "invalid-option-value": (7, 9),  # `1.5`
    "limit-exceeded": (8, 5),  # `100000`
    "conflicting-constraints": (10, 3),  # the second constraint
    "invalid-regex": (7, 17),  # the unclosed `(`
    "invalid-json-schema": (7, 10),  # the first `'`
    "teacher-not-llm": (21, 11),  # `plan_text`
    "bank-without-search": (6, 6),  # the bank's name
    "bank-without-label": (17, 53),  # `[draft]`
    "student-reads-stage": (16, 37),  # `plan` in the student view
    "student-reads-oracle": (7, 36),  # `answer` in the student view
    "oracle-at-inference": (7, 73),  # `answer` in the solve prompt
    "missing-student": (1, 9),  # the harness's name
    "missing-teacher": (1, 9),
    "missing-output": (1, 9),
    "invalid-override": (1, 1),  # `sample=4` on the command line
    "unused-stage": (5, 5),  # `plan`
    "bank-file-not-found": (10, 8),  # the path after `file`
    "empty-fan-out": (5, 22),  # `[]`
    "teacher-equals-student": (11, 1),  # `teacher {`
    "thinking-mismatch": (17, 5),
    "constraint-reads-differently": (7, 9),  # the regex literal
    "choice-over-budget": (8, 14),  # the `max_tokens` value
}


def test_every_code_has_an_explanation() -> None:
    assert set(EXPLANATIONS) == set(CODES)
    assert set(LOCATIONS) == set(CODES)


@pytest.mark.parametrize("code", list(CODES))
def test_the_example_produces_its_code_and_only_it(code: str) -> None:
    diagnostics, rendered = run_example(code)
    assert [item.code for item in diagnostics] == [code], rendered
    diagnostic = diagnostics[0]
    assert diagnostic.severity == CODES[code].severity
    assert (diagnostic.span.line, diagnostic.span.column) == LOCATIONS[code], rendered
    expected_file = {"invalid-override": "<--set>", "import-content": "common/math_prompts.harness"}
    assert diagnostic.span.file == expected_file.get(code, example_name(code))
    assert "harnessc-explain-" not in rendered  # the temporary directory is left out
    assert rendered.startswith(f"{CODES[code].severity.value}[{code}]: ")


@pytest.mark.parametrize("code", list(CODES))
def test_explain_shows_the_example_the_real_output_and_the_fix(code: str) -> None:
    text = explain(code)
    explanation = EXPLANATIONS[code]
    assert text.startswith(f"{code} ({CODES[code].severity.value}): {CODES[code].summary}")
    assert explanation.fix in text
    assert f"{CODES[code].severity.value}[{code}]" in text
    first_line = explanation.example.splitlines()[0] if explanation.example else ""
    assert first_line in text
    assert 20 <= len(explanation.fix) and explanation.fix.count(". ") <= 2  # one or two sentences


def test_explanations_that_need_more_than_one_file_say_so() -> None:
    assert "There is no file example-unreadable-file.harness." in explain("unreadable-file")
    assert "saved as latin-1" in explain("invalid-encoding")
    assert "--set sample=4" in explain("invalid-override")
    assert "--for train" in explain("missing-teacher")
    assert "Beside it, common/math_prompts.harness:" in explain("import-content")


def test_an_entry_with_an_unknown_key_is_refused_with_its_file(tmp_path: Path) -> None:
    # a typo in a data file ("overide") must not silently drop the setting it meant
    (tmp_path / "cycle.toml").write_text('fix = "x"\nexample = "harness h"\noveride = {a = "1"}\n')
    with pytest.raises(ValueError, match=r"cycle.toml: unknown key\(s\) \['overide'\]"):
        load_explanations(tmp_path)
    (tmp_path / "cycle.toml").write_text('fix = "x"\nexists = false\noverrides = {a = "1"}\n')
    assert load_explanations(tmp_path)["cycle"] == Explanation(
        example="", fix="x", exists=False, overrides=(("a", "1"),)
    )


def test_the_cli_explains_a_code_and_rejects_an_unknown_one(capsys: pytest.CaptureFixture[str]) -> None:
    assert harnessc_main(["explain", "cycle"]) == 0
    assert capsys.readouterr().out.strip() == explain("cycle")
    assert harnessc_main(["explain", "cycles"]) == 2
    assert "did you mean `cycle`?" in capsys.readouterr().err


def test_docs_diagnostics_md_is_up_to_date() -> None:
    assert DOCS.exists(), f"docs/diagnostics.md is missing; generate it with `{REGENERATE}`"
    current = DOCS.read_text(encoding="utf-8")
    assert current == markdown(), f"docs/diagnostics.md is out of date; regenerate it with `{REGENERATE}`"


def test_docs_list_every_code_with_its_real_output() -> None:
    text = markdown()
    for code, entry in CODES.items():
        assert f"| [`{code}`](#{code}) | {entry.severity.value} |" in text
        assert f"\n## {code}\n" in text
        assert f"{entry.severity.value}[{code}]: " in text


def test_the_module_prints_the_markdown() -> None:
    command = [sys.executable, "-m", "harnessc.explanations", "--markdown"]
    result = subprocess.run(command, capture_output=True, text=True, cwd=REPO, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout == markdown()
