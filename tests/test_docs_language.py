"""docs/language.md stays true: its examples compile, its generated tables match the code.

- Every ```harness block is a complete file and compiles cleanly, without errors or warnings (as
  `harnessc check --for run`, from the harnesses/ directory so that `import "common/..."` resolves).
  Fragments are ```text blocks.
- The option table, the built-in table, the reserved words and the formal syntax are generated from
  harnessc/options.py, the built-in library, harnessc/names.py and harnessc/grammar.lark. When one of
  those changes, `pytest tests/test_docs_language.py --update-golden` rewrites the doc's sections.
- Every `harnessc` subcommand has a section, and every section names a real subcommand.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import REPO

from harnessc.builtins.registry import default_registry
from harnessc.cli import build_parser
from harnessc.compiler import compile_source
from harnessc.names import KEYWORDS
from harnessc.options import OPTIONS

DOC = REPO / "docs" / "language.md"
LIBRARY_MODULE = "harnessc.builtins.library"
_FENCE = re.compile(r"^```(?P<info>[^\n`]*)\n(?P<body>.*?)^```[ \t]*$", re.M | re.S)


def doc_text() -> str:
    return DOC.read_text(encoding="utf-8")


def code_blocks(text: str, info: str) -> list[tuple[int, str]]:
    """(line number, body) of each fenced block whose info string is `info`."""
    return [
        (text.count("\n", 0, match.start()) + 1, match.group("body"))
        for match in _FENCE.finditer(text)
        if match.group("info").strip() == info
    ]


HARNESS_BLOCKS = code_blocks(doc_text(), "harness")


# ---- the examples ----------------------------------------------------------------------------------------


def test_the_doc_has_complete_examples() -> None:
    assert len(HARNESS_BLOCKS) >= 10


@pytest.mark.parametrize("line,block", HARNESS_BLOCKS, ids=[f"line{line}" for line, _ in HARNESS_BLOCKS])
def test_harness_block_compiles(line: int, block: str) -> None:
    header = next((item for item in block.splitlines() if item.strip() and not item.startswith("#")), "")
    whole = "a ```harness block is a whole file (fragments go in ```text blocks)"
    assert header.startswith("harness "), f"line {line}: {whole}"
    path = REPO / "harnesses" / f"docs-language-line{line}.harness"  # never written; imports resolve from it
    compilation = compile_source(block, str(path), purpose="run")
    problems = [
        f"{item.code} at {item.span.line}:{item.span.column}: {item.message}" for item in compilation.diagnostics
    ]
    where = f"the example at docs/language.md line {line}"
    assert compilation.ok, f"{where} does not compile:\n" + "\n".join(problems)
    assert not problems, f"{where} has warnings:\n" + "\n".join(problems)


def test_harness_blocks_have_unique_names() -> None:
    names = [re.search(r"^harness (\w+)", block, re.M).group(1) for _, block in HARNESS_BLOCKS]
    assert len(names) == len(set(names)), sorted(names)


# ---- generated sections -----------------------------------------------------------------------------------


def options_table() -> str:
    lines = ["| option | type | meaning | example |", "| --- | --- | --- | --- |"]
    lines += [f"| `{name}` | `{spec.type}` | {spec.summary} | `{spec.example}` |" for name, spec in OPTIONS.items()]
    return "\n".join(lines)


def builtins_table() -> str:
    lines = ["| signature | what it does |", "| --- | --- |"]
    for item in default_registry():
        if item.module != LIBRARY_MODULE:
            continue  # user built-ins registered by the test session are not the standard library
        summary = item.doc.splitlines()[0].strip() if item.doc else ""
        lines.append(f"| `{item.signature}` | {summary.replace('|', '&#124;')} |")
    return "\n".join(lines)


def keywords_line() -> str:
    return " ".join(f"`{word}`" for word in sorted(KEYWORDS))


def grammar_block() -> str:
    """grammar.lark without its leading comment block, in a ```text fence."""
    lines = (REPO / "harnessc" / "grammar.lark").read_text(encoding="utf-8").splitlines()
    while lines and (lines[0].startswith("//") or not lines[0].strip()):
        lines.pop(0)
    return "```text\n" + "\n".join(lines).rstrip() + "\n```"


SECTIONS = {"options": options_table, "builtins": builtins_table, "keywords": keywords_line, "grammar": grammar_block}


def section_pattern(name: str) -> re.Pattern[str]:
    return re.compile(rf"(<!-- {name}:start[^\n]*-->\n)(.*?)(<!-- {name}:end -->)", re.S)


@pytest.mark.parametrize("name", sorted(SECTIONS))
def test_generated_section_is_in_sync(name: str, update_golden: bool) -> None:
    text = doc_text()
    match = section_pattern(name).search(text)
    assert match is not None, f"docs/language.md has no <!-- {name}:start --> ... <!-- {name}:end --> section"
    expected = SECTIONS[name]() + "\n"
    if update_golden:
        DOC.write_text(text[: match.start(2)] + expected + text[match.end(2) :], encoding="utf-8")
        return
    assert match.group(2) == expected, (
        f"the {name} section of docs/language.md is out of date; "
        "run `pytest tests/test_docs_language.py --update-golden` and review the diff"
    )


def test_every_standard_builtin_is_documented() -> None:
    """A direct check, independent of the table's formatting."""
    text = doc_text()
    missing = [
        item.name for item in default_registry() if item.module == LIBRARY_MODULE and f"`{item.name}(" not in text
    ]
    assert not missing


def test_every_option_appears_in_an_example() -> None:
    """Each option is used in a compiled example (or its table row example), so the doc shows it in use."""
    examples = "\n".join(block for _, block in HARNESS_BLOCKS)
    unused = [name for name in OPTIONS if not re.search(rf"^\s*{name}\s", examples, re.M)]
    assert not unused, unused


# ---- the command line -------------------------------------------------------------------------------------


def subcommands() -> set[str]:
    parser = build_parser()
    (action,) = [item for item in parser._actions if item.dest == "command"]
    return set(action.choices)


def test_every_subcommand_has_a_section() -> None:
    documented = set(re.findall(r"^### harnessc (\w+)$", doc_text(), re.M))
    assert documented == subcommands()


def test_documented_check_flags_exist() -> None:
    help_text = build_parser()._subparsers._group_actions[0].choices["check"].format_help()
    for flag in ("--format", "--for", "--set", "--builtins"):
        assert flag in help_text and flag in doc_text()


def test_anchors_resolve() -> None:
    """Every in-page link `(#anchor)` names a heading of the page (GitHub's anchor rules)."""
    text = doc_text()
    headings = re.findall(r"^#{1,4} (.+)$", re.sub(r"```.*?```", "", text, flags=re.S), re.M)
    anchors = {re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-") for heading in headings}
    links = set(re.findall(r"\]\(#([^)]+)\)", text))
    assert links <= anchors, sorted(links - anchors)


def test_doc_path_is_the_one_the_readme_names() -> None:
    assert Path(DOC).is_file()
    assert "language.md" in (REPO / "README.md").read_text(encoding="utf-8")
