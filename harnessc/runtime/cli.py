"""`harnessc run`: the command-line face of harnessc.runtime.runner (argument parsing, progress, summary)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harnessc.cli_support import EXIT_ERRORS, EXIT_OK, EXIT_USAGE, parse_pairs

if TYPE_CHECKING:
    from rich.progress import Progress

    from harnessc.runtime.executor import EngineCallStats

EPILOG = """examples:
  harnessc run harnesses/plan_solve.harness --data examples/data/math.jsonl
  harnessc run harnesses/plan_solve.harness --data examples/data/math.jsonl --student-only --n 4
  harnessc run harnesses/draft_verify.harness --data test.jsonl --bank cases=train.jsonl --engine transformers
"""


def add_run_command(commands, add_common) -> None:
    run = commands.add_parser(
        "run",
        help="run a harness over a data set",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Run a harness over a data set with one batched engine call per stage; write one JSON record "
        "per example and print the accuracy.",
    )
    run.add_argument("harness", metavar="HARNESS", help="the .harness file")
    run.add_argument(
        "--data",
        required=True,
        metavar="PATH",
        help="JSONL, JSON, CSV or Parquet file, or a Hugging Face dataset saved to disk",
    )
    run.add_argument(
        "--model", metavar="NAME_OR_DIR", help="model directory or hub id (default: the embedded SmolLM2-135M-Instruct)"
    )
    run.add_argument("--engine", choices=("vllm", "transformers"), help="default: vllm if installed, else transformers")
    run.add_argument(
        "--engine-option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="engine argument (repeatable; values read as JSON): dtype, max_model_len, "
        "gpu_memory_utilization, tensor_parallel_size, batch_size, ...",
    )
    run.add_argument("--engine-config", metavar="FILE", help="engine arguments from a TOML or JSON file")
    run.add_argument("--out", metavar="PATH", help="output JSONL (default: runs/<harness>-<data>.jsonl)")
    run.add_argument("--limit", type=int, metavar="N", help="use only the first N rows")
    run.add_argument("--resume", action="store_true", help="continue a killed run: keep its records, run the rest")
    run.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    run.add_argument(
        "--map",
        dest="columns",
        action="append",
        default=[],
        metavar="INPUT=COLUMN",
        help="feed a harness input from a differently named column (repeatable)",
    )
    run.add_argument(
        "--bank",
        dest="banks",
        action="append",
        default=[],
        metavar="NAME=PATH",
        help="fill memory bank NAME from a data file (repeatable)",
    )
    run.add_argument(
        "--student-only", action="store_true", help="run the student view alone (the model without its harness)"
    )
    run.add_argument(
        "--n",
        dest="samples",
        type=int,
        default=1,
        metavar="K",
        help="independent runs per example; reports pass@K and mean accuracy (default 1)",
    )
    run.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    run.add_argument(
        "--chunk-size", type=int, default=256, metavar="N", help="examples per batched pass and per write (default 256)"
    )
    run.add_argument(
        "--max-tokens",
        dest="default_max_tokens",
        type=int,
        default=1024,
        metavar="N",
        help="max_tokens of stages that do not set it (default 1024)",
    )
    run.add_argument("--format", choices=("text", "json"), default="text", help="the summary as a table or JSON")
    add_common(run)
    run.set_defaults(handler=cmd_run)


def _engine_options(args: argparse.Namespace) -> dict[str, Any]:
    options: dict[str, Any] = {}
    if args.engine_config:
        text = Path(args.engine_config).read_text(encoding="utf-8")
        if args.engine_config.endswith(".toml"):
            import tomllib

            options.update(tomllib.loads(text))
        else:
            options.update(json.loads(text))
    for key, raw in parse_pairs(args.engine_option, "--engine-option").items():
        try:
            options[key] = json.loads(raw)
        except json.JSONDecodeError:
            options[key] = raw
    return options


def cmd_run(args: argparse.Namespace) -> int:
    from harnessc.diagnostics import CompileError, render_all
    from harnessc.engines import EngineUnavailableError, ModelNotFoundError
    from harnessc.runtime.data import DataError
    from harnessc.runtime.runner import RunError, RunOptions, create_run_engine, run

    if args.samples < 1 or (args.limit is not None and args.limit < 0) or args.chunk_size < 1:
        print("harnessc run: --n and --chunk-size must be >= 1 and --limit >= 0", file=sys.stderr)
        return EXIT_USAGE
    out = args.out or f"runs/{Path(args.harness).stem}-{Path(args.data).stem}.jsonl"
    try:
        columns, banks = parse_pairs(args.columns, "--map"), parse_pairs(args.banks, "--bank")
        engine_options = _engine_options(args)
    except (ValueError, OSError) as error:  # a malformed flag or engine config file is a usage error
        print(f"harnessc run: {error}", file=sys.stderr)
        return EXIT_USAGE
    options = RunOptions(
        harness=args.harness,
        data=args.data,
        out=out,
        model=args.model,
        engine=args.engine,
        engine_options=engine_options,
        limit=args.limit,
        resume=args.resume,
        overwrite=args.overwrite,
        overrides=args.overrides,
        columns=columns,
        banks=banks,
        builtins=args.builtins,
        allow_roots=args.allow_roots,
        student_only=args.student_only,
        samples=args.samples,
        seed=args.seed,
        chunk_size=args.chunk_size,
        default_max_tokens=args.default_max_tokens,
    )
    try:
        with _Progress(enabled=args.format == "text") as progress:
            summary = run(
                options,
                lambda: create_run_engine(options),
                progress=progress.update,
            )
    except CompileError as error:
        print(render_all(error.diagnostics, error.sources), file=sys.stderr)
        return EXIT_ERRORS
    except (RunError, DataError, EngineUnavailableError, ModelNotFoundError, OSError) as error:
        print(f"harnessc run: {error}", file=sys.stderr)
        return EXIT_ERRORS
    if args.format == "json":
        print(json.dumps(summary.to_json(), indent=2))
    else:
        _print_summary(summary, out)
    if summary.data_errors:  # the other rows ran; the bad ones are recorded as `data-error` failures
        shown = summary.data_errors[:_SHOWN_DATA_ERRORS]
        more = len(summary.data_errors) - len(shown)
        print("\n".join(f"harnessc run: {error}" for error in shown), file=sys.stderr)
        if more:
            print(f"harnessc run: ... and {more} more bad row(s), recorded in {out}", file=sys.stderr)
        return EXIT_ERRORS
    return EXIT_OK


_SHOWN_DATA_ERRORS = 20


class _Progress:
    """A rich progress bar of examples done, with generated tokens/s of the last engine call."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled and sys.stderr.isatty()
        self.bar: Progress | None = None

    def __enter__(self) -> _Progress:
        if self.enabled:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self.bar = bar = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[rate]}"),
                TimeElapsedColumn(),
                transient=True,
            )
            bar.start()
            self.task = bar.add_task("examples", total=None, rate="")
        return self

    def update(self, done: int, total: int, stats: EngineCallStats | None) -> None:
        if self.bar is None:
            return
        fields: dict[str, Any] = {}
        if stats is not None and stats.seconds > 0:
            fields["rate"] = f"{', '.join(stats.stages)}: {stats.generated_tokens / stats.seconds:,.0f} tok/s"
        self.bar.update(self.task, completed=done, total=total, **fields)

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.stop()


def _print_summary(summary, out: str) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    head = f"[bold]{summary.harness}[/bold]: {summary.records} records ({summary.examples} examples"
    head += f" x {summary.samples})" if summary.samples > 1 else ")"
    console.print(head + f" -> {out}")
    if summary.accuracy is not None:
        line = f"accuracy {summary.accuracy:.2%}"
        if summary.samples > 1:
            line += f"   pass@{summary.samples} {summary.pass_at_k:.2%}"
        console.print(line)
    table = Table("stage", "calls", "skipped", "prompt tokens", "generated tokens", "engine s (this run)")
    for name, stats in summary.stages.items():
        seconds = summary.engine_seconds.get(name)
        table.add_row(
            name,
            str(stats.calls),
            str(stats.skipped),
            f"{stats.prompt_tokens:,}",
            f"{stats.generated_tokens:,}",
            f"{seconds:.1f}" if seconds is not None else "-",
        )
    console.print(table)
    if summary.failures:
        console.print(
            "failures: " + ", ".join(f"{reason} {count}" for reason, count in sorted(summary.failures.items()))
        )
    console.print(f"{summary.seconds:.1f} s, {summary.generated_tokens_this_run:,} tokens generated in this run")
