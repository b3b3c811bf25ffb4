"""What the teacher saw: a few examples of a batch, decoded, with the per-token divergence (`ophsd show`).

    RUN_DIR/samples/step-000010.json          examples of the training batch of step 10
    RUN_DIR/samples/step-000010-probe.json    the probe batch, at an evaluation

Each file is a JSON list of examples: {"step", "batch", "source", "student_prompt", "teacher_prompt",
"completion", "divergence" (mean over its tokens), "tokens": [{"token", "divergence", "p_student",
"p_teacher", "student_top", "teacher_top"}, ...]}. Probabilities are of the sampled token, at the loss's
temperature; `*_top` is each side's most likely token at that position.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import torch

if TYPE_CHECKING:
    from ophsd.config import TrainConfig
    from ophsd.context import DistillBatch
    from ophsd.distributed import Distributed
    from ophsd.losses import DivergenceSpec
    from ophsd.model import Teacher


class Inspected(Protocol):
    """What `inspect_rows` reads of the trainer (ophsd.trainer.Trainer), named here so that this module
    does not import the trainer that imports it."""

    tokenizer: Any
    device: torch.device
    policy: torch.nn.Module
    teacher: Teacher
    spec: DivergenceSpec
    config: TrainConfig
    dist: Distributed

    def teacher_hidden(self, batch: DistillBatch) -> torch.Tensor: ...


def sample_path(out: Path, step: int, batch: str) -> Path:
    return out / "samples" / (f"step-{step:06d}.json" if batch == "train" else f"step-{step:06d}-{batch}.json")


@torch.no_grad()
def inspect_rows(trainer: Inspected, batch: DistillBatch, count: int) -> list[dict[str, Any]]:
    """The first `count` rows of `batch`, decoded, with per-token divergence and both sides' probabilities."""
    from ophsd.losses import chunked_divergence
    from ophsd.model import completion_hidden, eval_mode, output_head

    tokenizer, device = trainer.tokenizer, trainer.device
    rows = list(range(min(count, len(batch.kept))))
    if not rows or (trainer.dist.sharding is not None and trainer.dist.sharding.skip_samples()):
        return []
    teacher_hidden = trainer.teacher_hidden(batch)  # (N, H): the teacher's, in eval mode
    with eval_mode(trainer.policy):
        student_hidden = completion_hidden(
            trainer.policy,
            batch.student_input_ids.to(device),
            batch.student_attention_mask.to(device),
            batch.student_positions,
        )
        divergence = chunked_divergence(  # (N,), from the hidden states above: no second student forward
            student_hidden,
            teacher_hidden,
            output_head(trainer.policy),
            trainer.teacher.head(),
            trainer.spec,
            trainer.config.loss_chunk_size,
        )
        temperature = trainer.spec.temperature
        examples = []
        for row in rows:
            mine = (batch.example_of_token == row).nonzero().squeeze(-1)  # this row's completion tokens
            student_logits = output_head(trainer.policy)(student_hidden[mine]).float() / temperature  # (n, V)
            teacher_logits = trainer.teacher.head()(teacher_hidden[mine]).float() / temperature
            student_p, teacher_p = student_logits.softmax(-1), teacher_logits.softmax(-1)
            completion = batch.completion_ids[mine]
            tokens = [
                {
                    "token": tokenizer.decode([token]),
                    "divergence": float(divergence[mine[j]]),
                    "p_student": float(student_p[j, token]),
                    "p_teacher": float(teacher_p[j, token]),
                    "student_top": tokenizer.decode([int(student_p[j].argmax())]),
                    "teacher_top": tokenizer.decode([int(teacher_p[j].argmax())]),
                }
                for j, token in enumerate(completion.tolist())
            ]
            examples.append(
                {
                    "source": batch.sources[row],
                    "student_prompt": tokenizer.decode(
                        batch.student_input_ids[row, : batch.student_prompt_lengths[row]].tolist()
                    ),
                    "teacher_prompt": tokenizer.decode(
                        batch.teacher_input_ids[row, : batch.teacher_prompt_lengths[row]].tolist()
                    ),
                    "completion": tokenizer.decode(completion.tolist()),
                    "divergence": float(divergence[mine].mean()),
                    "tokens": tokens,
                }
            )
    return examples


def save_samples(out: Path, step: int, batch: str, examples: list[dict[str, Any]]) -> Path:
    path = sample_path(out, step, batch)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps([{"step": step, "batch": batch, **e} for e in examples], indent=1) + "\n", "utf-8")
    return path


def load_samples(run_dir: str | Path, step: int | None = None) -> tuple[int, list[dict[str, Any]]]:
    """The samples of `step` (default: the newest step that has any), training batch and probe together."""
    root = Path(run_dir) / "samples"
    files = sorted(root.glob("step-*.json")) if root.exists() else []
    if not files:
        raise FileNotFoundError(f"no samples in {root} (the run keeps them every `show_every` steps)")
    steps = sorted({int(path.name[5:11]) for path in files})
    chosen = steps[-1] if step is None else step
    if chosen not in steps:
        raise FileNotFoundError(f"no samples for step {chosen} in {root}; steps with samples: {steps}")
    examples: list[dict[str, Any]] = []
    for path in sorted(root.glob(f"step-{chosen:06d}*.json")):
        examples += json.loads(path.read_text(encoding="utf-8"))
    return chosen, examples


def render_samples(step: int, examples: list[dict[str, Any]], *, top: int = 8) -> Any:
    """A rich renderable: per example, both prompts, the completion shaded by divergence, and the `top`
    tokens where student and teacher disagree most."""
    from rich.console import Group
    from rich.panel import Panel
    from rich.table import Table
    from rich.text import Text

    parts: list[Any] = [Text(f"step {step}: {len(examples)} examples", style="bold")]
    for number, example in enumerate(examples, 1):
        title = f"{example['batch']} example {number} · teacher context from {example['source'] or '?'}"
        parts.append(Text(f"\n{title} · mean divergence {example['divergence']:.4f}", style="bold cyan"))
        parts.append(Panel(Text(example["teacher_prompt"]), title="teacher sequence (prompt)", title_align="left"))
        parts.append(Panel(Text(example["student_prompt"]), title="student sequence (prompt)", title_align="left"))
        completion = Text()
        peak = max((token["divergence"] for token in example["tokens"]), default=0.0) or 1.0
        for token in example["tokens"]:
            shade = int(255 * (1 - min(token["divergence"] / peak, 1.0)))
            completion.append(token["token"], style=f"on rgb(255,{shade},{shade})" if token["divergence"] > 0 else "")
        parts.append(Panel(completion, title="completion (redder = larger divergence)", title_align="left"))
        table = Table("position", "token", "divergence", "p student", "p teacher", "student's top", "teacher's top")
        ranked = sorted(enumerate(example["tokens"]), key=lambda item: -item[1]["divergence"])[:top]
        for position, token in ranked:
            table.add_row(
                str(position),
                repr(token["token"]),
                f"{token['divergence']:.4f}",
                f"{token['p_student']:.3f}",
                f"{token['p_teacher']:.3f}",
                repr(token["student_top"]),
                repr(token["teacher_top"]),
            )
        parts.append(table)
    return Group(*parts)
