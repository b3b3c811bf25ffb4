"""The standard built-ins: registered signatures, text extraction, labels, voting, graders, retrieval."""

from __future__ import annotations

import subprocess
import sys
import threading

import pytest

from harnessc.builtins import library as lib
from harnessc.builtins.registry import REGISTRY, default_registry

LEGAL = ("theft", "aggravated theft", "fraud", "robbery")

EXPECTED_SIGNATURES = {
    "strip_think": "strip_think(text: text) -> text",
    "extract_boxed": "extract_boxed(text: text) -> text",
    "regex_capture": "regex_capture(text: text, pattern: text, group: int = 1) -> text",
    "parse_label": "parse_label(text: text, labels: list[text]) -> text",
    "majority": "majority(items: list[T]) -> T",
    "item": "item(items: list[T], index: int) -> T",
    "nonempty": "nonempty(value: T?) -> bool",
    "size": "size(value: T?) -> int",
    "contains": "contains(text: text, part: text) -> bool",
    "lower": "lower(text: text) -> text",
    "strip": "strip(text: text) -> text",
    "join": 'join(items: list[text], separator: text = "\\n") -> text',
    "split": 'split(text: text, separator: text = ",") -> list[text]',
    "to_text": "to_text(value: T) -> text",
    "coalesce": "coalesce(value: T?, fallback: T) -> T",
    "math_equal": "math_equal(predicted: text, gold: text) -> bool",
    "label_equal": "label_equal(predicted: text, gold: text) -> bool",
    "exact_match": "exact_match(predicted: text, gold: text) -> bool",
    "set_f1": "set_f1(predicted: list[text], gold: list[text]) -> float",
    "retrieve": (
        "retrieve(bank: bank[R], query: text, k: int = 5, label_in: list[text] = [], "
        "label_not_in: list[text] = []) -> list[R]"
    ),
}


# ---- registration ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(EXPECTED_SIGNATURES))
def test_signature_is_registered_exactly(name: str) -> None:
    registered = default_registry().get(name)
    assert registered is not None
    assert str(registered.signature) == EXPECTED_SIGNATURES[name]
    assert registered.module == "harnessc.builtins.library"


def test_every_builtin_has_a_one_sentence_summary_line() -> None:
    for item in REGISTRY:
        if item.module != "harnessc.builtins.library":
            continue
        summary = item.doc.splitlines()[0]
        assert summary.endswith("."), item.name
        assert len(summary) <= 110, item.name


def test_split_default_is_a_comma() -> None:
    separator = REGISTRY.get("split").signature.parameters[1]
    assert separator.default == ","


def test_importing_the_library_pulls_in_no_heavy_modules() -> None:
    heavy = ("numpy", "math_verify", "sympy", "torch", "vllm", "transformers")
    code = f"import sys, harnessc.builtins.library\nprint([m for m in {heavy!r} if m in sys.modules])"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


# ---- strip_think ---------------------------------------------------------------------------------------


def test_strip_think_removes_several_multiline_blocks() -> None:
    text = "<think>\nfirst\nthought\n</think>\nPlan: add.\n<think>again</think> Then check.  "
    assert lib.strip_think(text) == "Plan: add.\n Then check."


def test_strip_think_keeps_an_unclosed_block() -> None:
    text = "<think>\nstill thinking when the budget ran out"
    assert lib.strip_think(text) == text.strip()


def test_strip_think_removes_closed_block_but_not_a_later_unclosed_one() -> None:
    assert lib.strip_think("<think>a</think> answer <think>b") == "answer <think>b"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("r\n</think>\n\nPlan", "Plan"),  # the template opened <think>: the completion starts inside it
        ("The answer is 4, so\n</think>\nPlan: add.", "Plan: add."),  # the hidden answer must not leak
        ("r</think>Plan <think>more</think> end", "Plan  end"),  # then closed blocks as usual
        ("r</THINK>Plan", "Plan"),  # tags are matched case-insensitively, as the closed-block form is
        ("</think>", ""),
        ("a</think>b</think>c", "b</think>c"),  # only the first orphan closes the template's block
        ("<think>a</think>b</think>c", "b</think>c"),  # a closing tag after a closed block is ordinary text
    ],
)
def test_strip_think_a_closing_tag_without_opening_ends_a_block_begun_in_the_prompt(text, expected) -> None:
    assert lib.strip_think(text) == expected


def test_strip_think_without_tags_only_strips_whitespace() -> None:
    assert lib.strip_think("  just text \n") == "just text"


# ---- extract_boxed -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("so the answer is \\boxed{42}.", "42"),
        ("\\boxed{\\frac{1}{2}}", "\\frac{1}{2}"),
        ("first \\boxed{1} then \\boxed{ 2 }", "2"),
        ("\\fbox{7}", "7"),
        ("\\boxed {x^{2}}", "x^{2}"),
        ("\\boxed{\\{1, 2\\}}", "\\{1, 2\\}"),
        ("no box here", ""),
        ("", ""),
        ("\\boxed{3} and a truncated \\boxed{\\frac{1", "3"),
        ("\\boxed{}", ""),
    ],
)
def test_extract_boxed(text: str, expected: str) -> None:
    assert lib.extract_boxed(text) == expected


# ---- regex_capture -------------------------------------------------------------------------------------


def test_regex_capture_groups() -> None:
    assert lib.regex_capture("Answer: 12 apples", r"Answer:\s*(\d+)") == "12"
    assert lib.regex_capture("Answer: 12 apples", r"Answer:\s*(\d+)", 0) == "Answer: 12"
    assert lib.regex_capture("a1 b2", r"([a-z])(\d)", 2) == "1"
    assert lib.regex_capture("nothing", r"(\d+)") == ""
    assert lib.regex_capture("x", r"(y)?x") == ""  # the group did not take part in the match
    assert lib.regex_capture("LABEL: Fraud", r"(?i)label:\s*(\w+)") == "Fraud"


def test_regex_capture_invalid_pattern_is_a_clear_value_error() -> None:
    with pytest.raises(ValueError, match=r"invalid regular expression '\(unclosed'"):
        lib.regex_capture("text", "(unclosed")


def test_regex_capture_missing_group_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="has 0 group"):
        lib.regex_capture("abc", "abc")


# ---- parse_label ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Reasoning...\nLabel: fraud", "fraud"),
        ("**Label**: Aggravated Theft", "aggravated theft"),
        ("**Answer:** robbery.", "robbery"),
        ("answer: ROBBERY", "robbery"),
        ("Final answer: aggravated   theft!", "aggravated theft"),
        ("Label: theft, because the item was taken quietly", "theft"),
        ("Label: aggravated theft (with a weapon)", "aggravated theft"),
        # The last format line that names a known label wins.
        ("Use the format `Label: <label>`.\nLabel: fraud", "fraud"),
        ("Label: fraud\nLabel: robbery", "robbery"),
    ],
)
def test_parse_label_format_lines(text: str, expected: str) -> None:
    assert lib.parse_label(text, LEGAL) == expected


def test_parse_label_returns_the_label_as_listed() -> None:
    assert lib.parse_label("label: BILLING", ["Billing", "Shipping"]) == "Billing"


def test_parse_label_falls_back_to_the_latest_mention() -> None:
    text = "It looks like fraud at first, but the facts point to robbery in the end."
    assert lib.parse_label(text, LEGAL) == "robbery"


def test_parse_label_longer_label_wins_a_tie() -> None:
    assert lib.parse_label("This is aggravated theft.", LEGAL) == "aggravated theft"
    assert lib.parse_label("aggravated theft, or simply theft", LEGAL) == "theft"


def test_parse_label_scans_whole_words_only() -> None:
    assert lib.parse_label("a defrauding scheme", ["fraud"]) == ""
    assert lib.parse_label("technical_issue", ["technical issue"]) == "technical issue"


def test_parse_label_unknown_format_value_falls_back_to_scanning() -> None:
    assert lib.parse_label("Label: burglary\nmaybe fraud", LEGAL) == "fraud"


def test_parse_label_nothing_known() -> None:
    assert lib.parse_label("I cannot tell.", LEGAL) == ""
    assert lib.parse_label("", LEGAL) == ""


def test_parse_label_open_label_set_returns_the_format_value() -> None:
    assert lib.parse_label("Label: **arson**", []) == "arson"
    assert lib.parse_label("no format line", []) == ""


# ---- majority and small helpers ------------------------------------------------------------------------


def test_majority_most_common() -> None:
    assert lib.majority(("a", "b", "b", "c")) == "b"


def test_majority_ties_go_to_the_first_occurrence() -> None:
    assert lib.majority(["b", "a", "a", "b"]) == "b"
    assert lib.majority([3, 1, 1, 3, 2]) == 3


def test_item_indexes_from_either_end() -> None:
    cases = ({"text": "a", "label": "x"}, {"text": "b", "label": "y"})
    assert lib.item(cases, 0) == cases[0]
    assert lib.item(list(cases), 1)["label"] == "y"
    assert lib.item(cases, -1) == cases[1]


@pytest.mark.parametrize("index", [2, -3])
def test_item_out_of_range_raises(index: int) -> None:
    with pytest.raises(IndexError, match="of a list of 2"):
        lib.item(("a", "b"), index)


def test_majority_ignores_blanks_unless_all_are_blank() -> None:
    assert lib.majority(["", "", "", "x"]) == "x"
    assert lib.majority([None, "  ", None, "7"]) == "7"
    assert lib.majority(["", " "]) == ""


def test_majority_of_records_compares_by_value() -> None:
    first, second = {"label": "a", "score": 1}, {"label": "b", "score": 2}
    assert lib.majority([first, second, {"score": 2, "label": "b"}]) == second


def test_majority_of_an_empty_list_raises() -> None:
    with pytest.raises(ValueError, match="majority of an empty list"):
        lib.majority(())


def test_nonempty() -> None:
    assert lib.nonempty("x") and lib.nonempty(("",)) and lib.nonempty(0) and lib.nonempty(False)
    assert not lib.nonempty(" \n") and not lib.nonempty(()) and not lib.nonempty(None)
    assert not lib.nonempty({})


def test_size() -> None:
    assert lib.size("abc") == 3
    assert lib.size(("a", "b")) == 2
    assert lib.size(None) == 0
    with pytest.raises(TypeError, match="size"):
        lib.size(3)


def test_text_helpers() -> None:
    assert lib.contains("Hello world", "world") and not lib.contains("Hello", "hello")
    assert lib.lower("AbC") == "abc"
    assert lib.strip(text="  a b \n") == "a b"  # keyword: ruff's B005 takes lib.strip for str.strip
    assert lib.join(("a", "b")) == "a\nb"
    assert lib.join(["a", "b"], ", ") == "a, b"


def test_split_strips_and_drops_empty_pieces() -> None:
    assert lib.split(" a, b ,,c ,") == ("a", "b", "c")
    assert lib.split("x | y", "|") == ("x", "y")
    assert lib.split("") == ()
    with pytest.raises(ValueError, match="separator"):
        lib.split("abc", "")


def test_to_text() -> None:
    assert lib.to_text("x") == "x"
    assert lib.to_text(None) == ""
    assert lib.to_text(True) == "true"
    assert lib.to_text(3) == "3" and lib.to_text(0.5) == "0.5"
    assert lib.to_text(("a", 1)) == '["a", 1]'
    assert lib.to_text({"text": "é", "label": "x"}) == '{"text": "é", "label": "x"}'


# ---- graders -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("predicted", "gold"),
    [
        ("\\frac{1}{2}", "0.5"),
        ("0.5", "\\frac{1}{2}"),
        ("1/2", "\\frac{1}{2}"),
        ("0.5", "1/2"),
        ("0.75", "3/4"),
        ("$\\frac{3}{4}$", "3/4"),
        ("\\boxed{7}", "7"),
        ("12.0", "12"),
        ("1,000", "1000"),
        ("\\$5", "5"),
        ("12 cm", "12"),
        ("\\sqrt{2}", "2^{1/2}"),
        ("\\dfrac12", "0.5"),
        ("x^2+2x+1", "(x+1)^2"),
        ("5/6", "5/6"),
    ],
)
def test_math_equal_equivalent_pairs(predicted: str, gold: str) -> None:
    assert lib.math_equal(predicted, gold)


@pytest.mark.parametrize(
    ("predicted", "gold"),
    [
        ("2", "\\frac{1}{2}"),
        ("-4", "4"),
        ("0.33", "1/3"),
        ("2", "2^{1/2}"),  # a bare `2^{1/2}` must be read as LaTeX, not as the plain number 2
        ("8", "9"),
        ("", "7"),
        ("7", ""),
        ("garbage???", "7"),
        ("}}{{\\frac", "7"),
        ("\\boxed{", "1"),
    ],
)
def test_math_equal_different_or_garbage_pairs(predicted: str, gold: str) -> None:
    assert lib.math_equal(predicted, gold) is False


def test_math_equal_works_off_the_main_thread() -> None:
    results: list[bool] = []
    worker = threading.Thread(target=lambda: results.extend([lib.math_equal("0.5", "1/2"), lib.math_equal("1", "2")]))
    worker.start()
    worker.join()
    assert results == [True, False]


def test_label_equal_and_exact_match() -> None:
    assert lib.label_equal(" Aggravated  Theft ", "aggravated theft")
    assert not lib.label_equal("theft", "aggravated theft")
    assert lib.exact_match(" 42\n", "42")
    assert not lib.exact_match("Fraud", "fraud")


@pytest.mark.parametrize(
    ("predicted", "gold", "expected"),
    [
        ((), (), 1.0),
        (("a",), (), 0.0),
        ((), ("a",), 0.0),
        (("a", "b"), ("a", "b"), 1.0),
        (("a", "b"), ("a",), 2 * 0.5 * 1.0 / 1.5),
        (("A ", "a", "c"), ("a", "b"), 0.5),
        (("x",), ("y",), 0.0),
    ],
)
def test_set_f1(predicted: tuple[str, ...], gold: tuple[str, ...], expected: float) -> None:
    assert lib.set_f1(predicted, gold) == pytest.approx(expected)


# ---- retrieve ------------------------------------------------------------------------------------------


class RecordingBank:
    """Stands in for a MemoryBank: records the call and answers with lists, as the bank does."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def search(self, query, k, label_in=(), label_not_in=()):
        self.calls.append((query, k, label_in, label_not_in))
        return [{"text": "hit", "label": "a"}]


def test_retrieve_delegates_to_the_bank_and_returns_a_tuple() -> None:
    bank = RecordingBank()
    result = lib.retrieve(bank, "query", 3, ["a"], label_not_in=["b"])
    assert result == ({"text": "hit", "label": "a"},)
    assert bank.calls == [("query", 3, ("a",), ("b",))]


def test_retrieve_defaults_match_the_signature() -> None:
    bank = RecordingBank()
    lib.retrieve(bank, "q")
    assert bank.calls == [("q", 5, (), ())]


def test_coalesce_prefers_the_present_value() -> None:
    assert lib.coalesce("verified", "draft") == "verified"
    assert lib.coalesce(None, "draft") == "draft"
    assert lib.coalesce("", "draft") == ""  # present but empty is still present
