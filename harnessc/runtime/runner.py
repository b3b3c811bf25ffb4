"""`harnessc run`: a harness over a data set, written incrementally as JSONL, resumable, with a summary.

Output safety: an existing output is never overwritten unless `overwrite=True`; with `resume=True` the
records already written are kept and only the missing (row, replica) pairs run. A run killed at any moment
(SIGKILL included) leaves at most one partial last line, which resume drops; every complete line is a
whole record (each chunk is written, flushed and fsync'ed before the next chunk starts). Within a chunk,
every engine answer is journaled as it arrives (runtime/journal.py): a resumed run replays the killed chunk
from its journal and sends the engine only what the kill interrupted.

Resume only continues the same run: before the first record, a header `OUT.run.json` records what
decides the records (harness and data fingerprints, banks, overrides, model, engine, seed, samples, ...);
`resume=True` compares it with the current options and refuses a mismatch, naming what differs. Only
`limit` may grow (the first rows' records stay valid).

Bad rows are that row's problem: a row that cannot be read or typed becomes a record with a
`data-error` failure naming file, row and field (`RunSummary.data_errors`), and the other rows run.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harnessc import ir
from harnessc.console import advance, phase, start
from harnessc.engines.base import Engine
from harnessc.runtime.data import DataError, fingerprint
from harnessc.runtime.executor import EngineCallStats, StageSynchronousExecutor
from harnessc.runtime.harness_setup import UndeclaredBankError, set_up_harness
from harnessc.runtime.journal import Journal, JournaledEngine, journal_path
from harnessc.runtime.trace import ExampleRecord, Failure
from harnessc.sampling import DEFAULT_MAX_TOKENS


class RunError(Exception):
    """A problem with the run's inputs (output exists, data, banks) reported to the user without traceback."""


@dataclass
class RunOptions:
    harness: str
    data: str
    out: str
    model: str | None = None
    engine: str | None = None
    engine_options: dict[str, Any] = field(default_factory=dict)
    limit: int | None = None
    resume: bool = False
    overwrite: bool = False
    overrides: dict[str, str] = field(default_factory=dict)
    columns: dict[str, str] = field(default_factory=dict)
    banks: dict[str, str] = field(default_factory=dict)
    builtins: list[str] = field(default_factory=list)
    allow_roots: list[str] = field(default_factory=list)  # folders imports may read besides the harness's
    student_only: bool = False
    samples: int = 1  # --n: independent runs of each example (pass@k)
    seed: int = 0
    chunk_size: int = 256  # examples per stage-synchronous batch (and per write)
    default_max_tokens: int = DEFAULT_MAX_TOKENS


@dataclass
class StageStats:
    calls: int = 0
    skipped: int = 0
    prompt_tokens: int = 0
    generated_tokens: int = 0


@dataclass
class RunSummary:
    harness: str
    examples: int
    records: int
    samples: int
    accuracy: float | None
    pass_at_k: float | None
    stages: dict[str, StageStats]
    failures: dict[str, int]
    engine_seconds: dict[str, float]
    seconds: float
    generated_tokens_this_run: int
    data_errors: list[str] = field(default_factory=list)  # rows of this run's data that could not be used
    # stage → the first failure message, for stages that failed in every record (a run that is all failure)
    failed_everywhere: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        data = dict(self.__dict__)
        data["stages"] = {name: stats.__dict__ for name, stats in self.stages.items()}
        return data


# ---- output --------------------------------------------------------------------------------------------------


# Engine options that change speed or memory, never the records: a resumed run may change them.
PERFORMANCE_ONLY_ENGINE_OPTIONS = frozenset(
    {"batch_size", "gpu_memory_utilization", "max_num_seqs", "tensor_parallel_size", "enforce_eager", "device"}
    # the openai engine's: where the servers are and how requests reach them
    | {"base_urls", "api_key", "max_in_flight", "timeout_s", "retries", "backoff_s", "revive_after_s"}
)


def header_path(out: Path) -> Path:
    """Where a run's header lives: next to its output, `OUT.run.json`."""
    return out.with_name(out.name + ".run.json")


def run_identity(options: RunOptions, harness: ir.Harness | None = None) -> dict[str, Any]:
    """What decides a run's records, as JSON data: a resumed run must match it (see `check_same_run`).
    With `harness`, the files its banks declare (`file` settings) are fingerprinted too."""
    bank_files = {bank.name: bank.file for bank in (harness.banks if harness else ()) if bank.file}
    bank_files.update(options.banks)
    banks = {name: {"path": path, "sha256": fingerprint(path)} for name, path in sorted(bank_files.items())}
    return {
        "harness": {"path": options.harness, "sha256": fingerprint(options.harness)},
        "data": {"path": options.data, "sha256": fingerprint(options.data)},
        "banks": banks,
        "overrides": dict(sorted(options.overrides.items())),
        "columns": dict(sorted(options.columns.items())),
        "builtins": list(options.builtins),
        "model": options.model or "default",
        "engine": chosen_engine(options),
        "engine_options": {
            key: value
            for key, value in sorted(options.engine_options.items())
            if key not in PERFORMANCE_ONLY_ENGINE_OPTIONS
        },
        "student_only": options.student_only,
        "samples": options.samples,
        "seed": options.seed,
        "max_tokens": options.default_max_tokens,
        "limit": options.limit,
    }


def chosen_engine(options: RunOptions) -> str | None:
    """The engine a run uses: `--engine`, or the first available local one (vLLM when installed)."""
    from harnessc.engines import LOCAL_ENGINE_NAMES, available_engines

    return options.engine or next((name for name in available_engines() if name in LOCAL_ENGINE_NAMES), None)


def check_same_run(out: Path, saved: Mapping[str, Any], current: Mapping[str, Any]) -> None:
    """Raise RunError naming every setting in which `current` differs from the run that wrote `out`."""
    differences = []
    for key in sorted(set(saved) | set(current)):
        before, now = saved.get(key), current.get(key)
        if key == "limit":
            if before is not None and (now is None or now >= before):
                continue  # a larger limit only adds rows
            if before == now:
                continue
        elif key in ("harness", "data") and isinstance(before, dict) and isinstance(now, dict):
            if before.get("sha256") == now.get("sha256"):
                continue
            if before.get("path") == now.get("path"):
                differences.append(f"{key}: {now.get('path')} has changed since the run started")
            else:
                differences.append(f"{key}: {before.get('path')} then, {now.get('path')} now (different contents)")
            continue
        elif key == "banks" and isinstance(before, dict) and isinstance(now, dict):
            digests = {name: item.get("sha256") for name, item in before.items()}
            if digests == {name: item.get("sha256") for name, item in now.items()}:
                continue
        if before != now:
            differences.append(f"{_setting_name(key)}: {json.dumps(before)} then, {json.dumps(now)} now")
    if differences:
        raise RunError(
            f"{out} was written by a different run, so --resume would mix their records:\n  "
            + "\n  ".join(differences)
            + "\nstart afresh with --overwrite, or write to another --out"
        )


def _setting_name(key: str) -> str:
    flags = {"overrides": "--set", "columns": "--map", "banks": "--bank", "builtins": "--builtins"}
    flags |= {"student_only": "--student-only", "samples": "--n", "max_tokens": "--max-tokens", "limit": "--limit"}
    flags |= {"engine_options": "engine options", "model": "--model", "engine": "--engine", "seed": "--seed"}
    return flags.get(key, key)


def _write_header(out: Path, identity: Mapping[str, Any]) -> None:
    """Write the header atomically (a temporary file renamed into place), so it is whole or absent."""
    path = header_path(out)
    staging = path.with_name(path.name + ".tmp")
    staging.write_text(json.dumps(identity, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(staging, path)


def _read_header(out: Path) -> dict[str, Any]:
    path = header_path(out)
    try:
        header = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RunError(
            f"{out} has no run header ({path.name}), so this cannot be checked to be the same run "
            "(written by an older harnessc?); start afresh with --overwrite, or write to another --out"
        ) from None
    except (OSError, ValueError) as error:
        raise RunError(f"{path} is not a readable run header ({error}); start afresh with --overwrite") from None
    if not isinstance(header, dict):
        raise RunError(f"{path} is not a run header; start afresh with --overwrite")
    return header


def prepare_output(
    path: Path, *, resume: bool, overwrite: bool, identity: Mapping[str, Any] | None = None
) -> set[tuple[int, int]]:
    """The (row, replica) pairs already done. Drops a partial last line left by a killed run.

    With `identity` (see `run_identity`), a new output gets its header, and a resumed one must match the
    header it has (RunError otherwise, before anything is changed)."""
    if path.is_dir():
        raise RunError(f"--out {path} is a directory; name a file, e.g. {path / 'records.jsonl'}")
    if path.exists() and not overwrite:
        if not resume:
            raise RunError(f"{path} exists; pass --resume to continue that run or --overwrite to replace it")
        if identity is not None:
            saved = _read_header(path)
            check_same_run(path, saved, identity)
            if saved.get("limit") != identity.get("limit"):
                _write_header(path, identity)  # the limit grew
        return _done_pairs(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists():
            path.unlink()
        journal_path(path).unlink(missing_ok=True)  # a killed earlier run's answers are not this run's
        if identity is not None:
            _write_header(path, identity)  # before the output: an output never exists without its header
        path.touch()
    except OSError as error:
        raise RunError(f"cannot write the output {path}: {error.strerror or error}") from None
    return set()


def _done_pairs(path: Path) -> set[tuple[int, int]]:
    done: set[tuple[int, int]] = set()
    data = path.read_bytes()
    keep = data.rfind(b"\n") + 1  # everything after the last newline is a line cut off mid-write
    for number, line in enumerate(data[:keep].splitlines(), start=1):
        try:
            record = json.loads(line)
            done.add((int(record["index"]), int(record.get("replica", 0))))
        except (ValueError, KeyError, TypeError) as error:
            raise RunError(
                f"{path}, line {number}: not a record of a harnessc run ({error}); pass --overwrite to start afresh"
            ) from None
    if keep != len(data):
        with path.open("r+b") as handle:
            handle.truncate(keep)
    return done


def append_records(path: Path, records: Sequence[ExampleRecord]) -> None:
    """Append one JSON line per record, then flush and fsync. A record that cannot be written as JSON
    (text with lone surrogates, say) is written with that text repaired, never dropped with its chunk."""
    lines = b"".join(_record_line(record) for record in records)
    with path.open("ab") as handle:
        handle.write(lines)
        handle.flush()
        os.fsync(handle.fileno())


def _record_line(record: ExampleRecord) -> bytes:
    try:
        return (record.model_dump_json() + "\n").encode("utf-8")
    except (ValueError, RecursionError):  # pydantic's serialization error is a ValueError
        pass
    repaired, count = _replace_surrogates(record.model_dump(mode="python"))
    note = Failure(
        stage="output",
        reason="invalid-text",
        message=f"{count} lone surrogate(s) in this record's values were replaced with U+FFFD to write it",
    )
    try:
        fixed = ExampleRecord.model_validate(repaired)
        return (fixed.model_copy(update={"failures": [*fixed.failures, note]}).model_dump_json() + "\n").encode()
    except (ValueError, RecursionError) as error:
        failure = Failure(stage="output", reason="output-error", message=f"the record cannot be written: {error}")
        minimal = ExampleRecord(index=record.index, replica=record.replica, failure=failure, failures=[failure])
        return (minimal.model_dump_json() + "\n").encode("utf-8")


_SURROGATES = re.compile("[\ud800-\udfff]")


def _replace_surrogates(value: Any) -> tuple[Any, int]:
    """`value` with lone surrogates in its strings (and keys) replaced by U+FFFD, and how many there were."""
    if isinstance(value, str):
        return _SURROGATES.subn("\ufffd", value)
    if isinstance(value, dict):
        pairs = [(_replace_surrogates(key), _replace_surrogates(item)) for key, item in value.items()]
        fixed = {key: item for (key, _), (item, _) in pairs}
        return fixed, sum(key_count + item_count for (_, key_count), (_, item_count) in pairs)
    if isinstance(value, (list, tuple)):
        items = [_replace_surrogates(item) for item in value]
        return [item for item, _ in items], sum(count for _, count in items)
    return value, 0


def read_records(path: Path) -> Iterator[ExampleRecord]:
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                yield ExampleRecord.model_validate_json(line)


def create_run_engine(options: RunOptions) -> Engine:
    """The engine a run asks for (`--engine`, `--model`, engine options).

    Raises RunError when the engine cannot start with these options (an unknown or bad engine option, a
    model that is not there or does not load), EngineUnavailableError when it is not installed."""
    from harnessc.engines import EngineUnavailableError, create_engine

    try:
        return create_engine(options.engine, options.model, **options.engine_options)
    except EngineUnavailableError:
        raise
    except (OSError, ValueError, TypeError) as error:  # the options or the model, not our code
        model = options.model or ("the servers' model" if options.engine == "openai" else "the default model")
        raise RunError(f"cannot start the engine with {model}: {type(error).__name__}: {error}") from None


# ---- the run ------------------------------------------------------------------------------------------------------


def run(options: RunOptions, engine_factory: Callable[[], Engine]) -> RunSummary:
    """Run a harness over a data set (see the module docstring). Progress goes to the active console
    (harnessc.console): the phase, a line per engine call (its wave) and per chunk written."""
    from harnessc.engines import check_model

    started = time.perf_counter()
    check_model(options.model)
    data_errors: list[DataError] = []
    phase(f"compiling {options.harness} and reading {options.data}")
    try:
        setup = set_up_harness(
            options.harness,
            purpose="run",
            overrides=options.overrides,
            builtins=options.builtins,
            allow_roots=options.allow_roots,
            bank_files=options.banks,
            data=options.data,
            limit=options.limit,
            columns=options.columns,
            data_errors=data_errors,
        )
    except UndeclaredBankError as error:
        raise RunError(str(error)) from None
    harness, examples = setup.harness, setup.examples
    if not examples and not data_errors:
        why = "--limit 0 selects no rows" if options.limit == 0 else "has no rows"
        raise DataError(options.data, None, None, why)
    out = Path(options.out)
    done = prepare_output(
        out, resume=options.resume, overwrite=options.overwrite, identity=run_identity(options, harness)
    )
    refused = [
        _data_error_record(error, replica)
        for error in data_errors
        for replica in range(options.samples)
        if (error.row_index, replica) not in done
    ]
    if refused:
        append_records(out, refused)
    pending = [
        (index, inputs, replica)
        for index, inputs in examples
        for replica in range(options.samples)
        if (index, replica) not in done
    ]
    program = setup.program(
        mode="inference",
        seed=options.seed,
        default_max_tokens=options.default_max_tokens,
        student_only=options.student_only,
    )
    total = (len(examples) + len(data_errors)) * options.samples
    progress = _Progress(total - len(pending), total)
    journal = Journal(journal_path(out))  # the answers of a chunk a killed run did not finish (resume)
    if pending:

        def start_engine() -> Engine:
            phase(f"starting the {chosen_engine(options)} engine")
            engine = engine_factory()
            start(total, completed=progress.finished, unit="record")
            return engine

        engine = JournaledEngine(start_engine, journal)
        executor = StageSynchronousExecutor(program, engine, observer=progress.engine_call)
        for begin in range(0, len(pending), options.chunk_size):
            chunk = pending[begin : begin + options.chunk_size]
            progress.chunk = len(chunk)
            append_records(out, executor.run(chunk))
            journal.clear()
            progress.chunk_written()
    journal.remove()
    summary = summarize(
        harness,
        out,
        len(examples) + len(data_errors),
        options.samples,
        dict(progress.engine_seconds),
        time.perf_counter() - started,
        progress.generated,
    )
    summary.data_errors = [str(error) for error in data_errors]
    return summary


class _Progress:
    """A run's progress, as the console shows it: records written, and within a chunk the waves done."""

    def __init__(self, finished: int, total: int) -> None:
        self.finished, self.total = finished, total
        self.chunk = 0  # examples in the chunk under way
        self.generated = 0  # tokens generated in this run
        self.engine_seconds: defaultdict[str, float] = defaultdict(float)

    def engine_call(self, stats: EngineCallStats) -> None:
        self.generated += stats.generated_tokens
        for stage in stats.stages:
            self.engine_seconds[stage] += stats.seconds / len(stats.stages)
        rate = f"{stats.generated_tokens / stats.seconds:,.0f}" if stats.seconds > 0 else "-"
        fields = {
            f"wave {stats.wave}/{stats.waves}": f"{', '.join(stats.stages)}: {stats.requests} requests, "
            f"{stats.generated_tokens:,} tokens in {stats.seconds:.1f} s ({rate} tok/s)"
        }
        # Within a chunk, the waves done move the bar (and the ETA) before any record is written.
        advance(self.finished + self.chunk * stats.wave / stats.waves, fields)

    def chunk_written(self) -> None:
        self.finished += self.chunk
        advance(self.finished, {"written": f"{self.finished}/{self.total} records"}, line=self.finished < self.total)


def _data_error_record(error: DataError, replica: int) -> ExampleRecord:
    """The record of a row that could not be used: it fails with the data error, the run goes on."""
    failure = Failure(stage="data", reason="data-error", message=str(error))
    return ExampleRecord(index=error.row_index or 0, replica=replica, failure=failure, failures=[failure])


def summarize(
    harness: ir.Harness,
    out: Path,
    examples: int,
    samples: int,
    engine_seconds: dict[str, float],
    seconds: float,
    generated: int,
) -> RunSummary:
    records = list(read_records(out))
    stages: dict[str, StageStats] = {}
    for record in records:
        for call in record.calls:
            stats = stages.setdefault(call.stage, StageStats())
            stats.skipped += call.skipped
            stats.calls += not call.skipped
            stats.prompt_tokens += call.prompt_tokens
            stats.generated_tokens += call.generated_tokens
    graded = harness.grade is not None and records
    by_row: dict[int, list[float]] = {}
    for record in records:
        by_row.setdefault(record.index, []).append(record.correct)
    return RunSummary(
        harness=harness.name,
        examples=examples,
        records=len(records),
        samples=samples,
        accuracy=sum(record.correct for record in records) / len(records) if graded else None,
        pass_at_k=sum(max(grades) > 0 for grades in by_row.values()) / len(by_row) if graded else None,
        stages=stages,
        failures=dict(Counter(record.failure.reason for record in records if record.failure)),
        engine_seconds=engine_seconds,
        seconds=seconds,
        generated_tokens_this_run=generated,
        failed_everywhere=_failed_everywhere(records),
    )


def _failed_everywhere(records: Sequence[ExampleRecord]) -> dict[str, str]:
    first: dict[str, str] = {}
    counts: Counter[str] = Counter()
    for record in records:
        stages = {failure.stage: failure for failure in reversed(record.failures)}
        counts.update(stages.keys())
        for stage, failure in stages.items():
            first.setdefault(stage, f"{failure.reason}: {failure.message}")
    return {stage: first[stage] for stage, count in counts.items() if records and count == len(records)}
