"""Block tags and whitespace (docs/language.md, "Block tags on their own line"), as a table of cases.

The rule, after Jinja's trim_blocks + lstrip_blocks: a line holding nothing but a block tag (and blanks)
disappears entirely, its line break included; a tag on the string's last line (which has no line break)
makes the rendering drop its one final line break; a tag sharing its line with text leaves the text and
its whitespace as written. Each case renders a `let` holding the template under fixed values.
"""

from __future__ import annotations

from typing import Any

import pytest

from harnessc import ir
from harnessc.builtins.registry import default_registry
from harnessc.compiler import compile_source
from harnessc.runtime.expressions import Evaluator

HEADER = """harness t
input xs: list[text]
input flag: bool
input ys: list[text]
"""


def render(template: str, **values: Any) -> str:
    harness = compile_source(HEADER + f"let out = {template}\noutput = out\n").require()
    stage = next(stage for stage in harness.stages if isinstance(stage, ir.LetStage) and stage.name == "out")
    values = {"xs": ("a", "b", "c"), "flag": True, "ys": ("1", "2"), **values}
    return Evaluator(default_registry()).evaluate(stage.value, values)


Q = '"""'
CASES = [
    # (name, template as written in the file, values, expected rendering)
    (
        "for, end on the last line",
        f"{Q}\n  Items:\n  {{for x in xs}}\n  - {{x}}\n  {{end}}\n{Q}",
        {},
        "Items:\n- a\n- b\n- c",
    ),
    (
        "for, text after end",
        f"{Q}\n  Items:\n  {{for x in xs}}\n  - {{x}}\n  {{end}}\n  Done.\n{Q}",
        {},
        "Items:\n- a\n- b\n- c\nDone.",
    ),
    (
        "for, empty list, last line",
        f"{Q}\n  Items:\n  {{for x in xs}}\n  - {{x}}\n  {{end}}\n{Q}",
        {"xs": ()},
        "Items:",
    ),
    (
        "for on the first line",
        f"{Q}\n  {{for x in xs}}\n  - {{x}}\n  {{end}}\n  Done.\n{Q}",
        {},
        "- a\n- b\n- c\nDone.",
    ),
    (
        "for opened inline, end alone",
        f"{Q}\n  Cases:\n  {{for x in xs}}- {{x}}\n  {{end}}\n  Next\n{Q}",
        {},
        "Cases:\n- a\n- b\n- c\nNext",
    ),
    (
        "for opened inline, end last",
        f"{Q}\n  Cases:\n  {{for x in xs}}- {{x}}\n  {{end}}\n{Q}",
        {},
        "Cases:\n- a\n- b\n- c",
    ),
    ("if false on the last line", f"{Q}\n  Problem\n  {{if flag}}\n  Hint\n  {{end}}\n{Q}", {"flag": False}, "Problem"),
    ("if true on the last line", f"{Q}\n  Problem\n  {{if flag}}\n  Hint\n  {{end}}\n{Q}", {}, "Problem\nHint"),
    ("if in the middle, false", f"{Q}\n  A\n  {{if flag}}\n  B\n  {{end}}\n  C\n{Q}", {"flag": False}, "A\nC"),
    ("if/else, then", f"{Q}\n  A\n  {{if flag}}\n  yes\n  {{else}}\n  no\n  {{end}}\n{Q}", {}, "A\nyes"),
    ("if/else, else", f"{Q}\n  A\n  {{if flag}}\n  yes\n  {{else}}\n  no\n  {{end}}\n{Q}", {"flag": False}, "A\nno"),
    (
        "if/else in the middle",
        f"{Q}\n  {{if flag}}\n  yes\n  {{else}}\n  no\n  {{end}}\n  C\n{Q}",
        {"flag": False},
        "no\nC",
    ),
    (
        "if inside for",
        f"{Q}\n  {{for x in xs}}\n  {{if flag}}\n  - {{x}}\n  {{end}}\n  {{end}}\n{Q}",
        {},
        "- a\n- b\n- c",
    ),
    (
        "if inside for, false",
        f"{Q}\n  L\n  {{for x in xs}}\n  {{if flag}}\n  - {{x}}\n  {{end}}\n  {{end}}\n{Q}",
        {"flag": False},
        "L",
    ),
    (
        "nested for",
        f"{Q}\n  {{for x in xs}}\n  {{for y in ys}}\n  {{x}}{{y}}\n  {{end}}\n  {{end}}\n  .\n{Q}",
        {"xs": ("a",)},
        "a1\na2\n.",
    ),
    ("indented tag lines", f"{Q}\n  A\n    {{if flag}}\n  B\n    {{end}}\n  C\n{Q}", {}, "A\nB\nC"),
    ("inline tags keep spaces", '"A {if flag} yes {end} B"', {}, "A  yes  B"),
    ("inline tags, false", '"A {if flag} yes {end} B"', {"flag": False}, "A  B"),
    ("inline for", '"{for x in xs}{x}, {end}!"', {}, "a, b, c, !"),
    ("one-line string with escapes", '"Items:\\n{for x in xs}\\n- {x}\\n{end}"', {}, "Items:\n- a\n- b\n- c"),
    (
        "blank line kept after end",
        f"{Q}\n  {{for x in xs}}\n  - {{x}}\n  {{end}}\n\n  Next\n{Q}",
        {},
        "- a\n- b\n- c\n\nNext",
    ),
    ("text that ends with a line break", f"{Q}\n  A\n  {{if flag}}\n  B\n\n  {{end}}\n{Q}", {}, "A\nB\n"),
]


@pytest.mark.parametrize(("written", "values", "expected"), [case[1:] for case in CASES], ids=[c[0] for c in CASES])
def test_block_tag_lines(written: str, values: dict[str, Any], expected: str) -> None:
    assert render(written, **values) == expected


def test_a_snippet_ending_with_a_block_keeps_its_items_apart() -> None:
    source = HEADER + (
        'snippet LIST = """\n  {for x in xs}\n  - {x}\n  {end}\n"""\n'
        'let out = """\n  Items:\n  {LIST}\n  Next\n"""\noutput = out\n'
    )
    harness = compile_source(source).require()
    stage = next(stage for stage in harness.stages if isinstance(stage, ir.LetStage) and stage.name == "out")
    rendered = Evaluator(default_registry()).evaluate(stage.value, {"xs": ("a", "b"), "flag": True, "ys": ()})
    assert rendered == "Items:\n- a\n- b\nNext"
