"""Every limit the language sets, in one place (docs/language.md, "Limits", lists them). The limits that
only the whole harness shows are checked in harnessc/checks/budgets.py.

Work and memory are bounded by the source, not by what it expands to: a 500-byte file of snippets that
each use the previous one four times would otherwise expand to gigabytes, and a budget no run can meet
(`n 10**100`) would crash the run that tries. Each limit is far beyond any real harness.
"""

from __future__ import annotations

import math

from harnessc.reading import MAX_SOURCE_BYTES as MAX_SOURCE_BYTES  # the size of one source file
from harnessc.sampling import SAMPLING

# Numbers: integers are 64-bit (what engines take for seeds and counts), decimals are finite doubles.
MIN_INT = -(2**63)
MAX_INT = 2**63 - 1
MAX_INT_DIGITS = len(str(MAX_INT))  # a longer literal is out of range without converting it
# Budgets of one LLM stage and one loop: beyond these no run finishes.
# The options' budgets are entries of the sampling table (`limit`).
MAX_SAMPLES: int = SAMPLING["n"].limit or 0  # `n`: 1,024
MAX_TOKENS: int = SAMPLING["max_tokens"].limit or 0  # `max_tokens`: 1,048,576, the longest context windows
MAX_ITERATIONS = 1000  # a loop's `max`
MAX_FAN_OUT = 1024  # a fan-out's `max` (items per example)
# What the uses of snippets expand to, summed over the whole harness: characters of text (what prompts
# and the compiled IR hold), and template pieces (texts, placeholders, blocks and the nodes of their
# expressions: the work of every later pass is proportional to these).
MAX_SNIPPET_EXPANSION = 4_000_000
MAX_SNIPPET_NODES = 20_000
# Snippets filled in one inside the other.
MAX_SNIPPET_DEPTH = 16
# How deep the syntax tree may nest (declaration levels included), and template blocks inside one string:
# every later pass walks trees recursively, so deeper nesting is a diagnostic, not a RecursionError.
MAX_NESTING = 64
# How many times one `{for}` or comprehension body may be repeated for one example, through nested
# iterations whose lengths are known before the run (list literals, list parameters, `n` samples).
MAX_REPETITIONS = 1_000_000


def int_in_range(text: str) -> int | None:
    """The integer a literal (`-12`) writes, or None when it is outside [MIN_INT, MAX_INT]. The length is
    checked first: converting a very long literal is slow and Python refuses more than 4,300 digits."""
    if len(text.lstrip("-+")) > MAX_INT_DIGITS:
        return None
    value = int(text)
    return value if MIN_INT <= value <= MAX_INT else None


def float_in_range(text: str) -> float | None:
    """The finite float a literal writes (`1e-3`), or None when it overflows (`1e999`)."""
    value = float(text)
    return value if math.isfinite(value) else None
