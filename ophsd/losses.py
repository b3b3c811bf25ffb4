"""Per-token divergences between the student's and the teacher's next-token distributions.

Shapes: C positions, V vocabulary, H hidden size, N completion tokens in a batch.

    token_divergence(student_logits (C, V), teacher_logits (C, V)) -> (C,)
    chunked_divergence(student_hidden (N, H), teacher_hidden (N, H), heads) -> (N,)

The chunked form never materialises the (N, V) fp32 logits: positions go through the output heads a chunk
at a time, and the student's chunk is wrapped in activation checkpointing, so backward recomputes it too
(memory: one (chunk, V) block instead of N x V). A batch of at most one chunk skips the checkpointing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

LossName = Literal["reverse_kl", "forward_kl", "jsd"]


@dataclass(frozen=True)
class DivergenceSpec:
    loss: LossName = "reverse_kl"
    jsd_beta: float = 0.5
    top_k: int | None = None
    token_clip: float | None = None
    # The student's rollouts are samples of softmax(logits / temperature): the divergence compares both
    # distributions at that temperature, so the loss is about the distribution the tokens came from.
    temperature: float = 1.0


def token_divergence(student_logits: torch.Tensor, teacher_logits: torch.Tensor, spec: DivergenceSpec) -> torch.Tensor:
    """The divergence at each position, in fp32. Gradients flow to the student only."""
    student = student_logits.float()
    teacher = teacher_logits.detach().float()
    if spec.temperature != 1.0:
        student, teacher = student / spec.temperature, teacher / spec.temperature
    if spec.top_k is not None:
        # Restrict both distributions to the teacher's top-k tokens and renormalise there.
        support = teacher.topk(min(spec.top_k, teacher.shape[-1]), dim=-1).indices  # (C, k)
        student = student.gather(-1, support)
        teacher = teacher.gather(-1, support)
    log_s = F.log_softmax(student, dim=-1)  # (C, V or k)
    log_t = F.log_softmax(teacher, dim=-1)
    if spec.loss == "reverse_kl":
        value = (log_s.exp() * (log_s - log_t)).sum(-1)
    elif spec.loss == "forward_kl":
        value = (log_t.exp() * (log_t - log_s)).sum(-1)
    else:
        value = _generalised_jsd(log_s, log_t, spec.jsd_beta)
    if spec.token_clip is not None:
        value = value.clamp(max=spec.token_clip)
    return value  # (C,)


def _generalised_jsd(log_s: torch.Tensor, log_t: torch.Tensor, beta: float) -> torch.Tensor:
    """beta * KL(T || M) + (1 - beta) * KL(S || M), with M = beta T + (1 - beta) S."""
    log_m = torch.logsumexp(
        torch.stack([log_t + torch.log(torch.tensor(beta)), log_s + torch.log(torch.tensor(1 - beta))]), dim=0
    )
    kl_teacher = (log_t.exp() * (log_t - log_m)).sum(-1)
    kl_student = (log_s.exp() * (log_s - log_m)).sum(-1)
    return beta * kl_teacher + (1 - beta) * kl_student


Head = Callable[[torch.Tensor], torch.Tensor]


def chunked_divergence(
    student_hidden: torch.Tensor,
    teacher_hidden: torch.Tensor,
    student_head: Head,
    teacher_head: Head,
    spec: DivergenceSpec,
    chunk_size: int = 256,
) -> torch.Tensor:
    """`token_divergence` of the heads' logits, computed `chunk_size` positions at a time. (N,) fp32.

    When all N positions fit one chunk, checkpointing would only recompute the student's head in backward
    for no memory saving (one (N, V) block either way), so that chunk runs without it: the same values."""
    if student_hidden.shape[0] <= chunk_size:
        with torch.no_grad():
            t_logits = teacher_head(teacher_hidden)  # (N, V)
        return _chunk(student_hidden, t_logits, student_head, spec)
    pieces = []
    for start in range(0, student_hidden.shape[0], chunk_size):
        s_chunk = student_hidden[start : start + chunk_size]  # (C, H)
        with torch.no_grad():
            t_logits = teacher_head(teacher_hidden[start : start + chunk_size])  # (C, V)
        if s_chunk.requires_grad:
            piece = checkpoint(_chunk, s_chunk, t_logits, student_head, spec, use_reentrant=False)
        else:
            piece = _chunk(s_chunk, t_logits, student_head, spec)
        pieces.append(piece)
    return torch.cat(pieces)


def _chunk(hidden: torch.Tensor, teacher_logits: torch.Tensor, head: Head, spec: DivergenceSpec) -> torch.Tensor:
    return token_divergence(head(hidden), teacher_logits, spec)
