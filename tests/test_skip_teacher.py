"""Rows whose teacher is exactly the student are left out of the loss's passes with the same loss and gradient."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from harnessc.engines.base import ChatMessage  # noqa: E402
from ophsd.context import DistillExample, TeacherContextBuilder  # noqa: E402
from ophsd.losses import DivergenceSpec, chunked_divergence  # noqa: E402
from ophsd.model import completion_hidden, output_head  # noqa: E402
from ophsd.skip_teacher import loss_rows, rows_needing_teacher, select_rows, teacher_is_student  # noqa: E402


def example(question: str, teacher: str | None, completion: tuple[int, ...]) -> DistillExample:
    student = (ChatMessage("user", question),)
    return DistillExample(
        student_messages=student,
        student_template_kwargs={},
        teacher_messages=(ChatMessage("user", teacher),) if teacher else student,
        teacher_template_kwargs={},
        completion_ids=completion,
        teacher_source="stage" if teacher else "student",
    )


@pytest.fixture(scope="module")
def model_and_batch(tiny_model_dir):
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(tiny_model_dir))
    model = transformers.AutoModelForCausalLM.from_pretrained(str(tiny_model_dir), dtype=torch.float32)
    builder = TeacherContextBuilder(tokenizer, max_prompt_tokens=4096)
    batch = builder.build(
        [
            example("What is two plus two?", None, (11, 12, 13, 14, 15)),
            example("Three times five?", "Three times five? The answer is fifteen.", (21, 22, 23)),
            example("A plan lists the steps.", None, (31, 32, 33, 34)),
            example("Yes or no?", "Yes or no? Maybe, says the verifier.", (41, 42, 43, 44, 45, 46)),
        ]
    )
    return model, batch


def loss_and_grads(model, batch, tokens: int) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """The trainer's loss (live teacher: the same module, no grad) and the gradient it gives."""
    model.zero_grad(set_to_none=True)
    with torch.no_grad():
        teacher = completion_hidden(
            model, batch.teacher_input_ids, batch.teacher_attention_mask, batch.teacher_positions
        )
    student = completion_hidden(model, batch.student_input_ids, batch.student_attention_mask, batch.student_positions)
    head = output_head(model)
    loss = chunked_divergence(student, teacher, head, head, DivergenceSpec("reverse_kl"), 4).sum() / tokens
    loss.backward()
    return loss.detach(), [param.grad.clone() for param in model.parameters()]


def test_rows_with_the_students_own_sequence_are_found(model_and_batch) -> None:
    _, batch = model_and_batch
    assert rows_needing_teacher(batch) == [1, 3]


def test_the_selected_rows_keep_their_tokens_and_positions(model_and_batch) -> None:
    _, batch = model_and_batch
    kept = select_rows(batch, [1, 3])
    assert kept.completion_ids.tolist() == [21, 22, 23, 41, 42, 43, 44, 45, 46]
    assert kept.example_of_token.tolist() == [0, 0, 0, 1, 1, 1, 1, 1, 1]
    assert kept.kept == [batch.kept[1], batch.kept[3]]
    for ids, positions in (
        (kept.student_input_ids, kept.student_positions),
        (kept.teacher_input_ids, kept.teacher_positions),
    ):
        # The logits at a predicting position are for the completion token one position later.
        assert torch.equal(ids.reshape(-1)[positions + 1], kept.completion_ids)


def test_leaving_them_out_gives_the_full_batchs_loss_and_gradient(model_and_batch) -> None:
    model, batch = model_and_batch
    model.train()
    assert teacher_is_student("live", 5, model)
    needed = loss_rows(batch, "live", 5, model)
    assert needed.tokens == 9 and batch.tokens == 18
    full_loss, full_grads = loss_and_grads(model, batch, batch.tokens)
    fast_loss, fast_grads = loss_and_grads(model, needed, batch.tokens)
    assert full_loss.item() > 1e-4  # rows 1 and 3 do differ from the teacher
    assert torch.allclose(fast_loss, full_loss, rtol=1e-5, atol=1e-7)
    for fast, full in zip(fast_grads, full_grads, strict=True):
        assert torch.allclose(fast, full, rtol=1e-4, atol=1e-7)


def test_a_teacher_that_is_not_the_student_keeps_every_row(model_and_batch) -> None:
    model, batch = model_and_batch
    assert loss_rows(batch, "frozen", 0, model).tokens == batch.tokens // 2  # the cold start: initial weights
    assert loss_rows(batch, "frozen", 1, model) is batch  # the student has moved since
    assert loss_rows(batch, "ema", 3, model) is batch
    with_dropout = torch.nn.Sequential(model, torch.nn.Dropout(0.1))
    assert not teacher_is_student("live", 0, with_dropout)


def test_a_batch_where_every_teacher_is_the_student_keeps_one_row(model_and_batch) -> None:
    _, batch = model_and_batch
    model = model_and_batch[0]
    same = select_rows(batch, [0, 2])
    needed = loss_rows(same, "live", 0, model)
    assert needed.kept == [same.kept[0]]  # a zero gradient still flows, so the optimizer step is the full one
