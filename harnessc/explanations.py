"""`harnessc explain CODE`: for each diagnostic code a small bad harness and how to fix it.

The message shown is not written here: `explain` compiles the example and prints what the checker really
says, so the explanation cannot drift from the implementation (tests/test_explanations.py checks that
every example produces its code, and docs/diagnostics.md is generated from this table).
"""

from __future__ import annotations

from dataclasses import dataclass

from harnessc.codes import CODES


@dataclass(frozen=True, slots=True)
class Explanation:
    example: str  # a complete harness file that triggers the code
    fix: str
    purpose: str = "run"  # checked as for `harnessc check --for PURPOSE` (run: no training-view warnings)


EXPLANATIONS: dict[str, Explanation] = {
    "unknown-name": Explanation(
        example='harness demo\ninput question: text\nllm solve {\n  user "Problem: {questoin}"\n  max_tokens 256\n}\n'
                "output = solve\n",
        fix="Use a declared input, parameter, stage or snippet; the hint names the closest one.",
    ),
}


def example_diagnostics(code: str) -> str:
    """The rendered diagnostics of `code`'s example (compiled now, as the checker reports them)."""
    from harnessc.compiler import compile_source
    from harnessc.diagnostics import render_all

    explanation = EXPLANATIONS[code]
    compilation = compile_source(explanation.example, f"example-{code}.harness", purpose=explanation.purpose)
    return render_all(compilation.diagnostics, compilation.sources)


def explain(code: str) -> str:
    entry = CODES[code]
    lines = [f"{code} ({entry.severity.value}): {entry.summary}", ""]
    explanation = EXPLANATIONS.get(code)
    if explanation is None:
        return "\n".join(lines + ["(no example yet)"])
    lines += ["Example:", "", *("    " + line for line in explanation.example.rstrip().splitlines()), ""]
    lines += ["What harnessc says:", "", *("    " + line for line in example_diagnostics(code).splitlines()), ""]
    lines += ["Fix:", "", "    " + explanation.fix]
    return "\n".join(lines)
