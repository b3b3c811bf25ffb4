"""Work and memory bounded by the source, not by its expansion (harnessc/limits.py).

Each kind is tried with several members: snippets that multiply (four uses a level, two uses over long
text, uses through nested string literals), numbers out of range (literals, `--set` values, lists of
them), budgets no run can meet (`n`, `max_tokens`, a loop's `max`, given literally or through a
`param` and `--set`), nested iterations whose lengths are known. Nothing here measures time: the work is
counted (templates parsed, IR nodes built, characters printed) and must not grow with the expansion.
"""

from __future__ import annotations

import contextlib
import io
import tracemalloc

import pytest

from harnessc import ir, limits, template_parser
from harnessc.cli import main
from harnessc.compiler import compile_source
from harnessc.diagnostics import render_all


def exponential_snippets(depth: int, uses: int = 4, text: str = "{q}") -> str:
    """A small file whose snippet `S{depth}` expands to `uses ** depth` copies of `text`."""
    lines = ["harness h", "input q: text", f'snippet S0 = "{text}"']
    lines += [f'snippet S{level} = "' + f"{{S{level - 1}}}" * uses + '"' for level in range(1, depth + 1)]
    lines += [f"llm s {{ user S{depth} max_tokens 3 }}", "output = s"]
    return "\n".join(lines) + "\n"


def _codes(text: str, **options) -> list[str]:
    return [item.code for item in compile_source(text, purpose="run", **options).diagnostics]


def _ir_nodes(compilation) -> int:
    return sum(1 for _ in ir.walk(compilation.harness))


@pytest.fixture
def parses(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts template parses: the work that used to be repeated at every use of a snippet."""
    calls: list[int] = []
    original = template_parser.parse_template

    def counting(text, source, parse_expression):
        calls.append(1)
        return original(text, source, parse_expression)

    monkeypatch.setattr("harnessc.parser.parse_template", counting)
    return calls


def test_exponential_snippets_are_one_located_diagnostic_and_bounded_work(parses: list[int]) -> None:
    sizes = {}
    for depth in range(8, 13):
        parses.clear()
        text = exponential_snippets(depth)
        compilation = compile_source(text, purpose="run")
        diagnostic = next(item for item in compilation.diagnostics if item.code == "limit-exceeded")
        assert [item.code for item in compilation.diagnostics] == ["limit-exceeded"]
        assert diagnostic.span.line == depth + 4  # at the use `user S{depth}`
        assert len(parses) <= depth + 2  # each snippet's template parsed once, plus the file's own
        rendered = render_all(compilation.diagnostics, compilation.sources)
        assert len(rendered) < 2000
        sizes[depth] = _ir_nodes(compilation)
    assert len(set(sizes.values())) == 1, sizes  # the refused expansion adds nothing, whatever its depth


def test_snippets_within_the_limit_expand_fully() -> None:
    """Below the limit expansion is exact: 4 ** depth copies, and the IR grows with them."""
    nodes = []
    for depth in range(1, 5):
        compilation = compile_source(exponential_snippets(depth), purpose="run")
        assert compilation.ok
        prompt = compilation.harness.stage("s").prompt
        assert sum(ref.name == "q" for ref in ir.references(prompt)) == 4**depth
        nodes.append(_ir_nodes(compilation))
    assert nodes == sorted(nodes)


@pytest.mark.parametrize(
    "text",
    [
        exponential_snippets(30, uses=2),  # two uses a level: slower growth, same limit
        exponential_snippets(3, uses=2, text="x" * 600_000),  # long text: the character limit
        # uses through a string literal inside a placeholder, which is a template too
        exponential_snippets(12).replace('"{S11}{S11}{S11}{S11}"', '"{join([\\"{S11}\\", \\"{S11}\\"])}{S11}"'),
    ],
    ids=["two-uses-deep", "long-text", "through-a-literal"],
)
def test_other_multiplying_snippets_are_refused(text: str) -> None:
    assert _codes(text) == ["limit-exceeded"]


def test_a_snippet_cycle_still_reports_a_cycle_not_a_limit() -> None:
    text = 'harness h\ninput q: text\nsnippet A = "{B}{B}"\nsnippet B = "{A}{A}"\nllm s { user A max_tokens 3 }\n'
    assert set(_codes(text + "output = s\n")) == {"cycle"}


# ---- numbers ---------------------------------------------------------------------------------------------

_PARAM_HARNESS = """harness h
input q: text
param k: {type} = {value}
llm s {{ user "{{q}}" max_tokens 8 seed 1 }}
output = [s, to_text(k)]
"""


@pytest.mark.parametrize(
    "typ, value",
    [
        ("int", "9" * 4301),  # past Python's int-str conversion limit
        ("int", "9" * 100_000),
        ("int", "9223372036854775808"),
        ("int", "-9223372036854775809"),
        ("float", "1e999"),
        ("float", "-1" + "0" * 400 + ".0"),
        ("list[int]", "[1, 2, 99999999999999999999]"),
    ],
)
def test_numbers_out_of_range_are_diagnosed_in_the_file_and_on_the_command_line(typ: str, value: str) -> None:
    assert _codes(_PARAM_HARNESS.format(type=typ, value=value)) == ["number-out-of-range"]
    fine = "[1]" if typ.startswith("list") else "1"
    text = _PARAM_HARNESS.format(type=typ, value=fine)
    assert _codes(text, overrides={"k": value.replace(" ", "")}) == ["number-out-of-range"]


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity", "[" * 100_000])
def test_set_values_json_reads_but_the_language_does_not(value: str) -> None:
    text = _PARAM_HARNESS.format(type="float", value="1.0")
    assert _codes(text, overrides={"k": value})[0] in ("number-out-of-range", "invalid-override")


@pytest.mark.parametrize("value", ["9" * 4301, "1e999", "NaN"])
def test_the_cli_never_exits_3_on_a_number(tmp_path, value: str) -> None:
    path = tmp_path / "k.harness"
    path.write_text(_PARAM_HARNESS.format(type="float", value="1.0"), encoding="utf-8")
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        code = main(["check", "--set", f"k={value}", str(path)])
    assert code == 1 and "number-out-of-range" in out.getvalue()
    assert len(out.getvalue()) < 3000  # a 4,301-digit value is not printed whole


def test_numbers_at_the_edges_of_the_range_are_accepted() -> None:
    for value in (str(limits.MAX_INT), str(limits.MIN_INT), "1.7976931348623157e308", "-0.0"):
        typ = "float" if "." in value else "int"
        assert _codes(_PARAM_HARNESS.format(type=typ, value=value)) == []


# ---- budgets no run can meet -------------------------------------------------------------------------------

_BUDGET_HARNESS = """harness h
input q: text
param k: int = {value}
llm s {{ user "{{q}}" {option} }}
loop l from q max {loop} {{ let t = strip(l) next t }}
output = [to_text(s), l]
"""


@pytest.mark.parametrize(
    "option, loop, limit",
    [
        ("max_tokens 8 n k", "2", limits.MAX_SAMPLES),
        ("max_tokens k", "2", limits.MAX_TOKENS),
        ("max_tokens 8", "k", limits.MAX_ITERATIONS),
    ],
    ids=["n", "max_tokens", "loop-max"],
)
def test_budgets_past_the_limits_are_check_time_errors(option: str, loop: str, limit: int) -> None:
    for value, expected in ((limit, []), (limit + 1, ["limit-exceeded"]), (10**18, ["limit-exceeded"])):
        text = _BUDGET_HARNESS.format(value=value, option=option, loop=loop)
        assert _codes(text) == expected, value
    text = _BUDGET_HARNESS.format(value=1, option=option, loop=loop)
    assert _codes(text, overrides={"k": str(10**15)}) == ["limit-exceeded"]
    assert _codes(text, overrides={"k": str(10**100)}) == ["number-out-of-range"]


@pytest.mark.parametrize(
    "body, expected",
    [
        ('"{for a in letters}{for b in letters}{for c in letters}{a}{end}{end}{end}"', []),  # 1,000,000
        ('"{for a in letters}{for b in letters}{for c in letters}{for d in letters}{a}{end}{end}{end}{end}"', 1),
        ('"{for a in many}{for b in many}{a}{end}{end}"', 1),
        ('"{for a in samples}{for b in samples}{for c in letters}{a}{end}{end}{end}"', 1),
        ('"{join([join([x for x in many]) for y in many])}"', 1),
        ('"{for a in q_list}{for b in q_list}{for c in q_list}{a}{end}{end}{end}"', []),  # lengths unknown
    ],
)
def test_nested_iterations_over_known_lengths_multiply(body: str, expected) -> None:
    letters = "[" + ", ".join(f'"{index}"' for index in range(100)) + "]"
    many = "[" + ", ".join(f'"{index}"' for index in range(1001)) + "]"
    text = f"""harness h
input q: text
input q_list: list[text]
param letters: list[text] = {letters}
param many: list[text] = {many}
llm samples {{ user "{{q}}" n 1000 max_tokens 8 }}
llm s {{ user {body} max_tokens 8 }}
output = [s, majority(samples)]
"""
    assert _codes(text) == (["limit-exceeded"] * expected if expected else [])


# ---- memory ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["plain", "long", "escapes"])
def test_a_long_string_literal_takes_memory_linear_in_its_size(kind: str) -> None:
    """A 300 kB literal: once ~400 bytes a character (a regex backtracking stack and a tuple of ints)."""
    size = 300_000
    literal = {
        "plain": '"{q}' + "x" * size + '"',
        "long": '"""\n  {q}\n' + ("  " + "y" * 70 + "\n") * (size // 73) + '"""',
        "escapes": '"{q}' + "\\n" * (size // 2) + '"',
    }[kind]
    text = f"harness h\ninput q: text\nllm s {{ user {literal} max_tokens 3 }}\noutput = s\n"
    compile_source("harness h\n")  # build the parser outside the measurement
    tracemalloc.start()
    try:
        compilation = compile_source(text, purpose="run")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert compilation.ok
    assert peak < 40 * size, f"{peak / size:.0f} bytes a character"
