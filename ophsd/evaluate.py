"""`ophsd eval`: each model of a run (the initial one and checkpoints), with and without its harness.

Reuses `harnessc run` (harnessc.runtime.runner): records go to RUN_DIR/eval/<model>-<view>.jsonl and are
resumed, so an interrupted evaluation continues where it stopped. A LoRA checkpoint is merged into a full
model directory once (RUN_DIR/checkpoints/step-N/merged) because both engines load plain models.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

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
            summary = run(options, lambda options=options: create_run_engine(options))
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
