"""`harnessc`: check, draw, compile and run harnesses.

Exit codes: 0 success (warnings allowed), 1 the harness has errors, 2 usage errors (bad flags, missing
files named on the command line are reported as diagnostics with 1), 3 an internal error (a bug: rerun
with --debug for the traceback). No Python traceback is shown unless --debug is given.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence

from harnessc import __version__
from harnessc.cli_support import EXIT_ERRORS, EXIT_OK, EXIT_USAGE, parse_pairs, run_command


def _use_color(stream) -> bool:
    return stream.isatty() and "NO_COLOR" not in os.environ and os.environ.get("TERM") != "dumb"


def _compile(args: argparse.Namespace, path: str, purpose: str = "any"):
    from harnessc.builtins.registry import load_user_builtins
    from harnessc.compiler import compile_file

    registry = load_user_builtins(args.builtins)
    return compile_file(
        path, registry=registry, purpose=purpose, overrides=args.overrides, allow_roots=args.allow_roots
    )


def _print_diagnostics(diagnostics, sources, fmt: str) -> None:
    from harnessc.diagnostics import render_all, render_json

    if fmt == "json":
        print(render_json(diagnostics, sources))
    elif diagnostics:
        print(render_all(diagnostics, sources, color=_use_color(sys.stdout)))


# ---- commands ------------------------------------------------------------------------------------------


def _harness_files(paths: Sequence[str]) -> list[str]:
    """FILE arguments for `fmt`: files as given, directories searched for *.harness (sorted)."""
    from pathlib import Path

    files: list[str] = []
    for path in paths:
        if path != "-" and Path(path).is_dir():
            files.extend(str(found) for found in sorted(Path(path).rglob("*.harness")))
        else:
            files.append(path)
    return files


def cmd_fmt(args: argparse.Namespace) -> int:
    import difflib

    from harnessc.formatter import FormatError, format_source

    changed: list[str] = []
    failed = False
    for path in _harness_files(args.files):
        try:
            text = sys.stdin.read() if path == "-" else open(path, encoding="utf-8").read()
        except OSError as error:
            print(f"harnessc fmt: {path}: {error.strerror or error}", file=sys.stderr)
            failed = True
            continue
        name = "<stdin>" if path == "-" else path
        try:
            formatted = format_source(text)
        except FormatError as error:
            print(f"harnessc fmt: {name}: {error}", file=sys.stderr)
            failed = True
            continue
        writes = not (args.check or args.diff)  # --check and --diff change nothing
        if path == "-" and writes:
            sys.stdout.write(formatted)
            continue
        if formatted == text:
            continue
        changed.append(name)
        if args.diff:
            sys.stdout.writelines(
                difflib.unified_diff(
                    text.splitlines(keepends=True), formatted.splitlines(keepends=True), name, f"{name} (formatted)"
                )
            )
        if args.check:
            print(f"would reformat {name}", file=sys.stderr)
        elif writes:
            with open(path, "w", encoding="utf-8") as file:
                file.write(formatted)
            print(f"reformatted {name}", file=sys.stderr)
    if failed:
        return EXIT_ERRORS
    return EXIT_ERRORS if args.check and changed else EXIT_OK


def cmd_check(args: argparse.Namespace) -> int:
    diagnostics, sources = [], {}
    for path in args.files:
        compilation = _compile(args, path, args.purpose)
        diagnostics += compilation.diagnostics
        sources.update(compilation.sources)
    _print_diagnostics(diagnostics, sources, args.format)
    if not diagnostics and args.format == "text":
        print(f"{len(args.files)} file{'s' if len(args.files) != 1 else ''} checked: no problems")
    return EXIT_ERRORS if any(item.is_error for item in diagnostics) else EXIT_OK


def cmd_graph(args: argparse.Namespace) -> int:
    from harnessc.graph import build_graph, render, to_tree_lines

    compilation = _compile(args, args.file)
    if not compilation.ok:
        _print_diagnostics(compilation.diagnostics, compilation.sources, "text")
        return EXIT_ERRORS
    harness = compilation.require()
    if args.format == "tree" and _use_color(sys.stdout):
        from rich.console import Console

        Console().print("\n".join(to_tree_lines(build_graph(harness))), highlight=False, markup=False)
    else:
        sys.stdout.write(render(harness, args.format))
    return EXIT_OK


def cmd_compile(args: argparse.Namespace) -> int:
    from harnessc import ir

    compilation = _compile(args, args.file, args.purpose)
    if not compilation.ok:
        _print_diagnostics(compilation.diagnostics, compilation.sources, "text")
        return EXIT_ERRORS
    text = ir.dumps(compilation.require())
    if args.output:
        try:
            with open(args.output, "w", encoding="utf-8") as handle:
                handle.write(text + "\n")
        except OSError as error:  # a directory, a missing parent, no permission: the user's path
            print(f"harnessc compile: cannot write {args.output}: {error.strerror or error}", file=sys.stderr)
            return EXIT_ERRORS
    else:
        print(text)
    return EXIT_OK


def cmd_explain(args: argparse.Namespace) -> int:
    from harnessc.codes import CODES
    from harnessc.explanations import explain
    from harnessc.names import did_you_mean

    if args.code not in CODES:
        hint = did_you_mean(args.code, CODES)
        print(
            f"harnessc explain: unknown diagnostic code {args.code!r}" + (f"; {hint[0]}" if hint else ""),
            file=sys.stderr,
        )
        return EXIT_USAGE
    print(explain(args.code))
    return EXIT_OK


def cmd_builtins(args: argparse.Namespace) -> int:
    from harnessc.builtins.registry import load_user_builtins

    registry = load_user_builtins(args.builtins)
    if args.format == "json":
        print(
            json.dumps(
                [{"signature": str(item.signature), "doc": item.doc, "module": item.module} for item in registry],
                indent=2,
            )
        )
        return EXIT_OK
    for item in registry:
        summary = item.doc.splitlines()[0] if item.doc else ""
        print(f"{item.signature}\n    {summary}")
    return EXIT_OK


def cmd_lsp(args: argparse.Namespace) -> int:
    from harnessc.lsp import main as serve

    return serve(purpose=args.purpose, allow_roots=args.allow_roots, builtins=args.builtins, overrides=args.overrides)


# ---- parser ----------------------------------------------------------------------------------------------


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="override a `param` default (repeatable); lists and numbers are read as JSON",
    )
    parser.add_argument(
        "--builtins",
        action="append",
        default=[],
        metavar="MODULE",
        help="import MODULE to register user built-ins (repeatable)",
    )
    parser.add_argument(
        "--allow-root",
        dest="allow_roots",
        action="append",
        default=[],
        metavar="DIR",
        help="also let imports read harness files under DIR (repeatable); by default imports stay inside "
        "the harness's own folder tree",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="harnessc", description="The harness language: check, draw, compile and run declarative LLM harnesses."
    )
    parser.add_argument("--version", action="version", version=f"harnessc {__version__}")
    parser.add_argument("--debug", action="store_true", help="show Python tracebacks for internal errors")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    check = commands.add_parser(
        "check",
        help="report every problem in harness files",
        description="Parse and check harness files; report every problem at once.",
    )
    check.add_argument("files", nargs="+", metavar="FILE")
    check.add_argument("--format", choices=("text", "json"), default="text", help="diagnostics as text or JSON")
    check.add_argument(
        "--for",
        dest="purpose",
        choices=("any", "train", "run"),
        default="any",
        help="what the harness is for: `train` requires student and teacher views (default: any)",
    )
    _common(check)
    check.set_defaults(handler=cmd_check)

    fmt = commands.add_parser(
        "fmt",
        help="print harness files in the canonical layout",
        description="Rewrite harness files in the canonical layout (comments and strings kept). "
        "Directories are searched for *.harness; `-` formats standard input to standard output.",
    )
    fmt.add_argument("files", nargs="+", metavar="FILE")
    fmt.add_argument("--check", action="store_true", help="change nothing; exit 1 listing the files that would change")
    fmt.add_argument("--diff", action="store_true", help="print a unified diff of each change; change nothing")
    fmt.set_defaults(handler=cmd_fmt)

    graph = commands.add_parser("graph", help="draw the stage graph", description="Draw the stage graph.")
    graph.add_argument("file", metavar="FILE")
    graph.add_argument(
        "--format",
        choices=("tree", "mermaid", "dot"),
        default="tree",
        help="a tree for the terminal, Mermaid or Graphviz DOT (default: tree)",
    )
    _common(graph)
    graph.set_defaults(handler=cmd_graph)

    compile_ = commands.add_parser(
        "compile",
        help="write the typed stage graph (IR) as JSON",
        description="Compile a harness and print its IR as JSON.",
    )
    compile_.add_argument("file", metavar="FILE")
    compile_.add_argument("-o", "--output", metavar="PATH", help="write to PATH instead of standard output")
    compile_.add_argument("--for", dest="purpose", choices=("any", "train", "run"), default="any")
    _common(compile_)
    compile_.set_defaults(handler=cmd_compile)

    explain = commands.add_parser(
        "explain",
        help="explain a diagnostic code with an example and the fix",
        description="Explain a diagnostic code.",
    )
    explain.add_argument("code", metavar="CODE")
    explain.set_defaults(handler=cmd_explain)

    builtins = commands.add_parser(
        "builtins",
        help="list the built-ins harness expressions can call",
        description="List the registered built-ins and their signatures.",
    )
    builtins.add_argument("--format", choices=("text", "json"), default="text")
    builtins.add_argument(
        "--builtins",
        action="append",
        default=[],
        metavar="MODULE",
        help="import MODULE to register user built-ins (repeatable)",
    )
    builtins.set_defaults(handler=cmd_builtins)

    lsp = commands.add_parser("lsp", help="run the language server (LSP over stdio) for editors")
    lsp.add_argument("--for", dest="purpose", choices=("any", "train", "run"), default="any", help="as `check --for`")
    _common(lsp)
    lsp.set_defaults(handler=cmd_lsp)

    from harnessc.runtime.cli import add_run_command  # light: the engines are imported when a run starts

    add_run_command(commands, _common)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if hasattr(args, "overrides"):
        try:
            args.overrides = parse_pairs(args.overrides, "--set")
        except ValueError as error:
            parser.error(str(error))
    from harnessc.builtins.registry import BuiltinsImportError

    def usage_error(error: Exception) -> int:  # a --builtins module that does not import
        print(f"harnessc: {error}", file=sys.stderr)
        return EXIT_USAGE

    return run_command(
        lambda: args.handler(args),
        prog="harnessc",
        debug=args.debug,
        expected=[(BuiltinsImportError, usage_error), (BrokenPipeError, lambda error: EXIT_OK)],
        internal="this is a bug in harnessc; rerun with --debug for the traceback",
    )


if __name__ == "__main__":
    sys.exit(main())
