"""A user built-in that lets a test SIGKILL a training run at a known point (tests/test_resume_safety.py).

`pause_point(value, at)` returns `value`. The environment names at most one pause per process:
PAUSE_POINT=NAME:N makes the N-th call with `at == NAME` create the file named by PAUSE_POINT_MARKER and then
block until the process is killed; every other call returns at once. A harness calls it where the test
wants a kill point: in a `let` stage (the harness phase of a step) or a bank field (the bank update after
the optimizer step). Imported only by the process under test (`builtins = ["pause_point_builtins"]`), so
that the test session's own registry stays the standard library.
"""

from __future__ import annotations

import os
import threading
from collections import Counter
from pathlib import Path

from harnessc.builtins.registry import builtin

_calls: Counter[str] = Counter()


@builtin("pause_point(value: text, at: text) -> text")
def pause_point(value: str, at: str) -> str:
    """`value`, after blocking for good at the call PAUSE_POINT names (see the module docstring)."""
    _calls[at] += 1
    name, _, count = os.environ.get("PAUSE_POINT", "").partition(":")
    if name == at and count and _calls[at] == int(count):
        Path(os.environ["PAUSE_POINT_MARKER"]).touch()
        threading.Event().wait()
    return value
