"""The LALR-table cache of harnessc/parser.py: used when present, keyed by the grammar, never stale."""

from __future__ import annotations

from lark import Lark

from harnessc import parser as hparser


def test_tables_are_cached_then_loaded(tmp_path, monkeypatch):
    monkeypatch.setenv("HARNESSC_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("HARNESSC_NO_PARSER_CACHE", raising=False)
    grammar = hparser.grammar_text()
    path = hparser.parser_cache_path(grammar)
    assert path is not None and path.parent == tmp_path
    hparser.build_lark(grammar)
    assert path.is_file()
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary file left behind

    loads = []
    original = Lark.load.__func__  # type: ignore[attr-defined]
    monkeypatch.setattr(Lark, "load", classmethod(lambda cls, f: loads.append(1) or original(cls, f)))
    parser = hparser.build_lark(grammar)
    assert loads, "the second build must load the cached tables"
    assert parser.parse("let x = f(1)\n", start="start") is not None


def test_changed_grammar_does_not_use_stale_tables(tmp_path, monkeypatch):
    monkeypatch.setenv("HARNESSC_CACHE_DIR", str(tmp_path))
    grammar = hparser.grammar_text()
    hparser.build_lark(grammar)
    changed = grammar.replace('"let" NAME "=" expr', '"let" NAME ":=" expr')
    assert changed != grammar
    assert hparser.parser_cache_path(changed) != hparser.parser_cache_path(grammar)
    parser = hparser.build_lark(changed)
    assert parser.parse("let x := 1\n", start="start") is not None
    assert len(list(tmp_path.iterdir())) == 2


def test_damaged_or_unwritable_cache_falls_back(tmp_path, monkeypatch):
    monkeypatch.setenv("HARNESSC_CACHE_DIR", str(tmp_path))
    grammar = hparser.grammar_text()
    path = hparser.parser_cache_path(grammar)
    assert path is not None
    path.write_bytes(b"not a cache")
    assert hparser.build_lark(grammar).parse("let x = 1\n", start="start") is not None
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("HARNESSC_CACHE_DIR", str(blocker / "sub"))  # cannot be created
    assert hparser.build_lark(grammar).parse("let x = 1\n", start="start") is not None


def test_cache_can_be_disabled(monkeypatch):
    monkeypatch.setenv("HARNESSC_NO_PARSER_CACHE", "1")
    assert hparser.parser_cache_path("x") is None
