"""Text files as people save them: UTF-8, perhaps with a byte-order mark, perhaps not UTF-8 at all.

Every text file the tools read (harness sources, data files, engine and training configurations) is
decoded by these rules, so that one file reads the same whichever command reads it:

- a leading UTF-8 byte-order mark (EF BB BF, which Windows editors write) is skipped;
- a file that starts with the byte-order mark of UTF-16 or UTF-32 (Notepad's "Unicode") is refused as a
  whole, naming its encoding, rather than read as garbage;
- any other byte that is not UTF-8 is refused naming the file, the line, the column and the byte.

`decode` applies them to bytes already read; `read_text` reads a (small) file and applies them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

UTF8_BOM = b"\xef\xbb\xbf"
# Longest first: the UTF-32 little-endian mark begins with the UTF-16 little-endian one.
_FOREIGN_BOMS = (
    (b"\xff\xfe\x00\x00", "UTF-32 (little-endian)"),
    (b"\x00\x00\xfe\xff", "UTF-32 (big-endian)"),
    (b"\xff\xfe", "UTF-16 (little-endian)"),
    (b"\xfe\xff", "UTF-16 (big-endian)"),
)
SAVE_AS_UTF8 = "save the file as UTF-8"


def foreign_encoding(data: bytes) -> str | None:
    """The encoding a UTF-16 or UTF-32 byte-order mark at the start of `data` announces, or None."""
    return next((name for mark, name in _FOREIGN_BOMS if data.startswith(mark)), None)


@dataclass(frozen=True, slots=True)
class Position:
    """Where a byte is: its offset in the bytes, and the 1-based line and column (in characters) in the
    text before it, as an editor shows them."""

    offset: int
    line: int
    column: int
    character: int  # the 0-based character offset of the same place in the decoded text


def locate(data: bytes, offset: int) -> Position:
    """The position of byte `offset` of `data` (UTF-8 text up to it; undecodable bytes count as one
    character each)."""
    before = data[:offset].decode("utf-8", errors="replace")
    line_start = before.rfind("\n") + 1
    return Position(offset, before.count("\n") + 1, len(before) - line_start + 1, len(before))


class EncodingProblem(ValueError):
    """A text file that is not UTF-8. `position` is None when the whole file is in another encoding (a
    UTF-16 or UTF-32 byte-order mark), else the first byte that is not UTF-8; `byte` is that byte."""

    def __init__(self, display: str, reason: str, position: Position | None = None, byte: int | None = None):
        self.display, self.reason, self.position, self.byte = display, reason, position, byte
        where = display if position is None else f"{display}, line {position.line}, column {position.column}"
        super().__init__(f"{where}: {reason}; {SAVE_AS_UTF8}")


def decode(data: bytes, display: str) -> str:
    """The text of a file's bytes by the rules above (a leading UTF-8 byte-order mark skipped); raises
    EncodingProblem naming `display`. Positions count from the first byte after a skipped mark."""
    encoding = foreign_encoding(data)
    if encoding is not None:
        raise EncodingProblem(display, f"the file is {encoding} text, not UTF-8")
    data = data.removeprefix(UTF8_BOM)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        byte = data[error.start]
        reason = f"byte 0x{byte:02x} (offset {error.start}) is not valid UTF-8"
        raise EncodingProblem(display, reason, locate(data, error.start), byte) from None


def read_text(path: str | os.PathLike[str], display: str | None = None) -> str:
    """The text of a small file (a configuration) by the rules above; raises OSError when it cannot be
    read and EncodingProblem when it is not UTF-8 text."""
    with open(path, "rb") as handle:
        data = handle.read()
    return decode(data, str(path) if display is None else display)
