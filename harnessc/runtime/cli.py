"""`harnessc run`: the command-line face of harnessc.runtime.runner (argument parsing, progress, summary)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from harnessc.cli_support import EXIT_ERRORS, EXIT_OK, EXIT_USAGE, parse_pairs

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
    run.add_argument(
        "--engine",
        choices=("vllm", "transformers", "openai"),
        help="default: vllm if installed, else transformers; openai: running OpenAI-compatible servers (--base-url)",
    )
    run.add_argument(
        "--base-url",
        dest="base_urls",
        action="append",
        default=[],
        metavar="URL",
        help="an OpenAI-compatible server of --engine openai, e.g. http://127.0.0.1:8000 (repeat for replicas; "
        "--model then names the tokenizer's model directory)",
    )
    run.add_argument(
        "--engine-option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="engine argument (repeatable; values read as JSON): vllm/transformers: dtype, max_model_len, "
        "gpu_memory_utilization, tensor_parallel_size, batch_size, ...; openai: model, api_key, max_in_flight, "
        "timeout_s, retries, backoff_s, revive_after_s",
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
    run.add_argument(
        "--verbose",
        action="store_true",
        help="show vLLM's, transformers' and torch's own messages here (default: in logs/OUT.log beside the output)",
    )
    add_common(run)
    run.set_defaults(handler=cmd_run)


def _engine_options(args: argparse.Namespace) -> dict[str, Any]:
    options: dict[str, Any] = {}
    if args.engine_config:
        from harnessc.textfile import EncodingProblem, read_text

        try:  # a leading byte-order mark is skipped; a file that is not UTF-8 names its line and byte
            text = read_text(args.engine_config)
            if args.engine_config.endswith(".toml"):
                import tomllib

                loaded = tomllib.loads(text)
            else:
                loaded = json.loads(text)
            if not isinstance(loaded, dict):
                raise ValueError(f"expected an object of engine options, got {type(loaded).__name__}")
            options.update(loaded)
        except EncodingProblem:
            raise
        except ValueError as error:  # JSON or TOML that does not parse (or is not a table)
            raise ValueError(f"--engine-config {args.engine_config}: {error}") from None
    for key, raw in parse_pairs(args.engine_option, "--engine-option").items():
        try:
            options[key] = json.loads(raw)
        except json.JSONDecodeError:
            options[key] = raw
    return options


def _server_options(args: argparse.Namespace) -> dict[str, Any]:
    """`--base-url`s as the openai engine's `base_urls`; ValueError when they and `--engine` disagree."""
    if args.engine == "openai" and not args.base_urls:
        raise ValueError("--engine openai needs --base-url URL (repeat it for each server replica)")
    if args.base_urls and args.engine != "openai":
        raise ValueError("--base-url is for --engine openai (servers); add --engine openai or drop --base-url")
    return {"base_urls": list(args.base_urls)} if args.base_urls else {}


def cmd_run(args: argparse.Namespace) -> int:
    from harnessc.console import JobConsole
    from harnessc.diagnostics import CompileError, render_all
    from harnessc.engines import EngineUnavailableError, ModelNotFoundError, UnsupportedConstraintError
    from harnessc.runtime.data import DataError
    from harnessc.runtime.runner import RunError, RunOptions, create_run_engine, run

    if args.samples < 1 or (args.limit is not None and args.limit < 0) or args.chunk_size < 1:
        print("harnessc run: --n and --chunk-size must be >= 1 and --limit >= 0", file=sys.stderr)
        return EXIT_USAGE
    out = args.out or f"runs/{Path(args.harness).stem}-{Path(args.data).stem}.jsonl"
    try:
        columns, banks = parse_pairs(args.columns, "--map"), parse_pairs(args.banks, "--bank")
        engine_options = _engine_options(args) | _server_options(args)
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
        with JobConsole("harnessc run", log_file=log_path(out), verbose=args.verbose):
            summary = run(options, lambda: create_run_engine(options))
    except CompileError as error:
        print(render_all(error.diagnostics, error.sources), file=sys.stderr)
        return EXIT_ERRORS
    except (
        RunError,
        DataError,
        EngineUnavailableError,
        ModelNotFoundError,
        UnsupportedConstraintError,
        OSError,
    ) as error:
        print(f"harnessc run: {error}", file=sys.stderr)
        return EXIT_ERRORS
    if args.format == "json":
        print(json.dumps(summary.to_json(), indent=2))
    else:
        _print_summary(summary, out, None if args.verbose else log_path(out))
    if summary.data_errors:  # the other rows ran; the bad ones are recorded as `data-error` failures
        shown = summary.data_errors[:_SHOWN_DATA_ERRORS]
        more = len(summary.data_errors) - len(shown)
        print("\n".join(f"harnessc run: {error}" for error in shown), file=sys.stderr)
        if more:
            print(f"harnessc run: ... and {more} more bad row(s), recorded in {out}", file=sys.stderr)
        return EXIT_ERRORS
    if summary.failed_everywhere:  # e.g. a constraint the engine refused: nothing was produced
        for stage, failure in summary.failed_everywhere.items():
            print(f"harnessc run: stage `{stage}` failed for every example ({failure})", file=sys.stderr)
        return EXIT_ERRORS
    return EXIT_OK


_SHOWN_DATA_ERRORS = 20


def log_path(out: str | Path) -> Path:
    """Where a run's third-party messages go: `logs/<output name>.log` beside the output."""
    out = Path(out)
    return out.parent / "logs" / f"{out.stem}.log"


_PREVIEWED = 3


def _preview(out: str):
    """The first records, as a user wants to see them: the input, what the last LLM stage wrote, the output
    and the grade (each cut to a line)."""
    from rich.table import Table

    from harnessc.runtime.runner import read_records

    table = Table("row", "input", "last stage wrote", "output", "grade", title="first records", title_justify="left")
    for number, record in enumerate(read_records(Path(out))):
        if number == _PREVIEWED:
            break
        texts = [value for value in record.inputs.values() if isinstance(value, str)]
        wrote = next((call for call in reversed(record.calls) if call.samples), None)
        said = f"{wrote.stage}: {wrote.samples[0].text}" if wrote else (record.failure.reason if record.failure else "")
        grade = "-" if record.grade is None else str(record.grade)
        table.add_row(
            str(record.index), _line(texts[0] if texts else ""), _line(said), _line(str(record.output)), grade
        )
    return table


def _line(text: str, width: int = 48) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _print_summary(summary, out: str, log: Path | None) -> None:
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
    console.print(_preview(out))
    if summary.failures:
        console.print(
            "failures: " + ", ".join(f"{reason} {count}" for reason, count in sorted(summary.failures.items()))
        )
    console.print(f"{summary.seconds:.1f} s, {summary.generated_tokens_this_run:,} tokens generated in this run")
    if log is not None and log.exists():
        console.print(f"engine messages: {log}", highlight=False)
