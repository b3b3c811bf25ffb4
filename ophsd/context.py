"""The teacher-context builder: aligned student and teacher sequences sharing the identical completion.

    student = chat_template(student view)                               + completion ids
    teacher = chat_template(teacher context, no generation prompt)
              + the student's generation prompt (its assistant-turn opening)  + the same completion ids

Prompts are tokenized with the chat template (never by re-tokenizing concatenated text); the completion is
appended as token ids and never altered. For every completion token the builder records the position whose
next-token distribution predicts it, on both sides: the prediction for completion token j sits at index
len(prompt) + j - 1.

Three guards keep the signal meaningful:
- **The same boundary.** The completion was sampled after the student's generation prompt (e.g.
  `assistant\\n<think>\\n\\n</think>\\n\\n` with thinking off). The teacher must predict it after the very same
  tokens, or every first token is scored after a different prefix (the first-token `<think>` problem), so the
  teacher's sequence ends with the student's generation prompt, whatever its own template switches say.
- **The ids the student sampled after.** When the engine reports the prompt ids it generated after, the
  student sequence must start with exactly those; a difference is a bug and raises `PromptMismatchError`.
- **Every sequence fits.** prompt + completion must fit the model's context (`max_length`) and each prompt its
  budget (`max_prompt_tokens`). An over-long teacher prompt keeps its head (system message, the problem) and
  loses the middle of its longest message, marked by `CUT_MARK` (`truncation="middle"`), or the example is
  dropped (`truncation="drop"`); both are counted. The student's prompt is fitted the same way *before* the
  rollout (`fit`), so that it is what the student sampled after; one still too long is dropped.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import torch

from harnessc.engines._common import chat_template_ids
from harnessc.engines.base import ChatMessage

CUT_MARK = "\n[...]\n"
Truncation = Literal["middle", "drop"]


class PromptMismatchError(RuntimeError):
    """The student sequence the loss conditions on differs from the prompt the engine sampled after."""


class BoundaryError(ValueError):
    """The chat template's generation prompt is not a suffix of the rendered prompt, so the teacher cannot be
    made to continue from the student's boundary."""


@dataclass(frozen=True)
class DistillExample:
    """One example's ingredients: prompts as chat messages, the sampled completion as token ids."""

    student_messages: tuple[ChatMessage, ...]
    student_template_kwargs: Mapping[str, Any]
    teacher_messages: tuple[ChatMessage, ...] | None  # None: the teacher chain gave nothing
    teacher_template_kwargs: Mapping[str, Any]
    completion_ids: tuple[int, ...]
    teacher_source: str | None
    sampled_after: tuple[int, ...] | None = None  # the prompt ids the engine reports it generated after
    student_truncated: bool = False  # the student's prompt was cut (by `fit`) before the rollout


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
    dropped: int = 0  # examples left out of the loss, for any of the reasons below
    dropped_no_teacher: int = 0  # the teacher chain gave nothing (missing_teacher = "drop")
    dropped_no_completion: int = 0  # the rollout failed or was empty
    dropped_too_long: int = 0  # a sequence could not be made to fit its budget or the model's context
    truncated_student: int = 0  # prompts whose middle was cut to fit (before the rollout, for the student)
    truncated_teacher: int = 0
    realigned: int = 0  # teacher sequences whose generation prompt was replaced by the student's
    student_prompt_lengths: list[int] = field(default_factory=list)
    teacher_prompt_lengths: list[int] = field(default_factory=list)

    @property
    def tokens(self) -> int:
        return int(self.completion_ids.numel())


class TeacherContextBuilder:
    """Builds DistillBatches with `tokenizer` (a Hugging Face tokenizer with a chat template), through the
    engines' own chat-template tokenizer (harnessc.engines._common.chat_template_ids), so sequences match
    what was generated.

    `max_prompt_tokens` bounds each prompt; `max_length` (the model's context, None = unbounded) bounds
    prompt + completion. Raises PromptMismatchError and BoundaryError as described in the module docstring.
    """

    def __init__(
        self,
        tokenizer: Any,
        *,
        max_prompt_tokens: int,
        max_length: int | None = None,
        truncation: Truncation = "middle",
        missing_teacher: str = "drop",
    ) -> None:
        self.tokenizer = tokenizer
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        self.pad_id = int(pad) if pad is not None else 0
        self.max_prompt_tokens = max_prompt_tokens
        self.max_length = max_length
        self.truncation = truncation
        self.missing_teacher = missing_teacher

    # ---- tokenization -------------------------------------------------------------------------------------

    def render(
        self, messages: Sequence[ChatMessage], kwargs: Mapping[str, Any], *, generation_prompt: bool = True
    ) -> list[int]:
        return chat_template_ids(self.tokenizer, messages, kwargs, generation_prompt=generation_prompt)

    def generation_prompt(self, messages: Sequence[ChatMessage], kwargs: Mapping[str, Any]) -> list[int]:
        """The ids the template appends to open the assistant's turn (e.g. `<|im_start|>assistant\\n`)."""
        full = self.render(messages, kwargs)
        bare = self.render(messages, kwargs, generation_prompt=False)
        if full[: len(bare)] != bare:
            raise BoundaryError(
                "the chat template renders the conversation differently with and without the generation "
                f"prompt (switches {dict(kwargs)}), so the teacher cannot be made to continue from exactly the "
                "student's assistant-turn opening; use a template whose generation prompt is a plain suffix"
            )
        return full[len(bare) :]

    def prompt_budget(self, completion_tokens: int = 0) -> int:
        """The most prompt tokens that leave room for `completion_tokens` (and one more at generation time)."""
        if self.max_length is None:
            return self.max_prompt_tokens
        return min(self.max_prompt_tokens, self.max_length - max(completion_tokens, 1))

    def fit(
        self,
        messages: Sequence[ChatMessage],
        kwargs: Mapping[str, Any],
        budget: int,
        opening: Sequence[int] | None = None,
    ) -> tuple[tuple[ChatMessage, ...], list[int], bool] | None:
        """`messages` made to fit `budget` tokens: (messages, prompt ids, whether they were cut), or None when
        they cannot fit (or truncation is "drop"). `opening` replaces the template's own generation prompt.

        The cut keeps the head and the end of the longest message and drops its middle (marked by CUT_MARK):
        the system message and the problem, at the start, survive a long reference solution."""
        messages = tuple(messages)
        ids = self._ids(messages, kwargs, opening)
        cut = False
        for _ in range(8):  # re-tokenizing around the cut can shift a few tokens; a few rounds settle it
            if len(ids) <= budget:
                return messages, ids, cut
            if self.truncation == "drop" or budget <= 0:
                return None
            shortened = self._cut_middle(messages, len(ids) - budget)
            if shortened is None:
                return None
            messages, cut = shortened, True
            ids = self._ids(messages, kwargs, opening)
        return None

    def _ids(self, messages: Sequence[ChatMessage], kwargs: Mapping[str, Any], opening: Sequence[int] | None):
        if opening is None:
            return self.render(messages, kwargs)
        return self.render(messages, kwargs, generation_prompt=False) + list(opening)

    def _cut_middle(self, messages: tuple[ChatMessage, ...], excess: int) -> tuple[ChatMessage, ...] | None:
        """Remove `excess` tokens (and room for the mark) from the middle of the longest message."""
        longest = max(range(len(messages)), key=lambda index: len(messages[index].content))
        ids = self.tokenizer.encode(messages[longest].content, add_special_tokens=False)
        keep = len(ids) - excess - len(self.tokenizer.encode(CUT_MARK, add_special_tokens=False))
        if keep < 2:
            return None  # the longest message cannot give enough: cutting would lose a whole message
        head, tail = keep - keep // 2, keep // 2
        text = self.tokenizer.decode(ids[:head]) + CUT_MARK + self.tokenizer.decode(ids[len(ids) - tail :])
        replaced = ChatMessage(messages[longest].role, text)
        return messages[:longest] + (replaced,) + messages[longest + 1 :]

    # ---- batches ------------------------------------------------------------------------------------------------

    def build(self, examples: Sequence[DistillExample]) -> DistillBatch:
        rows: list[tuple[list[int], list[int], tuple[int, ...], str, int]] = []
        counts = dict.fromkeys(
            ("dropped_no_teacher", "dropped_no_completion", "dropped_too_long", "truncated_teacher", "realigned"), 0
        )
        truncated_student = 0
        for index, example in enumerate(examples):
            teacher_messages, source = example.teacher_messages, example.teacher_source
            if teacher_messages is None and self.missing_teacher == "student":
                teacher_messages, source = example.student_messages, "student"
            if teacher_messages is None:
                counts["dropped_no_teacher"] += 1
                continue
            if not example.completion_ids:
                counts["dropped_no_completion"] += 1
                continue
            student_ids = self.render(example.student_messages, example.student_template_kwargs)
            _check_sampled_after(student_ids, example.sampled_after, self.tokenizer)
            truncated_student += example.student_truncated
            completion = example.completion_ids
            budget = self.prompt_budget(len(completion))
            if len(student_ids) > budget:
                counts["dropped_too_long"] += 1
                continue
            opening = self.generation_prompt(example.student_messages, example.student_template_kwargs)
            teacher_kwargs = example.teacher_template_kwargs
            if self.generation_prompt(teacher_messages, teacher_kwargs) != opening:
                counts["realigned"] += 1
            fitted = self.fit(teacher_messages, teacher_kwargs, budget, opening)
            if fitted is None:
                counts["dropped_too_long"] += 1
                continue
            _, teacher_ids, cut = fitted
            counts["truncated_teacher"] += cut
            rows.append((student_ids, teacher_ids, completion, source or "", index))
        dropped = counts["dropped_no_teacher"] + counts["dropped_no_completion"] + counts["dropped_too_long"]
        return self._collate(rows, dropped=dropped, truncated_student=truncated_student, **counts)

    def _collate(self, rows, **counts: int) -> DistillBatch:
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
            student_prompt_lengths=[len(row[0]) for row in rows],
            teacher_prompt_lengths=[len(row[1]) for row in rows],
            **counts,
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


def _check_sampled_after(student_ids: list[int], sampled_after: tuple[int, ...] | None, tokenizer: Any) -> None:
    if sampled_after is None or tuple(student_ids) == sampled_after:
        return
    at = next(
        (i for i, (a, b) in enumerate(zip(student_ids, sampled_after, strict=False)) if a != b),
        min(len(student_ids), len(sampled_after)),
    )
    raise PromptMismatchError(
        f"the student sampled after a different prompt than the loss conditions on (first difference at token "
        f"{at}: engine {tokenizer.decode(list(sampled_after[at : at + 8]))!r}, trainer "
        f"{tokenizer.decode(student_ids[at : at + 8])!r}); the rollout request and the builder must use the same "
        "messages and chat-template switches"
    )
