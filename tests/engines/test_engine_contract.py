"""The behaviour every engine promises (the `Engine` protocol), checked on the tiny model for each engine.

Each test runs once per engine ("transformers", and "vllm" when vLLM is installed); the last tests compare
the two engines with each other in float32.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from tiny_model import MAX_POSITIONS  # noqa: E402

from harnessc.engines.base import (  # noqa: E402 - after the skips above
    ChatMessage,
    ChatRequest,
    Completion,
    Engine,
    OutputConstraint,
    SamplingOptions,
)
from harnessc.engines.transformers_engine import TransformersEngine  # noqa: E402

QUESTION = (ChatMessage("user", "What is two plus two?"),)
PLAN = (
    ChatMessage("system", "You are a strategic math tutor. Do not solve."),
    ChatMessage("user", "Question: what is three times five?"),
)
VERDICT = (ChatMessage("user", "The court weighs the evidence. Theft or fraud? Yes or no?"),)
TOO_LONG = (ChatMessage("user", "two plus two " * 500),)  # longer than the context
CODE = r"[0-9]{3}-[a-z]{2}"
OK_SCHEMA = json.dumps(
    {
        "type": "object",
        "properties": {"ok": {"type": "boolean"}},
        "required": ["ok"],
        "additionalProperties": False,
    }
)


def ask(
    messages: tuple[ChatMessage, ...] = QUESTION,
    constraint: OutputConstraint | None = None,
    template_kwargs: dict[str, Any] | None = None,
    **sampling: Any,
) -> ChatRequest:
    sampling.setdefault("max_tokens", 12)
    sampling.setdefault("temperature", 0.0)
    return ChatRequest(messages, SamplingOptions(**sampling), template_kwargs or {}, constraint)


def only(engine: Engine, request: ChatRequest) -> Completion:
    [[completion]] = engine.chat([request])
    return completion


def tokens(completions: list[Completion]) -> list[tuple[int, ...]]:
    return [completion.token_ids for completion in completions]


@pytest.fixture(scope="module")
def transformers_engine(tiny_model_dir: Path) -> TransformersEngine:
    return TransformersEngine(tiny_model_dir, batch_size=4)


@pytest.fixture(scope="module")
def vllm_engine(tiny_model_dir: Path) -> Any:
    pytest.importorskip("vllm")
    from harnessc.engines.vllm_engine import VllmEngine

    return VllmEngine(tiny_model_dir, dtype="float32")


# Starting vLLM takes a while, so its half of the contract is `slow` (deselect with -m "not slow").
@pytest.fixture(scope="module", params=["transformers", pytest.param("vllm", marks=pytest.mark.slow)])
def engine(request: pytest.FixtureRequest) -> Engine:
    return request.getfixturevalue(f"{request.param}_engine")


@pytest.fixture
def original_weights(tiny_model_dir: Path) -> dict[str, Any]:
    from safetensors.torch import load_file

    return load_file(tiny_model_dir / "model.safetensors")


# -------------------------------------------------------------------------- plain generation


def test_satisfies_the_engine_protocol(engine: Engine) -> None:
    assert isinstance(engine, Engine)


def test_prompt_is_the_chat_template_with_generation_prompt(engine: Engine) -> None:
    text = engine.tokenizer.apply_chat_template(
        [{"role": "user", "content": "What is two plus two?"}], add_generation_prompt=True, tokenize=False
    )
    assert text.endswith("<|im_start|>assistant\n")
    assert engine.apply_chat_template(QUESTION) == engine.tokenizer.encode(text, add_special_tokens=False)


def test_template_kwargs_reach_the_template(engine: Engine) -> None:
    plain = engine.apply_chat_template(QUESTION)
    no_thinking = engine.apply_chat_template(QUESTION, {"enable_thinking": False})
    assert len(no_thinking) > len(plain)
    completion = only(engine, ask(template_kwargs={"enable_thinking": False}, max_tokens=2))
    assert completion.prompt_token_count == len(no_thinking)


def test_greedy_with_n_returns_n_identical_samples(engine: Engine) -> None:
    [samples] = engine.chat([ask(n=3, max_tokens=4)])
    assert len(samples) == 3 and len(set(samples)) == 1


def test_greedy_is_deterministic_and_independent_of_batch_companions(engine: Engine) -> None:
    alone = only(engine, ask())
    again = only(engine, ask())
    in_batch = engine.chat([ask(PLAN), ask(VERDICT, max_tokens=5), ask(), ask(PLAN, temperature=1.0)])[2][0]
    assert alone == again
    assert in_batch.token_ids == alone.token_ids


def test_max_tokens_ends_with_length(engine: Engine) -> None:
    completion = only(engine, ask(max_tokens=7))
    assert completion.finish_reason == "length"
    assert len(completion.token_ids) == 7
    assert completion.prompt_token_count == len(engine.apply_chat_template(QUESTION))
    assert completion.error is None and completion.logprobs is None


def test_generation_stops_at_the_context_limit(engine: Engine) -> None:
    completion = only(engine, ask(max_tokens=2 * MAX_POSITIONS))
    assert completion.finish_reason == "length"
    assert completion.prompt_token_count + len(completion.token_ids) == MAX_POSITIONS  # the tiny model's context


def test_results_keep_request_order_across_sampling_groups(engine: Engine) -> None:
    requests = [ask(PLAN, max_tokens=3), ask(max_tokens=5), ask(VERDICT, max_tokens=3), ask(max_tokens=4)]
    together = engine.chat(requests)
    assert [len(samples[0].token_ids) for samples in together] == [3, 5, 3, 4]
    assert together == [engine.chat([request])[0] for request in requests]


def test_n_samples_are_returned_and_differ(engine: Engine) -> None:
    [samples] = engine.chat([ask(temperature=1.0, n=4, seed=11, max_tokens=8)])
    assert len(samples) == 4
    assert len(set(tokens(samples))) == 4  # 8 near-uniform draws from 512 tokens never collide


def test_seeded_sampling_is_reproducible_in_any_batch(engine: Engine) -> None:
    request = ask(temperature=1.0, top_p=0.9, top_k=50, n=2, seed=7)
    alone = engine.chat([request])[0]
    batched = engine.chat([ask(PLAN, temperature=1.0, seed=1), request, ask(VERDICT, temperature=1.0)])[1]
    other_seed = engine.chat([ask(temperature=1.0, top_p=0.9, top_k=50, n=2, seed=8)])[0]
    assert tokens(batched) == tokens(alone)
    assert tokens(other_seed) != tokens(alone)


def test_sampled_logprobs_are_reported(engine: Engine) -> None:
    completion = only(engine, ask(temperature=1.0, seed=3, logprobs=True, max_tokens=6))
    assert completion.logprobs is not None and len(completion.logprobs) == 6
    assert all(-30 < logprob <= 0 for logprob in completion.logprobs)


def test_stop_string_cuts_text_and_ends_tokens_at_it(engine: Engine) -> None:
    full = only(engine, ask(max_tokens=24))
    stop = _ascii_window(full.text)
    stopped = only(engine, ask(max_tokens=24, stop=(stop,)))
    assert stopped.finish_reason == "stop"
    assert stopped.text == full.text[: full.text.index(stop)]
    # The token that completed the stop string is kept (it was sampled); nothing after it is.
    assert full.token_ids[: len(stopped.token_ids)] == stopped.token_ids
    assert stop in engine.tokenizer.decode(stopped.token_ids)
    assert stop not in engine.tokenizer.decode(stopped.token_ids[:-1])


def test_too_long_prompt_fails_alone(engine: Engine) -> None:
    long_result, fine = engine.chat([ask(TOO_LONG, n=2), ask()])
    assert [completion.finish_reason for completion in long_result] == ["error", "error"]
    assert "exceeds" in (long_result[0].error or "")
    assert long_result[0].prompt_token_count > MAX_POSITIONS
    assert fine[0].finish_reason == "length"


def test_invalid_sampling_options_fail_alone(engine: Engine) -> None:
    bad, fine = engine.chat([ask(top_p=0.0), ask(max_tokens=3)])
    assert bad[0].finish_reason == "error" and "top_p" in (bad[0].error or "")
    assert fine[0].finish_reason == "length"


# -------------------------------------------------------------------------- constrained generation


@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_choice_returns_one_of_the_choices(engine: Engine, temperature: float) -> None:
    choices = ("yes", "no", "maybe")
    [samples] = engine.chat([ask(VERDICT, OutputConstraint("choice", choices), n=6, temperature=temperature)])
    eos = engine.tokenizer.eos_token_id
    for completion in samples:
        assert completion.text in choices
        assert completion.finish_reason == "stop"
        assert completion.token_ids[-1] == eos


def test_regex_constraint_is_obeyed(engine: Engine) -> None:
    [samples] = engine.chat([ask(constraint=OutputConstraint("regex", pattern=CODE), n=3, temperature=1.0)])
    for completion in samples:
        assert re.fullmatch(CODE, completion.text), completion.text
        assert completion.finish_reason == "stop"


def test_json_constraint_is_obeyed(engine: Engine) -> None:
    completion = only(engine, ask(constraint=OutputConstraint("json", pattern=OK_SCHEMA), max_tokens=40))
    assert completion.finish_reason == "stop"
    assert isinstance(json.loads(completion.text)["ok"], bool)


def test_invalid_regex_fails_alone(engine: Engine) -> None:
    bad, fine = engine.chat([ask(constraint=OutputConstraint("regex", pattern="(unclosed")), ask()])
    assert bad[0].finish_reason == "error" and bad[0].error
    assert fine[0].finish_reason == "length"


# -------------------------------------------------------------------------- weights


def test_load_weights_changes_outputs_and_restores(engine: Engine, original_weights: dict[str, Any]) -> None:
    before = only(engine, ask(max_tokens=10))
    generator = torch.Generator().manual_seed(0)
    perturbed = {
        name: tensor + 0.5 * torch.randn(tensor.shape, generator=generator) for name, tensor in original_weights.items()
    }
    try:
        engine.load_weights(perturbed)
        after = only(engine, ask(max_tokens=10))
    finally:
        engine.load_weights(original_weights)
    assert after.token_ids != before.token_ids
    assert only(engine, ask(max_tokens=10)).token_ids == before.token_ids


# -------------------------------------------------------------------------- engines agree


AGREEMENT_REQUESTS = [ask(messages, max_tokens=24, logprobs=True) for messages in (QUESTION, PLAN, VERDICT)]


@pytest.mark.slow
def test_greedy_tokens_agree_between_engines_in_float32(
    transformers_engine: TransformersEngine, vllm_engine: Any
) -> None:
    """Same model, same prompts, float32: identical greedy tokens, log-probabilities within 1e-3."""
    reference = [samples[0] for samples in transformers_engine.chat(AGREEMENT_REQUESTS)]
    candidate = [samples[0] for samples in vllm_engine.chat(AGREEMENT_REQUESTS)]
    assert tokens(candidate) == tokens(reference)
    assert [c.text for c in candidate] == [c.text for c in reference]
    for ours, theirs in zip(reference, candidate, strict=True):
        assert ours.logprobs is not None and theirs.logprobs is not None
        assert max(abs(a - b) for a, b in zip(ours.logprobs, theirs.logprobs, strict=True)) < 1e-3


@pytest.mark.slow
def test_stop_and_grammar_semantics_agree_between_engines(
    transformers_engine: TransformersEngine, vllm_engine: Any
) -> None:
    stop = _ascii_window(only(transformers_engine, ask(max_tokens=24)).text)
    requests = [
        ask(max_tokens=24, stop=(stop,)),
        ask(constraint=OutputConstraint("regex", pattern=CODE)),
        ask(constraint=OutputConstraint("json", pattern=OK_SCHEMA), max_tokens=40),
    ]
    reference = [samples[0] for samples in transformers_engine.chat(requests)]
    candidate = [samples[0] for samples in vllm_engine.chat(requests)]
    assert candidate == reference


def _ascii_window(text: str) -> str:
    """Three letters from inside `text` (after its start), usable as a stop string."""
    match = re.search(r"[A-Za-z]{3}", text[3:])
    assert match, f"no stop string candidate in {text!r}"
    return match.group()
