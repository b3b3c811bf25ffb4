"""The language server's reading of text being typed (harnessc/lsp/outline.py, analysis.py, positions.py).

The end-to-end behaviour is tested through a real client in tests/test_lsp.py; these tests check the parts
underneath on many more inputs than a client session could: the outline agrees with the compiler on every
name of the shipped harnesses, it never fails on a truncated or random text, and no feature fails at any
cursor position of a file being typed.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO
from hypothesis import given, settings
from hypothesis import strategies as st

from harnessc import ir
from harnessc.builtins.registry import default_registry
from harnessc.compiler import compile_file
from harnessc.lsp.analysis import Analysis
from harnessc.lsp.positions import UTF8, UTF16, UTF32, LineIndex
from harnessc.lsp.reader import outline

HARNESSES = sorted((REPO / "harnesses").glob("*.harness")) + sorted((REPO / "examples").glob("*.harness"))

# The declaration kinds an IR reference of each kind may resolve to.
_KINDS = {
    "input": {"input"},
    "param": {"param"},
    "bank": {"bank"},
    "stage": {"llm", "let", "loop"},
    "loop": {"loop"},
    "student": {"student"},
    "output": {"output"},
}


@pytest.mark.parametrize("path", HARNESSES, ids=lambda path: path.stem)
def test_every_name_the_compiler_resolves_resolves_the_same(path: Path) -> None:
    compilation = compile_file(path)
    assert compilation.harness is not None
    text = path.read_text(encoding="utf-8")
    analysis = Analysis(str(path), text, compilation, default_registry())
    occurrences = {(item.start, item.end): item for item in analysis.outline.occurrences}
    checked = 0
    for ref in ir.references(compilation.harness):
        if ref.span.file != str(path):
            continue  # inside an imported snippet
        occurrence = occurrences.get((ref.span.start, ref.span.end))
        assert occurrence is not None and occurrence.role == "ref", f"{ref.name} at {ref.span}: {occurrence}"
        target = analysis.resolve(occurrence)
        assert target is not None, f"{ref.name} at {ref.span} does not resolve"
        if ref.kind == "local":
            assert target.kind == "binding", f"{ref.name} at {ref.span}: {target.kind}"
        else:
            assert target.declaration is not None and target.declaration.kind in _KINDS[ref.kind], (
                f"{ref.name} at {ref.span} is a {ref.kind}, resolved to {target}"
            )
        checked += 1
    assert checked > 5


@pytest.mark.parametrize("path", HARNESSES, ids=lambda path: path.stem)
def test_the_outline_of_every_prefix(path: Path) -> None:
    """Text being typed: each prefix of a harness is read without error, within its bounds."""
    text = path.read_text(encoding="utf-8")
    for end in range(0, len(text) + 1, 11):
        prefix = text[:end]
        found = outline(prefix)
        assert all(0 <= item.start <= item.end <= end for item in found.occurrences)
        assert all(0 <= item.start <= item.end <= end for item in found.all_declarations())
        assert all(item.name_start <= item.name_end <= end for item in found.all_declarations())


_PIECES = st.sampled_from(
    [
        "harness h",
        "llm a {",
        "let b = ",
        "loop c from a max 3 {",
        "input q: text optional",
        "param k: int = 3",
        'snippet S = "',
        "bank m {",
        "student {",
        "teacher = a else student",
        "output = ",
        "}",
        "{",
        "(",
        ")",
        "[",
        "]",
        '"',
        '"""',
        "{if q}",
        "{for x in q}",
        "{end}",
        "{else}",
        "{{",
        "}}",
        '\\"',
        "f(",
        "x.",
        "for",
        "in",
        " ",
        "\n",
        "# c\n",
        "user ",
        "max_tokens k",
        "😀",
        "\r\n",
        "=",
        ",",
        ":",
    ]
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_PIECES, max_size=40).map("".join))
def test_the_outline_never_fails(text: str) -> None:
    found = outline(text)
    assert all(0 <= item.start <= item.end <= len(text) for item in found.occurrences)


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=["a", "é", "😀", "\n", "\r", " ", "{"], max_size=30))
def test_offsets_and_positions_round_trip(text: str) -> None:
    for encoding in (UTF8, UTF16, UTF32):
        index = LineIndex(text, encoding)
        for offset in range(len(text) + 1):
            if 0 < offset < len(text) and text[offset - 1 : offset + 1] == "\r\n":
                continue  # between the two characters of a line break: not a position
            line, column = index.position(offset)
            assert index.offset(line, column) == offset, (text, encoding, offset, line, column)


def test_positions_count_code_units() -> None:
    text = 'x\n  user "😀 é {qestion}"\r\nend'
    offset = text.index("qestion")
    assert LineIndex(text, UTF32).position(offset) == (1, 13)
    assert LineIndex(text, UTF16).position(offset) == (1, 14)
    assert LineIndex(text, UTF8).position(offset) == (1, 17)
    assert LineIndex(text, UTF16).position(text.index("end")) == (2, 0)
    assert LineIndex(text, UTF16).offset(1, 9) == text.index("😀")  # inside the surrogate pair: its start


@pytest.mark.parametrize("path", HARNESSES[:3], ids=lambda path: path.stem)
def test_no_feature_fails_anywhere_in_a_file_being_typed(path: Path) -> None:
    """Hover, definition, completion and symbols at cursor positions all over prefixes of a harness, with
    the IR of the whole file (stale, as while typing)."""
    pytest.importorskip("lsprotocol")
    from harnessc.lsp.completion import completion
    from harnessc.lsp.definition import definition
    from harnessc.lsp.hover import hover
    from harnessc.lsp.symbols import document_symbols

    compilation = compile_file(path)
    text = path.read_text(encoding="utf-8")
    registry = default_registry()
    for end in range(len(text) // 3, len(text) + 1, max(1, len(text) // 7)):
        prefix = text[:end]
        analysis = Analysis(str(path), prefix, compilation, registry, fresh=end == len(text))
        document_symbols(analysis, UTF16)
        for offset in range(0, end + 1, 3):
            hover(analysis, offset, UTF16)
            definition(analysis, offset, UTF16, lambda path: Path(path).as_uri(), lambda path: None)
            completion(analysis, offset, UTF16)


def test_check_does_not_import_the_language_server() -> None:
    script = (
        "import sys; from harnessc.cli import main; main(['check', 'harnesses/plan_solve.harness']); "
        "print(sorted({name.split('.')[0] for name in sys.modules} & {'pygls', 'lsprotocol', 'cattrs'}))"
    )
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("[]"), result.stdout
