"""Exact values of answers written as rational arithmetic, for `math_equal`.

A grader that compares numbers with a tolerance says `1/2006!` equals `1/2004!` (both are nearly zero) and
`10^30` equals `10^30 + 1` (their relative difference is tiny). An answer that is plain rational
arithmetic has an exact value, so two such answers are compared exactly, before any tolerance applies.

`exact_value(text)` reads the answer as exact arithmetic, or gives None when it is anything else (a
variable, a root, a set, words, an ambiguous notation), which leaves it to the tolerant comparison. It
reads, in plain text and LaTeX:

- integers and decimals written in full (`42`, `-0.5`, `.25`, `1.10`), no exponent notation (`1e5` is
  `1 * e * 5` to some readers);
- `+`, `-`, `*`, `/`, `\\cdot`, `\\times`, `\\div` (and `×`, `·`, `÷`, `−`), with the usual precedence;
- `\\frac{a}{b}` (`\\dfrac`, `\\tfrac`; a one-digit argument may go without braces: `\\frac12`);
- powers with a whole exponent: `x^{n}`, `x^(n)`, `x^n` with a one-digit `n` (`2^10` is ambiguous, since
  LaTeX reads it as `2^1` followed by `0`, so it is not read);
- factorials `n!` of whole numbers;
- parentheses and braces for grouping; math delimiters around the whole answer (`$...$`, `\\(...\\)`,
  `\\[...\\]`), `\\left` / `\\right`, spacing commands (`\\,`, `\\!`, `\\;`, `\\quad`), `\\displaystyle`.

Every step is bounded: the text is at most `MAX_LENGTH` characters, factorials at most `MAX_FACTORIAL`,
and a value may not grow past `MAX_BITS` bits (a bigger one is "not exact" rather than slow).
"""

from __future__ import annotations

import math
import re
from fractions import Fraction

MAX_LENGTH = 10_000
MAX_FACTORIAL = 5_000
MAX_BITS = 1_000_000
_MAX_DEPTH = 64

_TOKEN = re.compile(r"\s*(?:(?P<number>\d+(?:\.\d*)?|\.\d+)|(?P<command>\\[A-Za-z]+)|(?P<char>\S))")
_DELIMITERS = (("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]"))
_IGNORED = re.compile(r"\\(?:left|right|displaystyle|[,!;:]|quad|qquad)(?![A-Za-z])|~|\\ ")
_FRACTIONS = frozenset({"\\frac", "\\dfrac", "\\tfrac"})
_TIMES = frozenset({"*", "\\cdot", "\\times", "×", "·"})
_DIVIDE = frozenset({"/", "\\div", "÷"})
_OPEN = {"(": ")", "{": "}"}


class _NotExact(Exception):
    """The text is not exact rational arithmetic (or would be too costly to evaluate)."""


def exact_value(text: str) -> Fraction | None:
    """The exact value of `text` as rational arithmetic (see the module docstring), or None."""
    if len(text) > MAX_LENGTH:
        return None
    text = _unwrap(text.strip())
    try:
        tokens = _tokens(_IGNORED.sub(" ", text))
        if not tokens:
            return None
        parser = _Parser(tokens)
        value = parser.expression(0)
        if parser.position != len(tokens):
            return None
        return value
    except (_NotExact, ZeroDivisionError, ValueError):  # ValueError: a number beyond int's digit limit
        return None


def _unwrap(text: str) -> str:
    for opening, closing in _DELIMITERS:
        if text.startswith(opening) and text.endswith(closing) and len(text) >= len(opening) + len(closing):
            return text[len(opening) : len(text) - len(closing)].strip()
    return text


def _tokens(text: str) -> list[str]:
    tokens, position = [], 0
    text = text.replace("−", "-")
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:  # only whitespace is left
            break
        tokens.append(match.group(match.lastgroup or "char"))
        position = match.end()
    return tokens


def _checked(value: Fraction) -> Fraction:
    if value.numerator.bit_length() + value.denominator.bit_length() > MAX_BITS:
        raise _NotExact
    return value


class _Parser:
    """Recursive descent over the tokens; every method returns an exact value or raises _NotExact."""

    def __init__(self, tokens: list[str]) -> None:
        self.tokens, self.position = tokens, 0

    def peek(self) -> str | None:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def take(self) -> str:
        token = self.peek()
        if token is None:
            raise _NotExact
        self.position += 1
        return token

    def expect(self, token: str) -> None:
        if self.take() != token:
            raise _NotExact

    def expression(self, depth: int) -> Fraction:
        if depth > _MAX_DEPTH:
            raise _NotExact
        value = self.term(depth)
        while self.peek() in ("+", "-"):
            sign = self.take()
            right = self.term(depth)
            value = _checked(value + right if sign == "+" else value - right)
        return value

    def term(self, depth: int) -> Fraction:
        value = self.unary(depth)
        while self.peek() in _TIMES or self.peek() in _DIVIDE:
            operator = self.take()
            right = self.unary(depth)
            value = _checked(value * right if operator in _TIMES else value / right)
        return value

    def unary(self, depth: int) -> Fraction:
        if depth > _MAX_DEPTH:
            raise _NotExact
        if self.peek() in ("+", "-"):
            sign = self.take()
            value = self.unary(depth + 1)
            return -value if sign == "-" else value
        return self.power(depth)

    def power(self, depth: int) -> Fraction:
        base = self.postfix(depth)
        if self.peek() != "^":
            return base
        self.take()
        exponent = self.exponent(depth)
        if self.peek() == "^":  # `a^b^c`: read either way by different readers
            raise _NotExact
        if exponent.denominator != 1 or (base == 0 and exponent < 0):
            raise _NotExact
        bits = base.numerator.bit_length() + base.denominator.bit_length()
        if abs(exponent) * bits > MAX_BITS:
            raise _NotExact
        return _checked(base ** int(exponent))

    def exponent(self, depth: int) -> Fraction:
        if depth > _MAX_DEPTH:
            raise _NotExact
        token = self.peek()
        if token in _OPEN:
            return self.group(depth)
        if token in ("+", "-"):
            self.take()
            value = self.exponent(depth + 1)
            return -value if token == "-" else value
        if token is not None and token.isdigit() and len(token) == 1:
            self.take()
            return Fraction(token)
        raise _NotExact  # `2^10`, `2^x`, ...

    def postfix(self, depth: int) -> Fraction:
        value = self.atom(depth)
        while self.peek() == "!":
            self.take()
            if value.denominator != 1 or not 0 <= value <= MAX_FACTORIAL:
                raise _NotExact
            value = _checked(Fraction(math.factorial(int(value))))
        return value

    def atom(self, depth: int) -> Fraction:
        token = self.peek()
        if token is None:
            raise _NotExact
        if token in _OPEN:
            return self.group(depth)
        if token in _FRACTIONS:
            self.take()
            numerator = self.argument(depth)
            denominator = self.argument(depth)
            return _checked(numerator / denominator)
        if token[0].isdigit() or token[0] == ".":
            self.take()
            return Fraction(token)
        raise _NotExact

    def group(self, depth: int) -> Fraction:
        closing = _OPEN[self.take()]
        value = self.expression(depth + 1)
        self.expect(closing)
        return value

    def argument(self, depth: int) -> Fraction:
        """A `\\frac` argument: a braced group, or one digit (`\\frac12` is `\\frac{1}{2}`)."""
        token = self.peek()
        if token == "{":
            return self.group(depth)
        if token is not None and token[0].isdigit():
            if len(token) == 1:
                self.position += 1
            else:  # the rest of the digits are the next token
                self.tokens[self.position] = token[1:]
            if token[1:2] == ".":  # `\frac1.5{2}`: not a reading anyone intends
                raise _NotExact
            return Fraction(token[0])
        raise _NotExact
