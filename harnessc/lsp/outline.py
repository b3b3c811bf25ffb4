"""A tolerant outline of a `.harness` text: its declarations, every name in it and what may follow each token.

The editor features need to understand text that is being typed: an unterminated string, a body without
its `}`, a call without its `)`. The compiler stops at the first syntax error; this module never stops.
harnessc/lsp/tokens.py lexes the text with the language's token rules (harnessc/grammar.lark), and
harnessc/lsp/reader.py (`outline(text)`) reads the declarations with a forgiving recursive descent that
resynchronises at the next declaration keyword; this module holds what it records:

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

from dataclasses import dataclass, field

from harnessc.lsp.tokens import Placeholder, Token

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
