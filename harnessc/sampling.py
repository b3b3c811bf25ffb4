"""Sampling options in one place: each option's type, default and valid range, and the one check of a value.

    llm solve { user "..."  temperature 0.6  n 4 }     # a stage sets options in the harness language
    SamplingOptions(max_tokens=1024, temperature=0.6, n=4, ...)    # what an engine is asked to sample with

Everyone who reads or writes a sampling option goes through SAMPLING: the compiler (the option's type in
options.py, its range in checks/options.py, its budget in checks/budgets.py), `Program.request` (the
defaults of the options a stage leaves out, and the overrides a program carries), the engines
(`sampling_problems` before a request runs) and the trainer (its rollout and evaluation overrides). A new
option is one entry in SAMPLING and the matching field of SamplingOptions (a test keeps the two in step),
plus its translation in each engine (vllm_engine._sampling_params; transformers_engine._filter_logits or
_decode).

Pure data: nothing here imports torch, an engine or the IR.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from harnessc.types import FLOAT, INT, TEXT, ListOf, Type

DEFAULT_MAX_TOKENS = 1024  # a stage without `max_tokens` (the run's --max-tokens, the trainer's harness_max_tokens)


@dataclass(frozen=True, slots=True)
class SamplingOption:
    """One option. Valid values lie between `minimum` (excluded when `open_minimum`) and `maximum`;
    `requirement` says so in words, for messages. `limit` is a budget, not a validity rule: a value past it
    is well formed but no run can spend it (the compiler reports it as `limit-exceeded`)."""

    type: Type  # the harness language's type of the option's value
    default: Any  # what a stage that does not set the option gets
    summary: str  # docs/language.md's option table
    example: str
    minimum: float | None = None
    open_minimum: bool = False
    maximum: float | None = None
    requirement: str = ""
    limit: int | None = None


SAMPLING: dict[str, SamplingOption] = {
    "temperature": SamplingOption(
        FLOAT, 1.0, "sampling temperature, >= 0 (0 = greedy)", "temperature 0.6", minimum=0, requirement="must be >= 0"
    ),
    "top_p": SamplingOption(
        FLOAT,
        1.0,
        "nucleus sampling mass, in (0, 1]",
        "top_p 0.95",
        minimum=0,
        open_minimum=True,
        maximum=1,
        requirement="must be in (0, 1]",
    ),
    "top_k": SamplingOption(
        INT,
        0,
        "sample among the k most likely tokens, >= 0 (0 = off)",
        "top_k 20",
        minimum=0,
        requirement="must be >= 0 (0 turns it off)",
    ),
    "min_p": SamplingOption(
        FLOAT,
        0.0,
        "drop tokens below this fraction of the top probability, in [0, 1]",
        "min_p 0.05",
        minimum=0,
        maximum=1,
        requirement="must be in [0, 1]",
    ),
    "max_tokens": SamplingOption(
        INT,
        DEFAULT_MAX_TOKENS,
        "the most tokens to generate, 1 to 1,048,576 (always set: engines' defaults are tiny)",
        "max_tokens 4096",
        minimum=1,
        requirement="must be >= 1",
        limit=1 << 20,  # 1,048,576: the longest context windows
    ),
    "n": SamplingOption(
        INT,
        1,
        "samples per example, 1 to 1,024; with n > 1 the stage's value is list[text]",
        "n 8",
        minimum=1,
        requirement="must be >= 1",
        limit=1024,
    ),
    # None: Program derives a per-request seed from the run's seed (or the stage's own).
    "seed": SamplingOption(INT, None, "a per-stage sampling seed (the run's seed is used when absent)", "seed 1234"),
    "stop": SamplingOption(
        ListOf(TEXT), (), "strings that end generation (a single string is allowed)", 'stop ["</answer>"]'
    ),
}


@dataclass(frozen=True, slots=True)
class SamplingOptions:
    """What one request samples with: SAMPLING's options (defaults included) and `logprobs`.

    `max_tokens` has no default here: every request states it (vLLM's own default of 16 bites silently)."""

    max_tokens: int
    temperature: float = SAMPLING["temperature"].default
    top_p: float = SAMPLING["top_p"].default
    top_k: int = SAMPLING["top_k"].default  # 0 = disabled
    min_p: float = SAMPLING["min_p"].default  # 0 = disabled
    stop: tuple[str, ...] = SAMPLING["stop"].default
    n: int = SAMPLING["n"].default
    seed: int | None = SAMPLING["seed"].default
    logprobs: bool = False  # return the logprob of each sampled token (not a harness option)


def problem(name: str, value: Any) -> str | None:
    """Why `value` is not a valid value of option `name` (its requirement, e.g. "must be in (0, 1]"), or None
    when it is valid or the option has no range. Budgets (`limit`) are not checked: see SamplingOption.

    Raises KeyError for a name that is not a sampling option."""
    option = SAMPLING[name]
    if option.minimum is None and option.maximum is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return f"must be a number, not {value!r}"
    low, high = option.minimum, option.maximum
    if low is not None and (value < low or (option.open_minimum and value == low)):
        return option.requirement
    if high is not None and value > high:
        return option.requirement
    return None


def sampling_problems(sampling: SamplingOptions) -> list[str]:
    """Every invalid option of a request, as `name requirement, got value` sentences (empty when valid)."""
    found = [(name, problem(name, getattr(sampling, name))) for name in SAMPLING]
    return [f"{name} {why}, got {getattr(sampling, name)}" for name, why in found if why is not None]


def check_overrides(overrides: Mapping[str, Any]) -> None:
    """Refuse sampling overrides (a program's, the trainer's) that name no field of SamplingOptions or hold an
    invalid value (ValueError naming each)."""
    known = {field.name for field in fields(SamplingOptions)}
    problems = [f"{name} is not a sampling option" for name in overrides if name not in known]
    problems += [
        f"{name} {why}, got {value}"
        for name, value in overrides.items()
        if name in SAMPLING and (why := problem(name, value)) is not None
    ]
    if problems:
        raise ValueError("sampling overrides: " + "; ".join(problems))


def sampling_options(values: Mapping[str, Any], *, max_tokens: int, seed: int | None) -> SamplingOptions:
    """The options of a stage that sets `values` (name -> value; e.g. {"temperature": 0.6}): the options it
    leaves out take SAMPLING's defaults, `max_tokens` the run's and `seed` the one given."""
    chosen: dict[str, Any] = {"max_tokens": max_tokens, "seed": seed}
    for name, option in SAMPLING.items():
        if name in values and name != "seed":
            chosen[name] = _as_python(option.type, values[name])
    return SamplingOptions(**chosen)


def _as_python(type_: Type, value: Any) -> Any:
    """A language value as the engines take it: floats for FLOAT (an `int` literal is allowed), tuples for lists."""
    if type_ == FLOAT:
        return float(value)
    if type_ == INT:
        return int(value)
    if isinstance(type_, ListOf):
        return tuple(value)
    return value
