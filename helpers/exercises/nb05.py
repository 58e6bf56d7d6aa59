"""Exercise checks for 05 — optimizer.step(): changing the weights (compared with torch.optim.SGD)."""

from __future__ import annotations

import copy
import math
from functools import partial
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from helpers.checks import close, compare_number, expect_function, raised

__all__ = [
    "MOMENTUM_PROBLEM",
    "lr_limit",
    "momentum_by_hand",
    "train_step",
    "limit_problem",
    "momentum_run",
]

LR = 0.1


def _probe() -> tuple[nn.Linear, torch.Tensor, torch.Tensor]:
    """A small regression problem, seeded."""
    torch.manual_seed(5)
    model = nn.Linear(3, 1)
    X = torch.randn(16, 3)
    y = X @ torch.tensor([[1.5], [-2.0], [0.5]]) + 0.3 + 0.1 * torch.randn(16, 1)
    return model, X, y


def _fill_gradients(model: nn.Module, X: torch.Tensor, y: torch.Tensor) -> float:
    model.zero_grad()
    loss = F.mse_loss(model(X), y)
    loss.backward()
    return loss.item()


def _error_hint(what: str, error: BaseException) -> str:
    message = str(error)
    if "leaf Variable that requires grad" in message and "in-place" in message:
        return (
            f"{what} raised 'a leaf Variable that requires grad is being used in an in-place "
            "operation'. Put the update inside `with torch.no_grad():` so autograd does not "
            "record it."
        )
    return raised(what, error)


_close = partial(close, rtol=1e-5, atol=1e-6)


def _update_hint(delta: torch.Tensor, grad: torch.Tensor, lr: float) -> str | None:
    """Name the usual mistake when a parameter moved by `delta` instead of -lr * grad."""
    if torch.count_nonzero(delta) == 0:
        return (
            "the weights did not change. (Writing `p = p - lr * p.grad` does exactly that: it "
            "makes a new tensor and points the name p at it, while the model keeps its old "
            "Parameter.) Change the parameter itself, in place: with an augmented assignment "
            "such as -=, or a tensor method whose name ends in _."
        )
    if _close(delta, -lr * grad):
        return None
    if _close(delta, -grad):
        return "the weights moved by the whole gradient: multiply the gradient by lr first."
    if _close(delta, lr * grad):
        return "the weights moved uphill, along the gradient: subtract lr * p.grad, do not add it."
    if _close(delta, -(lr**2) * grad):
        return "the weights moved by lr² · grad: multiply by lr once, not twice."
    scale = float((delta * grad).sum() / (grad * grad).sum()) if grad.abs().sum() > 0 else 0.0
    if scale != 0.0 and _close(delta, scale * grad):
        return (
            f"the weights moved along the gradient, but by {-scale:.3g} · grad instead of "
            f"lr · grad = {lr:g} · grad. Use the lr you are given."
        )
    return (
        "the weights changed, but not by -lr * p.grad. Update each parameter with p -= lr * p.grad."
    )


STEPS = 3


def train_step(answer: Any) -> str | None:
    """train_step(model, X, y, lr) updates the model's own Parameters in place and returns the loss."""
    if hint := expect_function(answer, "train_step"):
        return hint
    model, X, y = _probe()
    twin = copy.deepcopy(model)
    optimizer = torch.optim.SGD(twin.parameters(), lr=LR)
    originals = list(model.parameters())
    names = [name for name, _ in model.named_parameters()]
    for step in range(1, STEPS + 1):
        before = [p.detach().clone() for p in originals]
        expected_loss = _fill_gradients(twin, X, y)
        grads = [p.grad.clone() for p in twin.parameters()]
        try:
            returned = answer(model, X, y, LR)
        except Exception as error:
            return _error_hint(f"train_step(model, X, y, lr) (call {step})", error)
        current = list(model.parameters())
        if len(current) != len(originals) or any(
            a is not b for a, b in zip(current, originals, strict=False)
        ):
            return (
                "after train_step the model holds new Parameter objects. An optimizer built "
                "before would still hold the old ones. Change the existing parameters in "
                "place (p -= lr * p.grad under torch.no_grad())."
            )
        for name, p, old, grad in zip(names, originals, before, grads, strict=True):
            hint = _update_hint(p.detach() - old, grad, LR)
            if hint is None:
                continue
            if step > 1 and p.grad is not None and not _close(p.grad, grad):
                return (
                    f"the first call was right, but on call {step} {name} moved by the wrong "
                    "amount: its gradient still held the gradients of earlier calls. Keep "
                    "model.zero_grad() at the start of train_step."
                )
            return f"{name}: {hint}"
        optimizer.step()
        if returned is None:
            return "train_step returned None: end it with `return loss.item()`."
        if isinstance(returned, torch.Tensor) and returned.numel() == 1:
            return (
                "train_step returns a tensor; return loss.item(), a plain float, so the graph "
                "is not kept alive."
            )
        hint = compare_number(returned, expected_loss, name=f"the loss returned by call {step}")
        if hint:
            return hint + " Return the loss computed before the update (the one backward() used)."
        for name, p, want in zip(names, originals, twin.parameters(), strict=True):
            if not torch.allclose(p.detach(), want.detach(), rtol=1e-5, atol=1e-6):
                return f"after call {step}, {name} differs from what torch.optim.SGD gives."
    return None


def momentum_run(
    w0: float,
    lr: float,
    momentum: float,
    steps: int,
    *,
    dampened: bool = False,
    same_gradient: bool = False,
    use_lr: bool = True,
) -> float:
    """Minimise L(w) = w² with SGD and momentum in plain Python (and the usual mistakes)."""
    for name, value in (("w0", w0), ("lr", lr), ("momentum", momentum)):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(f"{name} must be a number such as 0.1, not {type(value).__name__}.")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a whole number of at least 1, got {steps!r}.")
    w, v = w0, 0.0
    g0 = 2 * w0
    for step in range(steps):
        g = g0 if same_gradient else 2 * w
        if dampened:
            v = momentum * v + (1 - momentum) * g
        else:
            v = g if step == 0 else momentum * v + g
        w = w - (lr if use_lr else 1.0) * v
    return w


MOMENTUM_PROBLEM = {"w0": 1.0, "lr": 0.1, "momentum": 0.9, "steps": 2}


def momentum_by_hand(answer: Any) -> str | None:
    """w after two steps of SGD with momentum 0.9 on L(w) = w²."""
    p = MOMENTUM_PROBLEM
    expected = momentum_run(**p)
    hint = compare_number(answer, expected, name="w after two steps", rel_tol=1e-4)
    if hint is None:
        return None
    if isinstance(answer, torch.Tensor) and answer.numel() == 1:
        answer = answer.detach().item()
    if isinstance(answer, bool) or not isinstance(answer, (int, float)):
        return hint
    mistakes = [
        (
            momentum_run(**{**p, "momentum": 0.0}),
            "that is plain SGD without momentum. Keep a buffer: v = g on the first step, "
            "then v = 0.9 · v + g, and move w -= lr · v.",
        ),
        (
            momentum_run(**{**p, "steps": 1}),
            "that is w after one step; take a second one.",
        ),
        (
            momentum_run(**p, dampened=True),
            "you averaged the gradients (v = 0.9 · v + 0.1 · g). PyTorch's SGD adds the "
            "whole gradient: v = 0.9 · v + g (and v = g on the first step).",
        ),
        (
            momentum_run(**p, same_gradient=True),
            "you used the first gradient twice. The gradient of w² is 2w: compute it again "
            "at the new w before the second step.",
        ),
        (
            momentum_run(**p, use_lr=False),
            "you forgot the learning rate: the step is lr · v, not v.",
        ),
    ]
    for value, mistake in mistakes:
        if math.isclose(float(answer), value, rel_tol=1e-4, abs_tol=1e-9):
            return f"w after two steps is {float(answer):.4g}, but {mistake}"
    if "should be about" in hint:  # do not give the number away
        return (
            f"w after two steps is {float(answer):.4g}, which is not it yet. Write out both "
            "steps: g = 2w; v = g on the first step, then v = 0.9 · v + g; then w -= 0.1 · v."
        )
    return hint


def limit_problem() -> tuple[torch.Tensor, torch.Tensor]:
    """Two strongly correlated features (N = 32) and their targets; the learner's RNG is left alone."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(7)
        x1 = torch.linspace(-1.0, 1.0, 32)
        x2 = 0.9 * x1 + 0.2 * torch.randn(32)
        X = torch.stack([x1, x2], dim=1)
        y = X @ torch.tensor([1.0, -0.5]) + 0.1 * torch.randn(32)
    return X, y


def _bowl_hessian() -> torch.Tensor:
    """The Hessian of mean((X w - y)²) over w: 2/N · XᵀX, the same at every w (float64)."""
    X, _ = limit_problem()
    X = X.double()
    return 2 / X.shape[0] * X.T @ X


def lr_limit(answer: Any) -> str | None:
    """the learning rate above which plain SGD diverges on bowl(w): 2/λ."""
    hessian = _bowl_hessian()
    low, high = torch.linalg.eigvalsh(hessian).tolist()
    expected = 2 / high
    if isinstance(answer, torch.Tensor) and answer.is_complex():
        return (
            "the answer is a complex number: torch.linalg.eigvals gives complex eigenvalues. A "
            "Hessian is symmetric, so use torch.linalg.eigvalsh, whose eigenvalues are real."
        )
    if isinstance(answer, torch.Tensor) and answer.numel() == 2:
        return (
            "the answer holds two numbers, one per eigenvalue. Which direction limits the "
            "learning rate: the gently or the most sharply curved one? Keep that one number."
        )
    hint = compare_number(answer, expected, name="the limit", rel_tol=1e-3)
    if hint is None:
        return None
    if isinstance(answer, torch.Tensor) and answer.numel() == 1:
        answer = answer.detach().item()
    if isinstance(answer, bool) or not isinstance(answer, (int, float)):
        return hint
    value = float(answer)
    diagonal = hessian.diagonal().tolist()
    mistakes = [
        (
            [2 / low, 1 / low],
            "that comes from the smallest eigenvalue, the gently curved direction. Steps "
            "overshoot first along the most sharply curved direction: the largest eigenvalue.",
        ),
        (
            [1 / high],
            "that is where a step starts to land on the other side of the bottom (1/λ). It "
            "still lands closer than it started until the learning rate reaches twice that.",
        ),
        ([high, low], "that is an eigenvalue λ itself, a curvature, not a learning rate."),
        (
            [2 / d for d in diagonal] + [1 / d for d in diagonal],
            "that comes from the diagonal of the Hessian: the curvature along each weight alone. "
            "The two features are strongly correlated, so the most sharply curved direction "
            "mixes both weights; take the eigenvalues of the whole Hessian.",
        ),
        (
            [2 / (low + high)],
            "that is 2 divided by the sum of the eigenvalues (the trace): a safe learning rate, "
            "but smaller than the limit. Use the largest eigenvalue alone.",
        ),
    ]
    for candidates, mistake in mistakes:
        if any(math.isclose(value, c, rel_tol=1e-3) for c in candidates):
            return f"the limit is not {value:.4g}: {mistake}"
    if math.isclose(value, expected, rel_tol=0.05):
        return (
            f"{value:.4g} is close, but not it: that looks like a search by trial. Compute it "
            "exactly: the Hessian of bowl, its largest eigenvalue λ, then 2/λ."
        )
    return (
        f"the limit is not {value:.4g}. Compute the Hessian of bowl with "
        "torch.autograd.functional.hessian at any w (it is the same everywhere), its largest "
        "eigenvalue λ with torch.linalg.eigvalsh, and then 2/λ."
    )
