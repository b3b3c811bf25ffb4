"""What a long job shows its user: `harnessc run`, `ophsd train` and `ophsd eval`.

On a terminal, one live display (rich): the job's phase (loading the model, starting the engine, step k/N and
the part of the step, evaluating), a progress bar with the latest numbers, and an ETA. Elsewhere (a pipe, a CI
log), one plain line per phase and per step. Messages that matter to the user are said once, in our words,
above the display (`note`, and the `ophsd`/`harnessc` loggers).

Everything else goes to the job's log file: vLLM, torch and transformers write from Python (logging, warnings,
tqdm bars), from C++ (NUMA binding, oneDNN) and from child processes (vLLM's engine core), so only redirecting
the process's file descriptors 1 and 2 catches all of it. The display writes to a duplicate of the original
standard error taken before the redirection. `verbose=True` redirects nothing.

The code that does the work reports through the module-level `phase`, `step_phase`, `start`, `advance` and
`note` functions, which do nothing (`note`: print to standard error) when no console is active (a library
call, a test): the trainer and the executor never hold a console.
"""

from __future__ import annotations

import datetime
import logging
import os
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import RenderableType
    from rich.progress import Progress, TaskID

_active: JobConsole | None = None


def phase(text: str) -> None:
    """Say what the job does now (e.g. "loading the model"): the live display's phase, or one plain line."""
    if _active is not None:
        _active.set_phase(text)


def step_phase(text: str) -> None:
    """Say which part of the current step runs (e.g. "rollout"): shown live on a terminal, never as a line."""
    if _active is not None:
        _active.set_step_phase(text)


def start(total: int, *, completed: float = 0, unit: str = "step") -> None:
    """Begin counting `total` units of work (see JobConsole.start)."""
    if _active is not None:
        _active.start(total, completed=completed, unit=unit)


def advance(completed: float, fields: Mapping[str, str] | None = None, *, line: bool = True) -> None:
    """`completed` units are done, with the latest numbers (see JobConsole.advance)."""
    if _active is not None:
        _active.advance(completed, fields, line=line)


def note(message: str) -> None:
    """A message that matters to the user, printed above the live display (and kept in the log file)."""
    if _active is not None:
        _active.say(message)
    else:
        print(message, file=sys.stderr)


class NoteHandler(logging.Handler):
    """Routes our own loggers' records (`ophsd`, `harnessc`) through `note`: above the live display while a
    console is active, on the current standard error otherwise."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            note(self.format(record))
        except Exception:  # a logging handler must never raise into the code that logged
            self.handleError(record)


def install_note_handler(logger_name: str, prefix: str) -> None:
    """Send `logger_name`'s warnings to the user as "PREFIX: warning: MESSAGE" (once per process)."""
    logger = logging.getLogger(logger_name)
    if not any(isinstance(handler, NoteHandler) for handler in logger.handlers):
        handler = NoteHandler()
        handler.setFormatter(logging.Formatter(f"{prefix}: warning: %(message)s"))
        logger.addHandler(handler)


class JobConsole:
    """The console of one job (a context manager; see the module docstring).

    `prog` prefixes plain lines ("ophsd train: step 3/20 ..."); `log_file` receives every third-party message
    (its folder is created; appended to, with a header line per job); `verbose=True` leaves all output where
    it goes. `stream` is where the display writes (default: the process's standard error).
    """

    def __init__(self, prog: str, *, log_file: str | Path | None, verbose: bool = False, stream: IO[str] | None = None):
        self.prog = prog
        self.log_file = Path(log_file) if log_file is not None and not verbose else None
        self.stream = stream
        self.live = False
        self.bar: Progress | None = None
        self.task: TaskID | None = None
        self.unit = "step"
        self.total: int | None = None
        self.completed: float = 0
        self.fields: dict[str, str] = {}
        self.phase_text = ""
        self.step_text = ""
        self.started = self.counting_since = time.monotonic()
        self.counted_from: float = 0
        self._saved_fds: tuple[int, int] | None = None
        self._own_stream: IO[str] | None = None
        self._tqdm_disable: str | None = None

    # ---- setting up and tearing down -----------------------------------------------------------------------------

    def __enter__(self) -> JobConsole:
        global _active
        if self.log_file is not None:
            self._redirect(self.log_file)
        if self.stream is None:
            self.stream = self._own_stream or sys.stderr
        self.live = _is_terminal(self.stream)
        if self.live:
            self._start_display()
        _active = self
        return self

    def __exit__(self, *exc: object) -> None:
        global _active
        _active = None
        if self.bar is not None:
            self.bar.stop()
            self.bar = None
        self._restore()

    def _redirect(self, log_file: Path) -> None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        with log_file.open("a", encoding="utf-8") as log:
            stamp = datetime.datetime.now().isoformat(timespec="seconds")
            log.write(f"==== {stamp} {self.prog}: {' '.join(sys.argv[1:])}\n")
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        if _is_fd(sys.stderr, 2):  # the display keeps writing where standard error went before
            self._own_stream = os.fdopen(os.dup(2), "w", encoding="utf-8", errors="replace", buffering=1)
        self._saved_fds = (os.dup(1), os.dup(2))
        target = os.open(log_file, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        os.dup2(target, 1)
        os.dup2(target, 2)
        os.close(target)
        # Progress bars are noise in a file: tqdm (vLLM, datasets, huggingface_hub) reads this at each bar.
        self._tqdm_disable = os.environ.get("TQDM_DISABLE")
        os.environ["TQDM_DISABLE"] = "1"

    def _restore(self) -> None:
        if self._saved_fds is None:
            return
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        for fd, saved in zip((1, 2), self._saved_fds):
            os.dup2(saved, fd)
            os.close(saved)
        self._saved_fds = None
        if self._own_stream is not None:
            self._own_stream.close()
            self._own_stream = None
        if self._tqdm_disable is None:
            os.environ.pop("TQDM_DISABLE", None)
        else:
            os.environ["TQDM_DISABLE"] = self._tqdm_disable

    def _start_display(self) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, SpinnerColumn, TextColumn, TimeElapsedColumn

        self.bar = _display(
            lambda: "  ".join(f"{key} {value}" for key, value in self.fields.items()),
            SpinnerColumn(),
            TextColumn("[bold]{task.description}"),
            BarColumn(bar_width=24),
            TimeElapsedColumn(),
            TextColumn("{task.fields[eta]}"),
            console=Console(file=self.stream),
            redirect_stdout=False,  # standard output belongs to the log file (or to the verbose user)
            redirect_stderr=False,
        )
        self.bar.start()
        self.task = self.bar.add_task(self.prog, total=None, eta="")

    # ---- what the job reports ------------------------------------------------------------------------------------

    def set_phase(self, text: str) -> None:
        self.phase_text, self.step_text = text, ""
        if self.live:
            self._refresh()
        else:
            self._line(text)

    def set_step_phase(self, text: str) -> None:
        self.step_text = text
        if self.live:
            self._refresh()

    def start(self, total: int, *, completed: float = 0, unit: str = "step") -> None:
        """Begin counting `total` units of work (steps, records), `completed` of them already done."""
        self.total, self.completed, self.unit = total, completed, unit
        self.counted_from, self.counting_since = completed, time.monotonic()
        self.phase_text = self.step_text = ""
        if self.bar is not None and self.task is not None:
            self.bar.update(self.task, total=total, completed=completed)
            self._refresh()

    def advance(self, completed: float, fields: Mapping[str, str] | None = None, *, line: bool = True) -> None:
        """`completed` units are done; `fields` are the latest numbers ("loss": "0.0123", ...). Off a terminal,
        a plain line is printed unless `line=False` (a partial advance, e.g. a wave inside a chunk)."""
        self.completed = completed
        self.fields = dict(fields or {})
        self.phase_text = self.step_text = ""
        if self.live:
            assert self.bar is not None and self.task is not None
            self.bar.update(self.task, completed=completed)
            self._refresh()
        elif line:
            numbers = (f"{key} {value}" for key, value in self.fields.items())
            self._line("  ".join([self._position(current=False), *numbers]))

    def say(self, message: str) -> None:
        if self.bar is not None:
            self.bar.console.print(message, markup=False, highlight=False)
        else:
            assert self.stream is not None
            print(message, file=self.stream, flush=True)
        if self._saved_fds is not None:  # the log file (now file descriptor 2) reads as the whole story
            os.write(2, f"{message}\n".encode("utf-8", errors="replace"))

    # ---- rendering -------------------------------------------------------------------------------------------------

    def _position(self, *, current: bool = True) -> str:
        """ "step 3/20" (`current`: the step under way; else the last one done) or "5/8 records"."""
        if self.total is None:
            return ""
        done = int(self.completed)
        if self.unit == "step":
            return f"step {min(done + 1, self.total) if current else done}/{self.total}"
        return f"{done}/{self.total} {self.unit}s"

    def _refresh(self) -> None:
        assert self.bar is not None and self.task is not None
        # A phase names itself ("evaluating after step 3"); the parts of a step go with the step's number.
        parts = [part for part in (self.phase_text or self._position(), self.step_text) if part]
        self.bar.update(self.task, description=" · ".join(parts) or self.prog, eta=self._eta())

    def _eta(self) -> str:
        """The time left at the mean pace since counting started (this job's own units, not a resumed run's)."""
        if self.total is None or self.completed <= self.counted_from:
            return ""
        pace = (time.monotonic() - self.counting_since) / (self.completed - self.counted_from)
        return "eta " + _clock(pace * (self.total - self.completed))

    def _line(self, text: str) -> None:
        assert self.stream is not None
        eta = self._eta()
        print(f"{self.prog}: {text}" + (f"  {eta}" if eta else ""), file=self.stream, flush=True)

    def elapsed(self) -> float:
        """Seconds since the console was created."""
        return time.monotonic() - self.started


def _display(numbers: Callable[[], str], *columns: Any, **options: Any) -> Progress:
    """A rich Progress whose task line has the latest numbers under it, on a line of their own (beside the bar
    they do not fit a narrow terminal); `numbers()` gives them at each refresh."""
    from rich.progress import Progress
    from rich.text import Text

    class Display(Progress):
        def get_renderables(self) -> Iterator[RenderableType]:
            yield self.make_tasks_table(self.tasks)
            text = numbers()
            if text:
                yield Text("  " + text, style="cyan", overflow="fold")

    return Display(*columns, **options)


def _clock(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def duration(seconds: float) -> str:
    """A duration for people: "42 s", "3 min 05 s", "1 h 02 min"."""
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def _is_fd(stream: Any, fd: int) -> bool:
    try:
        return stream.fileno() == fd
    except (AttributeError, OSError, ValueError):  # a replaced stream (a test's capture, an IDE's console)
        return False


def _is_terminal(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False
