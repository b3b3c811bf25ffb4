"""The forgiving recursive descent that reads a `.harness` text into an Outline (harnessc/lsp/outline.py
says what it records); it never raises, whatever the text."""

from __future__ import annotations

from collections.abc import Callable

from harnessc.lsp.outline import Declaration, Occurrence, Outline, Setting, Slot, StringInfo
from harnessc.lsp.tokens import (
    COMMENT,
    DECLARATION_WORDS,
    NAME,
    NUMBER,
    OPERATOR_WORDS,
    PUNCT,
    STRING,
    Token,
    lex,
    placeholders,
)
from harnessc.names import KEYWORDS


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
        item = self.new_name("llm", keyword, Slot("keywords", words=("for", "when")))
        binding = self.fan_out(parent) if self.is_("for") else None
        if self.is_("when"):
            self.keyword(Slot("expression"))
            self.expression(self.stop_for(parent), Slot("keywords", words=("{",)))
        after_body = self.after_for(parent)
        item.settings = self.body(item, Slot(after_body.kind, after_body.owner, words=(*after_body.words, "else")))
        if self.is_("else") and self.is_("{", 1):
            self.keyword(Slot("none"))
            item.else_settings = self.body(item, self.after_for(parent))
        if binding is not None:  # the item variable is visible in the stage's prompt
            index = self.occurrences.index(binding)
            scope = (binding.start, self.last_end(binding.end))
            self.occurrences[index] = Occurrence(
                binding.name, "binding", binding.start, binding.end, binding.detail, scope
            )
        return item

    def fan_out(self, parent: Declaration | None) -> Occurrence | None:
        """`for ITEM in LIST [max N]` after a stage's name: the item variable, as a binding."""
        self.keyword(Slot("name"))
        binding = None
        token = self.peek()
        if token is not None and token.kind == NAME and not self.is_("in"):
            self.take(Slot("keywords", words=("in",)))
            binding = Occurrence(token.text, "binding", token.start, token.end)
        stop = self.stop_for(parent)
        if self.is_("in"):
            self.keyword(Slot("expression"))
            start = self.pos
            self.expression(
                lambda index, depth: stop(index, depth) or self.is_("max") or self.is_("when") or self.is_("{"),
                Slot("keywords", words=("max", "when", "{")),
            )
            listed = self.tokens[start : self.pos]
            if binding is not None and len(listed) == 1 and listed[0].kind == NAME:
                binding = Occurrence(binding.name, "binding", binding.start, binding.end, listed[0].text)
        if self.is_("max"):
            self.keyword(Slot("expression"))
            self.expression(
                lambda index, depth: stop(index, depth) or self.is_("when") or self.is_("{"),
                Slot("keywords", words=("when", "{")),
            )
        if binding is not None:
            self.occurrences.append(binding)  # replaced with its scope once the stage is read
        return binding

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
