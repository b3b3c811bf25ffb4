"""The editor support files in editors/vscode/: the TextMate grammar (run through vscode-tmgrammar-test on
the annotated files editors/vscode/tests/*.harness), and the extension's manifest kept in step with the
language (every keyword and option highlighted, every file it names present)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest
from conftest import REPO

from harnessc.names import KEYWORDS
from harnessc.options import OPTIONS, ROLES

EXTENSION = REPO / "editors" / "vscode"
GRAMMAR = EXTENSION / "syntaxes" / "harness.tmLanguage.json"


def _patterns(node: object) -> list[str]:
    """Every `match`, `begin` and `end` regular expression in a grammar (sub)tree."""
    found: list[str] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("match", "begin", "end") and isinstance(value, str):
                found.append(value)
            else:
                found += _patterns(value)
    elif isinstance(node, list):
        for item in node:
            found += _patterns(item)
    return found


def test_the_manifest_names_files_that_exist() -> None:
    manifest = json.loads((EXTENSION / "package.json").read_text(encoding="utf-8"))
    contributes = manifest["contributes"]
    language = contributes["languages"][0]
    assert language["id"] == "harness" and language["extensions"] == [".harness"]
    assert (EXTENSION / language["configuration"]).is_file()
    grammar = contributes["grammars"][0]
    assert grammar["scopeName"] == "source.harness" and (EXTENSION / grammar["path"]).resolve() == GRAMMAR
    assert (EXTENSION / manifest["main"]).is_file()
    assert "vscode-tmgrammar-test" in manifest["devDependencies"]
    lock = json.loads((EXTENSION / "package-lock.json").read_text(encoding="utf-8"))
    for group in ("dependencies", "devDependencies"):  # pinned exactly, and the lock agrees
        for name, version in manifest[group].items():
            assert re.fullmatch(r"\d+\.\d+\.\d+", version), f"{name} is not pinned: {version}"
            assert lock["packages"][f"node_modules/{name}"]["version"] == version
    configuration = json.loads((EXTENSION / "language-configuration.json").read_text(encoding="utf-8"))
    assert configuration["comments"]["lineComment"] == "#"


def test_the_grammar_knows_every_keyword_option_and_role() -> None:
    grammar = json.loads(GRAMMAR.read_text(encoding="utf-8"))
    assert grammar["scopeName"] == "source.harness"
    words = set()
    for pattern in _patterns(grammar):
        re.compile(pattern)  # every expression is a valid regular expression
        words |= set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", pattern))
    missing = (set(KEYWORDS) | set(OPTIONS) | set(ROLES)) - words
    assert not missing, f"the grammar does not highlight {sorted(missing)}"


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_the_extension_script_parses() -> None:
    result = subprocess.run(["node", "--check", "extension.js"], cwd=EXTENSION, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_the_grammar_tests_pass() -> None:
    if shutil.which("npx") is None:
        pytest.skip("npx (node and npm) is not installed: the grammar tests need vscode-tmgrammar-test")
    if not (EXTENSION / "node_modules" / "vscode-tmgrammar-test").is_dir():
        pytest.skip("editors/vscode/node_modules is missing: run `npm ci` there (scripts/setup.sh does, given npm)")
    cases = sorted(path.name for path in (EXTENSION / "tests").glob("*.harness"))
    assert len(cases) >= 3
    result = subprocess.run(
        ["npx", "--no-install", "vscode-tmgrammar-test", "--compact", "tests/*.harness"],
        cwd=EXTENSION,
        capture_output=True,
        text=True,
        timeout=120,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    for name in cases:
        assert f"tests/{name} run successfuly" in output, output
