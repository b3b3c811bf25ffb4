"""What only the transformers engine does: share the trainer's module, score choices, filter by hand."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from harnessc.engines import UnsupportedConstraintError  # noqa: E402 - after the skips above
from harnessc.engines.base import (  # noqa: E402
    ChatMessage,
    ChatRequest,
    Completion,
    OutputConstraint,
    SamplingOptions,
)
from harnessc.engines.transformers_engine import TransformersEngine  # noqa: E402

QUESTION = (ChatMessage("user", "What is two plus two?"),)
VERDICT = (ChatMessage("user", "The court weighs the evidence. Theft or fraud? Yes or no?"),)


def ask(messages: tuple[ChatMessage, ...] = QUESTION, **options: Any) -> ChatRequest:
    constraint = options.pop("constraint", None)
    options.setdefault("max_tokens", 8)
    options.setdefault("temperature", 0.0)
    return ChatRequest(messages, SamplingOptions(**options), constraint=constraint)


def only(engine: TransformersEngine, request: ChatRequest) -> Completion:
    [[completion]] = engine.chat([request])
    return completion


@pytest.fixture(scope="module")
def model_and_tokenizer(tiny_model_dir: Path) -> tuple[Any, Any]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return AutoModelForCausalLM.from_pretrained(tiny_model_dir), AutoTokenizer.from_pretrained(tiny_model_dir)


@pytest.fixture
def engine(model_and_tokenizer: tuple[Any, Any]) -> TransformersEngine:
    model, tokenizer = model_and_tokenizer
    return TransformersEngine(model, tokenizer=tokenizer, batch_size=3)


def test_shares_the_model_object_and_restores_its_mode(engine: TransformersEngine) -> None:
    model = engine.model
    before = only(engine, ask())
    model.train()
    try:
        with torch.no_grad():
            model.lm_head.weight.mul_(-1.0)  # what an optimizer step does to the shared module
        after = only(engine, ask())
        assert model.training, "generation must hand the module back in the mode it found it"
    finally:
        with torch.no_grad():
            model.lm_head.weight.mul_(-1.0)
        model.eval()
    assert after.token_ids != before.token_ids
    assert only(engine, ask()) == before


def test_load_weights_of_the_models_own_tensors_copies_nothing(
    engine: TransformersEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("load_state_dict called for the model's own tensors")

    monkeypatch.setattr(engine.model, "load_state_dict", refuse)
    engine.load_weights(engine.model.state_dict())


def test_load_weights_rejects_names_the_model_lacks(engine: TransformersEngine) -> None:
    with pytest.raises(KeyError, match="not.a.weight"):
        engine.load_weights({"not.a.weight": torch.zeros(1)})


def test_partial_state_dict_updates_only_what_it_names(engine: TransformersEngine) -> None:
    head = engine.model.lm_head.weight
    original = head.detach().clone()
    embedding = engine.model.model.embed_tokens.weight.detach().clone()
    try:
        engine.load_weights({"lm_head.weight": torch.zeros_like(original)})
        assert torch.count_nonzero(engine.model.lm_head.weight) == 0
        assert torch.equal(engine.model.model.embed_tokens.weight, embedding)
    finally:
        engine.load_weights({"lm_head.weight": original})


def test_logprobs_match_a_direct_forward_pass(engine: TransformersEngine) -> None:
    completion = only(engine, ask(temperature=1.0, seed=5, logprobs=True))
    prompt = engine.apply_chat_template(QUESTION)
    sequence = torch.tensor([prompt + list(completion.token_ids)])
    with torch.no_grad():
        logits = engine.model(sequence).logits[0, len(prompt) - 1 : -1]  # (completion, V)
    expected = torch.log_softmax(logits.float(), dim=-1).gather(-1, sequence[0, len(prompt) :, None])
    assert torch.allclose(torch.tensor(completion.logprobs), expected.squeeze(-1), atol=1e-4)


@pytest.mark.parametrize("filtering", [{"top_k": 1}, {"top_p": 1e-6}, {"min_p": 1.0}])
def test_filters_that_keep_one_token_equal_greedy(engine: TransformersEngine, filtering: dict) -> None:
    greedy = only(engine, ask())
    assert only(engine, ask(temperature=1.0, seed=9, **filtering)).token_ids == greedy.token_ids


def test_greedy_choice_is_the_most_likely_continuation(engine: TransformersEngine) -> None:
    choices = ("yes", "no", "maybe", "fraud")
    picked = only(engine, ask(VERDICT, constraint=OutputConstraint("choice", choices), logprobs=True))
    prompt = engine.apply_chat_template(VERDICT)
    eos = engine.tokenizer.eos_token_id
    scores = {}
    for choice in choices:
        continuation = engine.tokenizer.encode(choice, add_special_tokens=False) + [eos]
        sequence = torch.tensor([prompt + continuation])
        with torch.no_grad():
            logprobs = torch.log_softmax(engine.model(sequence).logits[0, len(prompt) - 1 : -1], dim=-1)
        scores[choice] = logprobs.gather(-1, sequence[0, len(prompt) :, None]).sum().item()
    assert picked.text == max(scores, key=scores.get)
    assert picked.logprobs is not None
    assert sum(picked.logprobs) == pytest.approx(scores[picked.text], abs=1e-4)


def test_choice_longer_than_max_tokens_is_cut_with_length(engine: TransformersEngine) -> None:
    long_choice = "The quick brown fox jumps over the lazy dog"
    completion = only(engine, ask(constraint=OutputConstraint("choice", (long_choice,)), max_tokens=2))
    assert completion.finish_reason == "length" and len(completion.token_ids) == 2
    assert long_choice.startswith(completion.text)


def test_sub_batches_give_the_same_results_as_one_batch(model_and_tokenizer: tuple[Any, Any]) -> None:
    model, tokenizer = model_and_tokenizer
    requests = [ask(temperature=1.0, seed=seed, n=2) for seed in range(5)]
    small = TransformersEngine(model, tokenizer=tokenizer, batch_size=1).chat(requests)
    large = TransformersEngine(model, tokenizer=tokenizer, batch_size=16).chat(requests)
    assert [[c.token_ids for c in samples] for samples in small] == [
        [c.token_ids for c in samples] for samples in large
    ]


def test_rows_that_finish_early_leave_the_batch_without_disturbing_others(
    model_and_tokenizer: tuple[Any, Any],
) -> None:
    model, tokenizer = model_and_tokenizer
    requests = [ask(temperature=1.0, seed=seed, n=3, max_tokens=16, stop=(" ",)) for seed in range(3)]
    batched = TransformersEngine(model, tokenizer=tokenizer, batch_size=9).chat(requests)
    lengths = {len(c.token_ids) for samples in batched for c in samples}
    assert len(lengths) > 2, "the rows should stop at different steps for this test to mean anything"
    one_by_one = TransformersEngine(model, tokenizer=tokenizer, batch_size=1).chat(requests)
    assert batched == one_by_one


def test_without_xgrammar_regex_names_the_alternative(
    engine: TransformersEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "xgrammar", None)  # makes `import xgrammar` fail
    with pytest.raises(UnsupportedConstraintError, match="vllm"):
        engine.chat([ask(constraint=OutputConstraint("regex", pattern="[0-9]+"))])


def test_a_loaded_model_is_not_moved(model_and_tokenizer: tuple[Any, Any]) -> None:
    model, tokenizer = model_and_tokenizer
    with pytest.raises(ValueError, match="move it"):
        TransformersEngine(model, tokenizer=tokenizer, device="meta")
