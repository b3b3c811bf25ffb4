"""What the two command-line programs, `harnessc` and `ophsd`, share: their exit codes, `NAME=VALUE` items,
and the wrapper that keeps Python tracebacks away from users.

Exit codes: 0 success, 1 a problem with the user's inputs (reported without a traceback), 2 a usage error,
3 an internal error (a bug: `--debug` shows the traceback), 130 interrupted (Ctrl-C).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence

EXIT_OK, EXIT_ERRORS, EXIT_USAGE, EXIT_INTERNAL = 0, 1, 2, 3
EXIT_INTERRUPTED = 130  # 128 + SIGINT, what shells report for Ctrl-C

# An error the user can fix, and how to report it: the exit code to return (after printing).
ErrorHandler = tuple[type[Exception] | tuple[type[Exception], ...], Callable[[Exception], int]]


def parse_pairs(values: Sequence[str], flag: str, *, form: str = "NAME=VALUE") -> dict[str, str]:
    """`NAME=VALUE` command-line items (`--set`, `--map`, `--bank`, ...) as a dict, the last of a name winning;
    ValueError names the first malformed one (no `=`, or no name)."""
    pairs: dict[str, str] = {}
    for item in values:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise ValueError(f"{flag} expects {form}, got {item!r}")
        pairs[name.strip()] = value
    return pairs


def run_command(
    command: Callable[[], int],
    *,
    prog: str,
    debug: bool,
    expected: Sequence[ErrorHandler] = (),
    interrupted: str = "interrupted",
    internal: str = "rerun with --debug for the traceback",
) -> int:
    """Run `command` under the contract both programs keep: its exit code; for an `expected` error (the first
    matching handler's), the exit code its handler returns; for Ctrl-C, `interrupted` and EXIT_INTERRUPTED. Any
    other exception is a bug: one line naming it, then `internal`, and EXIT_INTERNAL; with `debug` it is
    raised instead, traceback and all."""
    try:
        return command()
    except KeyboardInterrupt:
        print(interrupted, file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as error:  # noqa: BLE001 - the contract is: no traceback without --debug
        for kinds, handle in expected:
            if isinstance(error, kinds):
                return handle(error)
        if debug:
            raise
        print(f"{prog}: internal error: {type(error).__name__}: {error}\n{internal}", file=sys.stderr)
        return EXIT_INTERNAL
