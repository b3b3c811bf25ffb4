"""On-policy harness self-distillation: the training loop (one step of ../shared method.md per batch).

    rows ──► student rollouts (current weights, bare student prompt)      ─┐
        └──► the harness, train mode (current weights, same engine)  ──► teacher contexts
    builder: student = template(student) + completion; teacher = template(teacher ctx) + same completion
    teacher forward (no grad) ─► student forward ─► chunked divergence over completion tokens ─► step
    ─► push weights to the engine ─► add the batch to the memory banks

Nothing here knows which harness it trains with: the compiled harness decides the teacher context.
"""

from __future__ import annotations

import dataclasses
import math
import random
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from harnessc.builtins.registry import load_user_builtins
from harnessc.compiler import compile_file
from harnessc.engines._common import chat_template_ids
from harnessc.engines.base import ChatMessage, ChatRequest, Engine
from harnessc.runtime.executor import StageSynchronousExecutor
from harnessc.runtime.program import Program
from harnessc.runtime.runner import load_banks, load_examples
from harnessc.runtime.trace import ExampleRecord
from ophsd.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from ophsd.config import TrainConfig, param_overrides, write_run_config
from ophsd.context import DistillBatch, DistillExample, TeacherContextBuilder
from ophsd.distributed import Distributed
from ophsd.losses import DivergenceSpec, chunked_divergence
from ophsd.metrics import MetricsLog
from ophsd.model import Teacher, completion_hidden, engine_state_dict, load_policy, output_head


class Phases:
    """Wall time per phase of a step (rollout, harness, teacher, student, update, weight_push)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        yield
        self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - started


class Trainer:
    """Builds everything from a TrainConfig; `train()` runs (or resumes) to `max_steps`."""

    def __init__(
        self,
        config: TrainConfig,
        *,
        engine_factory: Callable[[Any, Any, str], Engine] | None = None,
        resume: bool = False,
    ) -> None:
        self.config = config
        self.out = Path(config.output)
        self.registry = load_user_builtins(config.builtins)
        self.harness = compile_file(
            config.harness, registry=self.registry, purpose="train", overrides=param_overrides(config)
        ).require()
        self.rows = load_examples(
            self.harness, config.data, limit=config.limit, columns=config.columns, require_oracles=True
        )
        if not self.rows:
            raise ValueError(f"{config.data} has no rows")
        self.dist = Distributed.create()
        self.device = self.dist.device
        self.model_path = config.model or _default_model()
        self.policy, self.tokenizer = load_policy(config, self.model_path, self.device)
        self.teacher = Teacher.create(config, self.policy)  # before any checkpoint: frozen = initial weights
        trainable = [param for param in self.policy.parameters() if param.requires_grad]
        self.optimizer = torch.optim.AdamW(
            trainable, lr=config.learning_rate, weight_decay=config.weight_decay, betas=config.adam_betas
        )
        warmup = config.warmup_steps
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda step: min(1.0, (step + 1) / warmup) if warmup else 1.0
        )
        self.spec = DivergenceSpec(config.loss, config.jsd_beta, config.top_k, config.token_clip)
        self.harness_program = Program(
            self.harness,
            mode="train",
            registry=self.registry,
            seed=config.seed,
            default_max_tokens=config.harness_max_tokens,
        )
        self.student_program = Program(
            self.harness,
            mode="train",
            registry=self.registry,
            seed=config.seed,
            default_max_tokens=config.harness_max_tokens,
            student_only=True,
        )
        self.banks = load_banks(self.harness, config.banks, self.harness_program.bank_entry)
        self.harness_program.banks.update(self.banks)
        pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.tokenizer.eos_token_id
        self.builder = TeacherContextBuilder(
            lambda messages, kwargs: chat_template_ids(self.tokenizer, messages, kwargs),
            pad_id,
            max_prompt_tokens=config.max_prompt_tokens,
            student_template_kwargs=config.student_template_kwargs,
            teacher_template_kwargs=config.teacher_template_kwargs,
            missing_teacher=config.missing_teacher,
        )
        self.step = 0
        if resume:
            self._resume()
        self.engine = (engine_factory or _create_engine)(self, config, self.model_path)
        if resume and config.engine == "vllm":
            self.engine.load_weights(engine_state_dict(self.policy))
        self.metrics = (
            MetricsLog(self.out, tensorboard=config.tensorboard, truncate_after=self.step)
            if self.dist.is_main
            else None
        )
        self.probe: DistillBatch | None = None
        self.initial_probe: float | None = None

    # ---- data ---------------------------------------------------------------------------------------------------

    def batch_rows(self, step: int) -> list[tuple[int, dict[str, Any]]]:
        """Rows of a step: consecutive slices of per-epoch permutations (a pure function of seed and step)."""
        size, count = self.config.batch_size, len(self.rows)
        picked = []
        for position in range(step * size, (step + 1) * size):
            epoch, offset = divmod(position, count)
            order = list(range(count))
            random.Random(f"{self.config.seed}/{epoch}").shuffle(order)
            picked.append(self.rows[order[offset]])
        return picked

    # ---- one step ---------------------------------------------------------------------------------------------------

    def rollout(self, rows, step: int) -> tuple[list[ChatRequest], list, list[ExampleRecord]]:
        """Student samples (one per prompt) from the current weights, and how the student's answers grade."""
        states = [self.student_program.new_example(index, inputs, replica=step) for index, inputs in rows]
        requests = [self._student_request(state) for state in states]
        completions = self.engine.chat(requests)
        graded = []
        for state, request, samples in zip(states, requests, completions, strict=True):
            state.prompts["student"] = (request, 0)
            self.student_program.finish_llm(self.student_program.student_stage, state, samples)
            graded.append(self.student_program.finish(state))
        return requests, completions, graded

    def _student_request(self, state) -> ChatRequest:
        request = self.student_program.request(self.harness.student, state, "student", 0)
        sampling = request.sampling
        if self.config.max_new_tokens is not None:
            sampling = dataclasses.replace(sampling, max_tokens=self.config.max_new_tokens)
        if self.config.rollout_temperature is not None:
            sampling = dataclasses.replace(sampling, temperature=self.config.rollout_temperature)
        return dataclasses.replace(request, sampling=dataclasses.replace(sampling, n=1))

    def run_harness(self, rows, step: int) -> list[ExampleRecord]:
        executor = StageSynchronousExecutor(self.harness_program, self.engine)
        return executor.run([(index, inputs, step) for index, inputs in rows])

    def distill_examples(self, requests, completions, records) -> list[DistillExample]:
        examples = []
        for request, samples, record in zip(requests, completions, records, strict=True):
            teacher = record.teacher
            examples.append(
                DistillExample(
                    student_messages=request.messages,
                    student_template_kwargs=request.template_kwargs,
                    teacher_messages=tuple(ChatMessage(m.role, m.content) for m in teacher.messages)
                    if teacher
                    else None,
                    teacher_template_kwargs=teacher.template_kwargs if teacher else {},
                    completion_ids=tuple(samples[0].token_ids) if samples[0].finish_reason != "error" else (),
                    teacher_source=teacher.source if teacher else None,
                )
            )
        return examples

    def teacher_hidden(self, batch: DistillBatch) -> torch.Tensor:
        """The teacher's final hidden states (N, H) at the completion positions of its sequences (no grad)."""
        with self.teacher.active() as teacher:
            return completion_hidden(
                teacher,
                batch.teacher_input_ids.to(self.device),
                batch.teacher_attention_mask.to(self.device),
                batch.teacher_positions,
            )

    def divergence(self, batch: DistillBatch, teacher_hidden: torch.Tensor, *, grad: bool) -> torch.Tensor:
        """Per-token divergence (N,) of the current student from the teacher on `batch`."""
        with torch.enable_grad() if grad else torch.no_grad():
            self.policy.train(grad)
            student_hidden = completion_hidden(
                self.policy,
                batch.student_input_ids.to(self.device),
                batch.student_attention_mask.to(self.device),
                batch.student_positions,
            )
            return chunked_divergence(
                student_hidden,
                teacher_hidden,
                output_head(self.policy),
                self.teacher.head(),
                self.spec,
                self.config.loss_chunk_size,
            )

    def train_step(self) -> dict[str, Any]:
        step, phases = self.step, Phases()
        batch_rows = self.batch_rows(step)
        rows = self.dist.shard(batch_rows)  # this process's share (all of it without a launcher)
        with phases("rollout"):
            requests, completions, student_records = self.rollout(rows, step)
        with phases("harness"):
            records = self.run_harness(rows, step)
        batch = self.builder.build(self.distill_examples(requests, completions, records))
        grad_norm, skipped, loss_value = float("nan"), True, float("nan")
        tokens = self.dist.sum(batch.tokens)  # the loss is a mean over every process's completion tokens
        if tokens:
            loss_sum = 0.0
            if batch.tokens:
                with phases("teacher"):
                    teacher_hidden = self.teacher_hidden(batch)
                with phases("student"):  # forward, the chunked loss (teacher head included) and backward
                    loss = self.divergence(batch, teacher_hidden, grad=True).sum() / tokens
                    loss.backward()
                loss_sum = loss.item()
            loss_value = self.dist.sum(loss_sum)
            with phases("update"):
                grad_norm, skipped = self._update()
        self.optimizer.zero_grad(set_to_none=True)
        with phases("weight_push"):
            if not skipped and self.config.engine == "vllm":
                self.engine.load_weights(engine_state_dict(self.policy))
        self._grow_banks(batch_rows)
        self.step += 1
        metrics = self._step_metrics(
            batch, loss_value, grad_norm, skipped, completions, records, student_records, phases
        )
        metrics["tokens"] = int(tokens)
        return metrics

    def _update(self) -> tuple[float, bool]:
        params = [param for param in self.policy.parameters() if param.requires_grad]
        self.dist.sum_gradients(params)
        norm = torch.nn.utils.clip_grad_norm_(params, self.config.max_grad_norm).item()
        if not math.isfinite(norm):
            return norm, True  # a non-finite gradient would poison the weights: skip this step
        self.optimizer.step()
        self.scheduler.step()
        self.teacher.update()
        return norm, False

    def _grow_banks(self, rows) -> None:
        """Method step 10: the batch's examples, with their gold labels, join the memory banks."""
        for bank in self.harness.banks:
            entries = [self.harness_program.bank_entry(bank, inputs) for _, inputs in rows]
            self.banks[bank.name].add(entries)

    def _step_metrics(
        self,
        batch: DistillBatch,
        loss: float,
        grad_norm: float,
        skipped: bool,
        completions,
        records: list[ExampleRecord],
        student_records: list[ExampleRecord],
        phases: Phases,
    ) -> dict:
        lengths = [len(samples[0].token_ids) for samples in completions]
        sources = Counter(record.teacher.source if record.teacher else "none" for record in records)
        from_harness = sum(count for source, count in sources.items() if source not in ("student", "none"))
        graded = [record.correct for record in records if record.grade is not None]
        return {
            "step": self.step,
            "loss": loss,
            "tokens": batch.tokens,
            "grad_norm": grad_norm,
            "skipped": skipped,
            "lr": self.scheduler.get_last_lr()[0],
            "completion_length": sum(lengths) / len(lengths),
            "student_prompt_length": _mean(batch.student_prompt_lengths),
            "teacher_context_length": _mean(batch.teacher_prompt_lengths),
            "harness_success": from_harness / len(records),
            "harness_accuracy": _mean(graded),
            "student_accuracy": _mean([record.correct for record in student_records]),
            "dropped": batch.dropped,
            "truncated_student": batch.truncated_student,
            "truncated_teacher": batch.truncated_teacher,
            "teacher_sources": dict(sources),
            "seconds": dict(phases.seconds),
        }

    # ---- the probe ------------------------------------------------------------------------------------------------

    def probe_divergence(self) -> float | None:
        """Mean divergence on a fixed batch (built once, at the start, from the first rows): a clean signal of
        the student moving towards the teacher, independent of the rollouts' randomness."""
        if not self.config.probe_size:
            return None
        if self.probe is None:
            rows = self.rows[: self.config.probe_size]
            requests, completions, _ = self.rollout(rows, step=-1)
            self.probe = self.builder.build(self.distill_examples(requests, completions, self.run_harness(rows, -1)))
        if not self.probe.tokens:
            return None
        return self.divergence(self.probe, self.teacher_hidden(self.probe), grad=False).mean().item()

    # ---- the loop and checkpoints -----------------------------------------------------------------------------------

    def train(self, progress: Callable[[dict[str, Any]], None] | None = None) -> list[dict[str, Any]]:
        if self.dist.is_main:
            self.out.mkdir(parents=True, exist_ok=True)
            write_run_config(self.out, self.config)
        history = []
        if self.step == 0 and self.config.probe_size:
            self.initial_probe = self.probe_divergence()  # the reference point: the initial weights
            if self.dist.is_main:
                self.metrics.write({"step": 0, "probe_divergence": self.initial_probe})
        while self.step < self.config.max_steps:
            metrics = self.train_step()
            if self.config.probe_size and (self.step % self.config.probe_every == 0 or self.step == 1):
                metrics["probe_divergence"] = self.probe_divergence()
            if self.dist.is_main:
                self.metrics.write(metrics)
            history.append(metrics)
            if progress:
                progress(metrics)
            if self.step % self.config.save_every == 0 or self.step == self.config.max_steps:
                if self.dist.is_main:
                    save_checkpoint(self)
                self.dist.barrier()
        if self.metrics is not None:
            self.metrics.close()
        return history

    def _resume(self) -> None:
        checkpoint = latest_checkpoint(self.out)
        if checkpoint is None:
            raise FileNotFoundError(f"--resume: no checkpoint under {self.out / 'checkpoints'}")
        load_checkpoint(self, checkpoint)


def _mean(values) -> float | None:
    values = [value for value in values if value is not None]
    return sum(values) / len(values) if values else None


def _default_model() -> str:
    from harnessc.engines.default_model import default_model_dir

    return str(default_model_dir())


def _create_engine(trainer: Trainer, config: TrainConfig, model_path: str) -> Engine:
    """vLLM loads the model directory itself; the transformers engine shares the trained module."""
    from harnessc.engines import create_engine

    if config.engine == "vllm":
        return create_engine("vllm", model_path, seed=config.seed, **config.engine_options)
    return create_engine("transformers", trainer.policy, tokenizer=trainer.tokenizer, **config.engine_options)
