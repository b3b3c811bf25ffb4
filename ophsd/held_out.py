"""Scoring models on held-out data: `ophsd eval` after a run, and the trainer's evaluation inside the loop.

`ophsd eval` (`evaluate_run`) scores each model of a run (the initial one and checkpoints), with and without
its harness. It reuses `harnessc run` (harnessc.runtime.runner): records go to RUN_DIR/eval/<model>-<view>.jsonl
and are resumed, so an interrupted evaluation continues where it stopped. A LoRA checkpoint is merged into a
full model directory once (RUN_DIR/checkpoints/step-N/merged) because both engines load plain models.

`HeldOutEvaluation` scores the bare student during training, through the trainer's own engine.
"""

from __future__ import annotations

import functools
import json
import shutil
from pathlib import Path
from typing import Any

from harnessc.console import phase
from harnessc.engines.base import Engine
from harnessc.runtime.harness_setup import Example, HarnessSetup
from harnessc.runtime.runner import RunOptions, create_run_engine, run
from ophsd.checkpoint import list_checkpoints
from ophsd.config import TrainConfig, param_overrides, read_run_config


def evaluate_run(
    run_dir: str,
    *,
    data: str | None = None,
    limit: int | None = None,
    engine: str | None = None,
    checkpoints: list[str] | None = None,
    samples: int = 1,
) -> list[dict[str, Any]]:
    root = Path(run_dir)
    config = read_run_config(root)
    models = _models(root, config, checkpoints)
    rows = []
    for name, model_dir in models:
        for view, student_only in (("harness", False), ("student", True)):
            options = RunOptions(
                harness=config.harness,
                data=data or config.data,
                out=str(root / "eval" / f"{name}-{view}.jsonl"),
                model=model_dir,
                engine=engine or config.engine,
                engine_options=config.engine_options,
                limit=limit,
                resume=True,
                overrides=param_overrides(config),
                columns=config.columns,
                banks=config.banks,
                builtins=config.builtins,
                student_only=student_only,
                samples=samples,
                seed=config.seed,
                default_max_tokens=config.harness_max_tokens,
            )
            phase(f"{name} model, {view} view")
            summary = run(options, functools.partial(create_run_engine, options))
            rows.append(
                {
                    "model": name,
                    "view": view,
                    "accuracy": summary.accuracy,
                    "pass_at_k": summary.pass_at_k,
                    "records": summary.records,
                    "failures": summary.failures,
                }
            )
    (root / "eval" / "summary.json").write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
    return rows


def _models(root: Path, config: TrainConfig, names: list[str] | None) -> list[tuple[str, str | None]]:
    found = {path.name: path for path in list_checkpoints(root)}
    if names is None:
        names = ["base"] + ([max(found)] if found else [])
    models = []
    for name in names:
        if name == "base":
            models.append(("base", config.model))
        elif name in found:
            models.append((name, str(_loadable(found[name], config))))
        else:
            raise FileNotFoundError(
                f"no checkpoint {name!r} in {root / 'checkpoints'}; have: {', '.join(sorted(found))}"
            )
    return models


def _loadable(checkpoint: Path, config: TrainConfig) -> Path:
    model_dir = checkpoint / "model"
    if not (model_dir / "adapter_config.json").exists():
        return model_dir
    merged = checkpoint / "merged"
    if not merged.is_dir():
        from peft import AutoPeftModelForCausalLM
        from transformers import AutoTokenizer

        # Written beside, then renamed: a kill mid-write leaves no half-merged model that looks complete.
        staging = checkpoint / "merged.tmp"
        shutil.rmtree(staging, ignore_errors=True)
        AutoPeftModelForCausalLM.from_pretrained(str(model_dir)).merge_and_unload().save_pretrained(staging)
        AutoTokenizer.from_pretrained(str(model_dir)).save_pretrained(staging)
        staging.rename(merged)
    return merged


class HeldOutEvaluation:
    """Evaluation inside the training loop: the bare student on held-out rows, through the trainer's own engine
    (no second model load), batched stage-synchronously like `harnessc run --student-only`.

    `run(engine, step)` returns metrics: `eval_accuracy` (greedy), `eval_pass_at_k` (k = `samples` at the
    student view's temperature, when k > 1) and `eval_harness_accuracy` (the harness re-attached, when
    `harness` is true). Records go to OUTPUT/evals/step-NNNNNN-<view>.jsonl, so every number can be read back.
    """

    def __init__(self, setup: HarnessSetup, config: TrainConfig, rows: list[Example], *, out: Path) -> None:
        self.rows = rows
        self.samples = config.eval_samples
        self.out = out / "evals"
        common: dict[str, Any] = {
            "mode": "inference",
            "seed": config.seed,
            "default_max_tokens": config.harness_max_tokens,
            "template_kwargs": config.student_template_kwargs,
        }
        student = {"n": 1, **({"max_tokens": config.max_new_tokens} if config.max_new_tokens else {})}
        self.programs = {
            "student": setup.program(student_only=True, sampling_overrides={**student, "temperature": 0.0}, **common)
        }
        if self.samples > 1:  # at the student view's own temperature
            self.programs["student-sampled"] = setup.program(student_only=True, sampling_overrides=student, **common)
        if config.eval_harness:  # the harness reads the banks as they have grown
            common["template_kwargs"] = config.teacher_template_kwargs
            self.programs["harness"] = setup.program(**common)

    def run(self, engine: Engine, step: int) -> dict[str, float | None]:
        from harnessc.runtime.executor import StageSynchronousExecutor
        from harnessc.runtime.runner import append_records

        self.out.mkdir(parents=True, exist_ok=True)
        metrics: dict[str, float | None] = {}
        for view, program in self.programs.items():
            replicas = self.samples if view == "student-sampled" else 1
            items = [(index, inputs, replica) for index, inputs in self.rows for replica in range(replicas)]
            records = StageSynchronousExecutor(program, engine).run(items)
            path = self.out / f"step-{step:06d}-{view}.jsonl"
            path.unlink(missing_ok=True)
            append_records(path, records)
            correct = [record.correct for record in records]
            if view == "student":
                metrics["eval_accuracy"] = sum(correct) / len(correct)
            elif view == "harness":
                metrics["eval_harness_accuracy"] = sum(correct) / len(correct)
            else:
                solved: dict[int, float] = {}
                for record in records:
                    solved[record.index] = max(solved.get(record.index, 0.0), record.correct)
                metrics["eval_pass_at_k"] = sum(value > 0 for value in solved.values()) / len(solved)
        return metrics
