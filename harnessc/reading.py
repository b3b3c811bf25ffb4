"""What a harness may read: its own source files and the files it imports, nothing else.

A harness file may come from anywhere (a shared repository, a pull request, a download), so the paths it
names are untrusted. Every file the front end reads goes through `read_source`, which reads a file only if

- it resolves (symbolic links followed) inside one of the `Roots`: the folder tree of the harness being
  compiled, or a folder allowed on the command line (`--allow-root DIR`). `..`, absolute paths and
  links out of the tree are refused; the harness named on the command line is the user's own choice and
  is not confined;
- it is a regular file, checked with `os.stat` before it is opened and opened non-blocking: a device or a
  named pipe would read without end or block for ever;
- it is at most `MAX_SOURCE_BYTES` long, checked before it is opened and again while reading;
- it is harness text: UTF-8 without control characters (a leading byte-order mark is skipped, as for every
  text file: harnessc/textfile.py), and, for an import, named `*.harness`.

A file that is refused is never quoted: only accepted files become `SourceFile`s, and diagnostics print
source lines from those alone. A refusal says what is wrong (a `Refusal`: code, message, hint) and the
caller places it: at the top of the file named on the command line, or at the `import` that named it.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from harnessc import textfile
from harnessc.source import SourceFile

# The largest source file read, in bytes: far beyond any hand-written harness (the shipped ones are a few
# kilobytes, a generated 10,000-stage file is ~1 MB), small enough that compiling it stays cheap.
MAX_SOURCE_BYTES = 2 * 1024 * 1024
HARNESS_SUFFIX = ".harness"
# C0 control characters other than tab, line feed, form feed and carriage return (the grammar's
# whitespace), and DEL: never part of a hand-written harness, always part of binary files.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a file was not read: a diagnostic code, a message that never quotes the file, hints. `reason`
    is the message without the file's name, for a diagnostic at an `import` that shows the name already."""

    code: str
    message: str
    hints: tuple[str, ...] = ()
    reason: str = ""
    # Where in the file the problem is, as (character offset, line, column); invalid-encoding points at
    # the first invalid byte, everything else at the top of the file.
    position: tuple[int, int, int] = (0, 1, 1)


@dataclass(frozen=True, slots=True)
class Roots:
    """The folders (real paths) imports may resolve into."""

    folders: tuple[str, ...]

    @staticmethod
    def around(path: str | Path, allowed: Iterable[str | Path] = ()) -> Roots:
        """The folder the harness at `path` is named in, and the `allowed` folders."""
        folders = [Path(path).parent, *(Path(folder) for folder in allowed)]
        return Roots(tuple(dict.fromkeys(os.path.realpath(folder) for folder in folders)))

    def contain(self, real_path: str) -> bool:
        return any(_inside(real_path, folder) for folder in self.folders)


def _inside(real_path: str, folder: str) -> bool:
    try:
        return os.path.commonpath([real_path, folder]) == folder
    except ValueError:  # different drives on Windows
        return False


def read_source(path: str | Path, display: str) -> tuple[SourceFile | None, Refusal | None]:
    """The harness text of the file at `path` (shown as `display`), or why it was refused."""
    data = _read_regular_file(str(path), display)
    if isinstance(data, Refusal):
        return None, data
    return _as_harness_text(data, display)


def read_import(directory: Path, written: str, roots: Roots) -> tuple[Path | None, SourceFile | None, Refusal | None]:
    """The file `import "written"` names, relative to `directory`: its real path and text, or a refusal."""
    display = str(directory / written)
    try:
        real = os.path.realpath(directory / written)
    except (OSError, ValueError) as error:  # ValueError: a NUL character in the path
        return None, None, Refusal("import-not-found", f"cannot read {display}: {_reason(error)}")
    if not roots.contain(real):
        return None, None, _outside(written, display, real, roots)
    if not real.endswith(HARNESS_SUFFIX):
        return None, None, _not_source(display, f"only `*{HARNESS_SUFFIX}` files can be imported")
    source, refusal = read_source(real, display)
    if refusal is not None and refusal.code in ("unreadable-file", "invalid-encoding"):
        if refusal.code == "unreadable-file":
            refusal = Refusal("import-not-found", refusal.message)
        else:
            refusal = _not_source(display, refusal.reason)
    return Path(real), source, refusal


def check_data_path(directory: Path, written: str, roots: Roots) -> tuple[str, Refusal | None]:
    """A data file a harness names (a bank's `file`), relative to `directory`: the path to read it at, or
    why it may not be read. It is not opened here (the run reads it). It must stay inside `roots` and be a
    regular file or a folder (a saved data set). A missing file is `bank-file-not-found`, a warning: the
    path is still the one to read, since the file may be written before the run, or the run may be
    given other data for the bank (`--bank NAME=PATH`)."""
    display = str(directory / written)
    try:
        real = os.path.realpath(directory / written)
        status = os.stat(real) if roots.contain(real) else None
    except FileNotFoundError:
        return display, _missing_data(display)
    except (OSError, ValueError) as error:
        return display, Refusal("unreadable-file", f"cannot read {display}: {_reason(error)}")
    if status is None:
        return display, _outside(written, display, real, roots)
    if not (stat.S_ISREG(status.st_mode) or stat.S_ISDIR(status.st_mode)):
        return display, _not_regular(display)
    return display, None


def _missing_data(display: str) -> Refusal:
    return Refusal(
        "bank-file-not-found",
        f"{display} does not exist",
        reason=f"there is no {display} (a bank's file is relative to the harness file)",
        hints=(
            "create the file before the run, correct the path (relative to the folder of the harness file), "
            "or leave `file` out and give the bank's data with `harnessc run --bank NAME=PATH`",
        ),
    )


def _outside(written: str, display: str, real: str, roots: Roots) -> Refusal:
    if os.path.isabs(written):
        why = "an absolute path"
    elif ".." in Path(written).parts:
        why = "`..` leads out of it"
    else:
        why = "a symbolic link leads out of it"
    return Refusal(
        "path-outside-root",
        f"{display} is outside the harness's folder ({why})",
        reason=f"it is outside the harness's folder ({why})",
        hints=(
            "the files a harness names are relative to it and stay inside its folder tree; "
            "to share files from another folder, allow it with `--allow-root DIR`",
        ),
    )


def _read_regular_file(path: str, display: str) -> bytes | Refusal:
    try:
        status = os.stat(path)
        if stat.S_ISDIR(status.st_mode):
            return Refusal("unreadable-file", f"cannot read {display}: Is a directory")
        if not stat.S_ISREG(status.st_mode):
            return _not_regular(display)
        if status.st_size > MAX_SOURCE_BYTES:
            return _too_large(display, status.st_size)
        return _read_bounded(path, display)
    except (OSError, ValueError) as error:  # ValueError: a path with a NUL character
        return Refusal("unreadable-file", f"cannot read {display}: {_reason(error)}")


def _read_bounded(path: str, display: str) -> bytes | Refusal:
    """Read at most MAX_SOURCE_BYTES + 1 bytes; non-blocking, so that a file replaced by a pipe after the
    stat cannot make the read wait, and re-checked on the open descriptor."""
    descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    try:
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):
            return _not_regular(display)
        chunks, size = [], 0
        while size <= MAX_SOURCE_BYTES:
            chunk = os.read(descriptor, MAX_SOURCE_BYTES + 1 - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    finally:
        os.close(descriptor)
    if size > MAX_SOURCE_BYTES:
        return _too_large(display, size)
    return b"".join(chunks)


def _as_harness_text(data: bytes, display: str) -> tuple[SourceFile | None, Refusal | None]:
    """UTF-8 text (harnessc/textfile.py: a leading byte-order mark is skipped) without control characters."""
    try:
        text = textfile.decode(data, display)
    except textfile.EncodingProblem as problem:
        hints = (textfile.SAVE_AS_UTF8,)
        where = problem.position
        if where is None or problem.byte is None:  # a UTF-16 or UTF-32 byte-order mark: all of it
            return None, Refusal("invalid-encoding", f"{display}: {problem.reason}", hints, reason=problem.reason)
        return None, Refusal(
            "invalid-encoding",
            f"{display} is not valid UTF-8 (byte 0x{problem.byte:02x} at offset {where.offset})",
            hints,
            reason=f"it is not valid UTF-8 text (byte 0x{problem.byte:02x} on line {where.line})",
            position=(where.character, where.line, where.column),
        )
    control = _CONTROL.search(text)
    if control is not None:
        line = text.count("\n", 0, control.start()) + 1
        why = f"it contains the control character U+{ord(control.group()):04X} on line {line}"
        return None, _not_source(display, why)
    return SourceFile(display, text), None


def check_text_size(text: str, display: str) -> Refusal | None:
    """A source text given as a string (not read here) over MAX_SOURCE_BYTES, checked before parsing."""
    if len(text) <= MAX_SOURCE_BYTES // 4:  # at most 4 bytes per character: no need to encode
        return None
    size = len(text.encode("utf-8", errors="surrogatepass"))
    return _too_large(display, size) if size > MAX_SOURCE_BYTES else None


def _not_regular(display: str) -> Refusal:
    return Refusal(
        "not-a-regular-file",
        f"{display} is not a regular file",
        reason="it is not a regular file",
        hints=("a device or a named pipe could be read without end or block for ever; name a regular file",),
    )


def _too_large(display: str, size: int) -> Refusal:
    limit = f"{size:,} bytes, more than the {MAX_SOURCE_BYTES:,} a harness source may have"
    return Refusal(
        "file-too-large",
        f"{display} is {limit}",
        reason=f"it is {limit}",
        hints=("split it: move snippets into files it imports",),
    )


def _not_source(display: str, why: str) -> Refusal:
    return Refusal(
        "not-harness-source", f"{display} is not a harness source: {why}", reason=f"not a harness source: {why}"
    )


def _reason(error: Exception) -> str:
    return getattr(error, "strerror", None) or str(error)
