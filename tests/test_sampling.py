"""The one home of sampling options (harnessc/sampling.py) and who reads it: the option table, the request
a program builds, the engines' check and the trainer's settings."""

from __future__ import annotations

import dataclasses

import pytest

from harnessc import limits
from harnessc.compiler import compile_source
from harnessc.engines._common import validate_request
from harnessc.engines.base import ChatMessage, ChatRequest
from harnessc.options import OPTIONS
from harnessc.runtime.program import Program
from harnessc.sampling import (
    SAMPLING,
    SamplingOptions,
    check_overrides,
    problem,
    sampling_options,
)

STAGE = """harness h
input question: text
llm answer {
  user "{question}"
  temperature 0.6
  top_k 20
  stop "</answer>"
}
output = answer
"""


def test_every_sampling_option_is_a_field_of_the_request_and_a_language_option() -> None:
    request_fields = [field.name for field in dataclasses.fields(SamplingOptions)]
    assert set(request_fields) == set(SAMPLING) | {"logprobs"}
    for name, option in SAMPLING.items():
        assert OPTIONS[name].type == option.type
        default = SamplingOptions.__dataclass_fields__[name].default
        if name != "max_tokens":  # every request states it
            assert default == option.default, name


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("temperature", -0.5, "must be >= 0"),
        ("temperature", 0, None),
        ("top_p", 0, "must be in (0, 1]"),
        ("top_p", 1, None),
        ("top_p", 1.5, "must be in (0, 1]"),
        ("min_p", 0, None),
        ("top_k", -1, "must be >= 0 (0 turns it off)"),
        ("max_tokens", 0, "must be >= 1"),
        ("max_tokens", 2**30, None),  # a budget past the limit is the compiler's limit-exceeded, not invalid
        ("n", 0, "must be >= 1"),
        ("seed", -7, None),
    ],
)
def test_one_rule_per_option(name: str, value: float, expected: str | None) -> None:
    assert problem(name, value) == expected


def test_the_language_limits_are_the_table_budgets() -> None:
    assert limits.MAX_SAMPLES == SAMPLING["n"].limit == 1024
    assert limits.MAX_TOKENS == SAMPLING["max_tokens"].limit == 1 << 20


def test_a_stage_gets_its_options_and_the_table_defaults() -> None:
    sampling = sampling_options({"temperature": 1, "stop": ["x"]}, max_tokens=64, seed=3)
    assert sampling == SamplingOptions(max_tokens=64, temperature=1.0, stop=("x",), seed=3)
    assert isinstance(sampling.temperature, float)
    program = Program(compile_source(STAGE).require(), seed=5)
    state = program.new_example(0, {"question": "q"})
    request = program.request(program.harness.stage("answer").prompt, state, "answer", 0)
    assert (request.sampling.temperature, request.sampling.top_k, request.sampling.stop) == (0.6, 20, ("</answer>",))
    assert (request.sampling.top_p, request.sampling.n, request.sampling.max_tokens) == (1.0, 1, 1024)


def test_engines_refuse_what_the_table_refuses() -> None:
    bad = SamplingOptions(max_tokens=0, top_p=0.0, top_k=-1)
    request = ChatRequest((ChatMessage("user", "hi"),), bad)
    assert validate_request(request) == (
        "top_p must be in (0, 1], got 0.0; top_k must be >= 0 (0 turns it off), got -1; max_tokens must be >= 1, got 0"
    )
    assert validate_request(dataclasses.replace(request, sampling=SamplingOptions(max_tokens=8))) is None


def test_overrides_are_checked_when_a_program_is_built() -> None:
    check_overrides({"temperature": 0.0, "n": 1, "logprobs": True})
    with pytest.raises(ValueError, match="temprature is not a sampling option"):
        check_overrides({"temprature": 0.0})
    with pytest.raises(ValueError, match=r"max_tokens must be >= 1, got 0"):
        Program(compile_source(STAGE).require(), sampling_overrides={"max_tokens": 0})


def test_the_trainer_settings_use_the_same_rules() -> None:
    pytest.importorskip("pydantic")
    from ophsd.config import ConfigError, load_config

    base = {"harness": "h", "data": "d", "output": "o"}
    with pytest.raises(ConfigError, match=r"max_new_tokens: must be >= 1 \(got 0\)"):
        load_config(None, base, ["max_new_tokens=0"])
    with pytest.raises(ConfigError, match=r"rollout_temperature: must be > 0: greedy rollouts"):
        load_config(None, base, ["rollout_temperature=0"])
    with pytest.raises(ConfigError, match=r"rollout_temperature: must be >= 0 \(got -1\)"):
        load_config(None, base, ["rollout_temperature=-1"])
    assert load_config(None, base, []).harness_max_tokens == SAMPLING["max_tokens"].default
