"""The commands the docs show exit as the docs say, and every exit code the docs state is shown.

The convention, in README.md and docs/*.md: a ```console block holds commands that run exactly as written,
one per `$ ` line, each ending in a comment that starts with `# exit N`, the exit code the docs promise
(the block may be indented, inside a list item). Synopses with placeholders (FILE, PATH, [--flag]) go in
```bash or ```text blocks, which are not run.

This test runs every console command: `harnessc` and `ophsd` in-process, from a scratch folder where
`harnesses/`, `examples/` and `tests/` are the repository's (so outputs land in the scratch folder), with a
scripted engine in place of a model, so only commands that are fast that way belong in console blocks.

And every exit code the prose states (`(exit 1)`, `exits 2`, `exit code 2`) must be shown by a console
command with that code in the same section (between two headings): a claim without a demonstration fails
here. Exit code 3 (a bug in the tools) is the exception: no documented command can show it.
"""

from __future__ import annotations

import glob
import re
import shlex
from pathlib import Path

import pytest
from conftest import REPO

DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
_FENCE = re.compile(
    r"^(?P<indent>[ \t]*)```(?P<info>[^\n`]*)\n(?P<body>.*?)^(?P=indent)```[ \t]*$", re.MULTILINE | re.DOTALL
)
_HEADING = re.compile(r"^#{1,6} .*$", re.MULTILINE)
_COMMAND = re.compile(r"^\$ (?P<command>.+?)\s+# exit (?P<code>\d)\b")
_CLAIM = re.compile(r"\bexit(?:s|ed)?(?: code| status)?\s+\**`?(?P<code>\d)\b", re.IGNORECASE)


class Command:
    def __init__(self, doc: Path, line: int, section: int, text: str, code: int) -> None:
        self.doc, self.line, self.section, self.text, self.code = doc, line, section, text, code

    @property
    def where(self) -> str:
        return f"{self.doc.relative_to(REPO)}:{self.line}"


def _sections(text: str) -> list[int]:
    """The character offsets where sections start (headings outside fenced blocks), for bisecting."""
    fenced = [(match.start(), match.end()) for match in _FENCE.finditer(text)]
    starts = [0]
    for heading in _HEADING.finditer(text):
        if not any(start <= heading.start() < end for start, end in fenced):
            starts.append(heading.start())
    return starts


def _section_of(starts: list[int], offset: int) -> int:
    return max(index for index, start in enumerate(starts) if start <= offset)


def documented_commands() -> tuple[list[Command], list[str]]:
    """Every console command of the docs, and the problems with the convention (a `$` line without
    `# exit N`)."""
    commands, problems = [], []
    for doc in DOCS:
        text = doc.read_text(encoding="utf-8")
        starts = _sections(text)
        for block in _FENCE.finditer(text):
            if block.group("info").strip() != "console":
                continue
            first = text.count("\n", 0, block.start("body")) + 1
            for number, raw in enumerate(block.group("body").splitlines(), start=first):
                line = raw.strip()
                if not line.startswith("$ "):
                    continue
                match = _COMMAND.match(line)
                if match is None:
                    problems.append(f"{doc.relative_to(REPO)}:{number}: a `$` line must end in `# exit N`")
                    continue
                section = _section_of(starts, block.start())
                commands.append(Command(doc, number, section, match["command"], int(match["code"])))
    return commands, problems


def stated_exit_codes() -> list[tuple[Path, int, int, int]]:
    """(doc, line, section, code) of each exit code stated in prose (outside fenced blocks)."""
    claims = []
    for doc in DOCS:
        text = doc.read_text(encoding="utf-8")
        starts = _sections(text)
        fenced = [(match.start(), match.end()) for match in _FENCE.finditer(text)]
        for claim in _CLAIM.finditer(text):
            if any(start <= claim.start() < end for start, end in fenced):
                continue
            line = text.count("\n", 0, claim.start()) + 1
            claims.append((doc, line, _section_of(starts, claim.start()), int(claim["code"])))
    return claims


COMMANDS, CONVENTION_PROBLEMS = documented_commands()


def test_the_docs_follow_the_convention() -> None:
    assert not CONVENTION_PROBLEMS, "\n".join(CONVENTION_PROBLEMS)
    assert len(COMMANDS) >= 15
    assert {command.doc.name for command in COMMANDS} >= {"README.md", "language.md", "running.md", "training.md"}


def test_every_stated_exit_code_is_shown_by_a_command_of_its_section() -> None:
    shown = {(command.doc, command.section, command.code) for command in COMMANDS}
    unshown = [
        f"{doc.relative_to(REPO)}:{line}: states exit {code}, but no console command of its section shows it"
        for doc, line, section, code in stated_exit_codes()
        if code != 3 and (doc, section, code) not in shown
    ]
    assert not unshown, "\n".join(unshown)


def _respond(request, sample: int) -> str:
    return "\\boxed{34}"


@pytest.fixture
def scratch(tmp_path: Path, monkeypatch) -> Path:
    """A working folder whose harnesses/, examples/ and tests/ are the repository's, a scripted engine."""
    from harnessc.engines.scripted import ScriptedEngine

    for name in ("harnesses", "examples", "tests"):
        (tmp_path / name).symlink_to(REPO / name, target_is_directory=True)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("harnessc.engines.check_model", lambda model: None)
    monkeypatch.setattr("harnessc.runtime.runner.create_run_engine", lambda options: ScriptedEngine(_respond))
    return tmp_path


def _argv(command: str, folder: Path) -> list[str]:
    """The words of a command line as a shell gives them: quotes removed, globs expanded."""
    words = []
    for word in shlex.split(command):
        matches = sorted(glob.glob(word, root_dir=folder)) if any(char in word for char in "*?[") else []
        words.extend(matches or [word])
    return words


@pytest.mark.parametrize("command", COMMANDS, ids=[command.where for command in COMMANDS])
def test_the_documented_command_exits_as_documented(command: Command, scratch: Path, capsys) -> None:
    program, *args = _argv(command.text, scratch)
    if program == "harnessc":
        from harnessc.cli import main
    elif program == "ophsd":
        pytest.importorskip("torch")
        from ophsd.cli import main
    else:
        pytest.fail(f"{command.where}: only `harnessc` and `ophsd` commands can be run here, not {program!r}")
    try:
        code = main(args)
    except SystemExit as exit:  # argparse: usage errors and --help
        code = exit.code
    captured = capsys.readouterr()
    assert code == command.code, f"{command.where}: `{command.text}` exits {code}\n{captured.err[-2000:]}"
    assert "Traceback" not in captured.err and "internal error" not in captured.err
