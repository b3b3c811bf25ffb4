"""Reserved words and near-miss name suggestions, shared by the parser and the checker."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

KEYWORDS = frozenset(
    {
        "harness",
        "import",
        "input",
        "param",
        "snippet",
        "bank",
        "llm",
        "when",
        "else",
        "let",
        "loop",
        "from",
        "max",
        "until",
        "next",
        "student",
        "teacher",
        "output",
        "student_output",
        "grade",
        "record",
        "or",
        "and",
        "not",
        "true",
        "false",
        "for",
        "in",
    }
)


def did_you_mean(name: str, candidates: Iterable[str]) -> tuple[str, ...]:
    """A one-element hint tuple naming the closest candidate, or () when nothing is close."""
    matches = difflib.get_close_matches(name, sorted(set(candidates)), n=1, cutoff=0.6)
    return (f"did you mean `{matches[0]}`?",) if matches else ()
