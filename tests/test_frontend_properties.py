"""Property tests: the front end never raises on bad input, it returns diagnostics.

`compile_source` and `compile_file` promise that every problem in the input is a Diagnostic; the CLI
promises exit code 0 or 1 and no Python traceback for any harness file. Hypothesis throws random text,
mutated copies of the shipped harnesses (lines deleted or duplicated, tokens swapped, junk inserted,
truncation), random bytes, an empty file and a 2,000-stage file at both. The regression tests at the
end pin the crashes these properties found.
"""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest
from conftest import REPO
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from harnessc.cli import main
from harnessc.compiler import Compilation, compile_file, compile_source
from harnessc.diagnostics import Diagnostic, render_all, render_json

SHIPPED = sorted((REPO / "harnesses").glob("*.harness"))
TEXTS = [path.read_text(encoding="utf-8") for path in SHIPPED]
# A mutant is compiled as if it lived next to the shipped harnesses, so that its imports resolve.
MUTANT_PATH = str(REPO / "harnesses" / "mutant.harness")
PURPOSES = ("any", "run", "train")

FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SLOW = settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
)

# Tokens of the language, roughly: triple-quoted and plain strings, names, numbers, any other character.
_TOKEN = re.compile(r'"""(?:.|\n)*?"""|"(?:\\.|[^"\\\n])*"|[A-Za-z_]\w*|-?\d+(?:\.\d+)?|\S')
# Pieces that stress the lexer and the template scanner.
_JUNK_PIECES = [
    *"{}[]()\"\\#=:.,<>!?;'+&|@$%^*~`",
    "\n",
    "\t",
    "\r",
    "\x00",
    "\ufeff",
    "\u00e9",
    "\u2028",
    "\U0001f600",
    '"""',
    "{if x}",
    "{end}",
    "{else}",
    "{for x in y}",
    "{{",
    "}}",
    "{}",
    "\\boxed{}",
]
_JUNK = st.lists(st.sampled_from(_JUNK_PIECES), min_size=1, max_size=6).map("".join)


def assert_diagnosed(compilation: Compilation) -> None:
    """What every compilation must be: a list of diagnostics that render; an error when there is no IR."""
    assert isinstance(compilation, Compilation)
    assert all(isinstance(item, Diagnostic) for item in compilation.diagnostics)
    if compilation.harness is None:
        assert any(item.is_error for item in compilation.diagnostics), "no harness but no error either"
    for item in compilation.diagnostics:
        assert item.span.line >= 1 and item.span.column >= 1, item
    render_all(compilation.diagnostics, compilation.sources)
    render_json(compilation.diagnostics, compilation.sources)


def compile_all_purposes(text: str, path: str = MUTANT_PATH) -> None:
    for purpose in PURPOSES:
        assert_diagnosed(compile_source(text, path, purpose=purpose))


def run_cli(*argv: str) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue() + err.getvalue()


ALL_COMMANDS = (("check",), ("check", "--format", "json", "--for", "train"), ("graph",), ("compile", "--for", "run"))


def assert_cli_survives(path: Path, commands: tuple[tuple[str, ...], ...] = ALL_COMMANDS) -> None:
    for argv in ([*command, str(path)] for command in commands):
        code, output = run_cli(*argv)
        assert "Traceback" not in output, output
        assert "internal error" not in output, output
        assert code in (0, 1), (argv, code, output)


# ---- mutations of the shipped harnesses -------------------------------------------------------------------


def _lines(text: str) -> list[str]:
    return text.split("\n")


@st.composite
def deleted_lines(draw) -> str:
    lines = _lines(draw(st.sampled_from(TEXTS)))
    for _ in range(draw(st.integers(1, 5))):
        if lines:
            del lines[draw(st.integers(0, len(lines) - 1))]
    return "\n".join(lines)


@st.composite
def duplicated_lines(draw) -> str:
    lines = _lines(draw(st.sampled_from(TEXTS)))
    for _ in range(draw(st.integers(1, 4))):
        line = lines[draw(st.integers(0, len(lines) - 1))]
        lines.insert(draw(st.integers(0, len(lines))), line)
    return "\n".join(lines)


@st.composite
def swapped_tokens(draw) -> str:
    text = draw(st.sampled_from(TEXTS))
    tokens = list(_TOKEN.finditer(text))
    indices = st.lists(st.integers(0, len(tokens) - 1), min_size=2, max_size=2, unique=True)
    first, second = sorted(draw(indices))
    a, b = tokens[first], tokens[second]
    return text[: a.start()] + b.group() + text[a.end() : b.start()] + a.group() + text[b.end() :]


@st.composite
def replaced_tokens(draw) -> str:
    """One token replaced by another token of the same file (a keyword where a name goes, ...)."""
    text = draw(st.sampled_from(TEXTS))
    tokens = list(_TOKEN.finditer(text))
    target = tokens[draw(st.integers(0, len(tokens) - 1))]
    other = tokens[draw(st.integers(0, len(tokens) - 1))]
    return text[: target.start()] + other.group() + text[target.end() :]


@st.composite
def inserted_junk(draw) -> str:
    text = draw(st.sampled_from(TEXTS))
    for _ in range(draw(st.integers(1, 3))):
        position = draw(st.integers(0, len(text)))
        text = text[:position] + draw(_JUNK | st.text(min_size=1, max_size=5)) + text[position:]
    return text


@st.composite
def truncated(draw) -> str:
    text = draw(st.sampled_from(TEXTS))
    return text[: draw(st.integers(0, len(text)))]


MUTATIONS = [deleted_lines(), duplicated_lines(), swapped_tokens(), replaced_tokens(), inserted_junk(), truncated()]
MUTATION_NAMES = [
    "deleted_lines",
    "duplicated_lines",
    "swapped_tokens",
    "replaced_tokens",
    "inserted_junk",
    "truncated",
]


@st.composite
def mutated(draw) -> str:
    """One to three mutations applied in a row (each starting from the previous result)."""
    text = draw(st.one_of(MUTATIONS))
    for _ in range(draw(st.integers(0, 2))):
        position = draw(st.integers(0, len(text)))
        kind = draw(st.integers(0, 2))
        if kind == 0:
            text = text[:position] + draw(_JUNK) + text[position:]
        elif kind == 1:
            text = text[:position]
        else:
            lines = _lines(text)
            del lines[draw(st.integers(0, len(lines) - 1))]
            text = "\n".join(lines)
    return text


# ---- properties -------------------------------------------------------------------------------------------


def test_the_unmutated_harnesses_compile_cleanly() -> None:
    """The mutations start from valid files (otherwise the properties below would prove little)."""
    assert len(TEXTS) >= 5
    for text in TEXTS:
        compilation = compile_source(text, MUTANT_PATH, purpose="train")
        assert compilation.ok, [(item.code, str(item.span)) for item in compilation.diagnostics]


@FAST
@given(st.text(max_size=400))
@example("")
@example("harness")
@example('harness h\noutput = "{x y}"')
@example('harness h\noutput = "{"')
@example('harness h\nimport "\x00"')
def test_random_text_gives_diagnostics(text: str) -> None:
    compile_all_purposes(text)


@FAST
@given(st.lists(st.sampled_from(sorted({m.group() for text in TEXTS for m in _TOKEN.finditer(text)})), max_size=80))
def test_random_token_soup_gives_diagnostics(tokens: list[str]) -> None:
    """Sequences of the language's own tokens get much further into the parser than random characters."""
    compile_all_purposes("harness soup\n" + " ".join(tokens))


@pytest.mark.parametrize("mutation", MUTATIONS, ids=MUTATION_NAMES)
def test_mutated_harnesses_give_diagnostics(mutation) -> None:
    @FAST
    @given(mutation)
    def check(text: str) -> None:
        compile_all_purposes(text)

    check()


@FAST
@given(mutated())
def test_repeatedly_mutated_harnesses_give_diagnostics(text: str) -> None:
    compile_all_purposes(text)


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory with a copy of harnesses/common, so that mutants written here resolve their imports."""
    directory = tmp_path_factory.mktemp("frontend-properties")
    (directory / "common").mkdir()
    for path in (REPO / "harnesses" / "common").glob("*.harness"):
        (directory / "common" / path.name).write_bytes(path.read_bytes())
    return directory


@SLOW
@given(data=st.binary(max_size=300))
@example(data=b"\xff\xfe\x00")
@example(data=b"harness h\n\xc3")
@example(data='harness h\ninput q: text\noutput = "{q}"\n'.encode("utf-16"))
def test_random_bytes_in_a_file_give_diagnostics(scratch: Path, data: bytes) -> None:
    path = scratch / "bytes.harness"
    path.write_bytes(data)
    compilation = compile_file(path)
    assert_diagnosed(compilation)
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        assert [item.code for item in compilation.diagnostics] == ["invalid-encoding"]


@SLOW
@given(mutated() | st.binary(max_size=200).map(lambda data: data.decode("latin-1")))
def test_cli_never_prints_a_traceback(scratch: Path, text: str) -> None:
    path = scratch / "mutant.harness"
    path.write_text(text, encoding="utf-8")
    assert_cli_survives(path)


@SLOW
@given(st.binary(min_size=1, max_size=100))
def test_cli_on_non_utf8_bytes(scratch: Path, data: bytes) -> None:
    path = scratch / "cli-bytes.harness"
    path.write_bytes(b"\xff" + data)
    code, output = run_cli("check", str(path))
    assert code == 1 and "invalid-encoding" in output and "Traceback" not in output


def test_empty_file(scratch: Path) -> None:
    path = scratch / "empty.harness"
    path.write_text("", encoding="utf-8")
    compilation = compile_file(path)
    assert_diagnosed(compilation)
    assert not compilation.ok
    assert_cli_survives(path)


def test_missing_file_and_directory(scratch: Path) -> None:
    for path in (scratch / "does-not-exist.harness", scratch):
        compilation = compile_file(path)
        assert_diagnosed(compilation)
        assert [item.code for item in compilation.diagnostics] == ["unreadable-file"]
        code, output = run_cli("check", str(path))
        assert code == 1 and "Traceback" not in output


def huge_harness(stages: int) -> str:
    """A valid harness of `stages` stages in a chain: llm stages (some guarded) and `let`s."""
    lines = [
        'harness huge "generated"',
        "input question: text",
        "input answer: text oracle",
        "param tokens: int = 256",
        "llm s0 {",
        '  user "Problem: {question}"',
        "  max_tokens tokens",
        "}",
    ]
    for index in range(1, stages):
        previous = f"s{index - 1}"
        if index % 3 == 1:
            lines.append(f"let s{index} = strip_think({previous})")
        elif index % 3 == 2:
            lines += [
                f"llm s{index} when nonempty({previous}) {{",
                f'  user "Improve: {{{previous}}} for {{question}}"',
                "  max_tokens tokens",
                "} else {",
                '  user "Solve: {question}"',
                "  max_tokens tokens",
                "}",
            ]
        else:
            lines += [
                f"llm s{index} {{",
                f'  system "Step {index}."',
                f'  user "{{question}}\\n{{{previous}}}"',
                "  temperature 0.6",
                "  max_tokens tokens",
                "}",
            ]
    last_llm = max(index for index in range(stages) if index % 3 != 1)
    lines += [
        'student { user "{question}" }',
        f"teacher = s{last_llm} else student",
        f"output = extract_boxed(s{stages - 1})",
        "grade = math_equal(output, answer)",
    ]
    return "\n".join(lines) + "\n"


def test_huge_file_compiles_and_passes_the_cli(scratch: Path) -> None:
    text = huge_harness(2000)
    compilation = compile_source(text, "huge.harness", purpose="train")
    assert compilation.ok, [(item.code, str(item.span)) for item in compilation.diagnostics][:5]
    assert len(compilation.require().stages) == 2000
    path = scratch / "huge.harness"
    path.write_text(text, encoding="utf-8")
    assert_cli_survives(path, (("check", "--format", "json", "--for", "train"),))


def test_huge_file_with_an_error_in_the_middle() -> None:
    lines = huge_harness(2000).split("\n")
    middle = next(index for index in range(len(lines) // 2, len(lines)) if lines[index].startswith("let "))
    lines.insert(middle, 'llm broken { user "{nowhere}" max_tokens 1 }')
    compilation = compile_source("\n".join(lines), "huge.harness")
    assert_diagnosed(compilation)
    assert "unknown-name" in {item.code for item in compilation.diagnostics}


# ---- regressions: crashes these properties found ----------------------------------------------------------


@pytest.mark.parametrize("template", ["{x y}", "{x)}", "{if f(x))}{end}", "{[x]]}", "{for a in x y}{end}"])
def test_template_expression_followed_by_junk_is_a_syntax_error(template: str) -> None:
    """Lark lists no expected token after a complete expression: the message used to raise IndexError."""
    compilation = compile_source(f'harness h\ninput x: text\noutput = "{template}"\n', purpose="run")
    assert_diagnosed(compilation)
    assert "syntax-error" in {item.code for item in compilation.diagnostics}


def test_import_path_with_a_nul_character_is_diagnosed() -> None:
    compilation = compile_source('harness h\nimport "a\x00b.harness"\n', MUTANT_PATH)
    assert_diagnosed(compilation)
    assert "import-not-found" in {item.code for item in compilation.diagnostics}
    assert_diagnosed(compile_file("nul\x00.harness"))


@pytest.mark.parametrize(
    "text",
    [
        # a loop whose name is taken: its inner stages must not belong to a loop that is not in the graph
        "harness h\ninput x: text\nloop x from x max 2 {\n let a = strip(x)\n next a\n}\noutput = a\n",
        # an inner stage whose name is taken by an earlier declaration
        "harness h\ninput x: text\nlet a = x\nloop l from x max 2 {\n let a = strip(l)\n next a\n}\noutput = l\n",
    ],
)
def test_duplicate_names_around_loops(text: str) -> None:
    compilation = compile_source(text, purpose="run")
    assert_diagnosed(compilation)
    assert "duplicate-definition" in {item.code for item in compilation.diagnostics}


DEEP_SHAPES = {
    "not": lambda depth: "output = " + "not " * depth + "x",
    "list": lambda depth: "output = " + "[" * depth + "]" * depth,
    "field": lambda depth: "output = x" + ".a" * depth,
    "call": lambda depth: "output = " + "strip(" * depth + "x" + ")" * depth,
    "and": lambda depth: "output = " + " and ".join(["x"] * depth),
    "comprehension": lambda depth: "output = " + "[y for y in " * depth + "[x]" + "]" * depth,
    "template-if": lambda depth: 'output = "' + "{if x}" * depth + "{end}" * depth + '"',
    "template-expression": lambda depth: 'output = "{' + "not " * depth + 'x}"',
    "type": lambda depth: "input y: " + "list[" * depth + "text" + "]" * depth,
    "record": lambda depth: "input y: " + "record{a: " * depth + "text" + "}" * depth,
}


@pytest.mark.parametrize("depth", [100, 2000])
@pytest.mark.parametrize("shape", sorted(DEEP_SHAPES))
def test_deep_nesting_is_a_diagnostic_not_a_recursion_error(shape: str, depth: int) -> None:
    compilation = compile_source(f"harness h\ninput x: bool\n{DEEP_SHAPES[shape](depth)}\n", purpose="run")
    assert_diagnosed(compilation)
    assert any("nested" in item.message for item in compilation.diagnostics)


@pytest.mark.parametrize("shape", sorted(DEEP_SHAPES))
def test_moderate_nesting_is_fine(shape: str) -> None:
    compilation = compile_source(f"harness h\ninput x: bool\n{DEEP_SHAPES[shape](20)}\n", purpose="run")
    assert_diagnosed(compilation)
    assert not any("nested" in item.message for item in compilation.diagnostics)


def _chain(count: int, read: str) -> str:
    lines = ["harness h", "input x: text"]
    lines += [f"let s{index} = strip({read.format(next=index + 1)})" for index in range(count - 1)]
    lines += [f"let s{count - 1} = strip(x)", "output = s0"]
    return "\n".join(lines) + "\n"


def test_a_long_chain_declared_last_first_compiles() -> None:
    """Each stage reads the one declared after it: lowering used to recurse once per stage."""
    compilation = compile_source(_chain(1500, "s{next}"), purpose="run")
    assert compilation.ok, [item.code for item in compilation.diagnostics][:5]
    assert [stage.name for stage in compilation.require().stages][:2] == ["s1499", "s1498"]


def test_a_long_cycle_is_one_diagnostic() -> None:
    lines = ["harness h", "input x: text"]
    lines += [f"let s{index} = strip(s{(index + 1) % 1000})" for index in range(1000)] + ["output = s0"]
    compilation = compile_source("\n".join(lines), purpose="run")
    assert_diagnosed(compilation)
    assert [item.code for item in compilation.diagnostics if item.is_error] == ["cycle"]


def test_a_long_chain_inside_a_loop_in_the_wrong_order() -> None:
    lines = ["harness h", "input x: text", "loop l from x max 2 {"]
    lines += [f"  let s{index} = strip(s{index + 1})" for index in range(999)]
    lines += ["  let s999 = strip(l)", "  next s0", "}", "output = l"]
    compilation = compile_source("\n".join(lines), purpose="run")
    assert_diagnosed(compilation)
    assert "loop-order" in {item.code for item in compilation.diagnostics}


@pytest.mark.parametrize(
    "snippets",
    [
        ['snippet A = "x {A}"'],
        ['snippet A = "x {B}"', 'snippet B = "y {A}"'],
        ['snippet A = "x {B}"', 'snippet B = "{C}"', 'snippet C = "{A} {q}"'],
    ],
)
def test_snippets_that_include_themselves_are_a_cycle(snippets: list[str]) -> None:
    """Filling in a snippet that includes itself used to recurse until RecursionError."""
    text = "\n".join(
        ["harness h", "input q: text", *snippets, "llm s { user A max_tokens 3 }", 'let t = "{A}"', "output = [s, t]"]
    )
    compilation = compile_source(text, purpose="run")
    assert_diagnosed(compilation)
    assert [item.code for item in compilation.diagnostics] == ["cycle"]


def test_a_long_chain_of_snippets_is_a_diagnostic() -> None:
    chain = [f'snippet S{index} = "a{{S{index + 1}}}"' for index in range(200)] + ['snippet S200 = "{q}"']
    text = "\n".join(["harness h", "input q: text", *chain, "llm s { user S0 max_tokens 3 }", "output = s"])
    compilation = compile_source(text, purpose="run")
    assert_diagnosed(compilation)
    assert any("levels deep" in item.message for item in compilation.diagnostics)


# ---- random declarations: well-formed pieces in random combinations ---------------------------------------

_NAMES = ["q", "x", "a", "b", "s", "l", "cases", "A", "student", "output"]
_EXPRESSIONS = [
    "q",
    "x",
    "a.f",
    "s",
    "l",
    "A",
    "strip(q)",
    "nonempty(x)",
    "coalesce(x, q)",
    "[q, a]",
    "[strip(i) for i in l]",
    "size(cases)",
    "retrieve(cases, q, k=2)",
    "x and not b",
    "a == q",
    "s >= 1",
    '"{q} {if x}{x}{end}"',
    '"{for i in l}{i}{end}"',
    "join(l)",
    "majority(l)",
    'regex_capture(q, "(a")',
    "strip()",
    "student",
    "output",
    "true",
    "3",
    "-0.5",
]
_BODIES = [
    '{ user "{q}" max_tokens 3 }',
    '{ system A user "{x}" n 2 }',
    '{ user "{s}" choice ["a"] regex "b" }',
    "{ }",
    '{ assistant "a" temperature -1 }',
    '{ user "{l}" json "[" max_tokens q }',
    '{ user "{output} {student}" thinking on stop "x" }',
]


@st.composite
def random_declarations(draw) -> str:
    """Declarations that parse, in random combinations: what the lowering and the checks must survive
    (duplicates, cycles, loops reading the wrong things, views reading anything)."""
    name, expression, body = st.sampled_from(_NAMES), st.sampled_from(_EXPRESSIONS), st.sampled_from(_BODIES)
    types = st.sampled_from(["text", "int", "list[text]", "record{f: text}", "bool"])
    kinds = [
        st.builds("input {}: {} {}".format, name, types, st.sampled_from(["", "optional", "oracle"])),
        st.builds("param {}: {} = {}".format, name, st.sampled_from(["int", "text", "list[text]"]), expression),
        st.builds('snippet {} = "{{{}}}"'.format, name, name),
        st.builds("let {} = {}".format, name, expression),
        st.builds("llm {} {}".format, name, body),
        st.builds("llm {} when {} {} else {}".format, name, expression, body, body),
        st.builds(
            "loop {} from {} max {} {{ let {} = {} until {} next {} }}".format,
            name,
            expression,
            st.sampled_from(["2", "q", "0"]),
            name,
            expression,
            expression,
            expression,
        ),
        st.builds("bank {} {{ text: text = {} search text label {} }}".format, name, expression, name),
        st.builds("student {}".format, body),
        st.builds("teacher {}".format, body),
        st.builds("teacher = {} else {}".format, name, name),
        st.builds("output = {}".format, expression),
        st.builds("student_output = {}".format, expression),
        st.builds("grade = {}".format, expression),
    ]
    items = draw(st.lists(st.one_of(kinds), max_size=14))
    return "harness random\n" + "\n".join(items) + "\n"


@FAST
@given(random_declarations())
def test_random_declarations_give_diagnostics(text: str) -> None:
    compile_all_purposes(text)


# ---- the fast paths agree with the slow ones ---------------------------------------------------------------


@FAST
@given(st.lists(st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,6}", fullmatch=True), min_size=1, max_size=4))
def test_dotted_names_parse_like_the_grammar(parts: list[str]) -> None:
    """Template placeholders that are plain (dotted) names skip the parser; the result must be identical."""
    from harnessc.names import KEYWORDS
    from harnessc.parser import _to_ast, dotted_name, lark_parser
    from harnessc.source import ShiftedSource, SourceFile

    text = ".".join(parts)
    source = SourceFile("t.harness", f'let x = "{{{text}}}"')
    shifted = ShiftedSource(source, text, tuple(range(10, 10 + len(text))))
    fast = dotted_name(text, shifted)
    if any(part in KEYWORDS for part in parts):
        assert fast is None
    else:
        assert fast == _to_ast(lark_parser().parse(text, start="expr"), shifted, source, [])


def test_ir_walk_visits_what_a_plain_dataclass_traversal_visits() -> None:
    """ir.walk skips fields that cannot hold nodes: it must still find every node, in the same order."""
    import dataclasses

    from harnessc import ir

    def reference(node):
        yield node
        for field in dataclasses.fields(node):
            value = getattr(node, field.name)
            for item in value if isinstance(value, tuple) else (value,):
                if dataclasses.is_dataclass(item) and type(item).__module__ == ir.__name__:
                    yield from reference(item)

    for text in [*TEXTS, huge_harness(30)]:
        harness = compile_source(text, MUTANT_PATH).require()
        assert [id(node) for node in ir.walk(harness)] == [id(node) for node in reference(harness)]


def _reference_unescape(chars: list[str], offsets: list[int]) -> tuple[str, list[int]]:
    """The escape rule, one character at a time: `\\\\ \\" \\n \\t` are escapes, other backslashes stay."""
    escapes = {"\\": "\\", '"': '"', "n": "\n", "t": "\t"}
    out, out_offsets, index = [], [], 0
    while index < len(chars):
        if chars[index] == "\\" and index + 1 < len(chars) and chars[index + 1] in escapes:
            out.append(escapes[chars[index + 1]])
            out_offsets.append(offsets[index])
            index += 2
        else:
            out.append(chars[index])
            out_offsets.append(offsets[index])
            index += 1
    return "".join(out), out_offsets


@FAST
@given(st.text(alphabet=st.sampled_from(list('ab \t\\"nt\n\r{}')), max_size=40))
def test_string_decoding_matches_the_character_rule(text: str) -> None:
    from harnessc.strings import _dedent, _unescape

    offsets = list(range(7, 7 + len(text)))
    value, value_offsets = _unescape(list(text), offsets)
    assert ("".join(value), list(value_offsets)) == _reference_unescape(list(text), offsets)
    lines, line_offsets = _dedent(list(text), offsets)
    assert len("".join(lines)) == len(line_offsets)
