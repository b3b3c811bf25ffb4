"""Each divergence and its gradient against an independent float64 reference; chunked equals unchunked."""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")

from ophsd.losses import DivergenceSpec, chunked_divergence, token_divergence  # noqa: E402


def reference(student: list[float], teacher: list[float], spec: DivergenceSpec) -> float:
    """The textbook formulas in plain float64 Python, one position."""
    if spec.top_k is not None:
        support = sorted(range(len(teacher)), key=lambda v: -teacher[v])[: spec.top_k]
        student, teacher = [student[v] for v in support], [teacher[v] for v in support]

    def probabilities(logits):
        top = max(logits)
        weights = [math.exp(x - top) for x in logits]
        return [w / sum(weights) for w in weights]

    p, q = probabilities(student), probabilities(teacher)
    if spec.loss == "reverse_kl":
        value = sum(pi * math.log(pi / qi) for pi, qi in zip(p, q))
    elif spec.loss == "forward_kl":
        value = sum(qi * math.log(qi / pi) for pi, qi in zip(p, q))
    else:
        b = spec.jsd_beta
        m = [b * qi + (1 - b) * pi for pi, qi in zip(p, q)]
        value = b * sum(qi * math.log(qi / mi) for qi, mi in zip(q, m)) + (1 - b) * sum(
            pi * math.log(pi / mi) for pi, mi in zip(p, m)
        )
    return min(value, spec.token_clip) if spec.token_clip is not None else value


SPECS = [
    DivergenceSpec("reverse_kl"),
    DivergenceSpec("forward_kl"),
    DivergenceSpec("jsd", jsd_beta=0.5),
    DivergenceSpec("jsd", jsd_beta=0.1),
    DivergenceSpec("reverse_kl", top_k=3),
    DivergenceSpec("forward_kl", top_k=4),
    DivergenceSpec("reverse_kl", token_clip=0.05),
]


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: f"{s.loss}-k{s.top_k}-c{s.token_clip}-b{s.jsd_beta}")
def test_values_match_the_float64_reference(spec: DivergenceSpec) -> None:
    generator = torch.Generator().manual_seed(0)
    student = torch.randn(5, 11, generator=generator, dtype=torch.float64)
    teacher = torch.randn(5, 11, generator=generator, dtype=torch.float64)
    values = token_divergence(student, teacher, spec)
    expected = [reference(s.tolist(), t.tolist(), spec) for s, t in zip(student, teacher)]
    assert values.dtype == torch.float32
    assert values.tolist() == pytest.approx(expected, rel=1e-5, abs=1e-6)


@pytest.mark.parametrize("spec", SPECS[:5], ids=lambda s: f"{s.loss}-k{s.top_k}")
def test_gradients_match_finite_differences(spec: DivergenceSpec) -> None:
    generator = torch.Generator().manual_seed(1)
    student = torch.randn(3, 7, generator=generator, dtype=torch.float64)
    teacher = torch.randn(3, 7, generator=generator, dtype=torch.float64)
    leaf = student.clone().requires_grad_(True)
    token_divergence(leaf, teacher, spec).sum().backward()
    step = 1e-5
    for row in range(3):
        for vocab in range(7):
            plus, minus = student.clone(), student.clone()
            plus[row, vocab] += step
            minus[row, vocab] -= step
            numeric = (
                reference(plus[row].tolist(), teacher[row].tolist(), spec)
                - reference(minus[row].tolist(), teacher[row].tolist(), spec)
            ) / (2 * step)
            assert leaf.grad[row, vocab].item() == pytest.approx(numeric, rel=1e-3, abs=1e-5)


def test_gradient_flows_to_the_student_only() -> None:
    student = torch.randn(2, 5, requires_grad=True)
    teacher = torch.randn(2, 5, requires_grad=True)
    token_divergence(student, teacher, DivergenceSpec()).sum().backward()
    assert student.grad is not None and teacher.grad is None


def test_identical_distributions_have_zero_divergence() -> None:
    logits = torch.randn(4, 9)
    for spec in SPECS:
        assert token_divergence(logits, logits.clone(), spec).abs().max().item() < 1e-6


@pytest.mark.parametrize("chunk", [1, 3, 7, 10, 64])
def test_chunked_equals_unchunked_in_value_and_gradient(chunk: int) -> None:
    torch.manual_seed(0)
    head = torch.nn.Linear(6, 13, bias=False)
    teacher_head = torch.nn.Linear(6, 13, bias=False)
    hidden = torch.randn(10, 6, requires_grad=True)
    teacher_hidden = torch.randn(10, 6)
    spec = DivergenceSpec("reverse_kl")
    full = token_divergence(head(hidden), teacher_head(teacher_hidden), spec)
    full.mean().backward()
    full_grad, head_grad = hidden.grad.clone(), head.weight.grad.clone()
    hidden.grad, head.weight.grad = None, None
    chunked = chunked_divergence(hidden, teacher_hidden, head, teacher_head, spec, chunk_size=chunk)
    chunked.mean().backward()
    assert torch.allclose(chunked, full, atol=1e-6)
    assert torch.allclose(hidden.grad, full_grad, atol=1e-6)
    assert torch.allclose(head.weight.grad, head_grad, atol=1e-6)


def test_a_batch_of_one_chunk_is_not_checkpointed_and_gives_the_chunked_numbers(monkeypatch) -> None:
    torch.manual_seed(1)
    head = torch.nn.Linear(6, 13, bias=False)
    teacher_head = torch.nn.Linear(6, 13, bias=False)
    hidden = torch.randn(12, 6, requires_grad=True)
    teacher_hidden = torch.randn(12, 6)
    spec = DivergenceSpec("jsd")
    several = chunked_divergence(hidden, teacher_hidden, head, teacher_head, spec, chunk_size=5)
    several.sum().backward()
    expected_grads = hidden.grad.clone(), head.weight.grad.clone()
    hidden.grad, head.weight.grad = None, None
    calls = []
    monkeypatch.setattr("ophsd.losses.checkpoint", lambda *args, **kwargs: calls.append(args))
    one = chunked_divergence(hidden, teacher_hidden, head, teacher_head, spec, chunk_size=12)
    one.sum().backward()
    assert calls == []  # the fast path: no recomputation of the head in backward
    assert torch.allclose(one, several, atol=1e-6)
    assert torch.allclose(hidden.grad, expected_grads[0], atol=1e-6)
    assert torch.allclose(head.weight.grad, expected_grads[1], atol=1e-6)
