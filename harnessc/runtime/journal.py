"""The engine answers of the chunk under way, kept as they arrive, so a killed `harnessc run` resumes mid-chunk.

The stage-synchronous executor finishes a chunk's examples together, after its last wave; until then, what a
run has paid for lives only in memory. The journal (`OUT.journal.jsonl`, beside the output) gets one JSON line
per answered request as soon as each engine call returns, flushed and fsync'ed. A resumed run replays the chunk:
`let` stages and built-ins are recomputed (they are pure), and every request found in the journal is answered
from it instead of the engine, so only the work the kill interrupted is redone and the records are the ones
an uninterrupted run writes (requests carry per-example seeds, so a request's key names one answer).

Requests are keyed by the sha256 of everything that decides their answer (messages, sampling, template
switches, constraint). Failed answers (finish reason "error") are not kept: a resumed run retries them. The
journal is emptied once a chunk's records are written, and removed when the run ends; the output's header
(see runner.check_same_run) guarantees that a journal is only replayed by the run that wrote it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from harnessc.engines.base import ChatMessage, ChatRequest, Completion, Engine


def journal_path(out: Path) -> Path:
    """Where a run's journal lives: next to its output, `OUT.journal.jsonl`."""
    return out.with_name(out.name + ".journal.jsonl")


def request_key(request: ChatRequest) -> str:
    """A stable digest of everything that decides a request's answer."""
    data = {
        "messages": [[message.role, message.content] for message in request.messages],
        "sampling": dataclasses.asdict(request.sampling),
        "template_kwargs": dict(request.template_kwargs),
        "constraint": dataclasses.asdict(request.constraint) if request.constraint else None,
    }
    text = json.dumps(data, sort_keys=True, ensure_ascii=True, default=repr)
    return hashlib.sha256(text.encode("ascii")).hexdigest()


class Journal:
    """The answers journaled so far (`answers`: request key → completions), and appending new ones."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.answers: dict[str, list[Completion]] = _read(path)

    def append(self, requests: Sequence[ChatRequest], answers: Sequence[Sequence[Completion]]) -> None:
        """Journal each request's answer unless it failed; written, flushed and fsync'ed before returning."""
        lines = []
        for request, completions in zip(requests, answers, strict=True):
            if any(completion.finish_reason == "error" for completion in completions):
                continue
            key = request_key(request)
            self.answers[key] = list(completions)
            lines.append(json.dumps({"key": key, "completions": [dataclasses.asdict(c) for c in completions]}))
        if not lines:
            return
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write("".join(line + "\n" for line in lines))
            handle.flush()
            os.fsync(handle.fileno())

    def clear(self) -> None:
        """Forget every answer (the chunk they belong to has its records written)."""
        self.answers.clear()
        with self.path.open("w", encoding="utf-8") as handle:
            handle.flush()
            os.fsync(handle.fileno())

    def remove(self) -> None:
        self.answers.clear()
        self.path.unlink(missing_ok=True)


def _read(path: Path) -> dict[str, list[Completion]]:
    """The journal's complete lines (a line cut off by a kill, or one that does not read, is skipped: its
    request simply runs again)."""
    answers: dict[str, list[Completion]] = {}
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return answers
    for line in text.splitlines(keepends=True):
        if not line.endswith("\n"):
            break
        try:
            entry = json.loads(line)
            answers[entry["key"]] = [_completion(item) for item in entry["completions"]]
        except (ValueError, KeyError, TypeError):
            continue
    return answers


def _completion(item: Mapping[str, Any]) -> Completion:
    fields = dict(item)
    for name in ("token_ids", "logprobs", "prompt_token_ids"):
        if fields.get(name) is not None:
            fields[name] = tuple(fields[name])
    return Completion(**fields)


class JournaledEngine:
    """An engine whose answers are journaled, and which answers journaled requests itself.

    The real engine is created by `factory` at the first request the journal cannot answer: a run resumed
    with every answer of its last chunk journaled never starts an engine.
    """

    name = "journaled"

    def __init__(self, factory: Callable[[], Engine], journal: Journal) -> None:
        self.factory = factory
        self.journal = journal
        self._engine: Engine | None = None
        self.replayed = 0  # requests answered from the journal

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = self.factory()
        return self._engine

    def chat(self, requests: Sequence[ChatRequest]) -> list[list[Completion]]:
        answers: list[list[Completion] | None] = [self.journal.answers.get(request_key(r)) for r in requests]
        missing = [position for position, answer in enumerate(answers) if answer is None]
        self.replayed += len(requests) - len(missing)
        if missing:
            asked = [requests[position] for position in missing]
            fresh = self.engine.chat(asked)
            self.journal.append(asked, fresh)
            for position, completions in zip(missing, fresh, strict=True):
                answers[position] = completions
        return [answer for answer in answers if answer is not None]

    def apply_chat_template(
        self, messages: Sequence[ChatMessage], template_kwargs: Mapping[str, Any] | None = None
    ) -> list[int]:
        return self.engine.apply_chat_template(messages, template_kwargs)

    def load_weights(self, state_dict: Mapping[str, Any]) -> None:
        self.engine.load_weights(state_dict)
