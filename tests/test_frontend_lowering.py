"""The front end's passes, one property each: the parser produces complete trees (templates parsed,
constants told apart), lowering covers every node kind, and stages are lowered in the order of what
they read (harnessc/lowering/order.py), whatever order they are declared in."""

from __future__ import annotations

import dataclasses
from typing import get_args

import pytest

from harnessc import ast, ir
from harnessc.compiler import compile_source
from harnessc.lowering import EXPRESSIONS
from harnessc.parser import parse_module
from harnessc.source import SourceFile


def _codes(text: str) -> list[str]:
    return [item.code for item in compile_source("harness h\ninput q: text\n" + text, purpose="run").diagnostics]


def test_every_expression_kind_has_a_lowering() -> None:
    assert set(EXPRESSIONS) == set(get_args(ast.Expr))


# ---- parsing ---------------------------------------------------------------------------------------------


def test_templates_are_parsed_by_the_parser() -> None:
    module, problems = parse_module(SourceFile("t.harness", 'harness h\nlet a = "x {if q}{q.f}{end} {{"\n'))
    assert module is not None and problems == []
    let = module.items[0]
    assert isinstance(let, ast.LetStage) and isinstance(let.value, ast.TemplateLiteral)
    text, branch, brace = let.value.parts
    assert text == ast.TemplateText(value="x ", span=text.span)
    assert isinstance(branch, ast.TemplateIf) and isinstance(branch.then[0], ast.TemplatePlaceholder)
    assert isinstance(brace, ast.TemplateText) and brace.value == " {"


def test_template_syntax_errors_are_reported_by_the_parser_even_where_unused() -> None:
    text = 'harness h\nsnippet UNUSED = "{if x}"\nsnippet ALSO = "a }"\n'
    module, problems = parse_module(SourceFile("t.harness", text))
    assert module is not None
    assert sorted(item.code for item in problems) == ["template-block", "unbalanced-brace"]


@pytest.mark.parametrize(
    "item, path",
    [
        ('llm s { user "u" regex "[0-9]{3}" }', lambda item: item.body.settings[1].value),
        ('llm s { user "u" stop ["{", "}"] }', lambda item: item.body.settings[1].value.items[0]),
        ('param p: text = "{x"', lambda item: item.default),
        ('bank b { t: text = "{q}" search t file "{x}.jsonl" }', lambda item: item.settings[1].value),
    ],
)
def test_strings_where_constants_go_are_not_templates(item: str, path) -> None:
    module, problems = parse_module(SourceFile("t.harness", f"harness h\n{item}\n"))
    assert module is not None and problems == []
    assert isinstance(path(module.items[0]), ast.StringLiteral)


# ---- lowering order ----------------------------------------------------------------------------------------


def test_a_stage_read_before_it_is_declared_has_its_type() -> None:
    """`draft` is guarded (`text?`): printing it unconditionally is reported, wherever it is declared."""
    later = 'llm solve { user "{draft}" max_tokens 3 }\nllm draft when nonempty(q) { user "{q}" max_tokens 3 }\n'
    assert _codes(later + "output = solve\n") == ["optional-placeholder"]


def test_a_stage_read_through_a_snippet_has_its_type() -> None:
    text = (
        'snippet SHOW = "{draft}"\nllm solve { user SHOW max_tokens 3 }\n'
        'llm draft when nonempty(q) { user "{q}" max_tokens 3 }\noutput = solve\n'
    )
    assert _codes(text) == ["optional-placeholder"]


def test_a_local_named_like_a_stage_is_not_a_read_of_it() -> None:
    """`{for plan in ...}` binds `plan` in `solve`: no cycle with the stage `plan`, which reads `solve`."""
    text = (
        'llm plan { user "{solve}" max_tokens 3 }\n'
        'param steps: list[text] = ["a"]\n'
        'llm solve { user "{for plan in steps}{plan}{end} [x for x in [q]]" max_tokens 3 }\n'
        "output = plan\n"
    )
    assert _codes(text) == []


def test_a_cycle_through_a_snippet_is_a_cycle_of_stages() -> None:
    """Filling in a snippet used to lower the stages it reads inside the expansion, which then saw the
    snippet as including itself."""
    compilation = compile_source('harness h\nsnippet S = "{b}"\nlet b = strip(S)\noutput = b\n', purpose="run")
    assert [(item.code, item.message) for item in compilation.diagnostics] == [
        ("cycle", "stage `b` reads its own value")
    ]


def test_inside_its_loop_the_loop_value_is_present_and_outside_its_steps_may_not_have_run() -> None:
    text = (
        "input o: text optional\n"
        "loop l from o max 2 { let s = strip(l) next s }\n"  # inside, `l` is text: strip(l) is fine
        'let after = "{s}"\n'  # outside, `s` may not have run: text?
        "output = [after, l]\n"  # outside, `l` is what it starts from: text?
    )
    compilation = compile_source("harness h\n" + text, purpose="run")
    assert [item.message for item in compilation.diagnostics] == [
        "`s` may be absent here",
        "list items must share one type: text and text?",
    ]


def test_a_long_chain_through_loops_declared_last_first() -> None:
    lines = [
        f"loop l{index} from l{index + 1} max 2 {{ let s{index} = strip(l{index}) next s{index} }}"
        for index in range(300)
    ]
    text = "\n".join(lines) + "\nlet l300 = strip(q)\noutput = l0\n"
    assert _codes(text) == []


# ---- the IR ------------------------------------------------------------------------------------------------


def test_stage_lookup_follows_the_harness_it_belongs_to() -> None:
    harness = compile_source(
        'harness h\ninput q: text\nllm a { user "{q}" max_tokens 3 }\nlet b = strip(a)\noutput = b\n'
    ).require()
    assert harness.stage("b") is harness.stages[1]
    fewer = dataclasses.replace(harness, stages=harness.stages[:1])
    assert fewer.stage("b") is None and harness.stage("b") is not None
    assert ir.loads(ir.dumps(harness)) == harness and "_stage_index" not in ir.dumps(harness)
