"""Killing a process at a known point, not after a sleep: the tests that SIGKILL a run make the process block
at a point they choose (a scripted engine's N-th call, or `pause_point` in tests/pause_point_builtins.py),
wait for the marker file it creates there, and only then kill it. What the kill leaves is then exactly
known, whatever the machine's speed."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

# Only a hang guard: a process that neither pauses nor exits within it has hung (a bug, not slowness).
HANG_TIMEOUT_S = 600


def wait_until_paused(process: subprocess.Popen, marker: Path, log: Path) -> None:
    """Return once `marker` exists (the process is blocked at its kill point); fail, showing the process's
    output `log` (a file, not a pipe: a full pipe would block the process short of its kill point), if it
    exits before it gets there or never gets there."""
    deadline = time.monotonic() + HANG_TIMEOUT_S
    while not marker.exists():
        if process.poll() is not None:
            output = log.read_text(errors="replace")
            raise AssertionError(f"the process exited ({process.returncode}) before its kill point:\n{output}")
        if time.monotonic() > deadline:
            process.kill()
            raise AssertionError(f"the process did not reach its kill point within {HANG_TIMEOUT_S} s")
        time.sleep(0.01)
