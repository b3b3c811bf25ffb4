"""What a harness may read (harnessc/reading.py): imports stay inside the harness's folder tree or an allowed
root, only regular files of bounded size are read, and a file that is not a harness source is never quoted.

Each kind of refusal is tried with several members: every way out of the tree (`..`, absolute paths,
symbolic links to a file or a folder outside), every special file (a named pipe, a character device, a
socket), every way of not being harness text (another suffix, binary bytes, another encoding). A named
pipe would block the reader for ever, so those cases run in a child process with a generous timeout: a
hang fails the test instead of hanging the suite.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from harnessc.cli import main
from harnessc.compiler import compile_file, compile_source
from harnessc.reading import MAX_SOURCE_BYTES

SECRET = "SECRET_TOKEN=do-not-print-me"


def _harness(*imports: str) -> str:
    lines = ["harness h", *(f'import "{path}"' for path in imports), "input q: text"]
    lines += ['llm s { user "{q} {A}" max_tokens 3 }', "output = s"]
    return "\n".join(lines) + "\n"


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """tmp/harness/ (the harness's folder, with common/ok.harness) beside tmp/outside/ (a secret, a snippet)."""
    folder = tmp_path / "harness"
    (folder / "common").mkdir(parents=True)
    (folder / "common" / "ok.harness").write_text('snippet A = "fine"\n', encoding="utf-8")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "shared.harness").write_text('snippet A = "shared"\n', encoding="utf-8")
    (outside / "secret.harness").write_text(f"{SECRET}\n", encoding="utf-8")
    return folder


def _check(folder: Path, *imports: str, allow: tuple[str, ...] = ()) -> tuple[list[str], str]:
    """Codes and the rendered output of `harnessc check` on a harness importing `imports`."""
    path = folder / "main.harness"
    path.write_text(_harness(*imports), encoding="utf-8")
    compilation = compile_file(path, purpose="run", allow_roots=allow)
    argv = ["check", "--for", "run", *(item for root in allow for item in ("--allow-root", root)), str(path)]
    code, output = _run_cli(argv)
    assert code == (0 if compilation.ok else 1), output
    return [item.code for item in compilation.diagnostics], output


def _run_cli(argv: list[str]) -> tuple[int, str]:
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        code = main(argv)
    return code, out.getvalue()


def test_an_import_inside_the_folder_is_read(tree: Path) -> None:
    assert _check(tree, "common/ok.harness")[0] == []
    assert _check(tree, "common/../common/ok.harness")[0] == []  # `..` that stays inside is fine


@pytest.mark.parametrize(
    "written",
    ["../outside/secret.harness", "common/../../outside/secret.harness", "{outside}/secret.harness", "/etc/passwd"],
)
def test_paths_out_of_the_folder_are_refused_unread(tree: Path, written: str) -> None:
    codes, output = _check(tree, written.format(outside=tree.parent / "outside"))
    assert codes == ["path-outside-root"]
    assert SECRET not in output and "root:" not in output


def test_symbolic_links_out_of_the_folder_are_refused(tree: Path) -> None:
    outside = tree.parent / "outside"
    (tree / "common" / "link.harness").symlink_to(outside / "secret.harness")
    (tree / "linked_folder").symlink_to(outside, target_is_directory=True)
    (tree / "common" / "inside_link.harness").symlink_to(tree / "common" / "ok.harness")
    for written in ("common/link.harness", "linked_folder/secret.harness"):
        codes, output = _check(tree, written)
        assert codes == ["path-outside-root"] and SECRET not in output
        assert "symbolic link" in output
    assert _check(tree, "common/inside_link.harness")[0] == []  # a link that stays inside is fine


def test_an_allowed_root_is_readable_and_only_it(tree: Path) -> None:
    outside = str(tree.parent / "outside")
    assert _check(tree, "../outside/shared.harness", allow=(outside,))[0] == []
    assert _check(tree, "../outside/shared.harness")[0] == ["path-outside-root"]
    codes, _ = _check(tree, "../../etc/passwd", allow=(outside,))
    assert codes == ["path-outside-root"]


def test_a_nested_import_is_confined_to_the_same_roots(tree: Path) -> None:
    (tree / "common" / "nested.harness").write_text('import "../../outside/shared.harness"\n', encoding="utf-8")
    codes, output = _check(tree, "common/nested.harness")
    assert codes == ["path-outside-root"]
    assert "nested.harness:1:8" in output  # located at the import that names it, in the imported file


_CHILD = """
import sys
from harnessc.compiler import compile_file
compilation = compile_file(sys.argv[1], purpose="run", allow_roots=sys.argv[2:])
print(sorted(item.code for item in compilation.diagnostics))
"""


def _codes_in_a_child(path: Path, *allow: str) -> str:
    """The codes, from a child process: a read that blocks fails the test at the timeout, not for ever."""
    result = subprocess.run(
        [sys.executable, "-c", _CHILD, str(path), *allow], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_special_files_are_never_opened(tree: Path) -> None:
    os.mkfifo(tree / "pipe.harness")
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(tree / "socket.harness"))
    (tree / "zero.harness").symlink_to("/dev/zero")
    try:
        path = tree / "main.harness"
        path.write_text(_harness("pipe.harness", "socket.harness", "zero.harness"), encoding="utf-8")
        # /dev is allowed here so that the device is refused for what it is, not for where it is; a link
        # is judged by its target's real name, which is not *.harness: refused before any stat.
        expected = ["not-a-regular-file", "not-a-regular-file", "not-harness-source"]
        assert _codes_in_a_child(path, "/dev") == str(expected)
        # The harness named on the command line is checked the same way.
        assert _codes_in_a_child(tree / "pipe.harness") == "['not-a-regular-file']"
        assert _codes_in_a_child(Path("/dev/zero")) == "['not-a-regular-file']"
    finally:
        sock.close()


def test_files_over_the_size_limit_are_refused(tree: Path) -> None:
    padding = "#" * 80 + "\n"
    big = padding * (MAX_SOURCE_BYTES // len(padding) + 1)
    (tree / "common" / "big.harness").write_text(big, encoding="utf-8")
    assert _check(tree, "common/big.harness")[0] == ["file-too-large"]
    (tree / "big_main.harness").write_text(big, encoding="utf-8")
    assert [item.code for item in compile_file(tree / "big_main.harness").diagnostics] == ["file-too-large"]
    assert [item.code for item in compile_source(big).diagnostics] == ["file-too-large"]
    # Just under the limit is read (and is a valid file of comments with a missing header).
    fits = padding * (MAX_SOURCE_BYTES // len(padding))
    assert "missing-header" in {item.code for item in compile_source(fits).diagnostics}


@pytest.mark.parametrize(
    "name, data",
    [
        ("notes.txt", b'snippet A = "x"\n'),  # not named *.harness
        ("secret.env", f"{SECRET}\n".encode()),
        ("binary.harness", b"\x7fELF\x02\x01\x01\x00" + SECRET.encode()),
        ("control.harness", f'snippet A = "\x1b[2J {SECRET}"\n'.encode()),
        ("latin1.harness", f"# Probl\xe8me {SECRET}\n".encode("latin-1")),
        ("utf16.harness", 'snippet A = "x"\n'.encode("utf-16")),
    ],
)
def test_files_that_are_not_harness_sources_are_never_quoted(tree: Path, name: str, data: bytes) -> None:
    (tree / "common" / name).write_bytes(data)
    codes, output = _check(tree, f"common/{name}")
    assert codes == ["not-harness-source"]
    assert SECRET not in output and "ELF" not in output


def test_a_harness_named_on_the_command_line_with_binary_content_is_not_quoted(tree: Path) -> None:
    path = tree / "binary.harness"
    path.write_bytes(f"harness h\x00\x01 {SECRET}\n".encode())
    code, output = _run_cli(["check", str(path)])
    assert code == 1 and "not-harness-source" in output and SECRET not in output


def test_a_syntax_error_in_an_accepted_import_is_quoted(tree: Path) -> None:
    """Only accepted harness sources are quoted, and they are: their lines are what the user must fix."""
    (tree / "common" / "broken.harness").write_text('snippet A = "x\n', encoding="utf-8")
    codes, output = _check(tree, "common/broken.harness")
    assert codes == ["unterminated-string"] and 'snippet A = "x' in output


def test_a_bank_file_is_confined_and_read_relative_to_the_harness(tree: Path) -> None:
    (tree / "data").mkdir()
    (tree / "data" / "cases.jsonl").write_text('{"q": "a"}\n', encoding="utf-8")
    os.mkfifo(tree / "data" / "pipe.jsonl")
    (tree / "data" / "link.jsonl").symlink_to(tree.parent / "outside" / "secret.harness")

    def bank(file: str) -> tuple[list[str], object]:
        text = f'harness h\ninput q: text\nbank b {{ q: text = q search q file "{file}" }}\noutput = to_text(size(b))\n'
        compilation = compile_source(text, str(tree / "main.harness"), purpose="run")
        return [item.code for item in compilation.diagnostics], compilation.harness

    codes, harness = bank("data/cases.jsonl")
    assert codes == [] and harness.banks[0].file == str(tree / "data" / "cases.jsonl")
    # A missing file is a warning (it may be written before the run); the path stays the one to read.
    codes, harness = bank("data/not-yet-written.jsonl")
    assert codes == ["bank-file-not-found"] and harness.banks[0].file == str(tree / "data" / "not-yet-written.jsonl")
    for outside in ("../outside/secret.harness", "/etc/passwd", "data/link.jsonl"):
        assert bank(outside)[0] == ["path-outside-root"], outside
    assert bank("data/pipe.jsonl")[0] == ["not-a-regular-file"]
