"""Exercise checks for 04 — backward(): where gradients come from (on `regression_data()`)."""

from __future__ import annotations

import math
from typing import Any

import torch

from helpers._util import first_line
from helpers.checks import close, compare_number, compare_tensor, expect_function, raised

__all__ = [
    "regression_data",
    "by_hand",
    "slope",
    "double_backward",
    "SLOPE_POINTS",
]


def regression_data() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Return fresh copies of the exercise problem: X (4, 2), y (4,), w (2,) and b (a 0-dim tensor)."""
    X = torch.tensor([[1.0, 2.0], [0.0, -1.0], [3.0, 1.0], [-2.0, 0.5]])
    y = torch.tensor([1.0, -2.0, 4.0, 0.5])
    w = torch.tensor([0.5, -1.0])
    b = torch.tensor(0.25)
    return X, y, w, b


def _gradients(*, with_bias: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """dL/dw and dL/db of the MSE loss at the exercise's w and b (the bias optionally left out)."""
    X, y, w, b = regression_data()
    residual = X @ w + (b if with_bias else 0.0) - y
    n = X.shape[0]
    return 2 / n * X.T @ residual, 2 / n * residual.sum()


def _mistake(
    name: str, got: torch.Tensor, right: torch.Tensor, no_bias: torch.Tensor
) -> str | None:
    """Name the usual slip when `got` is a scaled or sign-flipped version of the right gradient."""
    n = regression_data()[0].shape[0]
    slips = [
        (
            0.5,
            f"{name} is half the right size: you forgot the 2 that comes from differentiating "
            "the square, d(r²)/dr = 2r.",
        ),
        (
            float(n),
            f"{name} is {n} times too large: you forgot the 1/N. The loss is the mean over the "
            f"N = {n} samples, so its gradient is divided by N too.",
        ),
        (
            n / 2,
            f"{name} is {n // 2} times too large: both the 2 and the 1/N are missing "
            f"(together they make 2/N = 1/{n // 2} here). Multiply by 2 / N.",
        ),
        (
            1 / n,
            f"{name} is {n} times too small: you divided by N twice (a .mean() and a / N?).",
        ),
    ]
    for factor, text in slips:
        if close(got, factor * right):
            return text
        if close(got, -factor * right):
            return text + " The sign is flipped as well: the residual is Xw + b − y."
    if close(got, -right):
        return (
            f"{name} has the right size but the wrong sign. The residual is prediction minus "
            "target, r = X_ex @ w_ex + b_ex − y_ex; with y − prediction you need a minus in front."
        )
    if close(got, no_bias):
        return (
            f"{name} leaves the bias out: the prediction is X_ex @ w_ex + b_ex, so the "
            "residual is X_ex @ w_ex + b_ex − y_ex."
        )
    return None


def by_hand(answer: Any) -> str | None:
    """dL/dw = 2/N · Xᵀ(Xw + b − y) and dL/db = 2/N · Σ(Xw + b − y), by hand."""
    if not isinstance(answer, (tuple, list)) or len(answer) != 2:
        return (
            "the answer should be the pair (grad_w, grad_b); keep the line "
            "`answer = (grad_w, grad_b)` and fill in the two names above it."
        )
    grad_w, grad_b = answer
    right_w, right_b = _gradients()
    no_bias_w, no_bias_b = _gradients(with_bias=False)
    if grad_w is None:
        return "grad_w is still None. Replace `None` with your code for dL/dw, then run the cell again."
    if isinstance(grad_w, torch.Tensor):
        if grad_w.numel() == 1 and right_w.numel() != 1:
            return (
                "grad_w is a single number, but w has 2 entries, so dL/dw has 2: one per "
                "feature. Did you put dL/db into grad_w? The order is (grad_w, grad_b)."
            )
        if tuple(grad_w.shape) in {(1, 2), (2, 1)}:
            return (
                f"grad_w has shape {tuple(grad_w.shape)}, but a gradient has the shape of what it "
                "is taken with respect to: w_ex has shape (2,). Keep the residual a vector of "
                "shape (4,), so that X_ex.T @ residual has shape (2,)."
            )
        if tuple(grad_w.shape) == (4,):
            return (
                "grad_w has one entry per sample (shape (4,)), like the residual or dL/dŷ, the "
                "first step of the chain. Multiply by X_ex.T to add up each feature's share over "
                "the samples."
            )
        if tuple(grad_w.shape) == (4, 2):
            return (
                "grad_w has shape (4, 2): one row per sample. Those rows still have to be added "
                "up over the samples; X_ex.T @ residual does the multiply and the sum in one go."
            )
        if tuple(grad_w.shape) == (2,) and grad_w.is_floating_point():
            if hint := _mistake("grad_w", grad_w, right_w, no_bias_w):
                return hint
    if hint := compare_tensor(grad_w, right_w, name="grad_w", check_dtype=False):
        return hint
    if grad_b is None:
        return "grad_b is still None. Replace `None` with your code for dL/db, then run the cell again."
    if isinstance(grad_b, torch.Tensor) and grad_b.numel() != 1:
        if tuple(grad_b.shape) in {(4,), (4, 1)}:
            return (
                "grad_b has one entry per sample: dL/db adds the contributions of all samples "
                "into one number. Sum them (.sum()), then scale by 2/N."
            )
        return (
            f"grad_b should be a single number, but it has shape {tuple(grad_b.shape)}: "
            "b is one number, so dL/db is one number."
        )
    value = grad_b
    if isinstance(value, torch.Tensor):
        value = value.detach().item()
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        if hint := _mistake(
            "grad_b", torch.tensor(float(value)), right_b.reshape(()), no_bias_b.reshape(())
        ):
            return hint
    return compare_number(grad_b, float(right_b), name="grad_b")


SLOPE_POINTS = (-1.0, 0.0, 0.5, 2.0)


def _f(x: torch.Tensor) -> torch.Tensor:
    return (x**3 - 2 * x).sum()


def slope(answer: Any) -> str | None:
    """slope(x) returns df/dx with torch.autograd.grad and leaves x.grad alone."""
    if hint := expect_function(answer, "slope"):
        return hint
    x = torch.tensor(SLOPE_POINTS, requires_grad=True)
    right = 3 * x.detach() ** 2 - 2
    try:
        result = answer(x)
    except Exception as error:
        message = str(error)
        if "does not require grad" in message or "One of the differentiated Tensors" in message:
            return (
                f"slope(x) raised {type(error).__name__}: {first_line(error)}. Differentiate "
                "with respect to the x your function was given; don't detach it or make a new one."
            )
        return raised("slope(x)", error)
    if x.grad is not None:
        return (
            "slope(x) filled x.grad: that is what y.backward() does. Use torch.autograd.grad(y, x), "
            "which hands the gradient back and leaves x.grad untouched."
        )
    if result is None:
        return (
            "slope(x) returned None. Replace the None in its return line with the gradient of "
            "f(x) with respect to x: torch.autograd.grad(output, input) hands it back."
        )
    if isinstance(result, (tuple, list)):
        if len(result) == 1 and isinstance(result[0], torch.Tensor):
            return (
                "slope(x) returned a tuple: torch.autograd.grad returns one gradient per input, "
                "in a tuple, even for one input. Return its first element, [0]."
            )
        return f"slope(x) returned a {type(result).__name__}; it should return one tensor."
    if isinstance(result, torch.Tensor) and result.numel() == 1 and x.numel() != 1:
        if math.isclose(float(result.detach()), float(_f(x.detach())), rel_tol=1e-4):
            return (
                "slope(x) returned f(x), the value of the function. Return its gradient: "
                "torch.autograd.grad(y, x)[0]."
            )
    return compare_tensor(result, right, name="slope(x)", check_dtype=False)


def _buggy_hint(error: BaseException) -> str:
    if "second time" in str(error):
        return (
            "accumulate_three(w) still fails on the second backward(): 'Trying to backward "
            "through the graph a second time'. The first backward() freed what its graph had "
            "saved. Which line builds that graph, and how often does it run? Each backward() "
            "needs a graph of its own."
        )
    return raised("accumulate_three(w)", error)


def double_backward(answer: Any) -> str | None:
    """accumulate_three(w) runs backward three times; w.grad holds 3 × dL/dw."""
    if hint := expect_function(answer, "accumulate_three"):
        return hint
    _, _, w0, _ = regression_data()
    w = w0.clone().requires_grad_(True)
    right, _ = _gradients()
    try:
        answer(w)
    except Exception as error:
        return _buggy_hint(error)
    if w.grad is None:
        return (
            "w.grad is None after accumulate_three(w): backward() never reached the w that was "
            "passed in. Compute the prediction from that w (don't make a new tensor or detach it)."
        )
    for times, text in [
        (1, "one backward pass's worth"),
        (2, "two backward passes' worth"),
    ]:
        if close(w.grad, times * right):
            return (
                f"w.grad holds {text}, not three. Each backward() adds into w.grad; run it three "
                "times and do not reset or overwrite w.grad in between."
            )
    return compare_tensor(w.grad, 3 * right, name="w.grad")
