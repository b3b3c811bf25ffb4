"""The language server: pygls wiring of the features in this package.

The server keeps, per open document, its last `Compilation` that produced an IR. Diagnostics are
published after each change, once the text has been still for `debounceMs` (150 ms; on open and save at
once), compiled from the editor's text (the unsaved buffer) with the document's path, so that imports
resolve relative to it exactly as `harnessc check` resolves them. Saving any file re-checks every open
document (an imported file may have changed). Compilation runs on one worker thread; requests (hover,
definition, completion, symbols) are answered from the current text and the last IR meanwhile.

Settings, from the command line (`harnessc lsp --for train --allow-root DIR --builtins MODULE --set k=v`)
or the client's `initializationOptions` (`{"purpose": "train", "allowRoots": [...], "debounceMs": 150,
"diagnosticsUrl": "https://.../diagnostics.md"}`), the latter winning.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlparse

from lsprotocol import types
from pygls.lsp.server import LanguageServer

from harnessc import __version__
from harnessc.builtins.registry import Registry
from harnessc.compiler import Compilation, compile_source
from harnessc.lsp.analysis import Analysis
from harnessc.lsp.completion import completion
from harnessc.lsp.definition import definition
from harnessc.lsp.diagnostics import default_docs_url, to_lsp
from harnessc.lsp.hover import hover
from harnessc.lsp.positions import LineIndex
from harnessc.lsp.symbols import document_symbols

logger = logging.getLogger(__name__)


@dataclass
class Settings:
    """What the checks run with (see the module docstring)."""

    registry: Registry
    purpose: str = "any"
    allow_roots: tuple[str, ...] = ()
    overrides: Mapping[str, str] = field(default_factory=dict)
    debounce: float = 0.15
    docs_url: str | None = None


@dataclass
class _Checked:
    """The last compilation of a document that produced an IR, and the text it was made from."""

    text: str
    compilation: Compilation


class HarnessLanguageServer(LanguageServer):
    """pygls's server with the per-document state of the harness features."""

    def __init__(self, settings: Settings) -> None:
        super().__init__("harnessc", __version__)
        self.settings = settings
        self.checked: dict[str, _Checked] = {}
        self.analyses: dict[str, Analysis] = {}  # the last analysis of each document, reused while it is current
        self.pending: dict[str, asyncio.Task] = {}
        self.compiler = ThreadPoolExecutor(max_workers=1, thread_name_prefix="harnessc-check")

    # -- documents ----------------------------------------------------------------------------------------------

    def path_of(self, uri: str) -> str:
        """The file system path of a document (an untitled one: a name in the current folder)."""
        parsed = urlparse(uri)
        if parsed.scheme == "file":
            path = unquote(parsed.path)
            if os.name == "nt" and len(path) > 2 and path[0] == "/" and path[2] == ":":
                path = path[1:]
            return path
        return os.path.join(os.getcwd(), (Path(parsed.path).name or "untitled") + ".harness")

    @staticmethod
    def uri_of(path: str) -> str:
        try:
            return Path(path).resolve().as_uri()
        except (OSError, ValueError):
            return "file://" + path

    def encoding(self) -> str:
        return str(self.workspace.position_encoding or types.PositionEncodingKind.Utf16)

    def open_text(self, path: str) -> str | None:
        """The editor's text of an open file, by path (None: not open)."""
        try:
            real = os.path.realpath(path)
            for document in list(self.workspace.text_documents.values()):
                if os.path.realpath(self.path_of(document.uri)) == real:
                    return document.source
        except (OSError, ValueError):
            return None
        return None

    def analysis(self, uri: str) -> tuple[Analysis, LineIndex]:
        """The analysis of a document's current text, with the last IR (stale when the text changed)."""
        document = self.workspace.get_text_document(uri)
        text = document.source
        checked = self.checked.get(uri)
        compilation = checked.compilation if checked is not None else None
        analysis = self.analyses.get(uri)
        if analysis is None or analysis.compilation is not compilation or analysis.text != text:
            analysis = Analysis(
                self.path_of(uri),
                text,
                compilation,
                self.settings.registry,
                self.settings.allow_roots,
                self.open_text,
                fresh=checked is not None and checked.text == text,
            )
            self.analyses[uri] = analysis
        return analysis, analysis.lines(self.encoding())

    # -- diagnostics ----------------------------------------------------------------------------------------

    def schedule(self, uri: str, delay: float) -> None:
        """Check a document after `delay` seconds, replacing a check already waiting."""
        waiting = self.pending.pop(uri, None)
        if waiting is not None:
            waiting.cancel()
        self.pending[uri] = asyncio.get_running_loop().create_task(self._check_later(uri, delay))

    async def _check_later(self, uri: str, delay: float) -> None:
        try:
            if delay > 0:
                await asyncio.sleep(delay)
            await self.check(uri)
        except asyncio.CancelledError:
            pass
        finally:
            if self.pending.get(uri) is asyncio.current_task():
                del self.pending[uri]

    async def check(self, uri: str) -> None:
        """Compile the document's current text and publish its diagnostics."""
        if uri not in self.workspace.text_documents:
            return
        document = self.workspace.get_text_document(uri)
        text, version, path = document.source, document.version, self.path_of(uri)
        settings = self.settings
        compilation = await asyncio.get_running_loop().run_in_executor(
            self.compiler,
            lambda: compile_source(
                text,
                path,
                registry=settings.registry,
                purpose=settings.purpose,
                overrides=settings.overrides or None,
                allow_roots=settings.allow_roots,
            ),
        )
        if uri not in self.workspace.text_documents:
            return  # closed meanwhile
        if compilation.harness is not None:
            self.checked[uri] = _Checked(text, compilation)
        analysis = Analysis(
            path, text, compilation, settings.registry, settings.allow_roots, self.open_text, fresh=True
        )
        if compilation.harness is not None:
            self.analyses[uri] = analysis
        diagnostics = to_lsp(compilation, analysis, self.encoding(), settings.docs_url, self.uri_of)
        self.text_document_publish_diagnostics(
            types.PublishDiagnosticsParams(uri=uri, version=version, diagnostics=diagnostics)
        )


def create_server(settings: Settings) -> HarnessLanguageServer:
    """A server with every feature registered."""
    server = HarnessLanguageServer(settings)

    @server.feature(types.INITIALIZE)
    def initialize(ls: HarnessLanguageServer, params: types.InitializeParams) -> None:
        options = params.initialization_options
        if isinstance(options, Mapping):
            apply_options(ls.settings, options)

    @server.feature(types.TEXT_DOCUMENT_DID_OPEN)
    async def did_open(ls: HarnessLanguageServer, params: types.DidOpenTextDocumentParams) -> None:
        ls.schedule(params.text_document.uri, 0)

    @server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
    async def did_change(ls: HarnessLanguageServer, params: types.DidChangeTextDocumentParams) -> None:
        ls.schedule(params.text_document.uri, ls.settings.debounce)

    @server.feature(types.TEXT_DOCUMENT_DID_SAVE)
    async def did_save(ls: HarnessLanguageServer, params: types.DidSaveTextDocumentParams) -> None:
        for uri in list(ls.workspace.text_documents):  # a saved file may be imported by the others
            ls.schedule(uri, 0)

    @server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(ls: HarnessLanguageServer, params: types.DidCloseTextDocumentParams) -> None:
        uri = params.text_document.uri
        waiting = ls.pending.pop(uri, None)
        if waiting is not None:
            waiting.cancel()
        ls.checked.pop(uri, None)
        ls.analyses.pop(uri, None)
        ls.text_document_publish_diagnostics(types.PublishDiagnosticsParams(uri=uri, diagnostics=[]))

    @server.feature(types.TEXT_DOCUMENT_HOVER)
    def on_hover(ls: HarnessLanguageServer, params: types.HoverParams) -> types.Hover | None:
        analysis, lines = ls.analysis(params.text_document.uri)
        return hover(analysis, lines.offset(params.position.line, params.position.character), ls.encoding())

    @server.feature(types.TEXT_DOCUMENT_DEFINITION)
    def on_definition(ls: HarnessLanguageServer, params: types.DefinitionParams) -> types.Location | None:
        analysis, lines = ls.analysis(params.text_document.uri)
        offset = lines.offset(params.position.line, params.position.character)
        return definition(analysis, offset, ls.encoding(), ls.uri_of, ls.open_text)

    @server.feature(
        types.TEXT_DOCUMENT_COMPLETION,
        types.CompletionOptions(trigger_characters=["{", ".", '"', "/", "="]),
    )
    def on_completion(ls: HarnessLanguageServer, params: types.CompletionParams) -> types.CompletionList:
        analysis, lines = ls.analysis(params.text_document.uri)
        return completion(analysis, lines.offset(params.position.line, params.position.character), ls.encoding())

    @server.feature(types.TEXT_DOCUMENT_DOCUMENT_SYMBOL)
    def on_symbols(ls: HarnessLanguageServer, params: types.DocumentSymbolParams) -> list[types.DocumentSymbol]:
        analysis, _lines = ls.analysis(params.text_document.uri)
        return document_symbols(analysis, ls.encoding())

    return server


def apply_options(settings: Settings, options: Mapping[str, object]) -> None:
    """Apply the client's `initializationOptions` (unknown keys are ignored; wrong types are logged)."""
    purpose = options.get("purpose")
    if purpose in ("any", "train", "run"):
        settings.purpose = str(purpose)
    roots = options.get("allowRoots")
    if isinstance(roots, list) and all(isinstance(item, str) for item in roots):
        settings.allow_roots = tuple(roots)
    debounce = options.get("debounceMs")
    if isinstance(debounce, (int, float)) and not isinstance(debounce, bool) and 0 <= debounce <= 10_000:
        settings.debounce = debounce / 1000
    url = options.get("diagnosticsUrl")
    if isinstance(url, str) and url:
        settings.docs_url = url.split("#", 1)[0]


def serve(
    *,
    purpose: str = "any",
    allow_roots: Sequence[str] = (),
    builtins: Sequence[str] = (),
    overrides: Mapping[str, str] | None = None,
) -> int:
    """Run the server on standard input and output until the client says `exit`."""
    from harnessc.builtins.registry import load_user_builtins

    registry = load_user_builtins(builtins)
    settings = Settings(
        registry=registry,
        purpose=purpose,
        allow_roots=tuple(allow_roots),
        overrides=dict(overrides or {}),
        docs_url=default_docs_url(),
    )
    protocol_out = sys.stdout.buffer
    sys.stdout = sys.stderr  # a stray print (a user built-ins module) must not corrupt the protocol stream
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="harnessc lsp: %(message)s")
    create_server(settings).start_io(sys.stdin.buffer, protocol_out)
    return 0
