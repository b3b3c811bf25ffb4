"""`harnessc explain CODE`: for each diagnostic code a small bad harness and how to fix it.

The message shown is not written here: `explain` compiles the example and prints what the checker really
says, so the explanation cannot drift from the implementation (tests/test_explanations.py checks that
every example produces its code and only its code, and that docs/diagnostics.md is generated from these
entries: `python -m harnessc.explanations --markdown > docs/diagnostics.md`).

The entries are data, one file per code: `examples/<code>.toml` beside this module holds the example (a
complete harness file) and the fix. Most examples are one file. A few codes cannot come from the text of
one file, and their entries say what else the example needs: other files next to it (`[[files]]`, for
imports), `--set` overrides (`overrides`), a file saved in another encoding (`encoding`), named pipes or
oversized files beside it (`pipes`, `large_files`), or no file at all (`exists = false`). The example is
always compiled from a temporary directory, whose path is left out of the output.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import tomllib

from harnessc.codes import CODES


@dataclass(frozen=True, slots=True)
class Explanation:
    example: str  # a complete harness file that triggers the code
    fix: str  # one or two sentences
    purpose: str = "run"  # checked as for `harnessc check --for PURPOSE` (run: no training-view warnings)
    files: tuple[tuple[str, str], ...] = ()  # other files beside the example: (relative path, text)
    pipes: tuple[str, ...] = ()  # named pipes (FIFOs) beside the example
    large_files: tuple[str, ...] = ()  # files beside the example, of comments, just over the size limit
    overrides: tuple[tuple[str, str], ...] = ()  # `--set NAME=VALUE` options
    encoding: str = "utf-8"  # how the example file is saved
    exists: bool = True  # False: the example file is missing (nothing is written)

    def command(self, name: str) -> str:
        """The command line that checks the example (shown when it is not a plain `harnessc check`)."""
        sets = "".join(f" --set {key}={value}" for key, value in self.overrides)
        return f"harnessc check --for {self.purpose}{sets} {name}"


def load_explanations(directory: Path) -> dict[str, Explanation]:
    """Every `<code>.toml` in `directory`, as explanations keyed by code.

    Raises ValueError naming the file when one has a key `Explanation` does not know (a typo in a data file
    must not silently drop a setting).
    """
    table: dict[str, Explanation] = {}
    known = {field.name for field in dataclasses.fields(Explanation)}
    for path in sorted(directory.glob("*.toml")):
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"{path}: unknown key(s) {sorted(unknown)}; known: {sorted(known)}")
        # TOML has arrays and tables where the (hashable, immutable) entry holds tuples
        data.setdefault("example", "")  # an entry with `exists = false` has no file to show
        data["files"] = tuple((entry["path"], entry["text"]) for entry in data.get("files", ()))
        data["overrides"] = tuple(data.get("overrides", {}).items())
        data["pipes"] = tuple(data.get("pipes", ()))
        data["large_files"] = tuple(data.get("large_files", ()))
        table[path.stem] = Explanation(**data)
    return table


EXAMPLES_DIR = Path(__file__).with_name("examples")
EXPLANATIONS: dict[str, Explanation] = load_explanations(EXAMPLES_DIR)


def example_name(code: str) -> str:
    return f"example-{code}.harness"


def example_diagnostics(code: str) -> str:
    """The rendered diagnostics of `code`'s example (compiled now, as the checker reports them)."""
    return run_example(code)[1]


def run_example(code: str) -> tuple[list, str]:
    """Compile `code`'s example as `harnessc check` would; returns (diagnostics, rendered text). The
    temporary directory it is written to is left out of file names."""
    from harnessc.compiler import compile_file
    from harnessc.diagnostics import Diagnostic, Label, render_all
    from harnessc.source import SourceFile, Span

    explanation = EXPLANATIONS[code]
    with tempfile.TemporaryDirectory(prefix="harnessc-explain-") as directory:
        root = Path(directory)
        for relative, text in explanation.files:
            (root / relative).parent.mkdir(parents=True, exist_ok=True)
            (root / relative).write_text(text, encoding="utf-8")
        for relative in explanation.pipes:
            (root / relative).parent.mkdir(parents=True, exist_ok=True)
            os.mkfifo(root / relative)
        for relative in explanation.large_files:
            (root / relative).parent.mkdir(parents=True, exist_ok=True)
            (root / relative).write_text(_large_text(), encoding="utf-8")
        path = root / example_name(code)
        if explanation.exists:
            path.write_bytes(explanation.example.encode(explanation.encoding))
        overrides = dict(explanation.overrides) or None
        compilation = compile_file(path, purpose=explanation.purpose, overrides=overrides)
        prefix = str(root) + "/"

        def local(text: str) -> str:
            return text.replace(prefix, "")

        def relocate(span: Span) -> Span:
            return Span(local(span.file), span.start, span.end, span.line, span.column, span.end_line, span.end_column)

        diagnostics = [
            Diagnostic(
                code=item.code,
                message=local(item.message),
                span=relocate(item.span),
                label=item.label,
                hints=item.hints,
                severity=item.severity,
                labels=tuple(Label(relocate(label.span), label.message) for label in item.labels),
            )
            for item in compilation.diagnostics
        ]
        sources = {local(name): SourceFile(local(name), source.text) for name, source in compilation.sources.items()}
    return diagnostics, render_all(diagnostics, sources)


def _large_text() -> str:
    """Comment lines, one line more than MAX_SOURCE_BYTES holds."""
    from harnessc.reading import MAX_SOURCE_BYTES

    line = "# " + "generated " * 7 + "\n"
    return line * (MAX_SOURCE_BYTES // len(line) + 1)


def _setup_lines(code: str) -> list[str]:
    """What the example needs besides its text, in words."""
    explanation = EXPLANATIONS[code]
    name = example_name(code)
    lines = [f"Beside it, {relative} is a named pipe (a FIFO)." for relative in explanation.pipes]
    lines += [
        f"Beside it, {relative} holds {len(_large_text().encode()):,} bytes of comments."
        for relative in explanation.large_files
    ]
    if not explanation.exists:
        lines.append(f"There is no file {name}.")
    if explanation.encoding != "utf-8":
        lines.append(f"{name} is saved as {explanation.encoding}, not UTF-8.")
    if explanation.overrides or explanation.purpose != "run" or not explanation.exists:
        lines.append(f"Checked with: {explanation.command(name)}")
    return lines


def explain(code: str) -> str:
    entry = CODES[code]
    lines = [f"{code} ({entry.severity.value}): {entry.summary}", ""]
    explanation = EXPLANATIONS.get(code)
    if explanation is None:
        return "\n".join(lines + ["(no example yet)"])
    if explanation.exists:
        lines += [f"Example ({example_name(code)}):", "", *_indent(explanation.example), ""]
    for relative, text in explanation.files:
        lines += [f"Beside it, {relative}:", "", *_indent(text), ""]
    setup = _setup_lines(code)
    lines += [*setup, ""] if setup else []
    lines += ["What harnessc says:", "", *_indent(example_diagnostics(code)), ""]
    lines += ["Fix:", "", "    " + explanation.fix]
    return "\n".join(lines)


def _indent(text: str) -> list[str]:
    return [("    " + line).rstrip() for line in text.rstrip().splitlines()]


# ---- docs/diagnostics.md ----------------------------------------------------------------------------------

_INTRO = """\
# harnessc diagnostics

Every problem `harnessc check` finds is a diagnostic with a stable code, a severity, a location and
usually a hint. Errors stop a harness from compiling; warnings do not. `harnessc explain CODE` prints one
entry of this page; `harnessc check --format json` gives the same diagnostics as data.

The output shown for each example is produced by compiling the example with the current compiler:
this page is generated by `python -m harnessc.explanations --markdown > docs/diagnostics.md`, and a test
fails when it is out of date. Examples are checked with `--for run` unless they say otherwise.
"""


def _anchor(code: str) -> str:
    return re.sub(r"[^a-z0-9-]", "", code.lower())


def _fence(text: str, language: str = "") -> list[str]:
    return [f"```{language}", *text.rstrip("\n").splitlines(), "```"]


def markdown() -> str:
    """The full text of docs/diagnostics.md."""
    lines = [_INTRO, "| code | severity | summary |", "| --- | --- | --- |"]
    for code, entry in CODES.items():
        summary = entry.summary.replace("|", "\\|")
        lines.append(f"| [`{code}`](#{_anchor(code)}) | {entry.severity.value} | {summary} |")
    for code, entry in CODES.items():
        lines += ["", f"## {code}", "", f"*{entry.severity.value}*: {entry.summary}."]
        explanation = EXPLANATIONS.get(code)
        if explanation is None:
            lines += ["", "(no example yet)"]
            continue
        if explanation.exists:
            lines += ["", f"`{example_name(code)}`:", "", *_fence(explanation.example, "text")]
        for relative, text in explanation.files:
            lines += ["", f"Beside it, `{relative}`:", "", *_fence(text, "text")]
        for line in _setup_lines(code):
            prefix, _, command = line.partition("Checked with: ")
            lines += ["", f"Checked with: `{command}`" if command and not prefix else line]
        lines += ["", "What harnessc says:", "", *_fence(example_diagnostics(code), "text")]
        lines += ["", f"**Fix.** {explanation.fix}"]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m harnessc.explanations", description="Print the explanation of diagnostic codes."
    )
    parser.add_argument("--markdown", action="store_true", help="print docs/diagnostics.md")
    parser.add_argument("codes", nargs="*", metavar="CODE", help="codes to explain (default: all)")
    args = parser.parse_args(argv)
    if args.markdown:
        sys.stdout.write(markdown())
        return 0
    unknown = [code for code in args.codes if code not in CODES]
    if unknown:
        parser.error(f"unknown diagnostic code(s): {', '.join(unknown)}")
    print("\n\n".join(explain(code) for code in args.codes or CODES))
    return 0
