"""Exercise checks for 05 — optimizer.step(): changing the weights.

Answers that are functions are called here, on a fresh probe model of the checker's own, and
compared with what `torch.optim.SGD` does to an identical twin of that model.
"""

from __future__ import annotations

import copy
import math
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from helpers.checks import compare_number, exercise, expect_function, first_line

__all__ = [
    "MOMENTUM_PROBLEM",
    "check_momentum_by_hand",
    "check_sgd_step",
    "check_train_step",
    "momentum_run",
]

LR = 0.1


def _probe() -> tuple[nn.Linear, torch.Tensor, torch.Tensor]:
    """A small regression problem, built without touching the learner's random state."""
    with torch.random.fork_rng(devices=[]):
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
    return f"{what} raised {type(error).__name__}: {first_line(error)}."


def _close(a: torch.Tensor, b: torch.Tensor) -> bool:
    return torch.allclose(a, b, rtol=1e-5, atol=1e-6)


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


@exercise(
    "05.sgd_step",
    "sgd_step(params, lr) moves every parameter by -lr * p.grad in place, as torch.optim.SGD does",
)
def check_sgd_step(answer: Any) -> str | None:
    """Call the learner's sgd_step on a fresh model and compare with torch.optim.SGD."""
    hint = expect_function(answer, "sgd_step")
    if hint:
        return hint
    model, X, y = _probe()
    twin = copy.deepcopy(model)
    _fill_gradients(model, X, y)
    _fill_gradients(twin, X, y)
    names = [name for name, _ in model.named_parameters()]
    params = list(model.parameters())
    before = [p.detach().clone() for p in params]
    grads = [p.grad.clone() for p in params]
    try:
        answer(params, LR)
    except AttributeError as error:
        if "parameters" in str(error):
            return (
                "sgd_step gets a list of parameters, not a model: loop with `for p in params:` "
                "instead of calling .parameters()."
            )
        return _error_hint("sgd_step(params, lr)", error)
    except Exception as error:
        return _error_hint("sgd_step(params, lr)", error)
    torch.optim.SGD(twin.parameters(), lr=LR).step()
    current = list(model.parameters())
    if any(a is not b for a, b in zip(current, params, strict=False)):
        return (
            "the model holds different Parameter objects after sgd_step: update the ones in "
            "params in place instead of replacing them."
        )
    changed = []
    for name, p, old, grad in zip(names, params, before, grads, strict=True):
        if not (p.is_leaf and p.requires_grad):
            return (
                f"after sgd_step, {name} is no longer a leaf that requires grad. "
                "Update it in place under torch.no_grad(); do not detach or replace it."
            )
        hint = _update_hint(p.detach() - old, grad, LR)
        changed.append(not torch.equal(p.detach(), old))
        if hint and any(changed[:-1]) and not changed[-1]:
            return (
                f"{names[0]} changed but {name} did not: update every parameter in params, "
                "not just the first."
            )
        if hint:
            return f"{name}: {hint}"
    for name, p, grad in zip(names, params, grads, strict=True):
        if p.grad is None or not torch.equal(p.grad, grad):
            return (
                f"sgd_step changed {name}.grad. The step only reads the gradients; "
                "clearing them is zero_grad()'s job, before the next backward()."
            )
    for name, p, want in zip(names, params, twin.parameters(), strict=True):
        if not torch.allclose(p.detach(), want.detach(), rtol=1e-5, atol=1e-6):
            return f"{name} differs from what torch.optim.SGD(lr={LR}) gives."
    return None


STEPS = 3


@exercise(
    "05.train_step",
    "train_step(model, X, y, lr) updates the model's own Parameters in place and returns the loss",
)
def check_train_step(answer: Any) -> str | None:
    """Run the learner's train_step three times on a fresh model; compare with torch.optim.SGD."""
    hint = expect_function(answer, "train_step")
    if hint:
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


@exercise("05.momentum_by_hand", "w after two steps of SGD with momentum 0.9 on L(w) = w²")
def check_momentum_by_hand(answer: Any) -> str | None:
    """Compare a number with two momentum steps on L(w) = w² from w = 1."""
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
