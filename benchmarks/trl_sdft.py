"""The same-run baseline of bench_train: TRL's self-distillation trainer (`trl.experimental.sdft.SDFTTrainer`).

    pip install 'ophsd[bench]'      # trl==1.16.0, the version measured in benchmarks/README.md

`sdft_steps(path, steps)` trains `steps` steps of TRL's SDFT on the same work as `ophsd train` with the
OPSD harness in bench_train: the same model in fp32, 4 prompts from examples/data/math.jsonl a step, one
sample of 64 completion tokens each at temperature 1.0 (transformers `generate`: TRL's vLLM paths need a
CUDA colocated engine or a separate server), the teacher = the initial weights (`teacher_model_kind="base"`,
ours `teacher = "frozen"`) shown the problem with the reference solution, the reverse KL over the full
vocabulary (`distillation_mode="full_logits"`, `distillation_alpha=1.0` is KL(student || teacher)), one AdamW
step per batch at the same learning rate, weight decay, betas and clipping, constant schedule, no evaluation,
no checkpoints. It returns seconds per step after the first (wall time between the ends of consecutive
optimizer steps: generation, both forwards, backward and the update).
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
# The teacher's words of harnesses/opsd.harness, with TRL's placeholders.
TEACHER_TEMPLATE = (
    "{prompt}\n\nHere is a reference solution to this problem:\n{privileged_context}\n\n"
    "After reading it, reason through the problem independently, step by step, and arrive at the same final "
    "answer. Put the final answer in \\boxed{{}}."
)
STUDENT_SUFFIX = "\nReason step by step and put the final answer in \\boxed{}."  # STUDENT_MATH


def sdft_rows(data: Path) -> list[dict[str, Any]]:
    """TRL's dataset format: a conversational `prompt` and the teacher's `privileged_context` per row."""
    rows = [json.loads(line) for line in data.read_text().splitlines() if line.strip()]
    return [
        {
            "prompt": [{"role": "user", "content": row["question"] + STUDENT_SUFFIX}],
            "privileged_context": row["solution"],
        }
        for row in rows
    ]


def sdft_steps(path: str, steps: int, batch_size: int = 4, completion_tokens: int = 64) -> dict[str, Any]:
    """Train `steps` (>= 2) SDFT steps on `path`; seconds per step averaged over the steps after the first."""
    import torch
    import trl
    from datasets import Dataset
    from transformers import TrainerCallback
    from trl.experimental.sdft import SDFTConfig, SDFTTrainer

    class StepClock(TrainerCallback):
        def __init__(self) -> None:
            self.ends: list[float] = []

        def on_step_end(self, args, state, control, **kwargs):  # noqa: ANN001, ANN003 - transformers' signature
            self.ends.append(time.perf_counter())

    dataset = Dataset.from_list(sdft_rows(REPO / "examples/data/math.jsonl"))
    clock = StepClock()
    with tempfile.TemporaryDirectory() as out:
        config = SDFTConfig(
            output_dir=out,
            use_cpu=not torch.cuda.is_available(),
            model_init_kwargs={"dtype": torch.float32},
            per_device_train_batch_size=batch_size,
            gradient_accumulation_steps=1,
            num_generations=1,
            max_completion_length=completion_tokens,
            temperature=1.0,
            teacher_model_kind="base",
            teacher_prompt_template=TEACHER_TEMPLATE,
            distillation_mode="full_logits",
            distillation_alpha=1.0,
            learning_rate=1e-6,
            lr_scheduler_type="constant",
            weight_decay=0.1,
            adam_beta1=0.9,
            adam_beta2=0.999,
            max_grad_norm=1.0,
            max_steps=steps,
            logging_steps=10_000,
            save_strategy="no",
            eval_strategy="no",
            report_to="none",
            seed=0,
            bf16=False,
            fp16=False,
        )
        trainer = SDFTTrainer(model=path, args=config, train_dataset=dataset, callbacks=[clock])
        trainer.train()
    gaps = [later - earlier for earlier, later in zip(clock.ends, clock.ends[1:], strict=False)]
    if not gaps:
        raise RuntimeError(f"TRL SDFT ran {len(clock.ends)} step(s); at least 2 are needed to time one")
    return {"engine": f"TRL {trl.__version__} SDFT", "seconds_per_step": sum(gaps) / len(gaps), "phases": {}}
