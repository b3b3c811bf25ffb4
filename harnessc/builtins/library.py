"""The standard library of deterministic built-ins that harness expressions call.

Importing this module registers every function below in `harnessc.builtins.registry.REGISTRY`. The
compiler imports it to read signatures, so it must stay light: no numpy, torch or math-verify at import
time (math-verify is imported inside `math_equal`, the memory bank arrives as an argument).

Runtime values follow the registry's conventions: text -> str, list[T] -> tuple (any sequence accepted),
record -> dict, bank[R] -> a `harnessc.runtime.memory_bank.MemoryBank`, an absent optional -> None.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Hashable, Sequence
from typing import TYPE_CHECKING, Any

from harnessc.builtins.exact import exact_value
from harnessc.builtins.registry import builtin
from harnessc.runtime.values import number_text

if TYPE_CHECKING:  # the bank module needs numpy; the compiler must not pay for it
    from harnessc.runtime.memory_bank import MemoryBank


# --------------------------------------------------------------------------------------------------------
# Text clean-up and extraction
# --------------------------------------------------------------------------------------------------------

_THINK_BLOCK = re.compile(r"<think>.*?</think>", re.DOTALL | re.IGNORECASE)
_THINK_OPEN = re.compile(r"<think>", re.IGNORECASE)
_THINK_CLOSE = re.compile(r"</think>", re.IGNORECASE)
# `\boxed` or `\fbox` as a whole command word (not `\boxedfoo`), then the spaces TeX skips after it.
_BOX_COMMAND = re.compile(r"\\(?:boxed|fbox)(?![A-Za-z])\s*")
# A one-token argument: a control word (`\pi`), a control symbol (`\%`) or one character.
_ONE_TOKEN = re.compile(r"\\[A-Za-z]+|\\.|[^\s{}]", re.DOTALL)


@builtin("strip_think(text: text) -> text")
def strip_think(text: str) -> str:
    """Remove every closed `<think>...</think>` block and strip surrounding whitespace.

    A `</think>` with no `<think>` before it closes a block that began before the text did: thinking chat
    templates (R1-style, Qwen3) open `<think>` in the prompt, so the completion is `reasoning</think>answer`.
    Everything up to that closing tag is reasoning and goes too. An unclosed `<think>` (a generation cut off
    mid-thought) is left in place: deleting to the end of the text would silently turn a truncated answer
    into an empty one, and a stage can test for that.
    """
    opening, closing = _THINK_OPEN.search(text), _THINK_CLOSE.search(text)
    if closing is not None and (opening is None or closing.start() < opening.start()):
        text = text[closing.end() :]
    return _THINK_BLOCK.sub("", text).strip()


@builtin("extract_boxed(text: text) -> text")
def extract_boxed(text: str) -> str:
    """Return the content of the last complete `\\boxed{...}` (or `\\fbox{...}`), or "" if there is none.

    Braces are matched with nesting (`\\boxed{\\frac{1}{2}}` gives `\\frac{1}{2}`) and escaped braces
    `\\{ \\}` are skipped. Without braces the argument is one token, as TeX reads it: `\\boxed 5` gives
    `5`, `\\boxed\\pi` gives `\\pi` (and `\\boxed 42` gives `4`, which is what it typesets). A final box
    left unclosed by a truncated generation is ignored in favour of the last closed one. For nested boxes
    the innermost one starts last and therefore wins.
    """
    for command in reversed(list(_BOX_COMMAND.finditer(text))):
        content = _box_argument(text, command.end())
        if content is not None:
            return content.strip()
    return ""


def _box_argument(text: str, start: int) -> str | None:
    """The argument of a box command whose name (and the spaces after it) end at `start`: a braced group
    or one token; None when there is none (the text ends, or the group never closes)."""
    if text.startswith("{", start):
        return _balanced_content(text, start + 1)
    token = _ONE_TOKEN.match(text, start)
    return None if token is None else token.group()


def _balanced_content(text: str, start: int) -> str | None:
    """The text from `start` up to the brace closing an already-open `{`; None if it never closes."""
    depth, index = 1, start
    while index < len(text):
        char = text[index]
        if char == "\\":  # skip the escaped character: `\{`, `\}` and `\\` do not change the depth
            index += 2
            continue
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return text[start:index]
        index += 1
    return None


@builtin("regex_capture(text: text, pattern: text, group: int = 1) -> text")
def regex_capture(text: str, pattern: str, group: int = 1) -> str:
    """Return group `group` of the first match of `pattern` in `text` (0 = the whole match), or "".

    Python `re` syntax; flags go inline, e.g. `(?i)` or `(?s)`. A group that did not take part in the
    match also gives "". An invalid pattern or a group number the pattern lacks raises ValueError.
    """
    compiled = _compile_pattern(pattern)
    if not 0 <= group <= compiled.groups:
        raise ValueError(
            f"regex_capture: pattern {pattern!r} has {compiled.groups} group(s); group {group} does not exist"
        )
    match = compiled.search(text)
    if match is None:
        return ""
    return match.group(group) or ""


def _compile_pattern(pattern: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern)  # `re` keeps its own cache of compiled patterns
    except re.error as error:
        raise ValueError(f"regex_capture: invalid regular expression {pattern!r}: {error}") from error


# --------------------------------------------------------------------------------------------------------
# Labels
# --------------------------------------------------------------------------------------------------------

# A line such as `Label: theft`, `**Answer**: theft`, `- Final answer: theft` or `Charge：theft`.
_FORMAT_LINE = re.compile(
    r"^[\s>*_#`\-]*(?:final\s+|predicted\s+)?(?:label|answer|charge|class|category|prediction)"
    r"[\s*_`]*[:：](?P<value>.*)$",
    re.IGNORECASE | re.MULTILINE,
)
_VALUE_DECORATION = " \t*_`'\"[]().。"
_NON_WORD = re.compile(r"[\W_]+")


def _normalize_label(text: str) -> str:
    """Case-folded words only: punctuation, underscores and runs of whitespace become one space."""
    return _NON_WORD.sub(" ", text.casefold()).strip()


@builtin("parse_label(text: text, labels: list[text]) -> text")
def parse_label(text: str, labels: Sequence[str]) -> str:
    """Return the known label that `text` states, or "" if it names none.

    Rule, in order:
    1. Format lines (`Label: X`, `Answer: X`, `**Label**: X`, `Final answer: X`, also `Charge`, `Class`,
       `Category`, `Prediction`; case-insensitive) from the last to the first: X is matched exactly
       (ignoring case), then after normalising punctuation and whitespace, then as a label X starts with
       (`Label: theft, because ...`; the longest such label wins). The first line that maps wins.
    2. Otherwise, scan the whole text for whole-word mentions of every label and return the one whose last
       mention ends latest; a longer label wins a tie, so `theft` inside `aggravated theft` never shadows it.
    With an empty `labels` list (an open label set) the last format line's value is returned as written.
    """
    lines = [_clean_value(match["value"]) for match in _FORMAT_LINE.finditer(text)]
    if not labels:
        return next((line for line in reversed(lines) if line), "")
    for value in reversed(lines):
        label = _match_value(value, labels)
        if label:
            return label
    return _last_mentioned(text, labels)


def _clean_value(value: str) -> str:
    return value.strip().strip(_VALUE_DECORATION).strip()


def _match_value(value: str, labels: Sequence[str]) -> str:
    """Map a format line's value onto a known label (see `parse_label`), or ""."""
    folded = value.casefold()
    for label in labels:
        if label.strip().casefold() == folded:
            return label
    normalized = _normalize_label(value)
    if not normalized:
        return ""
    best, best_length = "", 0
    for label in labels:
        known = _normalize_label(label)
        if not known:
            continue
        if normalized == known:
            return label
        if normalized.startswith(known + " ") and len(known) > best_length:
            best, best_length = label, len(known)
    return best


def _last_mentioned(text: str, labels: Sequence[str]) -> str:
    """The label whose last whole-word mention ends latest; longer labels win ties."""
    haystack = f" {_normalize_label(text)} "
    best, best_key = "", (-1, -1)
    for label in labels:
        known = _normalize_label(label)
        if not known:
            continue
        start = haystack.rfind(f" {known} ")
        if start < 0:
            continue
        key = (start + len(known), len(known))
        if key > best_key:  # strict: among identical normalised labels the first listed wins
            best, best_key = label, key
    return best


# --------------------------------------------------------------------------------------------------------
# Lists and general values
# --------------------------------------------------------------------------------------------------------


@builtin("majority(items: list[T]) -> T")
def majority(items: Sequence[Any]) -> Any:
    """Return the most common item; ties go to the value that occurs first.

    Blank items (None, or text that is only whitespace) are ignored as long as at least one item is not
    blank, so failed samples do not outvote real answers. Records and lists compare by value. An empty
    list raises ValueError.
    """
    values = list(items)
    if not values:
        raise ValueError("majority of an empty list")
    candidates = [value for value in values if not _is_blank(value)] or values
    counts: dict[Hashable, int] = {}
    first_seen: dict[Hashable, Any] = {}
    for value in candidates:
        key = _freeze(value)
        counts[key] = counts.get(key, 0) + 1
        first_seen.setdefault(key, value)
    # max() keeps the first maximal key, and dicts iterate in insertion (= first occurrence) order.
    return first_seen[max(counts, key=counts.__getitem__)]


@builtin("item(items: list[T], index: int) -> T")
def item(items: Sequence[Any], index: int) -> Any:
    """The item at position `index` of a list (0 = the first; negative counts from the end).

    Lets a prompt lay out retrieved cases one per message, e.g. as few-shot turns:
    `user "{item(similar, 0).text}"` / `assistant "{item(similar, 0).label}"`. An index outside the
    list raises IndexError, which fails that example only: guard the stage (e.g. `when size(bank) >= k`).
    """
    values = tuple(items)
    if not -len(values) <= index < len(values):
        raise IndexError(f"item {index} of a list of {len(values)}")
    return values[index]


def _is_blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _freeze(value: Any) -> Hashable:
    """A hashable stand-in for a runtime value, so records and lists can be counted."""
    if isinstance(value, dict):
        return ("record", tuple(sorted((key, _freeze(item)) for key, item in value.items())))
    if isinstance(value, (list, tuple)):
        return ("list", tuple(_freeze(item) for item in value))
    return value


@builtin("nonempty(value: T?) -> bool")
def nonempty(value: Any) -> bool:
    """Whether a value is present and has content.

    Text needs a non-space character; a list, record or bank needs at least one item. None (an absent
    optional) is False; numbers and booleans are present values, hence True.
    """
    if value is None:
        return False
    if isinstance(value, str):
        return bool(value.strip())
    if isinstance(value, (int, float)):
        return True
    return len(value) > 0


@builtin("size(value: T?) -> int")
def size(value: Any) -> int:
    """The length of a text (in characters), a list, a record (its fields) or a bank (its entries).

    None (an absent optional) has size 0; a number raises TypeError.
    """
    if value is None:
        return 0
    if isinstance(value, (int, float)):
        raise TypeError(f"size() needs text, a list, a record or a bank, not {type(value).__name__}")
    return len(value)


@builtin("contains(text: text, part: text) -> bool")
def contains(text: str, part: str) -> bool:
    """Whether `part` occurs in `text`.

    The test is case-sensitive; apply `lower` to both for a case-insensitive one.
    """
    return part in text


@builtin("lower(text: text) -> text")
def lower(text: str) -> str:
    """The text in lower case."""
    return text.lower()


@builtin("strip(text: text) -> text")
def strip(text: str) -> str:
    """The text without leading and trailing whitespace."""
    return text.strip()


@builtin('join(items: list[text], separator: text = "\\n") -> text')
def join(items: Sequence[str], separator: str = "\n") -> str:
    """The items joined by `separator` (a newline unless given)."""
    return separator.join(items)


@builtin('split(text: text, separator: text = ",") -> list[text]')
def split(text: str, separator: str = ",") -> tuple[str, ...]:
    """The pieces of `text` between separators, each stripped, with empty pieces dropped."""
    if not separator:
        raise ValueError("split: the separator must not be empty")
    return tuple(piece.strip() for piece in text.split(separator) if piece.strip())


@builtin("coalesce(value: T?, fallback: T) -> T")
def coalesce(value: Any, fallback: Any) -> Any:
    """`value` when it is present, else `fallback` (e.g. the verified label, else the draft's)."""
    return fallback if value is None else value


@builtin("to_text(value: T) -> text")
def to_text(value: Any) -> str:
    """Render a value as text.

    Text stays as it is, None becomes "", booleans `true`/`false`, numbers in plain decimal form, as
    written when they come from the data (`3`, `0.5`, `0.00001`, never `1e-05`), lists and records
    become compact JSON, anything else (a bank) its str().
    """
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, (bool, int, float)):
        return number_text(value)
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(value, ensure_ascii=False, default=str)
    return str(value)


# --------------------------------------------------------------------------------------------------------
# Graders
# --------------------------------------------------------------------------------------------------------

# An answer that math-verify can read as it is: it carries its own delimiters (an unescaped `$`).
_MATH_DELIMITED = re.compile(r"\\boxed|\\fbox|(?<!\\)\$|\\\(|\\\[")
_LATEX_COMMAND = re.compile(r"\\[A-Za-z]+")
_ENGLISH_WORD = re.compile(r"[A-Za-z]{2,}")
_MATH_TIMEOUT_SECONDS = 5


@builtin("math_equal(predicted: text, gold: text) -> bool")
def math_equal(predicted: str, gold: str) -> bool:
    """Whether two answers are mathematically equivalent: exactly for rational arithmetic, else by `math-verify`.

    `3/4`, `\\frac{3}{4}`, `0.75` and `$\\frac{3}{4}$` are all equal; identical non-empty strings are
    always equal. Two answers that are both rational arithmetic (integers, decimals written in full,
    fractions, powers with whole exponents, factorials: harnessc/builtins/exact.py) are compared exactly,
    so `\\frac{1}{2006!}` is not `\\frac{1}{2004!}`, `10^{30}+1` is not `10^{30}`, and `0.333` is not
    `\\frac{1}{3}`. Anything else (roots, variables, sets, answers inside sentences) is judged by the
    `math-verify` library, after its extraction, again exactly when both extracted answers are rational.

    Garbage or empty input gives False, never an exception. math-verify's signal-based timeout is used
    only on the main thread (elsewhere `signal.alarm` fails), so off the main thread a pathological
    expression is not interrupted.
    """
    predicted, gold = predicted.strip(), gold.strip()
    if not predicted or not gold:
        return False
    if predicted == gold:
        return True
    exact = _exact_verdict(predicted, gold)
    if exact is not None:
        return exact
    try:
        from math_verify import verify  # lazy: pulls in sympy and antlr, far too heavy for the compiler

        timeout = _MATH_TIMEOUT_SECONDS if threading.current_thread() is threading.main_thread() else None
        gold_parsed = _parse_math(gold, timeout)
        predicted_parsed = _parse_math(predicted, timeout)
        if not gold_parsed or not predicted_parsed:
            return False
        exact = _exact_verdict(_extracted(predicted_parsed), _extracted(gold_parsed))
        if exact is not None:
            return exact
        # math-verify is asymmetric by design: the reference answer goes first.
        return bool(verify(gold_parsed, predicted_parsed, timeout_seconds=timeout))
    except Exception:  # a grader answers False on input it cannot read; it never crashes a run
        return False


def _exact_verdict(predicted: str | None, gold: str | None) -> bool | None:
    """Whether two answers are equal when both are exact rational arithmetic; None when either is not."""
    if predicted is None or gold is None:
        return None
    gold_value = exact_value(gold)
    if gold_value is None:
        return None
    predicted_value = exact_value(predicted)
    return None if predicted_value is None else predicted_value == gold_value


def _extracted(parsed: list[Any]) -> str | None:
    """The answer text math-verify extracted (the string it returns after the parsed expression)."""
    return next((item for item in parsed if isinstance(item, str)), None)


def _parse_math(answer: str, timeout: int | None) -> list[Any]:
    """Parse an answer with math-verify, wrapping bare answers in `$...$` first.

    Bare answers such as `2^{1/2}` or `0.5` parse correctly only as LaTeX (unwrapped, math-verify's plain
    expression reader takes `2^{1/2}` for `2`); answers with English words in them (`12 cm`, `The answer
    is 7`) are left to math-verify's own extraction, which finds the number.
    """
    from math_verify import parse

    words = _ENGLISH_WORD.search(_LATEX_COMMAND.sub("", answer))
    if _MATH_DELIMITED.search(answer) is None and words is None:
        answer = f"${answer}$"
    return parse(answer, parsing_timeout=timeout)


def _label_key(text: str) -> str:
    return " ".join(text.casefold().split())


@builtin("label_equal(predicted: text, gold: text) -> bool")
def label_equal(predicted: str, gold: str) -> bool:
    """Whether two labels are the same, ignoring case and differences in whitespace."""
    return _label_key(predicted) == _label_key(gold)


@builtin("exact_match(predicted: text, gold: text) -> bool")
def exact_match(predicted: str, gold: str) -> bool:
    """Whether two texts are identical once leading and trailing whitespace is removed."""
    return predicted.strip() == gold.strip()


@builtin("set_f1(predicted: list[text], gold: list[text]) -> float")
def set_f1(predicted: Sequence[str], gold: Sequence[str]) -> float:
    """The F1 score of the predicted label set against the gold label set.

    Labels compare like `label_equal` (case and whitespace ignored), duplicates and blank labels are
    dropped. Two empty sets agree perfectly (1.0); exactly one empty set scores 0.0.
    """
    predicted_set = {_label_key(label) for label in predicted} - {""}
    gold_set = {_label_key(label) for label in gold} - {""}
    if not predicted_set and not gold_set:
        return 1.0
    overlap = len(predicted_set & gold_set)
    if overlap == 0:
        return 0.0
    precision, recall = overlap / len(predicted_set), overlap / len(gold_set)
    return 2 * precision * recall / (precision + recall)


# --------------------------------------------------------------------------------------------------------
# Retrieval
# --------------------------------------------------------------------------------------------------------


@builtin(
    "retrieve(bank: bank[R], query: text, k: int = 5, label_in: list[text] = [], "
    "label_not_in: list[text] = []) -> list[R]"
)
def retrieve(
    bank: MemoryBank,
    query: str,
    k: int = 5,
    label_in: Sequence[str] = (),
    label_not_in: Sequence[str] = (),
) -> tuple[dict[str, Any], ...]:
    """The `k` bank entries most similar to `query`, most similar first, optionally filtered by label.

    `label_in` keeps only entries whose label is listed (empty = no restriction); `label_not_in` drops
    entries whose label is listed. Ties keep insertion order. See `MemoryBank.search`.
    """
    return tuple(bank.search(query, k, label_in=tuple(label_in), label_not_in=tuple(label_not_in)))
