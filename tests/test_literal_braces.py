"""Template text that would silently change meaning: braces meant as text (LaTeX, JSON) read as placeholders.

Each member of the kind is an error whose hint shows the braces doubled; the doubled form renders as
written. One table: the text of a prompt, the codes it gets, the hint's doubled form.
"""

from __future__ import annotations

import pytest

from harnessc import ir
from harnessc.builtins.registry import default_registry
from harnessc.compiler import compile_source
from harnessc.runtime.expressions import Evaluator


def check(prompt: str):
    source = f'harness t\ninput question: text\nllm s {{\n  user "{{question}} {prompt}"\n}}\noutput = s\n'
    return [item for item in compile_source(source, purpose="run").diagnostics if item.is_error]


CASES = [
    # (prompt text as written inside "...", expected error codes, the doubled form the hint shows)
    (r"\\frac{10}{3}", ["literal-placeholder", "literal-placeholder"], "{{10}}"),
    ("x^{10}", ["literal-placeholder"], "{{10}}"),
    ("{-1}", ["literal-placeholder"], "{{-1}}"),
    ("{true}", ["literal-placeholder"], "{{true}}"),
    (r"{\"a\"}", ["literal-placeholder"], '{{"a"}}'),
    ("{[1, 2]}", ["literal-placeholder"], "{{[1, 2]}}"),
    (r"{\"answer\": 1}", ["syntax-error"], '{{"answer": 1}}'),
    ("{1,2}", ["syntax-error"], "{{1,2}}"),
    ("{'a'}", ["unexpected-character"], "{{'a'}}"),
    ("{ }", ["syntax-error"], "{{ }}"),
    (r"\\sqrt{x}", ["unknown-name"], "{{x}}"),
    ("x^{n}", ["unknown-name"], "{{n}}"),
]


@pytest.mark.parametrize(("prompt", "codes", "doubled"), CASES, ids=[case[0] for case in CASES])
def test_braces_meant_as_text_are_reported_with_the_doubled_form(prompt: str, codes: list[str], doubled: str) -> None:
    errors = check(prompt)
    assert [item.code for item in errors] == codes
    assert all(any(doubled in hint for hint in item.hints) for item in errors[:1])


@pytest.mark.parametrize(
    "prompt",
    [r"\\boxed{}", r"\\frac{{10}}{{3}}", r"{{\"answer\": 1}}", "{question}", r"\\sqrt{{x}}"],
)
def test_written_as_intended_checks_clean(prompt: str) -> None:
    assert check(prompt) == []


def test_an_unknown_name_outside_latex_gets_no_brace_hint() -> None:
    (error,) = check("Hello {nme}")
    assert error.code == "unknown-name" and not any("{{" in hint for hint in error.hints)


def test_a_broken_call_gets_no_brace_hint() -> None:
    (error,) = check(r"{join(question \", \")}")
    assert error.code == "syntax-error" and not any("{{" in hint for hint in error.hints)


def test_doubled_braces_render_as_written() -> None:
    source = (
        'harness t\ninput question: text\nlet out = "\\\\frac{{10}}{{3}} {{\\"a\\": 1}} \\\\boxed{}"\noutput = out\n'
    )
    harness = compile_source(source).require()
    stage = next(stage for stage in harness.stages if isinstance(stage, ir.LetStage))
    assert Evaluator(default_registry()).evaluate(stage.value, {}) == '\\frac{10}{3} {"a": 1} \\boxed{}'
