"""Exercise checks of 05 — optimizer.step(): the right answers pass, each usual mistake gets its hint."""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

from helpers.checks import grade
from helpers.exercises.nb05 import MOMENTUM_PROBLEM, momentum_run

# --- 05.sgd_step ---------------------------------------------------------------------------


def sgd_step(params, lr):
    with torch.no_grad():
        for p in params:
            p -= lr * p.grad


def sgd_step_no_grad_missing(params, lr):
    for p in params:
        p -= lr * p.grad


def sgd_step_rebinds(params, lr):
    with torch.no_grad():
        for p in params:
            p = p - lr * p.grad  # the bug under test


def sgd_step_without_lr(params, lr):
    with torch.no_grad():
        for p in params:
            p -= p.grad


def sgd_step_uphill(params, lr):
    with torch.no_grad():
        for p in params:
            p += lr * p.grad


def sgd_step_lr_twice(params, lr):
    with torch.no_grad():
        for p in params:
            p -= lr * lr * p.grad


def sgd_step_fixed_lr(params, lr):
    with torch.no_grad():
        for p in params:
            p -= 0.05 * p.grad


def sgd_step_first_only(params, lr):
    with torch.no_grad():
        params[0] -= lr * params[0].grad


def sgd_step_takes_a_model(model, lr):
    for p in model.parameters():
        p.data -= lr * p.grad


def sgd_step_clears_grad(params, lr):
    with torch.no_grad():
        for p in params:
            p -= lr * p.grad
            p.grad = None


def sgd_step_detaches(params, lr):
    for p in params:
        p.requires_grad_(False)
        p -= lr * p.grad


def test_sgd_step_right_answer_passes():
    assert grade("05.sgd_step", sgd_step).ok


def test_sgd_step_with_add_and_alpha_passes():
    def sgd_step_add(params, lr):
        with torch.no_grad():
            for p in params:
                p.add_(p.grad, alpha=-lr)

    assert grade("05.sgd_step", sgd_step_add).ok


@pytest.mark.parametrize(
    ("answer", "phrase"),
    [
        (None, "still None"),
        (3.0, "itself, not the result of calling it"),
        (sgd_step_no_grad_missing, "with torch.no_grad():"),
        (sgd_step_rebinds, "did not change"),
        (sgd_step_without_lr, "multiply the gradient by lr"),
        (sgd_step_uphill, "uphill"),
        (sgd_step_lr_twice, "not twice"),
        (sgd_step_fixed_lr, "Use the lr you are given"),
        (sgd_step_first_only, "weight changed but bias did not"),
        (sgd_step_takes_a_model, "a list of parameters, not a model"),
        (sgd_step_clears_grad, "zero_grad()'s job"),
        (sgd_step_detaches, "no longer a leaf"),
        (lambda: None, "TypeError"),
    ],
)
def test_sgd_step_mistakes_get_their_hint(answer, phrase):
    feedback = grade("05.sgd_step", answer)
    assert not feedback.ok
    assert phrase in feedback.message, feedback.message


def test_sgd_step_checker_leaves_the_learners_random_state_alone():
    state = torch.random.get_rng_state()
    grade("05.sgd_step", sgd_step)
    assert torch.equal(torch.random.get_rng_state(), state)


# --- 05.train_step -------------------------------------------------------------------------


def train_step(model, X, y, lr):
    model.zero_grad()
    loss = F.mse_loss(model(X), y)
    loss.backward()
    with torch.no_grad():
        for p in model.parameters():
            p -= lr * p.grad
    return loss.item()


def train_step_buggy(model, X, y, lr):
    model.zero_grad()
    loss = F.mse_loss(model(X), y)
    loss.backward()
    for p in model.parameters():
        p = p - lr * p.grad  # the bug under test
    return loss.item()


def train_step_no_grad_missing(model, X, y, lr):
    model.zero_grad()
    loss = F.mse_loss(model(X), y)
    loss.backward()
    for p in model.parameters():
        p -= lr * p.grad
    return loss.item()


def train_step_no_zero_grad(model, X, y, lr):
    loss = F.mse_loss(model(X), y)
    loss.backward()
    with torch.no_grad():
        for p in model.parameters():
            p -= lr * p.grad
    return loss.item()


def train_step_new_parameters(model, X, y, lr):
    model.zero_grad()
    loss = F.mse_loss(model(X), y)
    loss.backward()
    model.weight = torch.nn.Parameter(model.weight - lr * model.weight.grad)
    model.bias = torch.nn.Parameter(model.bias - lr * model.bias.grad)
    return loss.item()


def train_step_returns_tensor(model, X, y, lr):
    model.zero_grad()
    loss = F.mse_loss(model(X), y)
    loss.backward()
    with torch.no_grad():
        for p in model.parameters():
            p -= lr * p.grad
    return loss


def train_step_returns_nothing(model, X, y, lr):
    train_step(model, X, y, lr)


def train_step_returns_loss_after(model, X, y, lr):
    train_step(model, X, y, lr)
    return F.mse_loss(model(X), y).item()


def train_step_without_lr(model, X, y, lr):
    model.zero_grad()
    loss = F.mse_loss(model(X), y)
    loss.backward()
    with torch.no_grad():
        for p in model.parameters():
            p -= p.grad
    return loss.item()


def test_train_step_right_answer_passes():
    assert grade("05.train_step", train_step).ok


def test_train_step_with_an_optimizer_inside_passes():
    def train_step_sgd(model, X, y, lr):
        optimizer = torch.optim.SGD(model.parameters(), lr=lr)
        optimizer.zero_grad()
        loss = F.mse_loss(model(X), y)
        loss.backward()
        optimizer.step()
        return loss.item()

    assert grade("05.train_step", train_step_sgd).ok


@pytest.mark.parametrize(
    ("answer", "phrase"),
    [
        (None, "still None"),
        (train_step_buggy, "did not change"),
        (train_step_no_grad_missing, "with torch.no_grad():"),
        (train_step_no_zero_grad, "Keep model.zero_grad()"),
        (train_step_new_parameters, "new Parameter objects"),
        (train_step_returns_tensor, "return loss.item()"),
        (train_step_returns_nothing, "returned None"),
        (train_step_returns_loss_after, "computed before the update"),
        (train_step_without_lr, "multiply the gradient by lr"),
        (lambda model: 0.0, "TypeError"),
    ],
)
def test_train_step_mistakes_get_their_hint(answer, phrase):
    feedback = grade("05.train_step", answer)
    assert not feedback.ok
    assert phrase in feedback.message, feedback.message


# --- 05.momentum_by_hand -------------------------------------------------------------------


def test_momentum_run_agrees_with_torch_optim_sgd():
    w = torch.tensor(MOMENTUM_PROBLEM["w0"], dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.SGD(
        [w], lr=MOMENTUM_PROBLEM["lr"], momentum=MOMENTUM_PROBLEM["momentum"]
    )
    for _ in range(MOMENTUM_PROBLEM["steps"]):
        optimizer.zero_grad()
        (w**2).backward()
        optimizer.step()
    assert w.item() == pytest.approx(momentum_run(**MOMENTUM_PROBLEM), rel=1e-12)
    assert momentum_run(**MOMENTUM_PROBLEM) == pytest.approx(0.46)


@pytest.mark.parametrize("answer", [0.46, torch.tensor(0.46), torch.tensor([0.46])])
def test_momentum_right_answer_passes(answer):
    assert grade("05.momentum_by_hand", answer).ok


@pytest.mark.parametrize(
    ("answer", "phrase"),
    [
        (None, "still None"),
        (0.64, "plain SGD without momentum"),
        (0.8, "after one step"),
        (0.9424, "averaged the gradients"),
        (0.42, "first gradient twice"),
        (-0.8, "forgot the learning rate"),
        (0.5, "Write out both steps"),
        (1.0, "Write out both steps"),
        ("0.46", "should be a number"),
    ],
)
def test_momentum_mistakes_get_their_hint(answer, phrase):
    feedback = grade("05.momentum_by_hand", answer)
    assert not feedback.ok
    assert phrase in feedback.message, feedback.message
    assert "0.46" not in feedback.message  # a hint never gives the answer away


@pytest.mark.parametrize(
    ("kwargs", "error", "phrase"),
    [
        ({"steps": 0}, ValueError, "steps must be"),
        ({"steps": 1.5}, ValueError, "steps must be"),
        ({"lr": "0.1"}, TypeError, "lr must be a number"),
        ({"momentum": None}, TypeError, "momentum must be a number"),
    ],
)
def test_momentum_run_rejects_bad_arguments(kwargs, error, phrase):
    with pytest.raises(error, match=phrase):
        momentum_run(**{**MOMENTUM_PROBLEM, **kwargs})
