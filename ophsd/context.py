"""The teacher-context builder: aligned student and teacher sequences sharing the identical completion.

    student = chat_template(student view)      + completion ids
    teacher = chat_template(teacher context)   + the same completion ids

Prompts are tokenized with the chat template (never by re-tokenizing concatenated text) and left-truncated
to a budget (counted); the completion is appended as token ids and never altered. For every completion
token the builder records the position whose next-token distribution predicts it, on both sides: the
prediction for completion token j sits at index len(prompt) + j - 1.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from harnessc.engines.base import ChatMessage

Tokenize = Callable[[Sequence[ChatMessage], Mapping[str, Any]], list[int]]


@dataclass(frozen=True)
class DistillExample:
    """One example's ingredients: prompts as chat messages, the sampled completion as token ids."""

    student_messages: tuple[ChatMessage, ...]
    student_template_kwargs: Mapping[str, Any]
    teacher_messages: tuple[ChatMessage, ...] | None  # None: the teacher chain gave nothing
    teacher_template_kwargs: Mapping[str, Any]
    completion_ids: tuple[int, ...]
    teacher_source: str | None


@dataclass
class DistillBatch:
    """Right-padded sequences; `*_positions` are flat indices into (B * L) of the predicting positions."""

    student_input_ids: torch.Tensor  # (B, Ls)
    student_attention_mask: torch.Tensor  # (B, Ls)
    teacher_input_ids: torch.Tensor  # (B, Lt)
    teacher_attention_mask: torch.Tensor  # (B, Lt)
    student_positions: torch.Tensor  # (N,)
    teacher_positions: torch.Tensor  # (N,)
    completion_ids: torch.Tensor  # (N,) the tokens being predicted, for checks
    example_of_token: torch.Tensor  # (N,) which row each token belongs to
    sources: list[str]  # per row: which harness stage gave the teacher context (provenance)
    kept: list[int]  # per row: the index of the example in the input list
    dropped: int = 0  # examples without a teacher context (missing_teacher = "drop") or without completion
    truncated_student: int = 0  # prompts left-truncated to the budget
    truncated_teacher: int = 0
    student_prompt_lengths: list[int] = field(default_factory=list)
    teacher_prompt_lengths: list[int] = field(default_factory=list)

    @property
    def tokens(self) -> int:
        return int(self.completion_ids.numel())


class TeacherContextBuilder:
    """Builds DistillBatches. `tokenize(messages, template_kwargs)` must be the engines' own chat-template
    tokenizer (harnessc.engines._common.chat_template_ids), so sequences match what was generated."""

    def __init__(
        self,
        tokenize: Tokenize,
        pad_id: int,
        *,
        max_prompt_tokens: int,
        student_template_kwargs: Mapping[str, Any] | None = None,
        teacher_template_kwargs: Mapping[str, Any] | None = None,
        missing_teacher: str = "drop",
    ) -> None:
        self.tokenize = tokenize
        self.pad_id = pad_id
        self.max_prompt_tokens = max_prompt_tokens
        self.student_template_kwargs = dict(student_template_kwargs or {})
        self.teacher_template_kwargs = dict(teacher_template_kwargs or {})
        self.missing_teacher = missing_teacher

    def prompt_ids(self, messages: Sequence[ChatMessage], kwargs: Mapping[str, Any]) -> tuple[list[int], bool]:
        ids = self.tokenize(messages, kwargs)
        if len(ids) <= self.max_prompt_tokens:
            return ids, False
        return ids[-self.max_prompt_tokens :], True  # left-truncate: keep the end, next to the completion

    def build(self, examples: Sequence[DistillExample]) -> DistillBatch:
        rows: list[tuple[list[int], list[int], tuple[int, ...], str, int]] = []
        dropped = truncated_student = truncated_teacher = 0
        for index, example in enumerate(examples):
            teacher_messages, source = example.teacher_messages, example.teacher_source
            if teacher_messages is None and self.missing_teacher == "student":
                teacher_messages, source = example.student_messages, "student"
            if teacher_messages is None or not example.completion_ids:
                dropped += 1
                continue
            student_kwargs = {**example.student_template_kwargs, **self.student_template_kwargs}
            teacher_kwargs = {**example.teacher_template_kwargs, **self.teacher_template_kwargs}
            student_ids, cut_student = self.prompt_ids(example.student_messages, student_kwargs)
            teacher_ids, cut_teacher = self.prompt_ids(teacher_messages, teacher_kwargs)
            truncated_student += cut_student
            truncated_teacher += cut_teacher
            rows.append((student_ids, teacher_ids, example.completion_ids, source or "", index))
        return self._collate(rows, dropped, truncated_student, truncated_teacher)

    def _collate(self, rows, dropped: int, truncated_student: int, truncated_teacher: int) -> DistillBatch:
        student_ids, student_mask, student_positions = self._pad([(s, c) for s, _, c, _, _ in rows])
        teacher_ids, teacher_mask, teacher_positions = self._pad([(t, c) for _, t, c, _, _ in rows])
        completion = torch.tensor([token for *_, c, _, _ in rows for token in c], dtype=torch.long)
        owners = torch.tensor([row for row, (*_, c, _, _) in enumerate(rows) for _ in c], dtype=torch.long)
        return DistillBatch(
            student_input_ids=student_ids,
            student_attention_mask=student_mask,
            teacher_input_ids=teacher_ids,
            teacher_attention_mask=teacher_mask,
            student_positions=student_positions,
            teacher_positions=teacher_positions,
            completion_ids=completion,
            example_of_token=owners,
            sources=[row[3] for row in rows],
            kept=[row[4] for row in rows],
            dropped=dropped,
            truncated_student=truncated_student,
            truncated_teacher=truncated_teacher,
            student_prompt_lengths=[len(row[0]) for row in rows],
            teacher_prompt_lengths=[len(row[1]) for row in rows],
        )

    def _pad(self, pairs: list[tuple[list[int], tuple[int, ...]]]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        width = max((len(prompt) + len(completion) for prompt, completion in pairs), default=0)
        ids = torch.full((len(pairs), width), self.pad_id, dtype=torch.long)  # (B, L)
        mask = torch.zeros((len(pairs), width), dtype=torch.long)
        positions: list[int] = []
        for row, (prompt, completion) in enumerate(pairs):
            sequence = prompt + list(completion)
            ids[row, : len(sequence)] = torch.tensor(sequence, dtype=torch.long)
            mask[row, : len(sequence)] = 1
            # Completion token j is at len(prompt) + j; the logits predicting it sit one position earlier.
            positions += [row * width + len(prompt) + j - 1 for j in range(len(completion))]
        return ids, mask, torch.tensor(positions, dtype=torch.long)
