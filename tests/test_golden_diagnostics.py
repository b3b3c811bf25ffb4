"""Golden diagnostics: every program in tests/golden/diagnostics is checked and its rendered output compared.

Each `NAME.harness` starts with a header that says what it tests:

    # expect: unknown-option, unknown-name      the codes it must produce, one entry per diagnostic
    # purpose: train                             optional: `harnessc check --for train` (default: run)
    # set: rounds=abc                            optional, repeatable: `--set rounds=abc`

`# expect:` with nothing after it marks a VALID program (a counterpart of an invalid one) that must check
clean. `NAME.expected` is the exact text `harnessc check --for PURPOSE [--set ...] NAME.harness` prints (no
colour), run inside the golden directory; `NAME.json`, where present, is the `--format json` output.
Regenerate with `python -m pytest tests/test_golden_diagnostics.py --update-golden`, then read the diff.

Besides the text, every case is checked structurally: the multiset of codes equals the `# expect:` line
(so a new follow-on diagnostic fails the test even when the golden text is regenerated carelessly), errors
make the exit status 1, and every diagnostic points at a real line of a real file.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from conftest import REPO, check_golden

from harnessc.cli import main as harnessc_main
from harnessc.codes import CODES, Level
from harnessc.compiler import compile_file

GOLDEN = REPO / "tests" / "golden" / "diagnostics"
CASES = sorted(GOLDEN.glob("*.harness"))


class Header:
    """The `# expect:` / `# purpose:` / `# set:` comment lines at the top of a golden program."""

    def __init__(self, path: Path) -> None:
        lines = path.read_bytes().decode("utf-8", errors="replace").splitlines()
        assert lines and lines[0].startswith("# expect:"), f"{path.name}: line 1 must be `# expect: CODES`"
        listed = lines[0].removeprefix("# expect:")
        self.expected = [code.strip() for code in listed.split(",") if code.strip()]
        self.purpose = "run"
        self.overrides: dict[str, str] = {}
        for line in lines[1:]:
            if not line.startswith("#"):
                break
            if line.startswith("# purpose:"):
                self.purpose = line.removeprefix("# purpose:").strip()
            elif line.startswith("# set:"):
                name, _, value = line.removeprefix("# set:").strip().partition("=")
                self.overrides[name] = value

    @property
    def valid(self) -> bool:
        return not self.expected

    def argv(self, *extra: str) -> list[str]:
        sets = [item for name, value in self.overrides.items() for item in ("--set", f"{name}={value}")]
        return ["check", "--for", self.purpose, *sets, *extra]


def _run_check(path: Path, header: Header, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, str]:
    status = harnessc_main(header.argv(*extra, path.name))
    captured = capsys.readouterr()
    assert captured.err == "", captured.err
    return status, captured.out


@pytest.fixture
def in_golden_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    """File names in the output are relative to the golden directory, whatever pytest's cwd is."""
    monkeypatch.chdir(GOLDEN)


def test_the_corpus_is_large_enough() -> None:
    headers = [Header(path) for path in CASES]
    invalid = [header for header in headers if not header.valid]
    assert len(invalid) >= 35
    assert any(header.valid for header in headers), "keep the valid counterparts (e.g. an oracle inside {if})"


def test_the_corpus_covers_every_code_a_file_can_trigger() -> None:
    covered = {code for path in CASES for code in Header(path).expected}
    # A file that cannot be read has no header to say what it expects, and a named pipe or a file over
    # the size limit cannot be committed (test_explanations and test_frontend_reading cover them).
    assert set(CODES) - covered == {"unreadable-file", "not-a-regular-file", "file-too-large"}


def test_one_file_with_five_mistakes_gets_five_located_diagnostics(in_golden_dir: None) -> None:
    compilation = compile_file("five_mistakes.harness", purpose="run")
    diagnostics = compilation.diagnostics
    assert len({item.code for item in diagnostics}) == 5
    assert len({(item.span.line, item.span.column) for item in diagnostics}) == 5


@pytest.mark.parametrize("path", CASES, ids=lambda path: path.stem)
def test_golden_text(path: Path, update_golden: bool, in_golden_dir: None, capsys: pytest.CaptureFixture[str]) -> None:
    header = Header(path)
    status, output = _run_check(path, header, capsys)
    check_golden(path.with_suffix(".expected"), output, update_golden)
    assert status == (0 if all(CODES[code].severity == Level.WARNING for code in header.expected) else 1)
    json_path = path.with_suffix(".json")
    if json_path.exists():
        status, output = _run_check(path, header, capsys, "--format", "json")
        check_golden(json_path, output, update_golden)
        errors = sum(CODES[code].severity == Level.ERROR for code in header.expected)
        assert json.loads(output)["errors"] == errors


@pytest.mark.parametrize("path", CASES, ids=lambda path: path.stem)
def test_codes_match_the_expect_line(path: Path, in_golden_dir: None) -> None:
    header = Header(path)
    for code in header.expected:
        assert code in CODES, f"{path.name}: `# expect:` names the unknown code {code!r}"
    compilation = compile_file(path.name, purpose=header.purpose, overrides=header.overrides or None)
    actual = Counter(item.code for item in compilation.diagnostics)
    assert actual == Counter(header.expected), "\n".join(
        f"{d.span}: {d.code}: {d.message}" for d in compilation.diagnostics
    )
    if header.valid:
        assert compilation.ok
        return
    errors = [item for item in compilation.diagnostics if item.is_error]
    if any(CODES[code].severity == Level.ERROR for code in header.expected):
        assert errors and not compilation.ok
    else:
        assert not errors and compilation.ok
        assert compilation.diagnostics  # the expected warning is there


@pytest.mark.parametrize("path", CASES, ids=lambda path: path.stem)
def test_every_diagnostic_points_into_a_file(path: Path, in_golden_dir: None) -> None:
    header = Header(path)
    compilation = compile_file(path.name, purpose=header.purpose, overrides=header.overrides or None)
    for diagnostic in compilation.diagnostics:
        span = diagnostic.span
        assert span.start <= span.end and (span.line, span.column) <= (span.end_line, span.end_column)
        source = compilation.sources.get(span.file)
        if source is None:  # unreadable and undecodable files have no text to show, only a position
            assert diagnostic.code == "invalid-encoding" and span.line >= 1
            continue
        assert 1 <= span.line <= len(source.line_starts), f"{diagnostic.code} points past the end of the file"
        assert span.end <= len(source.text)
        for label in diagnostic.labels:
            assert label.span.file in compilation.sources
