"""Output constraints: the checker's restatement of the decoding backend's rules (harnessc/constraints.py)
gives xgrammar's own verdict, on a table of cases and on generated patterns."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harnessc.constraints import json_schema_problems, regex_problems

# (pattern, does the backend accept it); each family of the backend's rules has several members
REGEXES = [
    # accepted as in Python
    (r"(?:ab)+", True),
    (r"^abc$", True),
    (r"a*?", True),
    (r"a{3}", True),
    (r"a{3,}", True),
    (r"x{0,0}", True),
    (r"[\n]", True),
    (r"[^\n]*", True),
    ("\n", True),
    ("(\n)", True),
    ("[\t]", True),
    (r"\s\S\w\W\d\D", True),
    (r"[\w-]", True),
    (r"[\d-z]", True),
    (r"\x41", True),
    (r"\u00e9", True),
    (r"\u{1F600}", True),
    ("é{2}", True),
    (r"(?<name>a)", True),
    (r"(?<>a)", True),
    (r"(?:)", True),
    ("(|a)", True),
    ("a||b", True),
    ("()*", True),
    ("[a-]", True),
    ("[-a]", True),
    (r"[a\-z]", True),
    ("[[]", True),
    ("[^]]", True),
    ("", True),
    (r"\cA", True),
    (r"\0", True),
    ("a+?", True),
    ("a??", True),
    ("(a){2}?", True),
    (r"[\n-\r]", True),
    ("[a-é]", True),
    # accepted, but read otherwise than Python reads them (warnings)
    (r"\Z", True),
    (r"\A", True),
    (r"a^b", True),
    (r"a$b", True),
    (r"\q", True),
    # a raw line break inside a class
    ("[^\n]*", False),
    ("[\r]", False),
    ("x[ab\n]", False),
    # lookaround, inline flags, bad group names
    (r"(?=a)b", False),
    (r"(?!a)b", False),
    (r"(?<=a)b", False),
    (r"(?<!a)b", False),
    (r"(?i)abc", False),
    (r"(?P<x>a)", False),
    (r"(?<n1>a)", False),
    ("(?", False),
    # backreferences, word boundaries, Unicode properties
    (r"(a)\1", False),
    (r"\k<x>", False),
    (r"\bfoo", False),
    (r"a\B", False),
    (r"\p{L}+", False),
    (r"\P{L}", False),
    # repetitions
    ("a++", False),
    ("a**", False),
    ("a*??", False),
    ("a{2}{3}", False),
    (r"a{,3}", False),
    ("a{", False),
    ("a{1", False),
    ("a{1,", False),
    ("a{ 1}", False),
    ("a{2,1}", False),
    ("*a", False),
    ("{1}", False),
    ("(*a)", False),
    ("|*", False),
    ("a|*b", False),
    ("^*", False),
    # classes
    ("[]", False),
    ("[z-a]", False),
    (r"[\x7a-\x61]", False),
    (r"[z-\d]", False),
    ("[é-a]", False),
    (r"[\]", False),
    ("[abc", False),
    # escapes and parentheses
    ("\\", False),
    (r"\x4", False),
    (r"\u{}", False),
    (r"\c1", False),
    ("a)", False),
    ("(a", False),
    ("((a)", False),
    ("a\0b", False),
]


def _backend_accepts(pattern: str) -> bool:
    xgrammar = pytest.importorskip("xgrammar")
    try:
        xgrammar.Grammar.from_regex(pattern)
    except Exception:
        return False
    return True


def _we_accept(pattern: str) -> bool:
    return not any(problem.severity == "error" for problem in regex_problems(pattern))


@pytest.mark.parametrize(("pattern", "accepted"), REGEXES, ids=[repr(p) for p, _ in REGEXES])
def test_the_checker_and_the_backend_agree_on_the_table(pattern: str, accepted: bool) -> None:
    assert _we_accept(pattern) == accepted
    assert _backend_accepts(pattern) == accepted  # the table itself is the backend's truth


ATOMS = [
    "a",
    "b",
    "é",
    "0",
    "1",
    "2",
    ",",
    "-",
    "(",
    ")",
    "(?:",
    "(?<n>",
    "(?=",
    "(?i)",
    "[",
    "]",
    "[^",
    "\\",
    "\\d",
    "\\w",
    "\\S",
    "\\n",
    "\n",
    "\\b",
    "\\1",
    "\\x4",
    "\\x41",
    "\\u0041",
    "\\u{41}",
    "\\c",
    "\\-",
    "\\]",
    "*",
    "+",
    "?",
    "{",
    "}",
    "{2}",
    "{2,1}",
    "{1,}",
    "|",
    "^",
    "$",
    ".",
    "\\Z",
    "\\p{L}",
    "z-a",
    "a-z",
]


# deadline: the first example imports xgrammar (seconds, loading torch)
@settings(deadline=None, max_examples=200)
@given(st.lists(st.sampled_from(ATOMS), min_size=1, max_size=7).map("".join))
def test_the_checker_and_the_backend_agree_on_generated_patterns(pattern: str) -> None:
    assert _we_accept(pattern) == _backend_accepts(pattern), pattern


def test_meaning_changes_are_warnings_that_say_what_is_matched() -> None:
    (problem,) = regex_problems(r"Label: \w+\Z")
    assert problem.severity == "warning" and "matches the character `Z`" in problem.message
    assert problem.index == len(r"Label: \w+")
    (problem,) = regex_problems("yes|^no")
    assert problem.severity == "warning" and "`^`" in problem.message and problem.index == 4


def test_errors_point_at_the_character_to_blame_with_a_hint() -> None:
    (problem,) = regex_problems("[^\n]*")
    assert problem.index == 2 and "line break" in problem.message and r"\\n" in problem.hint
    (problem,) = regex_problems(r"(?i)yes")
    assert problem.index == 2 and "[Yy]es" in problem.hint
    (problem,) = regex_problems("Answer: a{2,1}")
    assert problem.index == 9 and "2 > 1" in problem.message


SCHEMAS = [
    ({"type": "object", "properties": {"a": {"type": "string", "format": "email"}}}, True),
    ({"type": ["string", "null"]}, True),
    ({"$defs": {"x": {"type": "string"}}, "$ref": "#/$defs/x"}, True),
    ({"type": "object", "properties": {"pattern": {"type": "string"}}}, True),  # a property named pattern
    ({"type": "strin"}, False),
    ({"type": "string", "pattern": "[^\n]"}, False),
    ({"type": "object", "patternProperties": {"(?<=a)": {"type": "string"}}}, False),
    ({"type": "string", "pattern": "(?=a)b"}, True),  # accepted: the lookahead is dropped (a warning)
    ({"$ref": "#/definitions/x"}, False),
    ({"properties": {"a": {"type": "object", "properties": {"b": {"$ref": "#/nope"}}}}}, False),
    ({"type": "integer", "minimum": 5, "maximum": 1}, False),
    ({"type": "string", "minLength": 5, "maxLength": 1}, False),
    ({"type": "array", "minItems": 3, "maxItems": 2}, False),
    ({"enum": []}, False),
]


@pytest.mark.parametrize(("schema", "accepted"), SCHEMAS, ids=[json.dumps(s)[:60] for s, _ in SCHEMAS])
def test_json_schemas_the_backend_refuses_are_refused(schema: dict, accepted: bool) -> None:
    text = json.dumps(schema)
    assert not any(problem.severity == "error" for problem in json_schema_problems(text)) == accepted
    xgrammar = pytest.importorskip("xgrammar")
    try:
        xgrammar.Grammar.from_json_schema(text)
        backend = True
    except Exception:
        backend = False
    assert backend == accepted


def test_json_that_is_not_a_schema_object_is_refused_with_where() -> None:
    (problem,) = json_schema_problems("{'type': 'object'}")
    assert "not valid JSON" in problem.message and problem.index == 1 and '"""' in problem.hint
    (problem,) = json_schema_problems("[1, 2]")
    assert "JSON list" in problem.message
    (problem,) = json_schema_problems('{"type": "object", "properties": {"a": {"type": 3}}}')
    assert "properties/a/type" in problem.message


@settings(deadline=None, max_examples=200)
@given(st.lists(st.sampled_from(ATOMS), min_size=1, max_size=6).map("".join))
def test_a_schema_pattern_the_checker_refuses_the_backend_refuses(pattern: str) -> None:
    # A schema's pattern goes through a second regex reader in xgrammar (its FSM builder) that accepts more
    # (lookaheads, repeated operators) but falls back to the converter on some characters (non-ASCII, a
    # lone `]`). The checker follows the lenient reading: it may miss a refusal there, never invent one.
    xgrammar = pytest.importorskip("xgrammar")
    text = json.dumps({"type": "string", "pattern": pattern})
    try:
        xgrammar.Grammar.from_json_schema(text)
        backend = True
    except Exception:
        backend = False
    ours = not any(problem.severity == "error" for problem in json_schema_problems(text))
    assert ours or not backend, pattern
