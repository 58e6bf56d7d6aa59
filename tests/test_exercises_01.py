"""Notebook 01's exercise checks: the right answer passes, each typical mistake gets its hint."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

from helpers.exercises.nb01 import EXERCISE_1_NAMES, WHO_GETS_GRAD
from tests.test_checks import grade_keeping_random_state as grade

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


# --- 01.buffers ------------------------------------------------------------------------------


def _standardize(
    store: str = "buffer",
    dim: int | None = 0,
    correction: int = 1,
    formula: str = "right",
    persistent: bool = True,
) -> type[nn.Module]:
    """A Standardize class as a learner might write it; the arguments choose its mistake."""

    class Standardize(nn.Module):
        def __init__(self, data):
            super().__init__()
            if dim is None:
                mean, std = data.mean(), data.std()
            else:
                mean, std = data.mean(dim=dim), data.std(dim=dim, correction=correction)
            if store == "buffer":
                self.register_buffer("mean", mean, persistent=persistent)
                self.register_buffer("std", std, persistent=persistent)
            elif store == "parameter":
                self.mean, self.std = nn.Parameter(mean), nn.Parameter(std)
            elif store == "plain":
                self.mean, self.std = mean, std
            elif store == "data buffer":
                self.register_buffer("data", data)
            elif store == "plain data":
                self.data = data
            elif store == "buffer and plain":
                self.register_buffer("mean", mean)
                self.std = std

        def forward(self, x):
            if store in ("data buffer", "plain data"):
                mean, std = self.data.mean(dim=0), self.data.std(dim=0)
            elif formula == "own statistics":
                mean, std = x.mean(dim=0), x.std(dim=0)
            else:
                mean, std = self.mean, self.std
            return {
                "right": lambda: (x - mean) / std,
                "divide first": lambda: x / std - mean,
                "multiply": lambda: (x - mean) * std,
                "variance": lambda: (x - mean) / std**2,
                "no divide": lambda: x - mean,
                "own statistics": lambda: (x - mean) / std,
                "none": lambda: None,
            }[formula]()

    return Standardize


class _KeepdimStandardize(nn.Module):
    def __init__(self, data):
        super().__init__()
        std, mean = torch.std_mean(data, dim=0, keepdim=True)
        self.register_buffer("mean", mean)
        self.register_buffer("std", std)

    def forward(self, x):
        return (x - self.mean) / self.std


@pytest.mark.parametrize(
    "answer",
    [_standardize(), _standardize(correction=0), _KeepdimStandardize],
    ids=["unbiased std", "biased std", "keepdim std_mean"],
)
def test_buffers_right_answers_pass(answer):
    assert grade("01.buffers", answer).ok


def test_buffers_right_answer_really_survives_to_and_state_dict():
    data = torch.tensor([[1.0, 10.0], [3.0, 30.0], [5.0, 20.0]])
    module = _standardize()(data).to(torch.float64)
    assert module.mean.dtype == torch.float64 and set(module.state_dict()) == {"mean", "std"}


@pytest.mark.parametrize(
    ("answer", "phrase"),
    [
        (_standardize(store="plain"), "plain tensor attribute"),
        (_standardize(store="buffer and plain"), "self.std is a plain tensor attribute"),
        (_standardize(store="parameter"), "nn.Parameter"),
        (_standardize(persistent=False), "persistent=False"),
        (_standardize(store="data buffer"), "whole data set"),
        (_standardize(store="plain data"), "whole data set"),
        (_standardize(dim=1), "one value per row"),
        (_standardize(dim=None), "whole tensor"),
        (_standardize(formula="own statistics"), "x's own statistics"),
        (_standardize(formula="divide first"), "divides before it subtracts"),
        (_standardize(formula="multiply"), "multiplies by the std"),
        (_standardize(formula="variance"), "divides by the variance"),
        (_standardize(formula="no divide"), "does not divide"),
        (_standardize(formula="none"), "forward returns None"),
        (_standardize()(torch.ones(3, 2)), "pass the class itself"),
        ("Standardize", "subclass of nn.Module"),
    ],
)
def test_buffers_mistakes_get_their_hint(answer, phrase):
    feedback = grade("01.buffers", answer)
    assert not feedback.ok
    assert phrase in feedback.message, feedback.message


def test_buffers_hints_do_not_give_the_formula_away():
    for answer in (_standardize(formula="divide first"), _standardize(store="plain")):
        message = grade("01.buffers", answer).message
        assert "register_buffer(" not in message and "(x - " not in message


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
