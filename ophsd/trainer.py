"""On-policy harness self-distillation: the training loop (one step of docs/training.md's "One step" per batch).

    rows ──► student rollouts (current weights, bare student prompt)      ─┐
        └──► the harness, train mode (current weights, same engine)  ──► teacher contexts
    builder: student = template(student) + completion; teacher = template(teacher ctx) + same completion
    teacher forward (no grad) ─► student forward ─► chunked divergence over completion tokens ─► step
    ─► push weights to the engine ─► add the batch to the memory banks

Nothing here knows which harness it trains with: the compiled harness decides the teacher context.

Evaluation lives in the loop: the bare student is scored on held-out data at step 0 (every run shows its own
baseline), every `eval_every` steps and at the end; the probe batch's teacher contexts are rebuilt then (a
memory bank that has grown changes them), and a few examples of what the teacher saw are kept in samples/.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import random
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch

from harnessc.console import phase, step_phase
from harnessc.engines.base import ChatRequest, Engine
from harnessc.runtime.executor import StageSynchronousExecutor
from harnessc.runtime.harness_setup import Example, UndeclaredBankError, set_up_harness
from harnessc.runtime.trace import ExampleRecord
from ophsd.checkpoint import checkpoint_dir, latest_checkpoint
from ophsd.config import ConfigError, TrainConfig, param_overrides, rollout_overrides, write_run_config
from ophsd.context import DistillBatch, DistillExample, TeacherContextBuilder
from ophsd.distributed import Distributed
from ophsd.held_out import HeldOutEvaluation
from ophsd.losses import DivergenceSpec, chunked_divergence
from ophsd.metrics import MetricsLog
from ophsd.model import (
    Teacher,
    completion_hidden,
    eval_mode,
    load_policy,
    load_weights,
    model_context_length,
    output_head,
)
from ophsd.samples import inspect_rows, save_samples
from ophsd.server_weights import create_served_engine, served_versions
from ophsd.skip_teacher import loss_rows

log = logging.getLogger("ophsd")

# Counters of examples the loss could not use as they came, with what the user is told the first time.
_WARNINGS = {
    "truncated_student": "a student prompt was over its budget and had the middle of its longest message cut "
    "before the rollout (truncation = 'middle'; see truncated_student in metrics.jsonl)",
    "truncated_teacher": "a teacher context was over its budget and had the middle of its longest message cut "
    "(see truncated_teacher in metrics.jsonl; max_prompt_tokens and the model's context set the budget)",
    "dropped_too_long": "an example did not fit the prompt budget or the model's context and was dropped "
    "(see dropped_too_long in metrics.jsonl)",
    "dropped_no_teacher": "the harness gave no teacher context for an example, which was dropped "
    "(missing_teacher = 'drop'; see harness_success in metrics.jsonl)",
    "realigned": "the teacher's chat-template opening of the assistant turn differed from the student's "
    "(e.g. a thinking switch); the teacher sequence now continues from the student's exact opening",
}


class Phases:
    """Wall time per phase of a step (rollout, harness, teacher, student, update, weight_push)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        step_phase(name)
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
        # The harness, its rows and its memory banks, set up as `harnessc run` sets them up; the setup owns
        # the banks that every program below reads.
        phase(f"compiling {config.harness} and reading {config.data}")
        try:
            self.setup = set_up_harness(
                config.harness,
                purpose="train",
                overrides=param_overrides(config),
                builtins=config.builtins,
                allow_roots=config.allow_roots,
                bank_files=config.banks,
                data=config.data,
                limit=config.limit,
                columns=config.columns,
                require_oracles=True,
            )
        except UndeclaredBankError as error:  # before the model loads, not after
            declared = ", ".join(error.declared) or "none"
            raise ConfigError(
                [f"banks: {', '.join(error.names)} is not a bank of {config.harness} (it declares: {declared})"]
            ) from None
        self.harness, self.rows = self.setup.harness, self.setup.examples
        if not self.rows:
            raise ValueError(f"{config.data} has no rows")
        eval_rows = (
            self.setup.load_examples(config.eval_data, limit=config.eval_limit, columns=config.columns)
            if config.eval_data
            else []
        )
        self.dist = Distributed.create()
        self.device = self.dist.device
        self.model_path = config.model or _default_model()
        self.context = _context_limit(config, self.model_path)  # before any weights are loaded
        phase(f"loading the model ({self.model_path})")
        self.policy, self.tokenizer = load_policy(config, self.model_path, self.device)
        self.teacher = Teacher.create(config, self.policy)  # before any checkpoint: frozen = initial weights
        self.optimizer, self.scheduler = self.dist.prepare(config, self.policy, self.teacher)  # FSDP: sharded
        self.builder = TeacherContextBuilder(
            self.tokenizer,
            max_prompt_tokens=config.max_prompt_tokens,
            max_length=self.context,
            truncation=config.truncation,
            missing_teacher=config.missing_teacher,
        )
        # The harness's stages run with the teacher's template switches, the student's rollouts with the
        # student's: the requests carry them, so the builder renders exactly what the engine rendered. The
        # rollouts' records keep the sampled token ids, and a prompt over its budget is cut before sampling.
        common = {"mode": "train", "seed": config.seed, "default_max_tokens": config.harness_max_tokens}
        self.harness_program = self.setup.program(template_kwargs=config.teacher_template_kwargs, **common)
        self.student_program = self.setup.program(
            student_only=True,
            sampling_overrides=rollout_overrides(config),
            template_kwargs=config.student_template_kwargs,
            fit_prompt=self._fit_student_prompt,
            token_ids=True,
            **common,
        )
        temperature = self._rollout_temperature()
        self.spec = DivergenceSpec(config.loss, config.jsd_beta, config.top_k, config.token_clip, temperature)
        self.warned: set[str] = set()
        self.step = 0
        if resume:
            self._resume()
        self.best: dict[str, Any] | None = _read_best(self.out) if resume else None
        self.evaluation = HeldOutEvaluation(self.setup, config, eval_rows, out=self.out) if eval_rows else None
        phase(f"starting the {config.engine} engine")
        self.engine = (engine_factory or _create_engine)(self, config, self.model_path)
        if config.engine == "openai" or (resume and config.engine == "vllm"):  # servers: version 0 or the resumed
            self.engine.load_weights(self.dist.engine_weights(self.policy))
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

    def rollout(self, rows: Sequence[Example], step: int) -> list[ExampleRecord]:
        """Student samples (one per prompt) from the current weights, graded, through the executor: each
        record's student call keeps its completion's token ids (and the prompt ids it was sampled after), and
        says whether its prompt was cut to fit before sampling (so the loss conditions on what was sampled
        after)."""
        executor = StageSynchronousExecutor(self.student_program, self.engine)
        return executor.run([(index, inputs, step) for index, inputs in rows])

    def _fit_student_prompt(self, request: ChatRequest) -> tuple[ChatRequest, bool]:
        """A rollout request with its prompt fitted to the budget its completion leaves, and whether it was cut.
        One that cannot fit is sampled as it is and dropped by the builder."""
        budget = self.builder.prompt_budget(request.sampling.max_tokens)
        fitted = self.builder.fit(request.messages, request.template_kwargs, budget)
        if fitted is None:
            return request, False
        messages, _, cut = fitted
        return dataclasses.replace(request, messages=messages), cut

    def _rollout_temperature(self) -> float:
        """The temperature student rollouts sample at (the loss compares distributions at it)."""
        index, inputs = self.rows[0]
        state, student = self.student_program.new_example(index, inputs), self.harness.student
        assert student is not None  # compiled for training: the student view exists
        temperature = self.student_program.request(student, state, "student", 0).sampling.temperature
        if temperature <= 0:
            raise ConfigError(
                [
                    f"rollout temperature: the student view samples at temperature {temperature}: greedy rollouts "
                    "are not samples of the student's distribution; set rollout_temperature (e.g. 1.0)"
                ]
            )
        return temperature

    def run_harness(self, rows: Sequence[Example], step: int) -> list[ExampleRecord]:
        executor = StageSynchronousExecutor(self.harness_program, self.engine)
        return executor.run([(index, inputs, step) for index, inputs in rows])

    def distill_examples(self, rollouts: list[ExampleRecord], records: list[ExampleRecord]) -> list[DistillExample]:
        """Per row, the student's prompt and sampled completion (from its rollout's record) with the teacher
        context the harness gave (from the harness's record)."""
        examples = []
        for rollout, record in zip(rollouts, records, strict=True):
            call = rollout.calls[0] if rollout.calls else None  # none: the student prompt did not render
            sample = call.samples[0] if call is not None and call.samples else None
            sampled = sample is not None and sample.finish_reason != "error"
            teacher = record.teacher
            examples.append(
                DistillExample(
                    student_messages=call.messages if call is not None else (),
                    student_template_kwargs=call.template_kwargs if call is not None else {},
                    teacher_messages=teacher.messages if teacher else None,
                    teacher_template_kwargs=teacher.template_kwargs if teacher else {},
                    completion_ids=(sample.token_ids or ()) if sample is not None and sampled else (),
                    teacher_source=teacher.source if teacher else None,
                    sampled_after=sample.prompt_token_ids if sample is not None and sampled else None,
                    student_truncated=call is not None and call.prompt_cut,
                )
            )
        return examples

    def build_batch(
        self, rows: Sequence[Example], step: int, phases: Phases | None = None
    ) -> tuple[DistillBatch, list[ExampleRecord], list[ExampleRecord]]:
        """Method steps 2-5 for `rows`: rollouts, the harness, the aligned sequences. Returns the batch, the
        rollouts' graded records and the harness's records."""
        phases = phases or Phases()
        with phases("rollout"):
            rollouts = self.rollout(rows, step)
        with phases("harness"):
            records = self.run_harness(rows, step)
        return self.builder.build(self.distill_examples(rollouts, records)), rollouts, records

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
        """Per-token divergence (N,) of the current student from the teacher on `batch`: the student's gradient
        pass in train mode (grad=True), any other in eval mode."""
        with torch.enable_grad() if grad else torch.no_grad(), _training(self.policy, grad):
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
        batch, rollouts, records = self.build_batch(rows, step, phases)
        self._warn_once(batch)
        number, show_every = step + 1, self.config.show_every  # numbered as its metrics line
        if show_every and (number == 1 or number % show_every == 0) and self.dist.is_main and batch.tokens:
            save_samples(self.out, number, "train", inspect_rows(self, batch, self.config.show_examples))
        grad_norm, skipped, loss_value = float("nan"), True, float("nan")
        tokens = self.dist.sum(batch.tokens)  # the loss is a mean over every process's completion tokens
        if tokens:
            loss_sum = 0.0
            if batch.tokens:
                # Rows whose teacher is exactly the student add zero loss and gradient: no pass for them.
                needed = loss_rows(batch, self.config.teacher, self.step, self.policy)
                with phases("teacher"):
                    teacher_hidden = self.teacher_hidden(needed)
                with phases("student"):  # forward, the chunked loss (teacher head included) and backward
                    loss = self.divergence(needed, teacher_hidden, grad=True).sum() / tokens
                    loss.backward()
                loss_sum = loss.item()
            else:  # FSDP: the other processes' collectives wait on this one's forwards and backward
                self.dist.idle_pass(self.policy, self.teacher)
            loss_value = self.dist.sum(loss_sum)
            with phases("update"):
                grad_norm, skipped = self._update()
        self.optimizer.zero_grad(set_to_none=True)
        with phases("weight_push"):
            if not skipped and self.config.engine in ("vllm", "openai"):
                self.engine.load_weights(self.dist.engine_weights(self.policy))
        self.setup.grow_banks([inputs for _, inputs in batch_rows])  # method step 10: every process, all rows
        self.step += 1
        metrics = self._step_metrics(batch, loss_value, grad_norm, skipped, rollouts, records, phases)
        metrics["tokens"] = int(tokens)
        metrics.update(served_versions(self.engine))  # engine openai: the weight version each replica served
        return metrics

    def _update(self) -> tuple[float, bool]:
        params = [param for param in self.policy.parameters() if param.requires_grad]
        norm = self.dist.reduce_and_clip(params, self.config.max_grad_norm)
        if not math.isfinite(norm):  # it would poison the weights: skip this step
            if "skipped" not in self.warned:
                self.warned.add("skipped")
                log.warning("step %d: the gradient was not finite; the update was skipped (see skipped)", self.step + 1)
            return norm, True
        self.optimizer.step()
        self.scheduler.step()
        self.teacher.update()
        return norm, False

    def _step_metrics(
        self,
        batch: DistillBatch,
        loss: float,
        grad_norm: float,
        skipped: bool,
        rollouts: list[ExampleRecord],
        records: list[ExampleRecord],
        phases: Phases,
    ) -> dict[str, Any]:
        lengths = [rollout.calls[0].samples[0].tokens if rollout.calls else 0 for rollout in rollouts]
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
            "student_accuracy": _mean([rollout.correct for rollout in rollouts]),
            "dropped": batch.dropped,
            **{name: getattr(batch, name) for name in _WARNINGS},
            "teacher_sources": dict(sources),
            "seconds": dict(phases.seconds),
        }

    # ---- the probe and the held-out evaluation ----------------------------------------------------------------

    def probe_divergence(self) -> float | None:
        """Mean divergence on a fixed batch of the first rows: a clean signal of the student moving towards the
        teacher, independent of the rollouts' randomness. Its rollouts and teacher contexts are rebuilt at each
        evaluation (`evaluate`), since a harness's memory bank changes what the teacher sees."""
        if not self.config.probe_size:
            return None
        if self.probe is None:
            self.probe = self.build_batch(self.rows[: self.config.probe_size], step=-1)[0]
        if not self.probe.tokens:
            return None
        return self.divergence(self.probe, self.teacher_hidden(self.probe), grad=False).mean().item()

    def evaluate(self) -> dict[str, Any]:
        """At step 0, every `eval_every` steps and at the end: the probe rebuilt (its divergence is the
        student-teacher gap now), the bare student on held-out data, and the probe batch kept in samples/."""
        phase("evaluating the initial model" if self.step == 0 else f"evaluating after step {self.step}")
        self.probe = None
        metrics: dict[str, Any] = {}
        if self.config.probe_size:
            metrics["probe_divergence"] = self.probe_divergence()
            if self.config.show_every and self.dist.is_main and self.probe is not None and self.probe.tokens:
                save_samples(self.out, self.step, "probe", inspect_rows(self, self.probe, self.config.show_examples))
        if self.evaluation is not None and self.dist.is_main:
            metrics.update(self.evaluation.run(self.engine, self.step))
        return metrics

    def _is_evaluation_step(self) -> bool:
        return self.step % self.config.eval_every == 0 or self.step == self.config.max_steps

    def _record_best(self, metrics: dict[str, Any]) -> bool:
        """Whether this step's held-out accuracy is the best so far (best.json names it)."""
        accuracy = metrics.get("eval_accuracy")
        if accuracy is None or (self.best is not None and accuracy <= self.best["eval_accuracy"]):
            return False
        self.best = {"step": self.step, "eval_accuracy": accuracy, "checkpoint": None}
        if self.step > 0:
            self.best["checkpoint"] = str(checkpoint_dir(self.out, self.step).relative_to(self.out))
        (self.out / "best.json").write_text(json.dumps(self.best, indent=2) + "\n", encoding="utf-8")
        return True

    def _warn_once(self, batch: DistillBatch) -> None:
        for name, message in _WARNINGS.items():
            if getattr(batch, name) and name not in self.warned:
                self.warned.add(name)
                log.warning("step %d: %s", self.step + 1, message)

    # ---- the loop and checkpoints -----------------------------------------------------------------------------------

    def train(self, progress: Callable[[dict[str, Any]], None] | None = None) -> list[dict[str, Any]]:
        if self.dist.is_main:
            self.out.mkdir(parents=True, exist_ok=True)
            write_run_config(self.out, self.config)
        history = []
        if self.step == 0 and (self.config.probe_size or self.evaluation is not None):
            # Every run shows its own baseline: the initial weights, evaluated as later steps are.
            metrics = {"step": 0, **self.evaluate()}
            self.initial_probe = metrics.get("probe_divergence")
            if self.metrics is not None:  # the main process
                self._record_best(metrics)
                self.metrics.write(metrics)
            if progress:
                progress(metrics)
        while self.step < self.config.max_steps:
            metrics = self.train_step()
            evaluated = self._is_evaluation_step()
            if evaluated:
                metrics.update(self.evaluate())
            elif self.config.probe_size and self.step % self.config.probe_every == 0:
                metrics["probe_divergence"] = self.probe_divergence()
            best = self.dist.is_main and evaluated and self._record_best(metrics)
            best = self.dist.sum(float(best)) > 0  # only the main process evaluates; all must agree to save
            if self.metrics is not None:
                self.metrics.write(metrics)
            history.append(metrics)
            if progress:
                progress(metrics)
            if best or self.step % self.config.save_every == 0 or self.step == self.config.max_steps:
                step_phase("saving a checkpoint")
                keep = int(self.best["step"]) if self.best and self.best["checkpoint"] else None
                self.dist.save_checkpoint(self, keep)
        if self.metrics is not None:
            self.metrics.close()
        return history

    def _resume(self) -> None:
        checkpoint = latest_checkpoint(self.out)
        if checkpoint is None:
            raise FileNotFoundError(f"--resume: no checkpoint under {self.out / 'checkpoints'}")
        self.load_state_dict(self.dist.load_checkpoint(checkpoint, self))

    def state_dict(self) -> dict[str, Any]:
        """What continues this run exactly, besides the policy's weights (a checkpoint writes those as a model
        directory): the step (which fixes the data position), optimizer, scheduler, the EMA teacher, the RNG
        states and the memory banks' entries."""
        return {
            "step": self.step,
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "teacher": self.teacher.state_dict(),
            "rng": {
                "python": random.getstate(),
                "numpy": np.random.get_state(),
                "torch": torch.get_rng_state(),
                "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
            },
            "banks": self.setup.bank_state(),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore `state_dict()`'s state, and the policy's weights from `state["model"]` when present, into a
        trainer built from the same config (its frozen teacher already holds the initial weights)."""
        if "model" in state:
            load_weights(self.policy, state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.teacher.load_state_dict(state["teacher"])
        rng = state["rng"]
        random.setstate(rng["python"])
        np.random.set_state(rng["numpy"])
        torch.set_rng_state(rng["torch"])
        if rng["cuda"] is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(rng["cuda"])
        self.setup.restore_banks(state.get("banks", {}))
        self.step = state["step"]

    @property
    def banks(self) -> dict[str, Any]:
        """The memory banks, by name (the harness setup owns them)."""
        return self.setup.banks


@contextmanager
def _training(module: torch.nn.Module, grad: bool) -> Iterator[None]:
    """Train mode for the student's gradient pass; eval mode (no dropout) for every other forward."""
    if not grad:
        with eval_mode(module):
            yield
        return
    was_training = module.training
    module.train()
    try:
        yield
    finally:
        module.train(was_training)


def _read_best(out: Path) -> dict[str, Any] | None:
    path = out / "best.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None


def _context_limit(config: TrainConfig, model_path: str) -> int | None:
    """The longest sequence (prompt + completion) this run may build: the model's positions, or the engine's
    max_model_len when that is smaller. Budgets that can never fit are configuration errors, found here,
    before any weights are loaded."""
    positions = model_context_length(model_path)
    engine_limit = config.engine_options.get("max_model_len")
    if positions and engine_limit and engine_limit > positions:
        raise ConfigError(
            [
                f"engine_options.max_model_len ({engine_limit}) is larger than the model's context "
                f"({positions} positions in {model_path}/config.json): sequences past it are out of distribution "
                "(or fail outright for learned positions); lower max_model_len"
            ]
        )
    limit = engine_limit or positions
    rollout = config.max_new_tokens
    if limit and rollout is not None and rollout >= limit:
        raise ConfigError(
            [
                f"max_new_tokens ({rollout}) leaves no room for a prompt in the model's context of {limit} tokens; "
                "lower max_new_tokens"
            ]
        )
    return limit


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
    if config.engine == "openai":  # replicas serving the policy: see server_weights.py
        return create_served_engine(trainer, config, model_path)
    model = trainer.dist.engine_model(trainer.policy)  # FSDP: a full copy, refreshed at every step
    return create_engine("transformers", model, tokenizer=trainer.tokenizer, **config.engine_options)
