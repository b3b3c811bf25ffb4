"""`harnessc lsp` end to end: a real LSP client (pygls's LanguageClient) starts the server as a subprocess
and speaks JSON-RPC with it over stdio, as an editor does; nothing here calls the server's code directly.

One server process serves the whole module (a second one checks the UTF-8 position encoding). The client
runs its asyncio loop on a thread of its own so that the tests stay plain synchronous functions.
"""

from __future__ import annotations

import asyncio
import os
import sys
import threading
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest
from conftest import REPO

pytest.importorskip("pygls", reason="the language server needs pygls (the `editor` extra)")

from lsprotocol import types  # noqa: E402
from pygls.lsp.client import LanguageClient  # noqa: E402

SNIPPETS = """\
# Prompt text shared by the tests.
snippet EXPERT = "You are an expert. Put the final answer in \\boxed{}."
snippet ASK = "{question}\\nThink step by step."
"""

MAIN = """\
harness main "A harness exercising the editor features"

import "common/snips.harness"

input question: text
input hint: text optional
input sources: list[record{title: text, year: int}]
input answer: text oracle

param k: int = 3
param tokens: int = 512
param temp: float = 0.6

snippet FORMAT = "End with `Answer: <answer>`."

llm plan {
  system EXPERT
  user "{ASK}\\n{if hint}Hint: {hint}{end}\\n{for s in sources}- {s.title}\\n{end}{FORMAT}"
  temperature temp
  max_tokens tokens
}

let plan_text = strip_think(plan)
let titles = [s.title for s in sources]

loop current from plan_text max k {
  llm revise {
    user "Improve: {current}\\nSources: {join(titles, \\", \\")}"
    max_tokens tokens
  }
  next revise
}

student {
  user ASK
  max_tokens tokens
}
teacher = plan else student

output = extract_boxed(current)
grade = math_equal(output, answer)
"""

# An error after an emoji (two UTF-16 code units, four UTF-8 bytes) and an accented letter on its line.
EMOJI = """\
harness emoji

input question: text

llm solve {
  user "😀 é {qestion}"
  max_tokens 16
}

output = solve
"""
EMOJI_ERROR_LINE = 5


class Client:
    """A pygls LanguageClient running `python -m harnessc.cli lsp`, driven from synchronous tests."""

    def __init__(self, workspace: Path, capabilities: types.ClientCapabilities | None = None) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.published: dict[str, list[types.PublishDiagnosticsParams]] = {}
        self.changed = threading.Condition()
        self.exit_code: int | None = None
        self.exited = threading.Event()
        outer = self

        class _LanguageClient(LanguageClient):
            async def server_exit(self, server: asyncio.subprocess.Process) -> None:
                outer.exit_code = server.returncode
                outer.exited.set()

        self.lsp = _LanguageClient("harnessc-tests", "0")

        @self.lsp.feature(types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
        def published(params: types.PublishDiagnosticsParams) -> None:
            with self.changed:
                self.published.setdefault(params.uri, []).append(params)
                self.changed.notify_all()

        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
        self.call(self.lsp.start_io(sys.executable, "-m", "harnessc.cli", "lsp", env=env, cwd=str(workspace)))
        self.initialized = self.call(
            self.lsp.initialize_async(
                types.InitializeParams(
                    capabilities=capabilities or types.ClientCapabilities(),
                    root_uri=workspace.as_uri(),
                    initialization_options={"debounceMs": 20},
                )
            )
        )
        self.notify(self.lsp.initialized, types.InitializedParams())

    def call(self, coroutine: Coroutine[Any, Any, Any], timeout: float = 30) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def notify(self, send: Callable[[Any], None], params: Any) -> None:
        async def on_loop() -> None:
            send(params)

        self.call(on_loop())

    # -- documents ----------------------------------------------------------------------------------------

    def open(self, path: Path, text: str | None = None) -> str:
        uri = path.as_uri()
        text = path.read_text(encoding="utf-8") if text is None else text
        item = types.TextDocumentItem(uri=uri, language_id="harness", version=1, text=text)
        self.notify(self.lsp.text_document_did_open, types.DidOpenTextDocumentParams(text_document=item))
        return uri

    def change(self, uri: str, version: int, text: str) -> None:
        document = types.VersionedTextDocumentIdentifier(uri=uri, version=version)
        change = types.TextDocumentContentChangeWholeDocument(text=text)
        params = types.DidChangeTextDocumentParams(text_document=document, content_changes=[change])
        self.notify(self.lsp.text_document_did_change, params)

    def close(self, uri: str) -> None:
        document = types.TextDocumentIdentifier(uri=uri)
        self.notify(self.lsp.text_document_did_close, types.DidCloseTextDocumentParams(text_document=document))

    def diagnostics(self, uri: str, version: int = 1, timeout: float = 30) -> list[types.Diagnostic]:
        """The diagnostics published for `version` of the document (waits for them)."""

        def ready() -> types.PublishDiagnosticsParams | None:
            return next((item for item in self.published.get(uri, []) if item.version == version), None)

        with self.changed:
            assert self.changed.wait_for(ready, timeout), f"no diagnostics for {uri} version {version}"
            found = ready()
        assert found is not None
        return list(found.diagnostics)

    # -- requests -----------------------------------------------------------------------------------------

    def hover(self, uri: str, position: types.Position) -> str:
        document = types.TextDocumentIdentifier(uri=uri)
        result = self.call(
            self.lsp.text_document_hover_async(types.HoverParams(text_document=document, position=position))
        )
        if result is None:
            return ""
        assert isinstance(result.contents, types.MarkupContent)
        return result.contents.value

    def definition(self, uri: str, position: types.Position) -> types.Location | None:
        document = types.TextDocumentIdentifier(uri=uri)
        params = types.DefinitionParams(text_document=document, position=position)
        result = self.call(self.lsp.text_document_definition_async(params))
        if isinstance(result, list):
            assert len(result) == 1
            result = result[0]
        assert result is None or isinstance(result, types.Location)
        return result

    def completion(self, uri: str, position: types.Position) -> dict[str, types.CompletionItem]:
        document = types.TextDocumentIdentifier(uri=uri)
        params = types.CompletionParams(text_document=document, position=position)
        result = self.call(self.lsp.text_document_completion_async(params))
        items = result.items if isinstance(result, types.CompletionList) else (result or [])
        return {item.label: item for item in items}

    def symbols(self, uri: str) -> list[types.DocumentSymbol]:
        params = types.DocumentSymbolParams(text_document=types.TextDocumentIdentifier(uri=uri))
        result = self.call(self.lsp.text_document_document_symbol_async(params))
        assert all(isinstance(item, types.DocumentSymbol) for item in result)
        return result

    def stop(self) -> int | None:
        """shutdown, exit; the server's exit code."""
        if not self.exited.is_set():
            self.call(self.lsp.shutdown_async(None))
            self.notify(self.lsp.exit, None)
            self.exited.wait(20)
        self.call(self.lsp.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        return self.exit_code


def at(text: str, needle: str, nth: int = 0, shift: int = 0) -> types.Position:
    """The UTF-16 position of the `nth` occurrence of `needle` in `text`, plus `shift` characters."""
    offset = -1
    for _ in range(nth + 1):
        offset = text.index(needle, offset + 1)
    offset += shift
    line = text.count("\n", 0, offset)
    before = text[text.rfind("\n", 0, offset) + 1 : offset]
    return types.Position(line=line, character=len(before.encode("utf-16-le")) // 2)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("lsp-workspace")
    (folder / "common").mkdir()
    (folder / "common" / "snips.harness").write_text(SNIPPETS, encoding="utf-8")
    (folder / "main.harness").write_text(MAIN, encoding="utf-8")
    (folder / "emoji.harness").write_text(EMOJI, encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def client(workspace: Path):
    session = Client(workspace)
    yield session
    session.stop()


@pytest.fixture(scope="module")
def main_uri(client: Client, workspace: Path) -> str:
    uri = client.open(workspace / "main.harness")
    assert client.diagnostics(uri) == []
    return uri


# ---- lifecycle ------------------------------------------------------------------------------------------------


def test_initialize_announces_the_features(client: Client) -> None:
    result = client.initialized
    capabilities = result.capabilities
    assert result.server_info.name == "harnessc"
    assert capabilities.hover_provider
    assert capabilities.definition_provider
    assert capabilities.document_symbol_provider
    assert capabilities.completion_provider is not None
    assert {"{", "."} <= set(capabilities.completion_provider.trigger_characters or ())
    assert capabilities.position_encoding == types.PositionEncodingKind.Utf16


def test_shutdown_and_exit_end_the_process(workspace: Path) -> None:
    session = Client(workspace)
    uri = session.open(workspace / "emoji.harness")
    assert session.diagnostics(uri)
    assert session.stop() == 0


# ---- diagnostics ----------------------------------------------------------------------------------------------


def test_a_good_harness_has_no_diagnostics(main_uri: str) -> None:
    pass  # the fixture asserts it: opening main.harness publishes an empty list


def test_an_error_after_an_emoji_is_placed_in_utf16_columns(client: Client, workspace: Path) -> None:
    uri = client.open(workspace / "emoji.harness")
    errors = [item for item in client.diagnostics(uri) if item.severity == types.DiagnosticSeverity.Error]
    assert [item.code for item in errors] == ["unknown-name"]
    error = errors[0]
    line = EMOJI.splitlines()[EMOJI_ERROR_LINE]
    column = len(line[: line.index("qestion")].encode("utf-16-le")) // 2
    assert column == line.index("qestion") + 1  # the emoji is two UTF-16 units
    assert error.range == types.Range(
        start=types.Position(line=EMOJI_ERROR_LINE, character=column),
        end=types.Position(line=EMOJI_ERROR_LINE, character=column + len("qestion")),
    )
    assert error.source == "harnessc"
    assert "did you mean `question`?" in error.message
    assert error.code_description is not None
    assert error.code_description.href.endswith("docs/diagnostics.md#unknown-name")
    assert error.code_description.href.startswith("file://")
    client.close(uri)


def test_did_change_updates_the_diagnostics(client: Client, workspace: Path) -> None:
    path = workspace / "changing.harness"
    path.write_text(EMOJI, encoding="utf-8")
    uri = client.open(path)
    assert "unknown-name" in [item.code for item in client.diagnostics(uri, 1)]
    client.change(uri, 2, EMOJI.replace("qestion", "question"))  # unsaved: the server reads the buffer
    assert [item.code for item in client.diagnostics(uri, 2) if item.severity == 1] == []
    client.change(uri, 3, EMOJI.replace("max_tokens 16", "max_tokens 16\n  temprature 0.5"))
    codes = [item.code for item in client.diagnostics(uri, 3)]
    assert "unknown-option" in codes and "unknown-name" in codes
    client.close(uri)


def test_warnings_and_secondary_labels(client: Client, workspace: Path) -> None:
    text = MAIN.replace("let titles = [s.title for s in sources]", "let titles = [s.title for s in sources]\nlet k = 4")
    uri = client.open(workspace / "duplicate.harness", text)
    diagnostics = client.diagnostics(uri)
    duplicate = next(item for item in diagnostics if item.code == "duplicate-definition")
    assert duplicate.range.start == at(text, "k = 4")
    assert duplicate.related_information
    assert duplicate.related_information[0].location.range.start == at(text, "k: int")
    client.close(uri)


def test_an_error_in_an_imported_file_is_shown_at_the_import(client: Client, workspace: Path) -> None:
    (workspace / "lib").mkdir()
    (workspace / "lib" / "broken.harness").write_text('snippet GOOD = "fine"\ninput stray: text\n')
    text = 'harness uses_broken\nimport "lib/broken.harness"\ninput question: text\noutput = question\n'
    uri = client.open(workspace / "uses_broken.harness", text)
    diagnostics = client.diagnostics(uri)
    imported = next(item for item in diagnostics if item.code == "import-content")
    assert imported.range.start == at(text, '"lib/broken.harness"')
    assert "broken.harness:2" in imported.message
    assert imported.related_information
    place = imported.related_information[0].location
    assert place.uri == (workspace / "lib" / "broken.harness").resolve().as_uri()
    assert place.range.start == types.Position(line=1, character=0)
    client.close(uri)


def test_a_snippet_library_is_not_asked_for_a_header(client: Client, workspace: Path) -> None:
    uri = client.open(workspace / "common" / "snips.harness")
    assert client.diagnostics(uri) == []
    client.close(uri)


# ---- hover ------------------------------------------------------------------------------------------------------


def test_hover_on_a_stage_shows_its_type_and_options(client: Client, main_uri: str) -> None:
    text = client.hover(main_uri, at(MAIN, "plan)", shift=1))  # `strip_think(plan)`
    assert "llm plan: text" in text
    assert "| `temperature` | `temp` |" in text and "| `max_tokens` | `tokens` |" in text
    assert "messages: system, user" in text


def test_hover_on_a_builtin_shows_its_signature_and_doc(client: Client, main_uri: str) -> None:
    text = client.hover(main_uri, at(MAIN, "strip_think("))
    assert "strip_think(text: text) -> text" in text
    assert "<think>" in text  # from the docstring


def test_hover_on_a_param_and_an_option(client: Client, main_uri: str) -> None:
    assert "param tokens: int" in client.hover(main_uri, at(MAIN, "max_tokens tokens", shift=12))
    assert "param tokens: int = 512" in client.hover(main_uri, at(MAIN, "max_tokens tokens", shift=12))
    option = client.hover(main_uri, at(MAIN, "max_tokens tokens"))
    assert "max_tokens: int" in option and "the most tokens to generate" in option


def test_hover_shows_the_narrowed_type_inside_if(client: Client, main_uri: str) -> None:
    inside = client.hover(main_uri, at(MAIN, "{hint}", shift=1))
    assert "input hint: text?" in inside and "here: `text`" in inside


def test_hover_on_loop_variables_and_record_fields(client: Client, main_uri: str) -> None:
    assert "s: record{title: text, year: int}" in client.hover(main_uri, at(MAIN, "{s.title}", shift=1))
    assert "title: text" in client.hover(main_uri, at(MAIN, "{s.title}", shift=3))


# ---- definition ---------------------------------------------------------------------------------------------------


def test_definition_of_a_let_and_a_stage(client: Client, main_uri: str, workspace: Path) -> None:
    let = client.definition(main_uri, at(MAIN, "plan_text max"))
    assert let is not None and let.uri == main_uri
    assert let.range.start == at(MAIN, "plan_text =")
    stage = client.definition(main_uri, at(MAIN, "plan else"))
    assert stage is not None and stage.range.start == at(MAIN, "plan {")
    inner = client.definition(main_uri, at(MAIN, "next revise", shift=6))
    assert inner is not None and inner.range.start == at(MAIN, "revise {")


def test_definition_of_snippets_here_and_imported(client: Client, main_uri: str, workspace: Path) -> None:
    local = client.definition(main_uri, at(MAIN, "{FORMAT}", shift=1))
    assert local is not None and local.range.start == at(MAIN, "FORMAT =")
    imported = client.definition(main_uri, at(MAIN, "system EXPERT", shift=7))
    assert imported is not None
    assert imported.uri == (workspace / "common" / "snips.harness").resolve().as_uri()
    assert imported.range.start == at(SNIPPETS, "EXPERT =")


def test_definition_of_an_import_a_param_and_a_binding(client: Client, main_uri: str, workspace: Path) -> None:
    imported = client.definition(main_uri, at(MAIN, "common/snips"))
    assert imported is not None
    assert imported.uri == (workspace / "common" / "snips.harness").resolve().as_uri()
    param = client.definition(main_uri, at(MAIN, "max k", shift=4))
    assert param is not None and param.range.start == at(MAIN, "k: int")
    binding = client.definition(main_uri, at(MAIN, "{s.title}", shift=1))
    assert binding is not None and binding.range.start == at(MAIN, "s in sources}")


def test_definition_of_a_builtin_is_its_python_function(client: Client, main_uri: str) -> None:
    location = client.definition(main_uri, at(MAIN, "extract_boxed"))
    assert location is not None
    assert location.uri.endswith("harnessc/builtins/library.py")
    source = Path(location.uri.removeprefix("file://")).read_text(encoding="utf-8").splitlines()
    assert source[location.range.start.line].startswith("def extract_boxed(")


# ---- completion ---------------------------------------------------------------------------------------------------


def test_completion_inside_a_template_placeholder(client: Client, workspace: Path) -> None:
    text = MAIN.replace('user "Improve: {current}', 'user "Improve: {cu} {')
    uri = client.open(workspace / "typing.harness", text)
    client.diagnostics(uri)
    items = client.completion(uri, at(text, "{cu}", shift=3))
    assert {"current", "question", "plan_text", "tokens", "EXPERT", "FORMAT", "strip_think", "if", "for"} <= set(items)
    assert items["strip_think"].kind == types.CompletionItemKind.Function
    assert items["question"].detail == "input: text"
    unclosed = client.completion(uri, at(text, "{cu} {", shift=6))  # an unclosed `{` at the end
    assert "question" in unclosed
    client.close(uri)


def test_completion_in_the_student_view_offers_what_it_may_read(client: Client, workspace: Path) -> None:
    text = MAIN.replace("  user ASK\n  max_tokens tokens\n}\nteacher", '  user "{}"\n  max_tokens tokens\n}\nteacher')
    uri = client.open(workspace / "student.harness", text)
    items = client.completion(uri, at(text, 'user "{}"', shift=7))
    assert {"question", "hint", "tokens", "ASK", "FORMAT", "join"} <= set(items)
    assert not {"answer", "plan", "plan_text", "current"} & set(items)  # an oracle input, stages
    client.close(uri)


def test_completion_at_an_option_position(client: Client, workspace: Path) -> None:
    text = MAIN.replace("  temperature temp\n", "  temperature temp\n  \n")
    uri = client.open(workspace / "options.harness", text)
    items = client.completion(uri, at(text, "temperature temp\n  \n", shift=len("temperature temp\n  ")))
    assert {"user", "assistant", "top_p", "stop", "n"} <= set(items)
    assert "temperature" not in items and "max_tokens" not in items  # already set in this body
    assert items["top_p"].detail == "top_p: float"
    values = client.completion(uri, at(text, "max_tokens tokens", shift=len("max_tokens ")))
    assert {"tokens", "k", "temp"} <= set(values)
    assert values["tokens"].sort_text < values["temp"].sort_text  # int parameters first for max_tokens
    client.close(uri)


def test_completion_of_record_fields_and_keyword_arguments(client: Client, workspace: Path) -> None:
    uri = client.open(workspace / "fields.harness", MAIN)
    assert client.diagnostics(uri) == []
    text = MAIN.replace("- {s.title}", "- {s.}").replace("strip_think(plan)", "join(titles, )")
    client.change(uri, 2, text)  # typing: the text no longer parses, the last IR still knows the types
    client.diagnostics(uri, 2)
    fields = client.completion(uri, at(text, "{s.}", shift=3))
    assert set(fields) == {"title", "year"}
    assert fields["year"].detail == "int"
    arguments = client.completion(uri, at(text, "join(titles, )", shift=len("join(titles, ")))
    assert "separator=" in arguments and "titles" in arguments
    assert arguments["titles"].detail == "let: list[text]"
    client.close(uri)
    uri = client.open(workspace / "fields-from-scratch.harness", text)  # never compiled: the written types
    assert set(client.completion(uri, at(text, "{s.}", shift=3))) == {"title", "year"}
    client.close(uri)


def test_completion_of_declarations_types_and_import_paths(client: Client, workspace: Path) -> None:
    text = MAIN + "\ninput extra: \n"
    uri = client.open(workspace / "more.harness", text)
    top = client.completion(uri, at(text, "\ninput extra"))
    assert {"llm", "let", "input", "param", "snippet", "loop", "teacher", "output"} <= set(top)
    type_names = client.completion(uri, at(text, "input extra: ", shift=len("input extra: ")))
    assert {"text", "int", "float", "bool", "list", "record"} <= set(type_names)
    paths = client.completion(uri, at(text, "common/snips", shift=1))
    assert "common/snips.harness" in paths and "main.harness" in paths
    edit = paths["common/snips.harness"].text_edit
    assert isinstance(edit, types.TextEdit) and edit.range.start == at(text, "common/snips")
    client.close(uri)


# ---- symbols ------------------------------------------------------------------------------------------------------


def test_document_symbols(client: Client, main_uri: str) -> None:
    symbols = client.symbols(main_uri)
    names = [item.name for item in symbols]
    assert names[:3] == ["main", "common/snips.harness", "question"]
    assert {"plan", "plan_text", "current", "student", "teacher", "output", "grade"} <= set(names)
    plan = symbols[names.index("plan")]
    assert plan.kind == types.SymbolKind.Function and plan.detail == "text"
    assert plan.selection_range.start == at(MAIN, "plan {")
    loop = symbols[names.index("current")]
    assert [child.name for child in loop.children or []] == ["revise"]
    hint = symbols[names.index("hint")]
    assert hint.detail == "text?"


# ---- another position encoding --------------------------------------------------------------------------------------


def test_utf8_positions_when_the_client_asks_for_them(workspace: Path) -> None:
    capabilities = types.ClientCapabilities(
        general=types.GeneralClientCapabilities(position_encodings=[types.PositionEncodingKind.Utf8])
    )
    session = Client(workspace, capabilities)
    try:
        assert session.initialized.capabilities.position_encoding == types.PositionEncodingKind.Utf8
        uri = session.open(workspace / "emoji.harness")
        error = next(item for item in session.diagnostics(uri) if item.code == "unknown-name")
        line = EMOJI.splitlines()[EMOJI_ERROR_LINE]
        column = len(line[: line.index("qestion")].encode("utf-8"))
        assert error.range.start == types.Position(line=EMOJI_ERROR_LINE, character=column)
        hover = session.hover(uri, types.Position(line=EMOJI_ERROR_LINE + 1, character=3))
        assert "max_tokens: int" in hover
    finally:
        assert session.stop() == 0
