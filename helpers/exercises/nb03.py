"""Exercise checks for notebook 03 — The loss: how wrong is the prediction?"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

from helpers.checks import compare_number, exercise, expect_function

__all__ = ["check_mse", "check_cross_entropy", "check_fix_shapes"]


def _randn(*shape: int, seed: int, scale: float = 1.0) -> torch.Tensor:
    return scale * torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def _is(value: torch.Tensor, reference: torch.Tensor) -> bool:
    """True when the 0-dim `value` is close to the 0-dim `reference` (both finite)."""
    a, b = float(value.detach()), float(reference.detach())
    return math.isfinite(a) and math.isfinite(b) and math.isclose(a, b, rel_tol=1e-4, abs_tol=1e-6)


def _scalar_loss_hint(got: Any, name: str) -> str | None:
    """The hints every hand-written loss shares: None, a float, not 0-dim, out of the graph."""
    if got is None:
        return f"{name} returns None: replace the None after `return` with your code."
    if isinstance(got, (int, float)) and not isinstance(got, bool):
        return (
            f"{name} returns a Python {type(got).__name__}, so the loss has left the graph and "
            "backward() could not reach the weights. Return the tensor itself (no .item())."
        )
    if not isinstance(got, torch.Tensor):
        return f"{name} should return a torch.Tensor, but it returns a {type(got).__name__}."
    if got.dim() != 0:
        return (
            f"{name} returns a tensor of shape {tuple(got.shape)}; a loss is one number, a 0-dim "
            "tensor. Reduce it with .mean() over every element."
        )
    if not got.requires_grad or got.grad_fn is None:
        return (
            f"{name} returns a tensor that is not in the graph (no grad_fn): compute it from the "
            "inputs with torch operations, without .detach(), torch.no_grad() or torch.tensor(...)."
        )
    return None


@exercise("03.mse", "mse(pred, target) is the mean of the squared differences, in the graph")
def check_mse(answer: Callable[..., Any]) -> str | None:
    """Call the learner's mse(pred, target) on a 1-D and a 2-D pair and compare with F.mse_loss."""
    hint = expect_function(answer, "mse")
    if hint:
        return hint
    for shape, seed in (((6,), 31), ((4, 3), 32)):
        pred = _randn(*shape, seed=seed).requires_grad_()
        target = _randn(*shape, seed=seed + 100)
        got = answer(pred, target)
        if isinstance(got, torch.Tensor) and got.shape == shape:
            if torch.allclose(got.detach(), (pred - target).detach() ** 2, atol=1e-6):
                return (
                    "mse returns one squared error per element; a loss is one number: "
                    "take the .mean() of them."
                )
        hint = _scalar_loss_hint(got, "mse")
        if hint:
            return hint
        diff = (pred - target).detach()
        want = F.mse_loss(pred, target).detach()
        if _is(got, (diff**2).sum()):
            return "you summed the squared errors: divide by the number of elements (use .mean())."
        if _is(got, want.sqrt()):
            return "you took the square root: that is RMSE. Mean squared error has no root."
        if _is(got, torch.linalg.vector_norm(diff)):
            return (
                "that is the Euclidean distance. Mean squared error is the distance squared, "
                "divided by the number of elements."
            )
        if len(shape) == 2 and _is(got, (diff**2).sum() / shape[0]):
            return (
                f"for inputs of shape {shape} you divided by the number of rows ({shape[0]}); "
                f"divide by every element ({pred.numel()}): .mean() does that."
            )
        if _is(got, diff.mean()) or _is(got, -diff.mean()):
            return "square the differences before averaging: positive and negative errors cancel."
        if _is(got, diff.abs().mean()):
            return "that is the mean absolute error: square the differences instead of abs()."
        hint = compare_number(got, float(want), name=f"mse for inputs of shape {shape}")
        if hint:
            return hint
    return None


def _ce_cases() -> list[tuple[torch.Tensor, torch.Tensor]]:
    ordinary = _randn(6, 4, seed=41, scale=2.0)
    ordinary_targets = torch.tensor([0, 3, 1, 2, 3, 0])
    far_apart = torch.tensor([[0.0, 200.0, -200.0], [100.0, 0.0, -100.0], [1.0, 2.0, 3.0]])
    far_targets = torch.tensor([0, 2, 1])  # picks classes whose softmax underflows to 0
    return [(ordinary, ordinary_targets), (far_apart, far_targets)]


@exercise("03.cross_entropy", "cross_entropy(logits, targets) equals F.cross_entropy, stably")
def check_cross_entropy(answer: Callable[..., Any]) -> str | None:
    """Call the learner's cross_entropy on ordinary logits and on logits far apart."""
    hint = expect_function(answer, "cross_entropy")
    if hint:
        return hint
    for case, (logits_data, targets) in enumerate(_ce_cases()):
        logits = logits_data.clone().requires_grad_()
        got = answer(logits, targets)
        n = len(targets)
        log_p = F.log_softmax(logits_data, dim=1)
        picked = log_p[torch.arange(n), targets]
        if isinstance(got, torch.Tensor) and got.shape == (n,):
            if torch.allclose(got.detach(), -picked, atol=1e-5):
                return (
                    "cross_entropy returns one loss per sample; the loss is their mean over the "
                    "batch: add .mean()."
                )
        hint = _scalar_loss_hint(got, "cross_entropy")
        if hint:
            return hint
        want = F.cross_entropy(logits_data, targets)
        value = float(got.detach())
        if case == 1 and math.isinf(value):
            return (
                "your result is infinite for logits far apart: softmax rounds tiny probabilities "
                "to 0, and log(0) = -inf. Use F.log_softmax(logits, dim=1), which never forms "
                "the probabilities."
            )
        if math.isnan(value):
            return "your result is NaN: use F.log_softmax(logits, dim=1) and index it."
        probs = F.softmax(logits_data, dim=1)
        if _is(got, -probs[torch.arange(n), targets].mean()):
            return "you averaged probabilities; the loss uses their log: start from F.log_softmax."
        if _is(got, F.cross_entropy(probs, targets)):
            return (
                "you applied a softmax before the loss, so it is applied twice: "
                "log_softmax the raw logits."
            )
        if _is(got, picked.mean()):
            return (
                "right size, wrong sign: cross-entropy is the NEGATIVE log-probability of the "
                "right class."
            )
        if _is(got, -picked.sum()):
            return f"you summed over the batch: take the mean over the {n} samples."
        if _is(got, -F.log_softmax(logits_data, dim=0)[torch.arange(n), targets].mean()):
            return (
                "log_softmax ran over dim=0, the batch; the classes are dim=1: "
                "F.log_softmax(logits, dim=1)."
            )
        if _is(got, -log_p[:, targets].mean()):
            return (
                "log_p[:, targets] picks an N×N block, every sample with every target. Pick one "
                "entry per row: log_p[torch.arange(N), targets]."
            )
        hint = compare_number(got, float(want), name="cross_entropy")
        if hint:
            return hint
    return None


@exercise("03.fix_shapes", "fixed_mse(pred, target) matches the shapes before taking the MSE")
def check_fix_shapes(answer: Callable[..., Any]) -> str | None:
    """Call the learner's fixed_mse with pred (N, 1) and target (N,), also for N = 1."""
    hint = expect_function(answer, "fixed_mse")
    if hint:
        return hint
    for n, seed in ((7, 51), (1, 52)):
        pred = _randn(n, 1, seed=seed).requires_grad_()
        target = _randn(n, seed=seed + 100)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            got = answer(pred, target)
        shape_warnings = [w for w in caught if "different to the input size" in str(w.message)]
        hint = _scalar_loss_hint(got, "fixed_mse")
        if hint:
            return hint
        broadcast = ((pred - target) ** 2).mean().detach()
        right = ((pred.detach().squeeze(1) - target) ** 2).mean()
        if n > 1 and _is(got, broadcast):
            return (
                f"that is the mean over all {n}×{n} pairs: the shapes (N, 1) and (N,) still "
                "broadcast. Make them equal first: pred.squeeze(1), or target.unsqueeze(1)."
            )
        if shape_warnings:
            if n == 1:
                return (
                    "for a batch of ONE sample, F.mse_loss still warned about the shapes: "
                    ".squeeze() with no argument removes the batch dimension too. Squeeze only "
                    "dimension 1: pred.squeeze(1)."
                )
            return "F.mse_loss still warned about the shapes: make them equal before calling it."
        hint = compare_number(got, float(right), name=f"fixed_mse for N = {n}")
        if hint:
            return hint
    return None
