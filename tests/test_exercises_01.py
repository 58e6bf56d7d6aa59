"""Notebook 01's exercise checks: the right answer passes, each typical mistake gets its hint."""

from __future__ import annotations

import warnings

import pytest
import torch

from helpers.checks import grade
from helpers.exercises.nb01 import EXERCISE_1_NAMES, WHO_GETS_GRAD

# --- 01.who_gets_grad ------------------------------------------------------------------------


def _exercise_1_tensors() -> dict[str, torch.Tensor]:
    """The cell of exercise 1, as the notebook writes it."""
    w = torch.tensor([1.0, -1.0], requires_grad=True)
    b = torch.tensor(0.5, requires_grad=True)
    X = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    h = X @ w + b
    h.retain_grad()
    with torch.no_grad():
        scale = w.abs().sum()
    loss = (h * scale).pow(2).mean()
    loss.backward()
    return {"w": w, "b": b, "X": X, "h": h, "scale": scale, "loss": loss}


def test_who_gets_grad_matches_what_pytorch_does():
    tensors = _exercise_1_tensors()
    assert tuple(tensors) == EXERCISE_1_NAMES
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # loss.grad warns: it is not a leaf
        have_grad = {name for name, t in tensors.items() if t.grad is not None}
    assert have_grad == WHO_GETS_GRAD


@pytest.mark.parametrize("answer", [{"w", "b", "h"}, ["h", "b", "w"], ("w", "h", "b")])
def test_who_gets_grad_right_answers_pass(answer):
    assert grade("01.who_gets_grad", answer).ok


@pytest.mark.parametrize(
    ("answer", "phrase"),
    [
        ({"w", "b"}, "h is missing"),
        ({"w", "h"}, "b is missing"),
        ({"w", "b", "h", "X"}, "X was created without requires_grad=True"),
        ({"w", "b", "h", "scale"}, "inside torch.no_grad()"),
        ({"w", "b", "h", "loss"}, "loss is not a leaf"),
        ({"w", "b", "h", "y"}, "no tensor called 'y'"),
        ("w", "one string"),
        (3, "set of tensor names"),
        ([torch.ones(1)], "write the names as strings"),
        (None, "still None"),
    ],
)
def test_who_gets_grad_mistakes_get_their_hint(answer, phrase):
    feedback = grade("01.who_gets_grad", answer)
    assert not feedback.ok
    assert phrase in feedback.message, feedback.message


# --- 01.retain_grad --------------------------------------------------------------------------


def _h(retain: bool = True, backward: int = 1, reduce: str = "mean") -> torch.Tensor:
    x = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
    h = x * 3
    if retain:
        h.retain_grad()
    loss = (h**2).mean() if reduce == "mean" else (h**2).sum()
    for _ in range(backward):
        loss.backward(retain_graph=True)
    return h


def test_retain_grad_right_answer_passes():
    h = _h()
    assert torch.allclose(h.grad, torch.tensor([2.0, 4.0, 6.0]))  # 2h/N with h = 3, 6, 9
    assert grade("01.retain_grad", h).ok


def test_retain_grad_called_after_backward_is_explained():
    x = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
    h = x * 3
    (h**2).mean().backward()
    h.retain_grad()
    feedback = grade("01.retain_grad", h)
    assert not feedback.ok and "retain_grad() first and loss.backward() after" in feedback.message


@pytest.mark.parametrize(
    ("make", "phrase"),
    [
        (lambda: _h(retain=False), "h.retain_grad() was not called"),
        (lambda: _h(backward=0), "h.grad is still None"),
        (lambda: _h(backward=2), "backward() ran twice"),
        (lambda: _h(reduce="sum"), "3 times too large"),
        (lambda: torch.tensor([3.0, 6.0, 9.0], requires_grad=True), "h is a leaf"),
        (lambda: torch.tensor([3.0, 6.0, 9.0]), "does not require grad"),
        (lambda: _h().grad, "does not require grad"),
        (lambda: [3.0, 6.0, 9.0], "the tensor h itself"),
    ],
)
def test_retain_grad_mistakes_get_their_hint(make, phrase):
    feedback = grade("01.retain_grad", make())
    assert not feedback.ok
    assert phrase in feedback.message, feedback.message


# --- 01.frozen_copy --------------------------------------------------------------------------


def _under_no_grad(t):
    with torch.no_grad():
        return t.clone()


def _under_inference_mode(t):
    with torch.inference_mode():
        return t.clone()


@pytest.mark.parametrize(
    "answer",
    [lambda t: t.detach().clone(), lambda t: t.clone().detach(), _under_no_grad],
)
def test_frozen_copy_right_answers_pass(answer):
    assert grade("01.frozen_copy", answer).ok


@pytest.mark.parametrize(
    ("answer", "phrase"),
    [
        (lambda t: t.detach(), "shares its storage"),
        (lambda t: t.clone(), "still requires grad"),
        (lambda t: t, "returns t itself"),
        (_under_inference_mode, "inference tensor"),
        (lambda t: None, "returns None"),
        (lambda t: t.tolist(), "returned a list"),
        (lambda t: t.detach().clone() * 2, "different values"),
        (lambda t: t.detach()[:], "shares its storage"),
        ("t.detach().clone()", "your function `frozen_copy` itself"),
    ],
)
def test_frozen_copy_mistakes_get_their_hint(answer, phrase):
    feedback = grade("01.frozen_copy", answer)
    assert not feedback.ok
    assert phrase in feedback.message, feedback.message


def test_frozen_copy_hides_the_warning_of_torch_tensor():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        feedback = grade("01.frozen_copy", lambda t: torch.tensor(t))
    assert feedback.ok  # torch.tensor(t) copies and does not require grad: it works


def test_checks_never_raise_on_a_function_that_raises():
    def broken(t):
        raise RuntimeError("boom")

    feedback = grade("01.frozen_copy", broken)
    assert not feedback.ok and "RuntimeError" in feedback.message
