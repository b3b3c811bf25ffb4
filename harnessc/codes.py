"""The registry of diagnostic codes: stable kebab-case names, their severity and a one-line summary.

The long explanations (a bad example, the message it gets, the fix) live in harnessc/explanations/examples/ and
are printed by `harnessc explain CODE`; docs/diagnostics.md is generated from both.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Level(str, Enum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True, slots=True)
class Code:
    name: str
    severity: Level
    summary: str


def _codes(level: Level, *items: tuple[str, str]) -> list[Code]:
    return [Code(name, level, summary) for name, summary in items]


_ALL = [
    *_codes(
        Level.ERROR,
        # reading and syntax
        ("unreadable-file", "the file cannot be read"),
        ("invalid-encoding", "the file is not valid UTF-8"),
        ("syntax-error", "the text does not follow the grammar"),
        ("number-out-of-range", "a number literal or `--set` value beyond 64-bit integers or finite decimals"),
        ("unexpected-character", "a character that no token of the language starts with"),
        ("unterminated-string", "a string literal is never closed"),
        ("unclosed-delimiter", "a `{`, `(` or `[` is never closed"),
        ("unexpected-eof", "the file ends in the middle of a declaration"),
        ("missing-header", "a harness file must start with `harness NAME`"),
        ("import-not-found", "an imported file does not exist"),
        ("import-content", "an imported file may only declare snippets"),
        ("path-outside-root", "an import or bank file outside the harness's folder tree and the allowed roots"),
        ("not-a-regular-file", "a device, named pipe or other special file named as a harness source"),
        ("file-too-large", "a harness source larger than the limit (2 MiB)"),
        ("not-harness-source", "an imported file that is not harness text (binary, not UTF-8, not `*.harness`)"),
        # names and types
        ("duplicate-definition", "a name, view or option is defined twice"),
        ("unknown-name", "a name that is not declared"),
        ("unknown-field", "a field that the record does not have"),
        ("unknown-builtin", "a call to a function that is not a registered built-in"),
        ("unknown-type", "a type that does not exist"),
        ("unknown-option", "an option or message role that does not exist"),
        ("unknown-flag", "an input flag other than `optional` and `oracle`"),
        ("unknown-argument", "a keyword argument that the built-in does not take"),
        ("duplicate-argument", "the same argument given twice"),
        ("argument-count", "too many or too few arguments"),
        ("argument-type", "an argument of the wrong type"),
        ("type-mismatch", "a value of the wrong type"),
        ("not-constant", "an option or default that is not a constant"),
        # templates
        ("unbalanced-brace", "a `{` or `}` in a template without its partner"),
        ("template-block", "`{if}`, `{for}`, `{else}` and `{end}` that do not nest"),
        ("optional-placeholder", "a value that may be absent, printed unconditionally"),
        ("placeholder-type", "a list, record or bank printed directly"),
        ("literal-placeholder", "a placeholder holding a constant (`{10}`): braces meant as text, LaTeX or JSON"),
        # stages and graph
        ("cycle", "stages that read each other in a cycle"),
        ("loop-order", "a loop step reading a step that runs after it"),
        ("unbounded-loop", "a loop without `max N`"),
        ("loop-without-next", "a loop that never updates its value"),
        ("unbounded-fan-out", "a fan-out (`llm NAME for x in xs`) without `max N`"),
        ("fan-out-bound", "a fan-out bound below 1, or a list literal longer than the bound"),
        ("empty-prompt", "an LLM stage or view without messages"),
        ("message-order", "a system message after others, or a prompt not ending with a user message"),
        ("invalid-option-value", "a sampling option out of range"),
        ("limit-exceeded", "snippets or nested iterations that expand beyond the language's limits"),
        ("conflicting-constraints", "more than one output constraint on a stage"),
        ("invalid-regex", "a `regex` constraint that the engines' decoding backend refuses"),
        ("invalid-json-schema", "a `json` constraint that is not a JSON schema the decoding backend compiles"),
        ("teacher-not-llm", "a teacher chain naming a stage that is not an LLM stage"),
        ("bank-without-search", "a memory bank without `search FIELD`"),
        ("bank-without-label", "label filters on a bank without `label FIELD`"),
        # information flow and purpose
        ("student-reads-stage", "the student view reads a stage or memory bank"),
        ("student-reads-oracle", "the student view reads an oracle input"),
        ("oracle-at-inference", "the output needs an oracle input, absent at inference"),
        ("oracle-in-output", "the output computed from an oracle input without a model generating it"),
        ("missing-student", "training needs a `student` view"),
        ("missing-teacher", "training needs a `teacher` view"),
        ("missing-output", "a harness with neither `output` nor `student`"),
        ("invalid-override", "a `--set name=value` that names no parameter or has the wrong type"),
    ),
    *_codes(
        Level.WARNING,
        ("unused-stage", "a stage that nothing reads"),
        ("bank-file-not-found", "a bank's `file` that does not exist (relative to the harness file)"),
        ("empty-fan-out", "a fan-out over a list that is always empty"),
        ("teacher-equals-student", "a teacher view identical to the student view (zero loss)"),
        ("thinking-mismatch", "the student and teacher prompts use different thinking switches"),
        ("constraint-reads-differently", "a `regex` or `json` constraint the decoding backend reads otherwise"),
        ("choice-over-budget", "a `choice` longer than `max_tokens` can hold"),
    ),
]

CODES: dict[str, Code] = {code.name: code for code in _ALL}
