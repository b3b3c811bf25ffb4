"""Integer arithmetic, comparison, list indexing and slicing (docs/language.md, "Expressions"): static types
and values, as tables; and one harness run end to end on the scripted engine, by the stage-synchronous
executor and the per-example interpreter alike (they share the evaluator)."""

from __future__ import annotations

from typing import Any

import pytest

from harnessc import ir
from harnessc.builtins.registry import default_registry
from harnessc.compiler import compile_source
from harnessc.engines.scripted import ScriptedEngine
from harnessc.runtime.executor import StageSynchronousExecutor
from harnessc.runtime.expressions import Evaluator, OperatorFailure
from harnessc.runtime.interpreter import PerExampleInterpreter
from harnessc.runtime.program import Program

HEAD = "harness t\ninput xs: list[text]\ninput n: int\ninput t: text\ninput o: int optional\n"
VALUES = {"xs": ("a", "b", "c", "d"), "n": 7, "t": "hello", "o": None}


def lowered(expression: str):
    compilation = compile_source(HEAD + f'let out = {expression}\noutput = "x"\n')
    stage = None
    if compilation.harness is not None:
        stage = next((item for item in compilation.harness.stages if item.name == "out"), None)
    return compilation, stage


def evaluate(expression: str) -> Any:
    compilation, stage = lowered(expression)
    assert compilation.ok, [item.message for item in compilation.diagnostics]
    assert isinstance(stage, ir.LetStage)
    return str(stage.type), Evaluator(default_registry()).evaluate(stage.value, VALUES)


VALUED = [
    # (expression, its static type, its value for VALUES)
    ("n + 1", "int", 8),
    ("n-1", "int", 6),
    ("n - -1", "int", 8),
    ("1 + 2 * 3", "int", 7),
    ("(1 + 2) * 3", "int", 9),
    ("10 - 2 - 3", "int", 5),
    ("n // 2", "int", 3),
    ("-7 // 2", "int", -4),
    ("n % 2", "int", 1),
    ("7 % -2", "int", -1),
    ("n % 2 == 1", "bool", True),
    ("n * 2 >= 14", "bool", True),
    ("n < 3", "bool", False),
    ("o + 1", "int?", None),
    ("o > 2", "bool", False),
    ("xs[0]", "text", "a"),
    ("xs[-1]", "text", "d"),
    ("[1, 2, 3][1]", "int", 2),
    ("xs[:3]", "list[text]", ("a", "b", "c")),
    ("xs[1:]", "list[text]", ("b", "c", "d")),
    ("xs[-2:]", "list[text]", ("c", "d")),
    ("xs[1:-1]", "list[text]", ("b", "c")),
    ("xs[:n // 2]", "list[text]", ("a", "b", "c")),
    ("xs[:100]", "list[text]", ("a", "b", "c", "d")),
    ("t[:2]", "text", "he"),
    ("size(xs[:3]) < 4", "bool", True),
    ('"{n + 1} of {size(xs)}"', "text", "8 of 4"),
    ('"{xs[0]}, {join(xs[1:3], \\"+\\")}"', "text", "a, b+c"),
    ("[x for x in xs][size(xs) - 1]", "text", "d"),
]


@pytest.mark.parametrize(("expression", "typ", "value"), VALUED, ids=[case[0] for case in VALUED])
def test_type_and_value(expression: str, typ: str, value: Any) -> None:
    assert evaluate(expression) == (typ, value)


FAILING = ["n // 0", "n % 0", "n // (n - 7)", "xs[4]", "xs[-5]"]


@pytest.mark.parametrize("expression", FAILING)
def test_division_by_zero_and_an_index_outside_the_list_fail_the_example(expression: str) -> None:
    with pytest.raises(OperatorFailure) as caught:
        evaluate(expression)
    assert caught.value.reason == "operator-error" and "line 6" in str(caught.value)


MISTYPED = [
    ("t + 1", "`+` takes int operands, but this is text"),
    ('"a" + n', "`+` takes int operands, but this is text"),
    ("n * 1.5", "`*` takes int operands, but this is float"),
    ("xs[t]", "an index must be int, but this is text"),
    ("n[0]", "`[...]` takes an item of a list, but this is int"),
    ("t[0]", "`[...]` takes an item of a list, but this is text"),
    ("xs[:t]", "a slice bound must be int, but this is text"),
    ("n[1:]", "`[a:b]` takes a part of a list or a text, but this is int"),
    ('t < "b"', "cannot compare text < text"),
]


@pytest.mark.parametrize(("expression", "message"), MISTYPED, ids=[case[0] for case in MISTYPED])
def test_mistyped_operands_are_reported(expression: str, message: str) -> None:
    compilation, _ = lowered(expression)
    errors = [item for item in compilation.diagnostics if item.is_error]
    assert [item.code for item in errors] == ["type-mismatch"]
    assert errors[0].message == message


END_TO_END = """harness vote "At most three samples, odd-length answers counted"
input question: text
llm sample { user "{question}" n 5 max_tokens 8 }
let kept = sample[:3]
let first = sample[0]
let odd = [size(split(answer, " ")) % 2 == 1 for answer in kept]
output = "{first} | {size(kept)} kept | last {kept[-1]} | {size(kept) * 10 // 3}{if size(kept) > 2} many{end}"
"""


@pytest.mark.parametrize("runner", [StageSynchronousExecutor, PerExampleInterpreter])
def test_a_harness_using_them_runs_alike_in_both_runtimes(runner) -> None:
    engine = ScriptedEngine(lambda request, sample: f"answer {sample}")
    program = Program(compile_source(END_TO_END).require())
    records = runner(program, engine).run([(0, {"question": "q"})])
    assert records[0].failure is None
    assert records[0].output == "answer 0 | 3 kept | last answer 2 | 10 many"
