"""A tolerant outline of a `.harness` text: its declarations, every name in it and what may follow each token.

The editor features need to understand text that is being typed: an unterminated string, a body without
its `}`, a call without its `)`. The compiler stops at the first syntax error; this module never stops.
It lexes the text with the language's token rules (harnessc/grammar.lark), reads the declarations with a
forgiving recursive descent that resynchronises at the next declaration keyword, and records

- `declarations`: every declaration with the span of its name and of the whole (loops and banks have
  children: the inner stages, the entry fields), and each body's `key value` settings;
- `occurrences`: every name, with its role there (`decl`, `ref`, `call`, `field`, `key`, `type`,
  `binding`, ...), inside template placeholders too (`{question}`, `{for x in xs}`, `{join(a, \\", \\")}`);
- `slots`: for each token, what the grammar allows right after it (a declaration keyword, an expression,
  a body key, a type, ...), which is what completion offers;
- `strings`: each string literal with its placeholders, for completion inside templates.

It knows only the syntax: which declaration a name refers to is decided by harnessc/lsp/analysis.py.
Offsets are character offsets into the text, like the compiler's spans. Nothing here imports pygls.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from harnessc.names import KEYWORDS

# ---- tokens ------------------------------------------------------------------------------------------------

NAME, NUMBER, STRING, COMMENT, PUNCT, OTHER = "name", "number", "string", "comment", "punct", "other"

# One token at a time, by the grammar's rules (harnessc/grammar.lark); strings are finished by `lex`.
_TOKEN_PARTS = (
    r"(?P<space>[ \t\f\r\n]+)",
    r"(?P<comment>\#[^\n]*)",
    r"(?P<quote>{quote})",
    r"(?P<name>[A-Za-z_][A-Za-z0-9_]*)",
    r"(?P<number>-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)",
    r"(?P<punct>==|!=|<=|>=|[{{}}()\[\],:=.<>])",
    r"(?P<other>.)",
)
_TOKEN = re.compile("|".join(_TOKEN_PARTS).format(quote='"'), re.S)
_ESCAPED_TOKEN = re.compile("|".join(_TOKEN_PARTS).format(quote=r'\\"|"'), re.S)
_KINDS = {"comment": COMMENT, "name": NAME, "number": NUMBER, "punct": PUNCT, "other": OTHER}

# Words that continue an expression rather than end it.
OPERATOR_WORDS = frozenset({"and", "or", "not", "for", "in"})
# Words that start a top-level declaration wherever they stand (the views need a look at the next token).
DECLARATION_WORDS = ("harness", "import", "input", "param", "snippet", "bank", "llm", "let", "loop")
VIEW_WORDS = ("student", "teacher", "output", "student_output", "grade")
TEMPLATE_WORDS = ("if", "for", "in", "else", "end")


@dataclass(frozen=True, slots=True)
class Token:
    """One token; a string knows where its content starts and ends and whether it was closed."""

    kind: str
    text: str
    start: int
    end: int
    long: bool = False  # a triple-quoted string
    closed: bool = True  # a string with its closing quote
    content_start: int = 0
    content_end: int = 0
    escaped_quotes: bool = False  # a string inside a placeholder of a one-line string: `\"...\"`


def lex(text: str, start: int = 0, end: int | None = None, *, escaped_quotes: bool = False) -> list[Token]:
    """The tokens of `text[start:end]`, comments included. Never fails: an unknown character is an OTHER
    token, an unterminated string runs to the end of its line (a triple-quoted one to the end).

    With `escaped_quotes`, the text is the inside of a placeholder in a one-line string, where a nested
    string literal is written `\\"...\\"`."""
    end = len(text) if end is None else end
    pattern = _ESCAPED_TOKEN if escaped_quotes else _TOKEN
    tokens: list[Token] = []
    append = tokens.append
    index = start
    while index < end:
        match = pattern.match(text, index, end)
        assert match is not None  # `other` matches any character
        kind, stop = match.lastgroup, match.end()
        if kind == "space":
            pass
        elif kind == "quote":
            if match.group() == '\\"':
                close = text.find('\\"', index + 2, end)
                closed = close >= 0
                stop = close + 2 if closed else end
                content_end = close if closed else end
                append(Token(STRING, text[index:stop], index, stop, False, closed, index + 2, content_end, True))
            elif text.startswith('"""', index):
                close = text.find('"""', index + 3, end)
                closed = close >= 0
                stop = close + 3 if closed else end
                content_end = close if closed else end
                append(Token(STRING, text[index:stop], index, stop, True, closed, index + 3, content_end))
            else:
                stop, closed = _string_end(text, index + 1, end)
                content_end = stop - 1 if closed else stop
                append(Token(STRING, text[index:stop], index, stop, False, closed, index + 1, content_end))
        else:
            append(Token(_KINDS[kind], match.group(), index, stop))  # type: ignore[index]
        index = stop
    return tokens


def _string_end(text: str, index: int, end: int) -> tuple[int, bool]:
    """After the opening `"` of a one-line string: the offset after its closing quote and True, or the end
    of the line (the string is unterminated) and False."""
    while index < end:
        char = text[index]
        if char == "\\" and index + 1 < end and text[index + 1] != "\n":
            index += 2
        elif char == '"':
            return index + 1, True
        elif char == "\n":
            return index, False
        else:
            index += 1
    return end, False


# ---- the outline's records ---------------------------------------------------------------------------------


@dataclass(slots=True)
class Setting:
    """`key value` in a body: a message, an option, or a bank's `search`/`label`/`file`."""

    key: str
    key_start: int
    key_end: int
    value_start: int
    value_end: int


@dataclass(slots=True, eq=False)
class Declaration:
    """A declaration: `kind` is its keyword (`input`, `llm`, `student`, ...) or `bank-field`. Views are named
    after their keyword; `name_start == name_end` when the name is missing (being typed)."""

    kind: str
    name: str
    start: int
    end: int
    name_start: int
    name_end: int
    parent: Declaration | None = None
    children: list[Declaration] = field(default_factory=list)
    settings: list[Setting] = field(default_factory=list)  # the body's (for llm: the first body's)
    else_settings: list[Setting] = field(default_factory=list)
    value: tuple[int, int] | None = None  # where the value is written: `= expr`, a snippet's string, ...
    type_range: tuple[int, int] | None = None  # where an input's, param's or bank field's type is written
    flags: list[str] = field(default_factory=list)  # an input's flags as written


@dataclass(frozen=True, slots=True)
class Occurrence:
    """A name in the text and its role there.

    roles: `decl` (the name a declaration introduces), `ref` (a use of a declared name), `call` (a
    function called), `keyword-arg` (`k=` in a call; `detail` names the function), `field` (`.name`),
    `key` (a body key; `detail` is the body's kind), `bank-field-ref` (`search text`; `detail` is the
    bank), `type`, `flag`, `binding` (a comprehension or `{for}` variable; `scope` is where it is
    visible; `detail` names the list it iterates over when that is a plain name), `keyword`, `switch`
    (`on`/`off`), `import` (the path of an `import`, in `detail`).
    """

    name: str
    role: str
    start: int
    end: int
    detail: str = ""
    scope: tuple[int, int] | None = None
    declaration: Declaration | None = None


@dataclass(frozen=True, slots=True)
class Slot:
    """What may follow a token. kinds: `declaration`, `expression`, `after-expression` (an operator, or at
    the top level the next declaration), `key` (a body key of `owner`), `value` (the value of `key`),
    `type`, `flag`, `chain` (a teacher chain's next stage), `keywords` (exactly `words`), `none`."""

    kind: str
    owner: Declaration | None = None
    key: str = ""
    words: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Placeholder:
    """A `{...}` inside a string: from its `{` to its `}` (or to where it stops, unclosed)."""

    start: int
    end: int
    inner_start: int
    inner_end: int
    closed: bool


@dataclass(slots=True)
class StringInfo:
    token: Token
    placeholders: list[Placeholder]


@dataclass
class Outline:
    text: str
    tokens: list[Token]  # code tokens, comments left out
    comments: list[Token]
    declarations: list[Declaration]
    occurrences: list[Occurrence]
    slots: dict[int, Slot]  # token index → what may follow it
    strings: list[StringInfo]

    # -- queries ----------------------------------------------------------------------------------------

    def occurrence_at(self, offset: int) -> Occurrence | None:
        """The name at `offset` (also when the cursor is right after its last character)."""
        best = None
        for item in self.occurrences:
            if item.start <= offset <= item.end:
                if best is None or item.start > best.start or (offset < item.end and best.end == offset):
                    best = item
        return best

    def all_declarations(self) -> list[Declaration]:
        """Every declaration, children (inner stages, bank fields) after their parent."""
        found: list[Declaration] = []
        for item in self.declarations:
            found.append(item)
            found.extend(item.children)
        return found

    def named(self, name: str) -> Declaration | None:
        """The declaration of a name in scope (not a bank field): the first one written."""
        for item in self.all_declarations():
            if item.name == name and item.kind != "bank-field" and item.name_start < item.name_end:
                return item
        return None

    def bindings_at(self, offset: int) -> list[Occurrence]:
        """The comprehension and `{for}` variables visible at `offset`, innermost last."""
        found = [
            item
            for item in self.occurrences
            if item.role == "binding" and item.scope is not None and item.scope[0] <= offset <= item.scope[1]
        ]
        return sorted(found, key=lambda item: item.scope[0] if item.scope else 0)

    def string_at(self, offset: int) -> StringInfo | None:
        """The string literal whose content holds `offset` (an unterminated one to its end)."""
        for info in self.strings:
            token = info.token
            if token.content_start <= offset and (offset < token.end if token.closed else offset <= token.end):
                return info
        return None

    def comment_at(self, offset: int) -> bool:
        return any(item.start <= offset <= item.end for item in self.comments)

    def token_before(self, offset: int) -> int | None:
        """The index of the last code token ending at or before `offset`."""
        low, high = 0, len(self.tokens)
        while low < high:
            middle = (low + high) // 2
            if self.tokens[middle].end <= offset:
                low = middle + 1
            else:
                high = middle
        return low - 1 if low else None

    def declaration_at(self, offset: int) -> Declaration | None:
        """The innermost declaration whose text holds `offset`."""
        for item in self.declarations:
            if item.start <= offset <= item.end:
                for child in item.children:
                    if child.start <= offset <= child.end:
                        return child
                return item
        return None


# ---- the reader ----------------------------------------------------------------------------------------


def outline(text: str) -> Outline:
    """Read `text` into an Outline (see the module docstring); never raises."""
    every = lex(text)
    reader = _Reader(text, [item for item in every if item.kind != COMMENT])
    reader.module()
    occurrences = sorted(reader.occurrences, key=lambda item: (item.start, item.end))
    comments = [item for item in every if item.kind == COMMENT]
    return Outline(text, reader.tokens, comments, reader.declarations, occurrences, reader.slots, reader.strings)


def _is_atom_end(token: Token) -> bool:
    if token.kind in (STRING, NUMBER):
        return True
    if token.kind == NAME:
        return token.text not in OPERATOR_WORDS
    return token.kind == PUNCT and token.text in (")", "]")


class _Reader:
    """The forgiving recursive descent (see the module docstring); `pos` indexes `tokens`."""

    def __init__(self, text: str, tokens: list[Token]) -> None:
        self.text = text
        self.tokens = tokens
        self.pos = 0
        self.declarations: list[Declaration] = []
        self.occurrences: list[Occurrence] = []
        self.slots: dict[int, Slot] = {}
        self.strings: list[StringInfo] = []
        self.line_first = [self._first_on_line(item) for item in tokens]

    # -- helpers ------------------------------------------------------------------------------------------

    def _first_on_line(self, token: Token) -> bool:
        line_start = self.text.rfind("\n", 0, token.start) + 1
        return not self.text[line_start : token.start].strip()

    def peek(self, ahead: int = 0) -> Token | None:
        index = self.pos + ahead
        return self.tokens[index] if index < len(self.tokens) else None

    def is_(self, text: str, ahead: int = 0) -> bool:
        token = self.peek(ahead)
        return token is not None and token.kind in (PUNCT, NAME) and token.text == text

    def take(self, slot: Slot) -> Token:
        token = self.tokens[self.pos]
        self.slots[self.pos] = slot
        self.pos += 1
        return token

    def accept(self, text: str, slot: Slot) -> Token | None:
        return self.take(slot) if self.is_(text) else None

    def keyword(self, slot: Slot) -> Token:
        token = self.take(slot)
        self.occurrences.append(Occurrence(token.text, "keyword", token.start, token.end))
        return token

    def last_end(self, default: int) -> int:
        return self.tokens[self.pos - 1].end if self.pos else default

    def starts_declaration(self, index: int) -> bool:
        """Whether the token at `index` begins a top-level declaration."""
        token = self.tokens[index] if index < len(self.tokens) else None
        if token is None or token.kind != NAME:
            return False
        if token.text in DECLARATION_WORDS:
            return True
        following = self.tokens[index + 1] if index + 1 < len(self.tokens) else None
        after = following.text if following is not None and following.kind == PUNCT else ""
        if token.text == "student":
            return after == "{"
        if token.text == "teacher":
            return after in ("{", "=")
        if token.text in ("output", "student_output", "grade"):
            return after == "="
        return False

    def strong_stop(self, index: int) -> bool:
        """A declaration keyword first on its line: where a region left open (a missing `)` or `}`) ends."""
        return self.line_first[index] and self.starts_declaration(index)

    # -- the module ---------------------------------------------------------------------------------------

    def module(self) -> None:
        while self.pos < len(self.tokens):
            if self.starts_declaration(self.pos):
                self.declaration(None)
            else:  # stray tokens: read them as an expression up to the next declaration
                before = self.pos
                self.expression(self.top_stop, Slot("after-expression"))
                if self.pos == before:
                    self.take(Slot("declaration"))

    def top_stop(self, index: int, depth: int) -> bool:
        return (depth == 0 and self.starts_declaration(index)) or self.strong_stop(index)

    def declaration(self, parent: Declaration | None) -> None:
        word = self.tokens[self.pos].text
        handler = {
            "harness": self.header,
            "import": self.import_,
            "input": self.input_,
            "param": self.param,
            "snippet": self.snippet,
            "bank": self.bank,
            "llm": self.llm,
            "let": self.let,
            "loop": self.loop,
            "student": self.view_body,
            "teacher": self.teacher,
        }.get(word, self.view_value)
        start = self.tokens[self.pos].start
        item = handler(parent)
        item.start, item.end = start, max(self.last_end(start), start)
        if parent is None:
            self.declarations.append(item)
        else:
            item.parent = parent
            parent.children.append(item)

    def new_name(self, kind: str, keyword: Token, after: Slot) -> Declaration:
        """The name after a declaration keyword (missing: an empty name where it would be)."""
        token = self.peek()
        if token is not None and token.kind == NAME and not self.starts_declaration(self.pos):
            self.take(after)
            item = Declaration(kind, token.text, keyword.start, token.end, token.start, token.end)
            self.occurrences.append(Occurrence(token.text, "decl", token.start, token.end, declaration=item))
            return item
        return Declaration(kind, "", keyword.start, keyword.end, keyword.end, keyword.end)

    # -- declarations -------------------------------------------------------------------------------------

    def header(self, parent: Declaration | None) -> Declaration:
        keyword = self.keyword(Slot("none"))
        item = self.new_name("harness", keyword, Slot("declaration"))
        token = self.peek()
        if token is not None and token.kind == STRING:
            self.take(Slot("declaration"))
            self.string(token)
        return item

    def import_(self, parent: Declaration | None) -> Declaration:
        keyword = self.keyword(Slot("none"))
        item = Declaration("import", "", keyword.start, keyword.end, keyword.end, keyword.end)
        token = self.peek()
        if token is not None and token.kind == STRING:
            self.take(Slot("declaration"))
            path = self.text[token.content_start : token.content_end]
            item.name, item.name_start, item.name_end = path, token.start, token.end
            self.occurrences.append(Occurrence(path, "import", token.start, token.end, path, declaration=item))
            self.strings.append(StringInfo(token, []))
        return item

    def input_(self, parent: Declaration | None) -> Declaration:
        keyword = self.keyword(Slot("name"))
        item = self.new_name("input", keyword, Slot("keywords", words=(":",)))
        if self.accept(":", Slot("type")):
            item.type_range = self.type_(Slot("flag"))
        while (token := self.peek()) is not None and token.kind == NAME and not self.top_stop(self.pos, 0):
            self.take(Slot("flag"))
            item.flags.append(token.text)
            self.occurrences.append(Occurrence(token.text, "flag", token.start, token.end))
        return item

    def param(self, parent: Declaration | None) -> Declaration:
        keyword = self.keyword(Slot("name"))
        item = self.new_name("param", keyword, Slot("keywords", words=(":",)))
        if self.accept(":", Slot("type")):
            item.type_range = self.type_(Slot("keywords", words=("=",)))
        if self.accept("=", Slot("expression")):
            item.value = self.expression(self.top_stop, Slot("after-expression"))
        return item

    def snippet(self, parent: Declaration | None) -> Declaration:
        keyword = self.keyword(Slot("name"))
        item = self.new_name("snippet", keyword, Slot("keywords", words=("=",)))
        if self.accept("=", Slot("none")):
            item.value = self.expression(self.top_stop, Slot("declaration"))
        return item

    def let(self, parent: Declaration | None) -> Declaration:
        keyword = self.keyword(Slot("name"))
        item = self.new_name("let", keyword, Slot("keywords", words=("=",)))
        if self.accept("=", Slot("expression")):
            after = Slot("after-expression") if parent is None else self.after_for(parent)
            item.value = self.expression(self.stop_for(parent), after)
        return item

    def view_value(self, parent: Declaration | None) -> Declaration:
        """`output = ...`, `student_output = ...`, `grade = ...`."""
        keyword = self.keyword(Slot("keywords", words=("=",)))
        item = Declaration(keyword.text, keyword.text, keyword.start, keyword.end, keyword.start, keyword.end)
        if self.accept("=", Slot("expression")):
            item.value = self.expression(self.top_stop, Slot("after-expression"))
        return item

    def view_body(self, parent: Declaration | None) -> Declaration:
        """`student { ... }` (and `teacher { ... }`)."""
        keyword = self.keyword(Slot("none"))
        item = Declaration(keyword.text, keyword.text, keyword.start, keyword.end, keyword.start, keyword.end)
        item.settings = self.body(item, Slot("declaration"))
        return item

    def teacher(self, parent: Declaration | None) -> Declaration:
        if self.is_("{", 1):
            return self.view_body(parent)
        keyword = self.keyword(Slot("keywords", words=("=",)))
        item = Declaration("teacher", "teacher", keyword.start, keyword.end, keyword.start, keyword.end)
        if self.accept("=", Slot("chain")):
            start = self.pos
            while (token := self.peek()) is not None and token.kind == NAME and not self.top_stop(self.pos, 0):
                expected_name = (self.pos - start) % 2 == 0
                if expected_name and token.text != "else":
                    self.take(Slot("keywords", words=("else",)))
                    self.occurrences.append(Occurrence(token.text, "ref", token.start, token.end))
                elif token.text == "else":
                    self.keyword(Slot("chain"))
                else:
                    break
            item.value = (self.tokens[start].start, self.last_end(keyword.end)) if self.pos > start else None
        return item

    def llm(self, parent: Declaration | None) -> Declaration:
        keyword = self.keyword(Slot("name"))
        item = self.new_name("llm", keyword, Slot("keywords", words=("when",)))
        if self.is_("when"):
            self.keyword(Slot("expression"))
            self.expression(self.stop_for(parent), Slot("keywords", words=("{",)))
        after_body = self.after_for(parent)
        item.settings = self.body(item, Slot(after_body.kind, after_body.owner, words=(*after_body.words, "else")))
        if self.is_("else") and self.is_("{", 1):
            self.keyword(Slot("none"))
            item.else_settings = self.body(item, self.after_for(parent))
        return item

    def loop(self, parent: Declaration | None) -> Declaration:
        keyword = self.keyword(Slot("name"))
        item = self.new_name("loop", keyword, Slot("keywords", words=("from",)))
        if self.is_("from"):
            self.keyword(Slot("expression"))
            stop = self.top_stop
            item.value = self.expression(
                lambda index, depth: stop(index, depth) or self.is_("max") or self.is_("{"),
                Slot("keywords", words=("max",)),
            )
        if self.is_("max"):
            self.keyword(Slot("expression"))
            self.expression(lambda index, depth: self.top_stop(index, depth) or self.is_("{"), Slot("none"))
        if self.accept("{", Slot("keywords", words=("llm", "let", "until", "next"), owner=item)):
            self.loop_items(item)
        return item

    def loop_items(self, loop: Declaration) -> None:
        after = Slot("keywords", words=("llm", "let", "until", "next"), owner=loop)
        while (token := self.peek()) is not None:
            if self.is_("}"):
                self.take(Slot("declaration"))
                return
            if token.kind == NAME and token.text in ("llm", "let"):
                self.declaration(loop)
            elif token.kind == NAME and token.text in ("until", "next"):
                self.keyword(Slot("expression"))
                self.expression(self.stop_for(loop), after)
            elif self.strong_stop(self.pos):
                return  # the loop's `}` is missing
            else:
                self.take(after)

    def stop_for(self, parent: Declaration | None) -> Callable[[int, int], bool]:
        """Where an expression ends: at the top level, before the next declaration; inside a loop, also
        before the next item (a name after a complete value) and the loop's `}`."""
        if parent is None:
            return self.top_stop
        return self.value_stop(self.pos)

    def after_for(self, parent: Declaration | None) -> Slot:
        if parent is None:
            return Slot("declaration")
        return Slot("keywords", words=("llm", "let", "until", "next"), owner=parent)

    def bank(self, parent: Declaration | None) -> Declaration:
        keyword = self.keyword(Slot("name"))
        item = self.new_name("bank", keyword, Slot("keywords", words=("{",)))
        if not self.accept("{", Slot("key", owner=item)):
            return item
        after_item = Slot("key", owner=item)
        while (token := self.peek()) is not None:
            if self.is_("}"):
                self.take(Slot("declaration"))
                break
            if self.strong_stop(self.pos):
                break
            if token.kind != NAME:
                self.take(after_item)
                continue
            if self.is_(":", 1):  # an entry field: NAME: TYPE = EXPR
                entry = Declaration("bank-field", token.text, token.start, token.end, token.start, token.end)
                self.take(Slot("keywords", words=(":",)))
                self.occurrences.append(Occurrence(token.text, "decl", token.start, token.end, declaration=entry))
                self.take(Slot("type"))
                entry.type_range = self.type_(Slot("keywords", words=("=",)))
                if self.accept("=", Slot("expression")):
                    entry.value = self.expression(self.value_stop(self.pos), after_item)
                entry.end = self.last_end(token.end)
                entry.parent = item
                item.children.append(entry)
                continue
            self.take(Slot("value", owner=item, key=token.text))
            self.occurrences.append(Occurrence(token.text, "key", token.start, token.end, "bank"))
            value_start = self.pos
            span = self.expression(self.value_stop(self.pos), after_item)
            value = self.tokens[value_start] if value_start < self.pos else None
            if token.text in ("search", "label") and value is not None and value.kind == NAME:
                self.replace_role(value, "bank-field-ref", item.name)
            end = span[1] if span else token.end
            item.settings.append(Setting(token.text, token.start, token.end, span[0] if span else end, end))
        return item

    def replace_role(self, token: Token, role: str, detail: str) -> None:
        for index in range(len(self.occurrences) - 1, -1, -1):
            if self.occurrences[index].start == token.start:
                self.occurrences[index] = Occurrence(token.text, role, token.start, token.end, detail)
                return

    def body(self, owner: Declaration, after: Slot) -> list[Setting]:
        """`{ KEY VALUE ... }` of an llm stage or a view."""
        settings: list[Setting] = []
        if not self.accept("{", Slot("key", owner=owner)):
            return settings
        after_item = Slot("key", owner=owner)
        while (token := self.peek()) is not None:
            if self.is_("}"):
                self.take(after)
                break
            if self.strong_stop(self.pos):
                break  # the body's `}` is missing
            if token.kind != NAME:
                self.take(after_item)
                continue
            self.take(Slot("value", owner=owner, key=token.text))
            self.occurrences.append(Occurrence(token.text, "key", token.start, token.end, owner.kind))
            value_start = self.pos
            span = self.expression(self.value_stop(self.pos), after_item)
            value = self.tokens[value_start] if value_start < self.pos else None
            if token.text == "thinking" and value is not None and value.kind == NAME and self.pos == value_start + 1:
                if value.text in ("on", "off", "yes", "no"):
                    self.replace_role(value, "switch", "thinking")
            end = span[1] if span else token.end
            settings.append(Setting(token.text, token.start, token.end, span[0] if span else end, end))
        return settings

    def value_stop(self, start: int) -> Callable[[int, int], bool]:
        """A value ends at a name that follows a complete value (the next key), at a `}`, or at a
        declaration keyword on a line of its own."""

        def stop(index: int, depth: int) -> bool:
            token = self.tokens[index]
            if self.strong_stop(index):
                return True
            if depth == 0 and index > start and token.kind == NAME and token.text not in OPERATOR_WORDS:
                return _is_atom_end(self.tokens[index - 1]) and not self.tokens[index - 1].text == "."
            return False

        return stop

    # -- types ----------------------------------------------------------------------------------------------

    def type_(self, after: Slot) -> tuple[int, int] | None:
        """A type: NAME, NAME[TYPE] or record{NAME: TYPE, ...}; returns where it is written."""
        start = self.pos
        token = self.peek()
        if token is None or token.kind != NAME or self.starts_declaration(self.pos):
            return None
        if token.text == "record" and self.is_("{", 1):
            self.keyword(Slot("none"))
            self.take(Slot("name"))
            while (inner := self.peek()) is not None and not self.is_("}") and not self.strong_stop(self.pos):
                if inner.kind == NAME and self.is_(":", 1):
                    self.take(Slot("keywords", words=(":",)))
                    self.occurrences.append(Occurrence(inner.text, "field-decl", inner.start, inner.end))
                    self.take(Slot("type"))
                    self.type_(Slot("keywords", words=(",", "}")))
                    self.accept(",", Slot("name"))
                else:
                    self.take(Slot("none"))
            self.accept("}", after)
        else:
            self.take(after)
            self.occurrences.append(Occurrence(token.text, "type", token.start, token.end))
            if self.is_("["):
                self.take(Slot("type"))
                self.type_(Slot("keywords", words=("]",)))
                self.accept("]", after)
        return (self.tokens[start].start, self.last_end(self.tokens[start].end))

    # -- expressions ----------------------------------------------------------------------------------------

    def expression(self, stop: Callable[[int, int], bool], after_atom: Slot) -> tuple[int, int] | None:
        """Read tokens up to `stop(index, depth)` (or a `{`, `}`, or the end) as an expression; returns
        where it is written."""
        start, depth = self.pos, 0
        while self.pos < len(self.tokens):
            token = self.tokens[self.pos]
            if (token.kind == PUNCT and token.text in "{}") or stop(self.pos, depth):
                break
            if token.kind == PUNCT and token.text in "([":
                depth += 1
            elif token.kind == PUNCT and token.text in ")]":
                depth = max(0, depth - 1)
            self.pos += 1
        if self.pos == start:
            return None
        self.classify(start, self.pos, after_atom, self.tokens)
        return self.tokens[start].start, self.tokens[self.pos - 1].end

    def classify(self, start: int, end: int, after_atom: Slot, tokens: list[Token], record: bool = True) -> None:
        """Give each name of `tokens[start:end]` (an expression) its role, and each token its slot."""
        closing = _matching_brackets(tokens, start, end)
        stack: list[tuple[Token, str]] = []  # open brackets with the function a `(` calls
        for index in range(start, end):
            token = tokens[index]
            previous = tokens[index - 1] if index > start else None
            following = tokens[index + 1] if index + 1 < end else None
            if token.kind == PUNCT and token.text in "([":
                called = previous.text if token.text == "(" and previous is not None and previous.kind == NAME else ""
                stack.append((token, called))
            elif token.kind == PUNCT and token.text in ")]" and stack:
                stack.pop()
            if record:
                self.slots[index] = (
                    (after_atom if not stack else Slot("keywords", words=("and", "or", "for", "in")))
                    if _is_atom_end(token)
                    else Slot("expression")
                )
            if token.kind == STRING:
                self.string(token)
                continue
            if token.kind != NAME:
                continue
            role, detail, scope = "ref", "", None
            if previous is not None and previous.kind == PUNCT and previous.text == ".":
                role = "field"
            elif previous is not None and previous.kind == NAME and previous.text == "for" and stack:
                role = "binding"
                opener = stack[-1][0]
                close = closing.get(opener.start)
                scope = (opener.start, close if close is not None else tokens[end - 1].end)
                detail = _plain_iterable(tokens[index + 1 : end], close)
            elif token.text in KEYWORDS and token.text not in ("student", "output"):  # the views can be read
                role = "keyword"
            elif following is not None and following.kind == PUNCT and following.text == "(":
                role = "call"
            elif following is not None and following.kind == PUNCT and following.text == "=" and stack and stack[-1][1]:
                role, detail = "keyword-arg", stack[-1][1]
            self.occurrences.append(Occurrence(token.text, role, token.start, token.end, detail, scope))

    # -- strings and templates ------------------------------------------------------------------------------

    def string(self, token: Token) -> None:
        """Record a string literal and read the names in its placeholders."""
        escaped = not token.long and not token.escaped_quotes
        holes = placeholders(self.text, token.content_start, token.content_end, escaped)
        self.strings.append(StringInfo(token, holes))
        open_fors: list[Occurrence | None] = []
        for hole in holes:
            inner = lex(self.text, hole.inner_start, hole.inner_end, escaped_quotes=escaped)
            inner = [item for item in inner if item.kind != COMMENT]
            if not inner:
                continue
            first = inner[0]
            if first.kind == NAME and first.text in ("end", "else") and len(inner) == 1:
                self.occurrences.append(Occurrence(first.text, "keyword", first.start, first.end))
                if first.text == "end" and open_fors:
                    self.close_for(open_fors.pop(), hole.start)
                continue
            if first.kind == NAME and first.text == "if":
                self.occurrences.append(Occurrence("if", "keyword", first.start, first.end))
                open_fors.append(None)
                self.classify(1, len(inner), Slot("none"), inner, record=False)
                continue
            if first.kind == NAME and first.text == "for":
                self.occurrences.append(Occurrence("for", "keyword", first.start, first.end))
                rest = 1
                binding = None
                if len(inner) > 1 and inner[1].kind == NAME:
                    variable = inner[1]
                    binding = Occurrence(variable.text, "binding", variable.start, variable.end)
                    rest = 2
                if len(inner) > rest and inner[rest].text == "in":
                    self.occurrences.append(Occurrence("in", "keyword", inner[rest].start, inner[rest].end))
                    rest += 1
                if binding is not None and len(inner) == rest + 1 and inner[rest].kind == NAME:
                    binding = Occurrence(binding.name, "binding", binding.start, binding.end, inner[rest].text)
                self.classify(rest, len(inner), Slot("none"), inner, record=False)
                open_fors.append(binding)
                if binding is not None:
                    self.occurrences.append(binding)  # replaced with its scope when `{end}` is found
                continue
            self.classify(0, len(inner), Slot("none"), inner, record=False)
        for binding in reversed(open_fors):  # blocks left open: visible to the end of the string
            self.close_for(binding, token.content_end)

    def close_for(self, binding: Occurrence | None, end: int) -> None:
        if binding is None:
            return
        index = self.occurrences.index(binding)
        self.occurrences[index] = Occurrence(
            binding.name, "binding", binding.start, binding.end, binding.detail, (binding.start, end)
        )


def _plain_iterable(rest: list[Token], close: int | None) -> str:
    """The list a comprehension iterates over when it is a plain name: `[... for x in NAME]`."""
    if len(rest) >= 3 and rest[0].text == "in" and rest[1].kind == NAME and rest[2].end == close:
        return rest[1].text
    return ""


def _matching_brackets(tokens: list[Token], start: int, end: int) -> dict[int, int]:
    """The offset of the closing bracket of each `(`/`[` opened in `tokens[start:end]`, by its start."""
    stack: list[Token] = []
    closing: dict[int, int] = {}
    for token in tokens[start:end]:
        if token.kind == PUNCT and token.text in "([":
            stack.append(token)
        elif token.kind == PUNCT and token.text in ")]" and stack:
            closing[stack.pop().start] = token.end
    return closing


def placeholders(text: str, start: int, end: int, escaped_quotes: bool = False) -> list[Placeholder]:
    """The `{...}` placeholders and block tags of the string content `text[start:end]`, as the compiler
    reads them (harnessc/template.py): `{{`, `}}` and `{}` are literal; a `{` whose `}` never comes (a
    `{` or the end comes first) is an unclosed placeholder running up to there."""
    found: list[Placeholder] = []
    index = start
    while index < end:
        pair = text[index : index + 2]
        if pair in ("{{", "}}", "{}"):
            index += 2
            continue
        if text[index] != "{":
            index += 1
            continue
        close = _find_close(text, index + 1, end, escaped_quotes)
        if close is None:
            stop = text.find("{", index + 1, end)
            stop = end if stop < 0 else stop
            found.append(Placeholder(index, stop, index + 1, stop, False))
            index = stop
            continue
        found.append(Placeholder(index, close + 1, index + 1, close, True))
        index = close + 1
    return found


def _find_close(text: str, index: int, end: int, escaped_quotes: bool) -> int | None:
    """The `}` closing a placeholder opened just before `index`, skipping nested string literals."""
    while index < end:
        char = text[index]
        if escaped_quotes and text.startswith('\\"', index):
            stop = text.find('\\"', index + 2, end)
            if stop < 0:
                return None
            index = stop + 2
            continue
        if not escaped_quotes and char == '"':
            stop = text.find('"', index + 1, end)
            if stop < 0:
                return None
            index = stop + 1
            continue
        if char == "\\" and escaped_quotes:
            index += 2
            continue
        if char == "}":
            return index
        if char == "{":
            return None
        index += 1
    return None
