"""Leaving out of the loss's passes the rows whose teacher is exactly the student.

A row whose teacher sequence equals its student sequence (the harness gave no context of its own and
`missing_teacher = "student"`, or its teacher context renders to the student's prompt, as an empty memory
bank does) while the teacher's weights equal the student's (a `live` teacher; a `frozen` or `ema` teacher
before the first update: the cold start) has two equal distributions at every position. Every divergence
here (reverse KL, forward KL, JSD, on the top-k or not, clipped or not) is then zero, and so is its gradient
(a minimum), so the row adds nothing to the loss's sum or its gradient: its teacher forward and its student
forward and backward can be skipped, the loss still divided by every completion token of the batch. Exact
(up to float rounding) only when the student's gradient pass runs without dropout, which is checked.
"""

from __future__ import annotations

from dataclasses import replace

import torch
from torch import nn

from ophsd.context import DistillBatch


def teacher_is_student(kind: str, step: int, policy: nn.Module) -> bool:
    """Whether the teacher's distribution equals the student's in its gradient pass, weights and mode both.

    `kind`: the config's teacher (frozen, live, ema); `step`: optimizer steps taken (0 = initial weights, a
    resumed run is past 0). With LoRA a frozen teacher is the base with the adapter off, equal to the
    student at step 0 (the adapter starts as a no-op)."""
    if kind != "live" and step != 0:
        return False
    # The student's pass runs in train mode: any dropout (modules, or attention's own probability) breaks it.
    if any(isinstance(module, nn.Dropout) and module.p > 0 for module in policy.modules()):
        return False
    config = getattr(policy, "config", None)
    return not any(getattr(config, name, 0.0) or 0.0 for name in ("attention_dropout", "attn_pdrop", "dropout"))


def rows_needing_teacher(batch: DistillBatch) -> list[int]:
    """Rows (indices into the batch) whose teacher sequence differs from their student sequence."""
    rows = []
    for row in range(batch.student_input_ids.shape[0]):
        student = batch.student_input_ids[row][batch.student_attention_mask[row].bool()]
        teacher = batch.teacher_input_ids[row][batch.teacher_attention_mask[row].bool()]
        if not torch.equal(student, teacher):
            rows.append(row)
    return rows


def loss_rows(batch: DistillBatch, kind: str, step: int, policy: nn.Module) -> DistillBatch:
    """`batch` without the rows whose teacher is exactly the student (see the module docstring); `batch`
    itself when there are none. At least one row stays, so the gradient pass still gives every parameter a
    (zero) gradient and the optimizer step (weight decay, moment decay) is the one the full batch takes."""
    if batch.tokens == 0 or not teacher_is_student(kind, step, policy):
        return batch
    keep = rows_needing_teacher(batch) or [0]
    if len(keep) == batch.student_input_ids.shape[0]:
        return batch
    return select_rows(batch, keep)


def select_rows(batch: DistillBatch, rows: list[int]) -> DistillBatch:
    """The batch's `rows` only (in that order), positions re-indexed; per-row lists follow, counts stay."""
    index = torch.tensor(rows, dtype=torch.long)
    remap = torch.full((batch.student_input_ids.shape[0],), -1, dtype=torch.long)
    remap[index] = torch.arange(len(rows))
    owners = batch.example_of_token
    tokens = (remap[owners] >= 0).nonzero().squeeze(1)  # (N',) the kept tokens, in order
    new_owner = remap[owners[tokens]]

    def positions(flat: torch.Tensor, width: int) -> torch.Tensor:
        # A flat index is row * width + offset: the offset stays, the row is renumbered.
        kept = flat[tokens]
        return new_owner * width + kept % width

    return replace(
        batch,
        student_input_ids=batch.student_input_ids[index],
        student_attention_mask=batch.student_attention_mask[index],
        teacher_input_ids=batch.teacher_input_ids[index],
        teacher_attention_mask=batch.teacher_attention_mask[index],
        student_positions=positions(batch.student_positions, batch.student_input_ids.shape[1]),
        teacher_positions=positions(batch.teacher_positions, batch.teacher_input_ids.shape[1]),
        completion_ids=batch.completion_ids[tokens],
        example_of_token=new_owner,
        sources=[batch.sources[row] for row in rows],
        kept=[batch.kept[row] for row in rows],
        student_prompt_lengths=[batch.student_prompt_lengths[row] for row in rows],
        teacher_prompt_lengths=[batch.teacher_prompt_lengths[row] for row in rows],
    )
