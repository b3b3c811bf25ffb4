"""The trainer's configuration: one pydantic model, help text on every field, cross-field validation.

Values come from (lowest to highest precedence) the defaults below, a TOML file (`--config run.toml`),
`--set key=value` pairs and the dedicated command-line flags. The resolved configuration is written to
`OUTPUT/config.json` at the start of a run and read back by `--resume`, `ophsd eval` and `ophsd report`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from harnessc import sampling
from harnessc.cli_support import parse_pairs
from harnessc.runtime.runner import PERFORMANCE_ONLY_ENGINE_OPTIONS


class TrainConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    # ---- what to train on -------------------------------------------------------------------------------------
    harness: str = Field(description="The .harness file whose teacher view is distilled into the student view.")
    data: str = Field(
        description="Training data (JSONL, JSON, CSV, Parquet or a saved HF dataset) with the "
        "harness's inputs, oracle inputs included."
    )
    output: str = Field(description="The run directory: config, metrics, checkpoints.")
    model: str | None = Field(
        None, description="Model directory or hub id; default: the embedded SmolLM2-135M-Instruct."
    )
    columns: dict[str, str] = Field(
        default_factory=dict, description="Harness input -> data column, as `harnessc run --map`."
    )
    params: dict[str, Any] = Field(
        default_factory=dict, description="Harness `param` overrides, as `harnessc run --set`."
    )
    builtins: list[str] = Field(default_factory=list, description="Modules registering user built-ins.")
    allow_roots: list[str] = Field(
        default_factory=list,
        description="Folders the harness's imports may read besides its own folder tree, as `harnessc --allow-root`.",
    )
    banks: dict[str, str] = Field(
        default_factory=dict,
        description="Memory bank NAME -> data file to fill it with before training (it also grows online).",
    )
    limit: int | None = Field(None, ge=1, description="Use only the first N rows of the data.")

    # ---- the optimisation ---------------------------------------------------------------------------------------
    max_steps: int = Field(150, ge=1, description="Optimizer steps (the paper: 150 for math, 300 for classification).")
    batch_size: int = Field(8, ge=1, description="Prompts per step, one student sample each (the paper: 64).")
    learning_rate: float = Field(
        1e-6, gt=0, description="AdamW learning rate (paper: 1e-6 full fine-tuning; 2e-4 with LoRA)."
    )
    weight_decay: float = Field(0.1, ge=0, description="AdamW weight decay.")
    adam_betas: tuple[float, float] = Field((0.9, 0.999), description="AdamW betas.")
    warmup_steps: int = Field(0, ge=0, description="Linear learning-rate warm-up steps, then constant.")
    max_grad_norm: float = Field(
        1.0, gt=0, description="Gradient clipping norm; a step whose norm is not finite is skipped."
    )
    seed: int = Field(0, description="Seeds data order, sampling and initialisation: equal seeds give equal runs.")

    # ---- the loss -----------------------------------------------------------------------------------------------
    loss: Literal["reverse_kl", "forward_kl", "jsd"] = Field(
        "reverse_kl",
        description="Per-token divergence "
        "between student and teacher over the full vocabulary: reverse KL sum p_S(log p_S - log p_T) (the "
        "paper's), forward KL, or the generalised Jensen-Shannon divergence with `jsd_beta`.",
    )
    jsd_beta: float = Field(0.5, gt=0, lt=1, description="Mixture weight of the teacher in the JSD loss.")
    top_k: int | None = Field(
        None,
        ge=1,
        description="Restrict the divergence to the teacher's top-k tokens "
        "(both distributions renormalised there); None = full vocabulary.",
    )
    token_clip: float | None = Field(
        None, gt=0, description="Clip each token's divergence at this value (None = no clipping)."
    )
    loss_chunk_size: int = Field(
        256,
        ge=1,
        description="Completion positions per chunk of the loss: the fp32 "
        "(positions, vocab) logits exist one chunk at a time.",
    )

    # ---- sequences ----------------------------------------------------------------------------------------------
    max_new_tokens: int | None = Field(
        None, description="Student rollout length; default: the student view's max_tokens."
    )
    rollout_temperature: float | None = Field(
        None,
        description="Student rollout temperature; default: the student view's (1.0 in the paper). The loss "
        "compares both distributions at this temperature (the one the tokens were sampled from).",
    )
    max_prompt_tokens: int = Field(
        4096,
        ge=1,
        description="Prompt budget per side. Prompt + completion must also fit the model's context (its "
        "config's positions, and engine_options.max_model_len). The completion is never changed.",
    )
    truncation: Literal["middle", "drop"] = Field(
        "middle",
        description="A prompt over its budget: cut the middle of its longest message, keeping the head (system "
        "message, the problem) and the end, marked `[...]` (middle), or drop the example (drop). Counted in "
        "the metrics (truncated_student, truncated_teacher, dropped_too_long); warned about once.",
    )
    student_template_kwargs: dict[str, Any] = Field(
        default_factory=dict, description="Chat-template switches for the student side, e.g. {enable_thinking = false}."
    )
    teacher_template_kwargs: dict[str, Any] = Field(
        default_factory=dict,
        description="Chat-template switches for the teacher side (added to the teacher stage's own).",
    )
    missing_teacher: Literal["drop", "student"] = Field(
        "drop",
        description="When the harness's teacher chain "
        "gives nothing for an example: drop it from the loss, or use the student view (loss ~0).",
    )

    # ---- the models ---------------------------------------------------------------------------------------------
    teacher: Literal["frozen", "live", "ema"] = Field(
        "frozen",
        description="Teacher weights: the initial "
        "weights (frozen; with LoRA the base with the adapter disabled), the current weights (live), or an "
        "exponential moving average of the student (ema).",
    )
    ema_decay: float = Field(0.99, gt=0, lt=1, description="EMA decay for teacher = ema.")
    lora: bool = Field(False, description="Train a LoRA adapter (peft) instead of all weights.")
    lora_r: int = Field(64, ge=1, description="LoRA rank.")
    lora_alpha: int = Field(128, ge=1, description="LoRA alpha.")
    lora_dropout: float = Field(0.0, ge=0, lt=1, description="LoRA dropout.")
    lora_target_modules: list[str] | str = Field("all-linear", description="Modules LoRA adapts.")
    dtype: Literal["float32", "bfloat16", "float16", "auto"] = Field(
        "auto", description="Training dtype (auto: bfloat16 on CUDA, float32 on CPU)."
    )
    gradient_checkpointing: bool = Field(False, description="Recompute activations in backward (saves memory).")

    # ---- the engine ---------------------------------------------------------------------------------------------
    engine: Literal["transformers", "vllm", "openai"] = Field(
        "transformers",
        description="Rollout and harness engine: "
        "transformers shares the trained module; vllm runs in-process and gets the weights after each step; "
        "openai sends requests to vLLM servers (`base_urls`) and pushes the weights to them after each step.",
    )
    base_urls: list[str] = Field(
        default_factory=list,
        description="With engine = 'openai': the vLLM server replicas (e.g. http://127.0.0.1:8000/v1), each "
        "started with VLLM_SERVER_DEV_MODE=1 and able to read OUTPUT/server_weights (the weight push).",
    )
    engine_options: dict[str, Any] = Field(
        default_factory=dict, description="Engine arguments (max_model_len, gpu_memory_utilization, batch_size, ...)."
    )
    harness_max_tokens: int = Field(
        sampling.DEFAULT_MAX_TOKENS, description="max_tokens of harness stages that do not set it."
    )

    # ---- evaluation inside the loop -----------------------------------------------------------------------------
    eval_data: str | None = Field(
        None,
        description="Held-out data: the bare student is evaluated on it (greedy) at step 0, every `eval_every` "
        "steps and at the end, through the rollout engine; results in metrics.jsonl (eval_accuracy) and the "
        "best step in best.json. None = no evaluation.",
    )
    eval_every: int = Field(10, ge=1, description="Steps between evaluations (the paper: 10 or 15).")
    eval_limit: int | None = Field(None, ge=1, description="Evaluate on the first N rows of eval_data only.")
    eval_samples: int = Field(
        1,
        ge=1,
        description="Also report pass@k with k samples per example at the student view's temperature (1 = off).",
    )
    eval_harness: bool = Field(
        False,
        description="Also evaluate the model with its harness re-attached (eval_harness_accuracy): how much of "
        "the harness's gain the student has absorbed.",
    )

    # ---- seeing what the teacher saw ----------------------------------------------------------------------------
    show_every: int = Field(
        10,
        ge=0,
        description="Every N steps, keep `show_examples` examples of the batch (decoded student and teacher "
        "sequences, per-token divergence, the tokens where they disagree most) in samples/ for `ophsd show`; "
        "the probe batch is kept at each evaluation. 0 = off.",
    )
    show_examples: int = Field(2, ge=1, description="Examples kept per inspected step.")

    # ---- bookkeeping --------------------------------------------------------------------------------------------
    save_every: int = Field(50, ge=1, description="Write a checkpoint every N steps (and at the end).")
    keep_checkpoints: int = Field(
        2, ge=1, description="Keep only the newest N checkpoints (and the best held-out step's, see best.json)."
    )
    probe_size: int = Field(
        4,
        ge=0,
        description="Examples of a fixed probe batch whose teacher-student "
        "divergence is logged every `probe_every` steps (0 = off).",
    )
    probe_every: int = Field(1, ge=1, description="Steps between probe evaluations.")
    tensorboard: bool = Field(True, description="Also log to TensorBoard when it is installed.")

    # The sampling settings are checked by the one rule every sampling option has (harnessc.sampling).
    @field_validator("max_new_tokens", "harness_max_tokens")
    @classmethod
    def _token_budget(cls, value: int | None) -> int | None:
        return _sampling_value("max_tokens", value)

    @field_validator("rollout_temperature")
    @classmethod
    def _sampled(cls, value: float | None) -> float | None:
        if value == 0:
            raise ValueError("must be > 0: greedy rollouts are not samples of the student's distribution")
        return _sampling_value("temperature", value)

    @model_validator(mode="after")
    def _consistent(self) -> TrainConfig:
        if self.teacher == "ema" and self.lora:
            raise ValueError(
                "teacher = 'ema' with lora = true is not supported: an EMA of the adapter needs a "
                "second adapter; use teacher = 'frozen' (the base) or 'live' with LoRA"
            )
        if self.warmup_steps >= self.max_steps:
            raise ValueError(f"warmup_steps ({self.warmup_steps}) must be smaller than max_steps ({self.max_steps})")
        if self.limit is not None and self.probe_size > self.limit:
            raise ValueError(f"probe_size ({self.probe_size}) is larger than the data (limit {self.limit})")
        if self.engine == "openai" and not self.base_urls:
            raise ValueError("engine = 'openai' needs base_urls: the vLLM servers to roll out on (--base-url URL)")
        if self.base_urls and self.engine != "openai":
            raise ValueError(f"base_urls are for engine = 'openai', not engine = '{self.engine}'")
        if self.eval_limit is not None and self.eval_data is None:
            raise ValueError("eval_limit is set but eval_data is not: name the held-out data to evaluate on")
        if self.loss != "jsd" and self.jsd_beta != TrainConfig.model_fields["jsd_beta"].default:
            raise ValueError(f"jsd_beta ({self.jsd_beta}) only applies to loss = 'jsd', not loss = '{self.loss}'")
        return self


def _sampling_value(option: str, value: Any) -> Any:
    """`value` when it is a valid value of sampling option `option` (or None); ValueError saying why not."""
    problem = sampling.problem(option, value) if value is not None else None
    if problem is not None:
        raise ValueError(problem)
    return value


def param_overrides(config: TrainConfig) -> dict[str, str]:
    """`params` as the compiler's `--set` strings (non-strings JSON-encoded)."""
    return {name: value if isinstance(value, str) else json.dumps(value) for name, value in config.params.items()}


def rollout_overrides(config: TrainConfig) -> dict[str, Any]:
    """The sampling overrides of student rollouts: one sample per prompt, and the rollout's own length and
    temperature when set (the student view's otherwise)."""
    overrides: dict[str, Any] = {"n": 1}
    if config.max_new_tokens is not None:
        overrides["max_tokens"] = config.max_new_tokens
    if config.rollout_temperature is not None:
        overrides["temperature"] = config.rollout_temperature
    return overrides


def _parse_value(raw: str) -> Any:
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        return raw


def load_config(
    config_file: str | None, values: dict[str, Any], overrides: list[str], *, resume: bool = False
) -> TrainConfig:
    """Build the configuration: the TOML file, then `--set key=value` (values read as JSON when they parse),
    then `values` from dedicated flags (None means not given). Raises ConfigError with every problem.

    With `resume`, a run directory `values["output"]` that has a config.json is continued: without a
    `config_file` its saved settings are the base that `--set` and the flags change, and the result may
    differ from them only in RESUMABLE_CHANGES (ConfigError naming every other difference)."""
    output = values.get("output")
    saved = read_run_config(output) if resume and output and (Path(output) / "config.json").exists() else None
    data: dict[str, Any] = saved.model_dump() if saved is not None and config_file is None else {}
    if config_file:
        import tomllib

        from harnessc.textfile import EncodingProblem, read_text

        try:  # a leading byte-order mark is skipped; a file that is not UTF-8 names its line and byte
            data.update(tomllib.loads(read_text(config_file)))
        except EncodingProblem as error:
            raise ConfigError([str(error)]) from None
        except (OSError, tomllib.TOMLDecodeError) as error:
            raise ConfigError([f"{config_file}: {error}"]) from None
    try:
        data.update({key: _parse_value(raw) for key, raw in parse_pairs(overrides, "--set", form="KEY=VALUE").items()})
    except ValueError as error:
        raise ConfigError([str(error)]) from None
    data.update({key: value for key, value in values.items() if value is not None})
    try:
        config = TrainConfig(**data)
    except ValidationError as error:
        raise ConfigError([_describe(problem) for problem in error.errors()]) from None
    conflicts = resume_conflicts(saved, config) if saved is not None else []
    if conflicts:  # resuming with other settings would silently train a different run
        raise ConfigError(
            [f"--resume continues {output} with its own settings; these differ:"]
            + conflicts
            + ["start a new --output for a different run (max_steps, save_every, ... may change)"]
        )
    return config


def _describe(problem: Mapping[str, Any]) -> str:
    where = ".".join(str(part) for part in problem["loc"]) or "config"
    value = problem.get("input")
    shown = "" if isinstance(value, dict) or where == "config" else f" (got {value!r})"
    message = problem["msg"].removeprefix("Value error, ")
    if problem["type"] == "extra_forbidden":
        from harnessc.names import did_you_mean

        hint = did_you_mean(where, TrainConfig.model_fields)
        message = "unknown setting" + (f"; {hint[0]}" if hint else "")
    return f"{where}: {message}{shown}"


class ConfigError(ValueError):
    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("invalid configuration:\n" + "\n".join(f"  - {problem}" for problem in problems))


def config_reference() -> str:
    """The configuration reference as Markdown (docs/training.md embeds it; a test keeps them in sync)."""
    lines = ["| setting | default | description |", "| --- | --- | --- |"]
    for name, field in TrainConfig.model_fields.items():
        default = "required" if field.is_required() else json.dumps(field.get_default(call_default_factory=True))
        lines.append(f"| `{name}` | `{default}` | {field.description} |")
    return "\n".join(lines)


def read_run_config(run_dir: str | Path) -> TrainConfig:
    """The configuration a run wrote to RUN_DIR/config.json.

    Raises:
        ConfigError: the run directory or its config.json is missing, unreadable, not JSON or not a valid
            configuration (the message names the file).
    """
    root = Path(run_dir)
    if not root.is_dir():
        what = "is not a directory" if root.exists() else "does not exist"
        raise ConfigError([f"{root} {what}; pass a run directory written by `ophsd train --output`"])
    path = root / "config.json"
    try:
        values = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError([f"{path} is missing: {root} is not a run directory written by `ophsd train`"]) from None
    except (OSError, ValueError) as error:
        raise ConfigError([f"{path} cannot be read ({error}); was the run killed while writing it?"]) from None
    if not isinstance(values, dict):
        raise ConfigError([f"{path} is not a configuration (a JSON object)"])
    try:
        return TrainConfig(**values)
    except ValidationError as error:
        raise ConfigError([f"{path}: {_describe(problem)}" for problem in error.errors()]) from None


def write_run_config(output: str | Path, config: TrainConfig) -> None:
    """Write RUN_DIR/config.json atomically (a temporary file renamed into place): a kill while writing
    leaves the previous file, never a truncated one that would stop every later `--resume`."""
    path = Path(output) / "config.json"
    staging = path.with_name(path.name + ".tmp")
    staging.write_text(config.model_dump_json(indent=2) + "\n", encoding="utf-8")
    os.replace(staging, path)


# Settings a resumed run may change: they decide how long, how often and how fast, never what is learnt
# from which rows.
RESUMABLE_CHANGES = frozenset(
    {"max_steps", "save_every", "keep_checkpoints", "probe_every", "tensorboard", "gradient_checkpointing", "base_urls"}
)


def resume_conflicts(saved: TrainConfig, current: TrainConfig) -> list[str]:
    """The settings in which a resumed run differs from the run it continues, as `name: old then, new now`
    sentences (empty when it may continue). See RESUMABLE_CHANGES for what may change."""
    conflicts = []
    before, now = saved.model_dump(mode="json"), current.model_dump(mode="json")
    for name in TrainConfig.model_fields:
        old, new = before.get(name), now.get(name)
        if name in RESUMABLE_CHANGES or old == new:
            continue
        if name == "engine_options" and isinstance(old, dict) and isinstance(new, dict):
            old = {key: value for key, value in old.items() if key not in PERFORMANCE_ONLY_ENGINE_OPTIONS}
            new = {key: value for key, value in new.items() if key not in PERFORMANCE_ONLY_ENGINE_OPTIONS}
            if old == new:
                continue
        conflicts.append(f"{name}: {json.dumps(old)} then, {json.dumps(new)} now")
    return conflicts
