"""`ophsd`: train with on-policy harness self-distillation, evaluate checkpoints, plot the curves.

    ophsd train --harness harnesses/plan_solve.harness --data examples/data/math.jsonl --output runs/ps
    ophsd eval runs/ps --data held_out.jsonl
    ophsd report runs/ps
    ophsd show runs/ps --step 10

Exit codes: 0 success, 1 a problem with the inputs (config, harness, data) reported without traceback,
2 usage errors, 3 an internal error (rerun with --debug).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from harnessc.cli_support import EXIT_ERRORS, EXIT_OK, run_command
from harnessc.console import JobConsole, install_note_handler, phase
from ophsd import __version__
from ophsd.summary import step_fields, train_summary


def cmd_train(args: argparse.Namespace) -> int:
    from harnessc.engines import check_model
    from ophsd.config import ConfigError, load_config

    flags = {
        "harness": args.harness,
        "data": args.data,
        "model": args.model,
        "output": args.output,
        "max_steps": args.max_steps,
        "engine": args.engine,
        "base_urls": args.base_url,
    }
    config = load_config(args.config, flags, args.overrides, resume=args.resume)
    output = Path(config.output)
    if output.exists() and not output.is_dir():
        raise ConfigError([f"output: {output} is a file, not a run directory"])
    # Under a launcher, the other processes write their own log and show nothing: one display per run.
    rank = int(os.environ.get("RANK", "0"))
    log = output / "logs" / ("train.log" if rank == 0 else f"train.rank{rank}.log")
    quiet = open(os.devnull, "w") if rank else None  # noqa: SIM115 (closed below)
    with JobConsole("ophsd train", log_file=log, verbose=args.verbose, stream=quiet) as console:
        phase("checking the model")
        check_model(config.model)  # before the harness and data load: a wrong path fails at once
        from ophsd.trainer import Trainer  # torch: only once the settings are known to be usable

        if args.resume:
            _check_fingerprints(config)
        trainer = Trainer(config, resume=args.resume)
        if not args.resume:
            _write_fingerprints(config)
        console.start(config.max_steps, completed=trainer.step)
        trainer.train(progress=lambda metrics: console.advance(metrics["step"], step_fields(metrics)))
        plots = _write_plots(output) if trainer.dist.is_main else []
    if quiet is not None:
        quiet.close()
    if trainer.dist.is_main:
        print(train_summary(output, plots, seconds=console.elapsed()))
    return EXIT_OK


def _write_plots(output: Path) -> list[Path]:
    """The report's PNG plots, written at the end of a run (none when matplotlib is not installed)."""
    from ophsd.report import write_report

    try:
        return write_report(str(output))
    except (ImportError, FileNotFoundError):
        return []


_FINGERPRINTS = "fingerprints.json"


def _input_files(config) -> dict[str, str]:
    """The files whose contents decide what a run learns: harness, data and bank files."""
    return {"harness": config.harness, "data": config.data, **{f"bank {k}": v for k, v in config.banks.items()}}


def _write_fingerprints(config) -> None:
    """RUN_DIR/fingerprints.json: the sha256 of each input file, checked by --resume."""
    from harnessc.runtime.data import fingerprint

    prints = {name: fingerprint(path) for name, path in _input_files(config).items()}
    Path(config.output).mkdir(parents=True, exist_ok=True)
    (Path(config.output) / _FINGERPRINTS).write_text(json.dumps(prints, indent=2) + "\n", encoding="utf-8")


def _check_fingerprints(config) -> None:
    """Refuse to resume when an input file's contents changed since the run started (ConfigError)."""
    from harnessc.runtime.data import fingerprint
    from ophsd.config import ConfigError

    path = Path(config.output) / _FINGERPRINTS
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return  # a run from before fingerprints, or killed before writing them: nothing to compare
    changed = [
        f"{name}: {file} has changed since the run started"
        for name, file in _input_files(config).items()
        if name in saved and saved[name] != fingerprint(file)
    ]
    if changed:
        raise ConfigError(
            [f"--resume would continue {config.output} on other inputs:", *changed, "start a new --output"]
        )


def cmd_eval(args: argparse.Namespace) -> int:
    from ophsd.held_out import evaluate_run

    run_dir = Path(args.run_dir)  # a folder that is not a run gets no log: evaluate_run says what is wrong
    log = run_dir / "logs" / "eval.log" if (run_dir / "config.json").is_file() else None
    with JobConsole("ophsd eval", log_file=log, verbose=args.verbose):
        table = evaluate_run(
            args.run_dir,
            data=args.data,
            limit=args.limit,
            engine=args.engine,
            checkpoints=args.checkpoint,
            samples=args.samples,
        )
    print(json.dumps(table, indent=2) if args.format == "json" else _eval_table(table))
    return EXIT_OK


def cmd_show(args: argparse.Namespace) -> int:
    from rich.console import Console

    from ophsd.samples import load_samples, render_samples

    step, examples = load_samples(args.run_dir, args.step)
    Console(soft_wrap=False).print(render_samples(step, examples, top=args.top))
    return EXIT_OK


def cmd_report(args: argparse.Namespace) -> int:
    from ophsd.config import ConfigError
    from ophsd.report import write_report

    if not Path(args.run_dir).is_dir():
        raise ConfigError([f"{args.run_dir} is not a run directory"])

    for path in write_report(args.run_dir):
        print(path)
    return EXIT_OK


def _eval_table(rows: list[dict]) -> str:
    lines = ["model                 harness   accuracy   pass@k   records"]
    for row in rows:
        accuracy = "-" if row["accuracy"] is None else f"{row['accuracy']:.2%}"
        pass_k = "-" if row["pass_at_k"] is None else f"{row['pass_at_k']:.2%}"
        lines.append(f"{row['model']:<21} {row['view']:<9} {accuracy:>9} {pass_k:>8} {row['records']:>9}")
    return "\n".join(lines)


VERBOSE_HELP = "show vLLM's, transformers' and torch's own messages here (default: in {log})"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ophsd", description="On-policy harness self-distillation.")
    parser.add_argument("--version", action="version", version=f"ophsd {__version__}")
    parser.add_argument("--debug", action="store_true", help="show Python tracebacks for internal errors")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    train = commands.add_parser(
        "train",
        help="train a model with a harness as its teacher",
        description="Train with on-policy harness self-distillation. Settings come "
        "from --config, then --set, then the flags below; `docs/training.md` lists them all.",
    )
    train.add_argument("--harness", metavar="FILE", help="the .harness file (its student and teacher views)")
    train.add_argument("--data", metavar="PATH", help="training data with the harness's inputs")
    train.add_argument("--model", metavar="NAME_OR_DIR", help="default: the embedded SmolLM2-135M-Instruct")
    train.add_argument("--output", metavar="DIR", help="the run directory (config, metrics, checkpoints)")
    train.add_argument("--config", metavar="FILE", help="a TOML file of settings")
    train.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="any setting (repeatable; values read as JSON), e.g. --set lora=true",
    )
    train.add_argument("--max-steps", type=int, metavar="N", help="optimizer steps")
    train.add_argument("--engine", choices=("transformers", "vllm", "openai"), help="rollout and harness engine")
    train.add_argument(
        "--base-url",
        action="append",
        metavar="URL",
        help="a vLLM server replica for --engine openai (repeatable; started with VLLM_SERVER_DEV_MODE=1)",
    )
    train.add_argument("--resume", action="store_true", help="continue from the newest checkpoint in --output")
    train.add_argument("--verbose", action="store_true", help=VERBOSE_HELP.format(log="OUTPUT/logs/train.log"))
    train.set_defaults(handler=cmd_train)

    evaluate = commands.add_parser(
        "eval",
        help="score checkpoints with and without the harness",
        description="Run each checkpoint (and the initial model) on held-out data "
        "with the harness and with the student view alone, through `harnessc run`.",
    )
    evaluate.add_argument("run_dir", metavar="RUN_DIR")
    evaluate.add_argument("--data", metavar="PATH", help="held-out data (default: the training data)")
    evaluate.add_argument("--limit", type=int, metavar="N", help="use only the first N rows")
    evaluate.add_argument(
        "--checkpoint", action="append", metavar="NAME", help="checkpoint names to score (default: base and the newest)"
    )
    evaluate.add_argument("--engine", choices=("transformers", "vllm"))
    evaluate.add_argument("--n", dest="samples", type=int, default=1, metavar="K", help="samples per example (pass@K)")
    evaluate.add_argument("--format", choices=("text", "json"), default="text")
    evaluate.add_argument("--verbose", action="store_true", help=VERBOSE_HELP.format(log="RUN_DIR/logs/eval.log"))
    evaluate.set_defaults(handler=cmd_eval)

    report = commands.add_parser(
        "report",
        help="write PNG plots of a run's curves",
        description="Plot loss, divergence, lengths, accuracies and phase times.",
    )
    report.add_argument("run_dir", metavar="RUN_DIR")
    report.set_defaults(handler=cmd_report)

    show = commands.add_parser(
        "show",
        help="print what the teacher saw at a step",
        description="Print the examples a run kept (every `show_every` steps, and the probe batch at each "
        "evaluation): the decoded teacher and student sequences, the completion shaded by per-token "
        "divergence, and the tokens where teacher and student disagree most.",
    )
    show.add_argument("run_dir", metavar="RUN_DIR")
    show.add_argument("--step", type=int, metavar="N", help="the step to show (default: the newest with samples)")
    show.add_argument("--top", type=int, default=8, metavar="K", help="disagreeing tokens listed per example")
    show.set_defaults(handler=cmd_show)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    install_note_handler("ophsd", "ophsd")  # the trainer's one-time warnings, in our words
    from harnessc.builtins.registry import BuiltinsImportError
    from harnessc.diagnostics import CompileError, render_all
    from harnessc.engines import EngineUnavailableError
    from harnessc.runtime.data import DataError
    from harnessc.runtime.runner import RunError
    from ophsd.config import ConfigError
    from ophsd.server_weights import ServerWeightsError

    def compile_error(error: Exception) -> int:
        assert isinstance(error, CompileError)
        print(render_all(error.diagnostics, error.sources), file=sys.stderr)
        return EXIT_ERRORS

    def input_error(error: Exception) -> int:
        if args.debug:
            raise error
        print(f"ophsd {args.command}: {error}", file=sys.stderr)
        return EXIT_ERRORS

    # OSError: files, disks and models the user pointed at (missing, unreadable, full), not our code;
    # BuiltinsImportError: a `builtins` module of the configuration that does not import;
    # ServerWeightsError: a vLLM server of engine openai that did not take, or lost, the pushed weights.
    inputs = (
        ConfigError,
        DataError,
        RunError,
        EngineUnavailableError,
        BuiltinsImportError,
        ServerWeightsError,
        OSError,
        ValueError,
    )
    return run_command(
        lambda: args.handler(args),
        prog="ophsd",
        debug=args.debug,
        expected=[(CompileError, compile_error), (inputs, input_error)],
        interrupted="interrupted (resume with --resume)",
    )


if __name__ == "__main__":
    sys.exit(main())
