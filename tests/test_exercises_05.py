"""Exercise checks of 05 — optimizer.step(): the right answers pass, each usual mistake gets its hint."""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

from helpers.exercises.nb05 import MOMENTUM_PROBLEM, limit_problem, momentum_run
from tests.test_checks import grade_keeping_random_state as grade

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


# --- 05.lr_limit ---------------------------------------------------------------------------


def _bowl(w):
    X, y = limit_problem()
    return ((X @ w - y) ** 2).mean()


def _hessian():
    return torch.autograd.functional.hessian(_bowl, torch.zeros(2))


def _limit():
    return 2 / torch.linalg.eigvalsh(_hessian()).max().item()


def _sgd_final_loss(lr, steps=30):
    w = torch.zeros(2, requires_grad=True)
    optimizer = torch.optim.SGD([w], lr=lr)
    for _ in range(steps):
        optimizer.zero_grad()
        _bowl(w).backward()
        optimizer.step()
    return _bowl(w).item()


def test_lr_limit_is_where_plain_sgd_starts_to_diverge():
    limit = _limit()
    start = _bowl(torch.zeros(2)).item()
    assert _sgd_final_loss(0.95 * limit) < start
    assert _sgd_final_loss(1.05 * limit) > 100 * start
    diagonal = 2 / _hessian().diagonal().max().item()
    assert diagonal > 1.5 * limit  # the diagonal trap is a real trap here
    assert _sgd_final_loss(diagonal) > 100 * start


def test_lr_limit_right_answers_pass():
    limit = _limit()
    for answer in (limit, torch.tensor(limit), torch.tensor([limit]), round(limit, 4)):
        assert grade("05.lr_limit", answer).ok


def test_lr_limit_problem_leaves_the_learners_random_state_alone():
    state = torch.random.get_rng_state()
    limit_problem()
    grade("05.lr_limit", 1.0)
    assert torch.equal(torch.random.get_rng_state(), state)


def _mistakes():
    hessian = _hessian()
    low, high = torch.linalg.eigvalsh(hessian).tolist()
    eigenvalues = torch.linalg.eigvalsh(hessian)
    return [
        (None, "still None"),
        (2 / low, "smallest eigenvalue"),
        (1 / high, "1/λ"),
        (high, "an eigenvalue λ itself"),
        (2 / hessian.diagonal().max().item(), "diagonal of the Hessian"),
        (2 / hessian.diagonal().min().item(), "diagonal of the Hessian"),
        (2 / hessian.trace().item(), "sum of the eigenvalues"),
        (0.97 * 2 / high, "search by trial"),
        (0.1, "torch.autograd.functional.hessian"),
        (2 / eigenvalues, "one per eigenvalue"),
        (2 / torch.linalg.eigvals(hessian).real.max() + 0j * torch.ones(()), "eigvalsh"),
        ("1.6", "should be a number"),
    ]


@pytest.mark.parametrize("index", range(12))
def test_lr_limit_mistakes_get_their_hint_without_the_answer(index):
    answer, phrase = _mistakes()[index]
    feedback = grade("05.lr_limit", answer)
    assert not feedback.ok
    assert phrase in feedback.message, feedback.message
    limit = _limit()
    for shown in (f"{limit:.2f}", f"{limit:.3g}", f"{limit:.4g}"):
        assert shown not in feedback.message  # a hint never gives the answer away
