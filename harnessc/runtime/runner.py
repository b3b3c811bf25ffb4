"""`harnessc run`: a harness over a data set, written incrementally as JSONL, resumable, with a summary.

Output safety: an existing output is never overwritten unless `overwrite=True`; with `resume=True` the
records already written are kept and only the missing (row, replica) pairs run. A run killed at any moment
(SIGKILL included) leaves at most one partial last line, which resume drops; every complete line is a
whole record (each chunk is written, flushed and fsync'ed before the next chunk starts).
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harnessc import ir
from harnessc.compiler import compile_file
from harnessc.engines.base import Engine
from harnessc.runtime.data import coerce_row, load_rows
from harnessc.runtime.executor import EngineCallStats, StageSynchronousExecutor
from harnessc.runtime.program import Program
from harnessc.runtime.trace import ExampleRecord
from harnessc.types import make_optional


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
    default_max_tokens: int = 1024


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

    def to_json(self) -> dict[str, Any]:
        data = dict(self.__dict__)
        data["stages"] = {name: stats.__dict__ for name, stats in self.stages.items()}
        return data


# ---- inputs --------------------------------------------------------------------------------------------------


def load_examples(
    harness: ir.Harness,
    data: str,
    *,
    limit: int | None = None,
    columns: Mapping[str, str] | None = None,
    require_oracles: bool = False,
) -> list[tuple[int, dict[str, Any]]]:
    """The data rows as typed inputs. Oracle inputs may be missing at inference (they are for grading);
    training (`require_oracles`) needs them."""
    types = {
        item.name: make_optional(item.type) if item.optional or (item.oracle and not require_oracles) else item.type
        for item in harness.inputs
    }
    rows = load_rows(data, limit=limit, columns=columns)
    return [(row.index, coerce_row(row, types, path=data)) for row in rows]


def load_banks(harness: ir.Harness, files: Mapping[str, str], evaluate_entry) -> dict[str, Any]:
    """Each declared bank, filled from `files` (`--bank NAME=PATH`) or the bank's `file` setting: rows of a
    data set, turned into entries by the bank's field expressions (`evaluate_entry(bank, row)`)."""
    from harnessc.runtime.memory_bank import MemoryBank

    unknown = set(files) - {bank.name for bank in harness.banks}
    if unknown:
        raise RunError(f"--bank names {', '.join(sorted(unknown))}, which the harness does not declare")
    banks = {}
    for bank in harness.banks:
        memory = MemoryBank(bank.name, search_field=bank.search_field, label_field=bank.label_field)
        path = files.get(bank.name) or bank.file
        if path:
            rows = load_rows(path)
            memory.add([evaluate_entry(bank, row.values) for row in rows])
        banks[bank.name] = memory
    return banks


# ---- output --------------------------------------------------------------------------------------------------


def prepare_output(path: Path, *, resume: bool, overwrite: bool) -> set[tuple[int, int]]:
    """The (row, replica) pairs already done. Drops a partial last line left by a killed run."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        return set()
    if overwrite:
        path.unlink()
        return set()
    if not resume:
        raise RunError(f"{path} exists; pass --resume to continue that run or --overwrite to replace it")
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
    with path.open("a", encoding="utf-8") as handle:
        for record in records:
            handle.write(record.model_dump_json() + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def read_records(path: Path) -> Iterator[ExampleRecord]:
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                yield ExampleRecord.model_validate_json(line)


def create_run_engine(options: RunOptions) -> Engine:
    """The engine a run asks for (`--engine`, `--model`, engine options)."""
    from harnessc.engines import create_engine

    return create_engine(options.engine, options.model, **options.engine_options)


# ---- the run ------------------------------------------------------------------------------------------------------


def run(
    options: RunOptions,
    engine_factory: Callable[[], Engine],
    *,
    progress: Callable[[int, int, EngineCallStats | None], None] | None = None,
) -> RunSummary:
    """Run a harness over a data set (see the module docstring). `progress(done, total, stats)` is called
    after each engine call and each written chunk."""
    from harnessc.builtins.registry import load_user_builtins

    started = time.perf_counter()
    registry = load_user_builtins(options.builtins)
    harness = compile_file(
        options.harness,
        registry=registry,
        purpose="run",
        overrides=options.overrides,
        allow_roots=options.allow_roots,
    ).require()
    examples = load_examples(harness, options.data, limit=options.limit, columns=options.columns)
    out = Path(options.out)
    done = prepare_output(out, resume=options.resume, overwrite=options.overwrite)
    pending = [
        (index, inputs, replica)
        for index, inputs in examples
        for replica in range(options.samples)
        if (index, replica) not in done
    ]
    program = Program(
        harness,
        mode="inference",
        registry=registry,
        seed=options.seed,
        default_max_tokens=options.default_max_tokens,
        student_only=options.student_only,
    )
    program.banks.update(load_banks(harness, options.banks, program.bank_entry))
    engine_seconds: Counter[str] = Counter()
    generated = 0
    total = len(examples) * options.samples
    finished = total - len(pending)

    def observe(stats: EngineCallStats) -> None:
        nonlocal generated
        generated += stats.generated_tokens
        for stage in stats.stages:
            engine_seconds[stage] += stats.seconds / len(stats.stages)
        if progress:
            progress(finished, total, stats)

    if pending:
        engine = engine_factory()
        executor = StageSynchronousExecutor(program, engine, observer=observe)
        for start in range(0, len(pending), options.chunk_size):
            chunk = pending[start : start + options.chunk_size]
            append_records(out, executor.run(chunk))
            finished += len(chunk)
            if progress:
                progress(finished, total, None)
    return summarize(
        harness, out, len(examples), options.samples, dict(engine_seconds), time.perf_counter() - started, generated
    )


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
    )
