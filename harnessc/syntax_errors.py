"""Syntax errors as diagnostics: Lark's exceptions turned into located messages that say what was expected,
in the language's words, with the likely fix (an unclosed delimiter is reported where it was opened)."""

from __future__ import annotations

from lark import Tree, UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from harnessc.diagnostics import Diagnostic, Label
from harnessc.limits import MAX_INT, MAX_NESTING, MIN_INT
from harnessc.names import KEYWORDS
from harnessc.source import AnySource, Span


def nesting_diagnostic(tree: Tree, source: AnySource) -> Diagnostic | None:
    """A syntax tree nested more than MAX_NESTING levels (declaration levels included): every later pass
    walks trees recursively, so a pathological `not not not ...` or `[[[[...]]]]` gets a diagnostic, not a
    RecursionError."""
    stack = [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_NESTING:
            start = getattr(node.meta, "start_pos", 0)
            return Diagnostic(
                code="syntax-error",
                message=f"this is nested more than {MAX_NESTING} levels deep",
                span=source.span(start, getattr(node.meta, "end_pos", start)),
                label="nested too deeply",
                hints=("split the expression into several `let` stages",),
            )
        stack.extend((child, depth + 1) for child in node.children if isinstance(child, Tree))
    return None


_TOKEN_NAMES = {
    "NAME": "a name",
    "STRING": "a string",
    "LONG_STRING": "a string",
    "NUMBER": "a number",
    "LBRACE": "`{`",
    "RBRACE": "`}`",
    "LPAR": "`(`",
    "RPAR": "`)`",
    "LSQB": "`[`",
    "RSQB": "`]`",
    "COLON": "`:`",
    "COMMA": "`,`",
    "EQUAL": "`=`",
    "DOT": "`.`",
    "COMPARE": "a comparison",
    "$END": "end of file",
}
_OPENERS = {"{": "}", "(": ")", "[": "]"}
_CLOSER_TOKENS = {"}": "RBRACE", ")": "RPAR", "]": "RSQB"}
# The tokens an expression can start with: when all of them are acceptable, "a value" says it in two words.
_VALUE_STARTS = frozenset({"NAME", "STRING", "LONG_STRING", "NUMBER", "TRUE", "FALSE", "LPAR", "LSQB"})
# Listing order: what closes or separates first (the likeliest fix), operators last.
_PRIORITY = (
    "RPAR",
    "RSQB",
    "RBRACE",
    "COMMA",
    "COLON",
    "EQUAL",
    "NAME",
    "STRING",
    "LONG_STRING",
    "NUMBER",
    "LBRACE",
    "LSQB",
    "LPAR",
)
# Characters people bring from other languages, with what to write instead.
_CHARACTER_HINTS = {
    ";": "declarations and options end at the end of the line: remove the `;`",
    "'": 'strings are written in double quotes: "..."',
    "+": 'there are no arithmetic operators; build text with a template: "{a} {b}"',
    "&": "write `and`",
    "|": "write `or`",
    "!": "write `not` (or `!=` to compare)",
}


def _describe_expected(expected: set[str]) -> str:
    expected = set(expected)
    # Where a separator or closer fits, it is the likely fix: the operators that could also continue the
    # expression (`and`, `.`, `(`, a comparison) would only bury it.
    separators = expected & {"RPAR", "RSQB", "RBRACE", "COMMA", "COLON"}
    if separators and expected & {"AND", "OR", "DOT", "COMPARE", "LPAR", "EQUAL"}:
        expected = separators
    groups: list[str] = []
    if _VALUE_STARTS <= expected:
        expected -= _VALUE_STARTS | {"NOT"}
        groups.append("a value")
    rank = {name: index for index, name in enumerate(_PRIORITY)}
    ordered = sorted(expected, key=lambda name: (rank.get(name, len(rank)), name))
    names = list(
        dict.fromkeys(groups + [_TOKEN_NAMES.get(name, f"`{name.strip(chr(34)).lower()}`") for name in ordered])
    )
    if not names:  # Lark lists nothing where only the end of an expression (in a template) may follow
        return "the end of the expression"
    if len(names) > 6:
        return ", ".join(names[:5]) + " or another token"
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]


def syntax_diagnostic(error: UnexpectedInput, source: AnySource) -> Diagnostic:
    if isinstance(error, UnexpectedEOF) or (isinstance(error, UnexpectedToken) and error.token.type == "$END"):
        return _end_of_file(source, set(getattr(error, "expected", ()) or ()))
    if isinstance(error, UnexpectedCharacters):
        return _unexpected_character(error, source)
    assert isinstance(error, UnexpectedToken)
    token = error.token
    span = source.span(token.start_pos, token.end_pos)
    shown = str(token) if len(str(token)) <= 30 else str(token)[:27] + "..."
    unclosed = _unclosed_before(source.text, token.start_pos, set(error.expected))
    if unclosed is not None:
        # A delimiter left open makes the parser trip over whatever comes next (often the following
        # declaration, lines later); the opener is where the fix goes, so that is the primary span.
        offset, opener = unclosed
        closer = _OPENERS[opener]
        return Diagnostic(
            code="unclosed-delimiter",
            message=f"`{opener}` is never closed",
            span=source.span(offset, offset + 1),
            label=f"this `{opener}` needs a matching `{closer}`",
            labels=(Label(span, f"expected `{closer}` before `{shown}`"),),
        )
    return Diagnostic(
        code="syntax-error",
        message=f"unexpected `{shown}`, expected {_describe_expected(set(error.expected))}",
        span=span,
        label="unexpected here",
        hints=_keyword_hints(str(token), set(error.expected)),
    )


def _keyword_hints(token: str, expected: set[str]) -> tuple[str, ...]:
    """Only where nothing but a name fits does a keyword mean "a reserved word used as a name"; elsewhere
    (e.g. `output` after an unfinished stage body) the keyword is fine and the hint would mislead."""
    if token in KEYWORDS and expected == {"NAME"}:
        return (f"`{token}` is a reserved word; it cannot name an input, stage or field",)
    if token == "harness":
        return ("a file has one `harness NAME` header, at its top",)
    return ()


def _unexpected_character(error: UnexpectedCharacters, source: AnySource) -> Diagnostic:
    offset = error.pos_in_stream or 0  # always set for an unexpected character
    text = source.text
    # An unclosed `"""` lexes as the empty string `""` followed by a lone `"`: report the `"""`.
    for start in (offset, offset - 2):
        if start >= 0 and text.startswith('"""', start):
            return Diagnostic(
                code="unterminated-string",
                message="this multi-line string is never closed",
                span=source.span(start, start + 3),
                label='opened here; close it with """',
            )
    if text[offset] == '"':
        return Diagnostic(
            code="unterminated-string",
            message="this string is never closed on its line",
            span=source.span(offset, offset + 1),
            label="opened here",
            hints=('close it with `"` on the same line, or use """...""" for text over several lines',),
        )
    char = text[offset]
    hint = _CHARACTER_HINTS.get(char)
    return Diagnostic(
        code="unexpected-character",
        message=f"unexpected character {char!r}",
        span=source.span(offset, offset + 1),
        label="not part of the language",
        hints=(hint,) if hint else (),
    )


def _end_of_file(source: AnySource, expected: set[str]) -> Diagnostic:
    unclosed = _first_unclosed_delimiter(source.text)
    end = source.end_span()
    where = getattr(source, "where", "file")  # "placeholder" for an expression inside a template
    if unclosed is not None:
        offset, opener = unclosed
        return Diagnostic(
            code="unclosed-delimiter",
            message=f"`{opener}` is never closed",
            span=source.span(offset, offset + 1),
            label=f"this `{opener}` needs a matching `{_OPENERS[opener]}`",
            labels=(Label(end, f"the {where} ends here"),),
        )
    wanted = f", expected {_describe_expected(expected)}" if expected else ""
    return Diagnostic(
        code="unexpected-eof",
        message=f"unexpected end of {where}{wanted}",
        span=end,
        label=f"the {'declaration' if where == 'file' else 'expression'} here is incomplete",
    )


def _unclosed_before(text: str, position: int, expected: set[str]) -> tuple[int, str] | None:
    """The innermost delimiter open at `position` when the file never closes it and the parser would
    accept its closer here; None otherwise (then the token itself is the likelier mistake)."""
    open_here = _open_delimiters(text[:position])
    if not open_here:
        return None
    offset, opener = open_here[-1]
    never_closed = set(_open_delimiters(text))
    if (offset, opener) in never_closed and _CLOSER_TOKENS[_OPENERS[opener]] in expected:
        return offset, opener
    return None


def _first_unclosed_delimiter(text: str) -> tuple[int, str] | None:
    """The innermost opener still open at the end, skipping strings and comments."""
    stack = _open_delimiters(text)
    return stack[-1] if stack else None


def _open_delimiters(text: str) -> list[tuple[int, str]]:
    """The openers (offset, char) still open at the end of `text`, outermost first; strings and comments
    are skipped, and a closer that does not match the innermost opener is ignored."""
    stack: list[tuple[int, str]] = []
    index = 0
    while index < len(text):
        char = text[index]
        if text.startswith('"""', index):
            close = text.find('"""', index + 3)
            index = len(text) if close < 0 else close + 3
            continue
        if char == '"':
            index = _skip_short_string(text, index)
            continue
        if char == "#":
            newline = text.find("\n", index)
            index = len(text) if newline < 0 else newline
            continue
        if char in _OPENERS:
            stack.append((index, char))
        elif char in _OPENERS.values() and stack and _OPENERS[stack[-1][1]] == char:
            stack.pop()
        index += 1
    return stack


def _skip_short_string(text: str, index: int) -> int:
    index += 1
    while index < len(text) and text[index] not in '"\n':
        index += 2 if text[index] == "\\" else 1
    return index + 1


def number_out_of_range(text: str, decimal: bool, span: Span) -> Diagnostic:
    """A numeric literal (or `--set` value) that no value of its type can hold; never quoted in full."""
    shown = text if len(text) <= 24 else f"{text[:10]}...{text[-6:]} ({len(text):,} characters)"
    allowed = "a finite decimal number" if decimal else f"an integer from {MIN_INT:,} to {MAX_INT:,}"
    return Diagnostic(
        code="number-out-of-range",
        message=f"the number {shown} is out of range: a value must be {allowed}",
        span=span,
        label="out of range",
    )
