"""Exercise checks of 04 — backward(): the right answers pass, each usual mistake gets its hint."""

from __future__ import annotations

import pytest
import torch

from helpers.exercises.nb04 import SLOPE_POINTS, regression_data
from tests.test_checks import grade_keeping_random_state as grade

X, Y, W, B = regression_data()
N = X.shape[0]
RESIDUAL = X @ W + B - Y
GRAD_W = 2 / N * X.T @ RESIDUAL
GRAD_B = 2 / N * RESIDUAL.sum()


def test_regression_data_is_fresh_and_fixed():
    X1, y1, w1, b1 = regression_data()
    X1.add_(100.0)
    X2, y2, w2, b2 = regression_data()
    assert torch.equal(X2, X) and torch.equal(y2, Y) and torch.equal(w2, W)
    assert X2.shape == (4, 2) and y2.shape == (4,) and w2.shape == (2,) and b2.shape == ()


def test_the_expected_gradients_are_autograds():
    w = W.clone().requires_grad_()
    b = B.clone().requires_grad_()
    ((X @ w + b - Y) ** 2).mean().backward()
    assert torch.allclose(w.grad, GRAD_W) and torch.allclose(b.grad, GRAD_B)


# --- 04.by_hand ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "answer",
    [
        (GRAD_W, GRAD_B),
        [GRAD_W, GRAD_B],
        (GRAD_W, float(GRAD_B)),
        (GRAD_W.double(), GRAD_B),
    ],
)
def test_by_hand_right_answers_pass(answer):
    feedback = grade("04.by_hand", answer)
    assert feedback.ok, feedback.message


NO_BIAS = X @ W - Y


@pytest.mark.parametrize(
    ("answer", "phrase"),
    [
        ((None, None), "grad_w is still None"),
        ((GRAD_W, None), "grad_b is still None"),
        (None, "still None"),
        (GRAD_W, "the pair (grad_w, grad_b)"),
        ((GRAD_W, GRAD_B, 0.0), "the pair (grad_w, grad_b)"),
        ((GRAD_W / 2, GRAD_B), "forgot the 2"),
        ((GRAD_W * N, GRAD_B), "forgot the 1/N"),
        ((X.T @ RESIDUAL, GRAD_B), "both the 2 and the 1/N are missing"),
        ((GRAD_W / N, GRAD_B), "divided by N twice"),
        ((-GRAD_W, GRAD_B), "wrong sign"),
        ((-GRAD_W / 2, GRAD_B), "sign is flipped as well"),
        ((2 / N * X.T @ NO_BIAS, GRAD_B), "leaves the bias out"),
        ((GRAD_W.reshape(1, 2), GRAD_B), "shape (1, 2)"),
        ((GRAD_W.reshape(2, 1), GRAD_B), "shape (2, 1)"),
        ((2 / N * RESIDUAL, GRAD_B), "one entry per sample"),
        ((2 / N * X * RESIDUAL[:, None], GRAD_B), "shape (4, 2)"),
        ((GRAD_B, GRAD_W), "single number"),
        ((GRAD_W.tolist(), GRAD_B), "should be a torch.Tensor"),
        ((GRAD_W + torch.tensor([0.0, 0.5]), GRAD_B), "values differ"),
        ((GRAD_W, GRAD_B / 2), "forgot the 2"),
        ((GRAD_W, GRAD_B * N), "forgot the 1/N"),
        ((GRAD_W, -GRAD_B), "wrong sign"),
        ((GRAD_W, 2 / N * NO_BIAS.sum()), "leaves the bias out"),
        ((GRAD_W, 2 / N * RESIDUAL), "Sum them"),
        ((GRAD_W, torch.zeros(2, 2)), "shape (2, 2)"),
        ((GRAD_W, "-2"), "should be a number"),
        ((GRAD_W, GRAD_B + 0.3), "should be about -2"),
    ],
)
def test_by_hand_mistakes_get_their_hint(answer, phrase):
    feedback = grade("04.by_hand", answer)
    assert not feedback.ok
    assert phrase in feedback.message, feedback.message


# --- 04.slope ------------------------------------------------------------------------------


def f(x):
    return (x**3 - 2 * x).sum()


def slope(x):
    return torch.autograd.grad(f(x), x)[0]


def slope_with_graph(x):
    return torch.autograd.grad(f(x), x, create_graph=True)[0]


def slope_unfilled(x):
    return None


def slope_tuple(x):
    return torch.autograd.grad(f(x), x)


def slope_backward(x):
    f(x).backward()
    return x.grad


def slope_value(x):
    return f(x)


def slope_detached(x):
    x = x.detach()
    return torch.autograd.grad(f(x), x)[0]


def slope_wrong(x):
    return 3 * x.detach() ** 2


def test_slope_right_answers_pass():
    assert grade("04.slope", slope).ok
    assert grade("04.slope", slope_with_graph).ok


@pytest.mark.parametrize(
    ("answer", "phrase"),
    [
        (None, "still None"),
        (
            slope(torch.tensor(SLOPE_POINTS, requires_grad=True)),
            "itself, not the result of calling it",
        ),
        (slope_unfilled, "returned None"),
        (slope_tuple, "Return its first element, [0]"),
        (slope_backward, "filled x.grad"),
        (slope_value, "the value of the function"),
        (slope_detached, "don't detach it"),
        (slope_wrong, "values differ"),
    ],
)
def test_slope_mistakes_get_their_hint(answer, phrase):
    feedback = grade("04.slope", answer)
    assert not feedback.ok
    assert phrase in feedback.message, feedback.message


# --- 04.double_backward --------------------------------------------------------------------


def accumulate_buggy(w):
    pred = X @ w + B
    for _ in range(3):
        loss = ((pred - Y) ** 2).mean()
        loss.backward()


def accumulate_fixed(w):
    for _ in range(3):
        loss = ((X @ w + B - Y) ** 2).mean()
        loss.backward()


def accumulate_retained(w):
    pred = X @ w + B
    for _ in range(3):
        loss = ((pred - Y) ** 2).mean()
        loss.backward(retain_graph=True)


def accumulate_once(w):
    loss = ((X @ w + B - Y) ** 2).mean()
    loss.backward()


def accumulate_twice(w):
    for _ in range(2):
        loss = ((X @ w + B - Y) ** 2).mean()
        loss.backward()


def accumulate_reset(w):
    for _ in range(3):
        w.grad = None
        loss = ((X @ w + B - Y) ** 2).mean()
        loss.backward()


def accumulate_new_tensor(w):
    w = w.detach().clone().requires_grad_()
    accumulate_fixed(w)


def accumulate_other_error(w):
    raise ValueError("something else")


def accumulate_sum_loss(w):
    for _ in range(3):
        ((X @ w + B - Y) ** 2).sum().backward()


def test_double_backward_right_answers_pass():
    assert grade("04.double_backward", accumulate_fixed).ok
    assert grade("04.double_backward", accumulate_retained).ok


@pytest.mark.parametrize(
    ("answer", "phrase"),
    [
        (None, "still None"),
        (3, "itself, not the result of calling it"),
        (accumulate_buggy, "graph a second time"),
        (accumulate_once, "one backward pass's worth"),
        (accumulate_twice, "two backward passes' worth"),
        (accumulate_reset, "one backward pass's worth"),
        (accumulate_new_tensor, "w.grad is None"),
        (accumulate_other_error, "raised ValueError: something else"),
        (accumulate_sum_loss, "4 times too large"),
    ],
)
def test_double_backward_mistakes_get_their_hint(answer, phrase):
    feedback = grade("04.double_backward", answer)
    assert not feedback.ok
    assert phrase in feedback.message, feedback.message


def test_the_unfilled_hint_does_not_hand_out_the_fix():
    message = grade("04.double_backward", accumulate_buggy).message
    assert "retain_graph" not in message and "into the loop" not in message
