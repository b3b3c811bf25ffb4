"""What the harness answers must not be the oracle (check `oracle-in-output`), as a table of routes.

A value flowing from an oracle input to `output` / `student_output` without an LLM stage generating it is an
error for every purpose; a prompt that shows the oracle (in training) is the method and stays allowed.
"""

from __future__ import annotations

import pytest

from harnessc.compiler import compile_source

HEAD = """harness t
input question: text
input answer: text oracle
llm solve {
  user "{question}{if answer}\\nReference: {answer}{end}"
}
student { user "{question}" }
teacher = solve
"""

ROUTES = [
    ("template, the old hint followed", 'output = "{if answer}{answer}{end}"'),
    ("bare", "output = answer"),
    ("let chain", 'let a = answer\nlet b = "{a}"\noutput = "{if b}{b}{else}{solve}{end}"'),
    ("if-condition", 'output = "{if answer == \\"x\\"}x{else}{solve}{end}"'),
    ("condition bound by let", 'let known = nonempty(answer)\noutput = "{if known}yes{else}{solve}{end}"'),
    ("list and majority", "output = majority([answer, solve])"),
    ("comprehension", "output = majority([strip(x) for x in [answer, solve]])"),
    ("built-in call", "output = strip(answer)"),
    ("student_output", 'output = solve\nstudent_output = "{if answer}{answer}{end}"'),
    (
        "loop value",
        'loop guess from answer max 2 {\n  llm try { user "{question} {guess}" }\n  next try\n}\noutput = guess',
    ),
    (
        "loop exit test",
        'loop guess from solve max 2 {\n  llm try { user "{question} {guess}" }\n'
        "  until answer == guess\n  next try\n}\noutput = guess",
    ),
]


@pytest.mark.parametrize("purpose", ["any", "train", "run"])
@pytest.mark.parametrize("tail", [route[1] for route in ROUTES], ids=[route[0] for route in ROUTES])
def test_a_direct_route_from_the_oracle_to_the_answer_is_an_error(tail: str, purpose: str) -> None:
    diagnostics = compile_source(HEAD + tail + "\n", purpose=purpose).diagnostics
    codes = [item.code for item in diagnostics if item.is_error]
    assert "oracle-in-output" in codes, codes
    assert "oracle-at-inference" not in codes  # whose `{if}` hint would not fix it
    for item in diagnostics:
        if item.code == "oracle-in-output":
            assert not any("{if" in hint and "output =" in hint for hint in item.hints)


ALLOWED = [
    ("through the model", "output = extract_boxed(solve)\ngrade = math_equal(output, answer)"),
    ("the grade compares", "output = solve\ngrade = label_equal(output, answer)"),
    ("a stage reading a stage that saw the oracle", 'llm check { user "Check: {solve}" }\noutput = check'),
]


@pytest.mark.parametrize("tail", [route[1] for route in ALLOWED], ids=[route[0] for route in ALLOWED])
def test_the_oracle_shown_to_a_model_is_allowed(tail: str) -> None:
    diagnostics = compile_source(HEAD + tail + "\n").diagnostics
    assert "oracle-in-output" not in [item.code for item in diagnostics]


def test_the_chain_is_named_in_the_message() -> None:
    source = HEAD + 'let a = answer\nlet b = "{a}"\noutput = "{if b}{b}{else}{solve}{end}"\n'
    (error,) = [item for item in compile_source(source).diagnostics if item.code == "oracle-in-output"]
    assert "`answer` → `a` → `b` → `output`" in error.message
