"""Exercise checks for notebook 03 — The loss: how wrong is the prediction?"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F

from helpers._util import first_line
from helpers.checks import compare_number, expect_function

__all__ = ["masked_mse", "cross_entropy", "sequence_ce"]


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


def _masked_cases() -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """(pred, target, mask): missing targets hold a placeholder 0; rows differ in known count."""
    cases = []
    for shape, known, seed in (
        ((8,), [1, 0, 1, 1, 0, 1, 0, 1], 61),
        ((3, 4), [[1, 1, 1, 1], [0, 1, 0, 0], [1, 0, 0, 1]], 62),
    ):
        mask = torch.tensor(known, dtype=torch.bool)
        target = torch.where(mask, _randn(*shape, seed=seed + 100), torch.zeros(shape))
        cases.append((_randn(*shape, seed=seed), target, mask))
    return cases


def masked_mse(answer: Any) -> str | None:
    """masked_mse averages the squared errors of the known targets only."""
    if hint := expect_function(answer, "masked_mse"):
        return hint
    for pred_data, target, mask in _masked_cases():
        pred = pred_data.clone().requires_grad_()
        got = answer(pred, target, mask)
        squared = (pred_data - target) ** 2
        if isinstance(got, torch.Tensor) and got.dim() > 0:
            return (
                f"masked_mse returns a tensor of shape {tuple(got.shape)}; a loss is one number, "
                "a 0-dim tensor: the mean of the squared errors of the known entries."
            )
        if hint := _scalar_loss_hint(got, "masked_mse"):
            return hint
        known = int(mask.sum())
        want = squared[mask].mean()
        if _is(got, squared.mean()):
            return (
                "that is the mean over every entry: the missing targets' placeholder values "
                "count as if they were real targets. Leave them out."
            )
        if _is(got, (squared * mask).mean()):
            return (
                f"the missing entries no longer add to the sum, but they still count in the "
                f"mean: you divided by all {mask.numel()} entries, not by the {known} known ones."
            )
        if _is(got, squared[mask].sum()):
            return (
                f"you summed the squared errors: divide by the number of known entries ({known})."
            )
        if _is(got, squared[~mask].mean()):
            return "you used the entries where mask is False; True marks the known targets."
        if _is(got, want.sqrt()):
            return "you took the square root: that is RMSE. Mean squared error has no root."
        if mask.dim() == 2 and _is(got, ((squared * mask).sum(1) / mask.sum(1)).mean()):
            return (
                "you averaged each row first, then the rows: a row with one known entry then "
                "weighs as much as a row with four. Average over all known entries at once."
            )
        if hint := compare_number(
            got, float(want), name=f"masked_mse for inputs of shape {tuple(mask.shape)}"
        ):
            return hint
    return None


def _ce_cases() -> list[tuple[torch.Tensor, torch.Tensor]]:
    ordinary = _randn(6, 4, seed=41, scale=2.0)
    ordinary_targets = torch.tensor([0, 3, 1, 2, 3, 0])
    far_apart = torch.tensor([[0.0, 200.0, -200.0], [100.0, 0.0, -100.0], [1.0, 2.0, 3.0]])
    far_targets = torch.tensor([0, 2, 1])  # picks classes whose softmax underflows to 0
    return [(ordinary, ordinary_targets), (far_apart, far_targets)]


def cross_entropy(answer: Any) -> str | None:
    """cross_entropy(logits, targets) equals F.cross_entropy, stably."""
    if hint := expect_function(answer, "cross_entropy"):
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
        if hint := _scalar_loss_hint(got, "cross_entropy"):
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
        if hint := compare_number(got, float(want), name="cross_entropy"):
            return hint
    return None


def _sequence_cases() -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(logits (N, T, C), targets (N, T)); the first has T == C, where wrong layouts run."""
    cases = []
    for n, t, c, seed in ((2, 4, 4, 71), (3, 5, 3, 72)):
        logits = _randn(n, t, c, seed=seed, scale=2.0)
        targets = torch.randint(0, c, (n, t), generator=torch.Generator().manual_seed(seed + 100))
        cases.append((logits, targets))
    return cases


def _same_error(error: Exception, logits: torch.Tensor, targets: torch.Tensor) -> bool:
    """True when F.cross_entropy(logits, targets) raises the very error the learner's code did."""
    try:
        F.cross_entropy(logits, targets)
    except Exception as other:
        return type(other) is type(error) and str(other) == str(error)
    return False


def sequence_ce(answer: Any) -> str | None:
    """sequence_ce puts the classes where F.cross_entropy looks for them."""
    if hint := expect_function(answer, "sequence_ce"):
        return hint
    silently_wrong = False
    for logits_data, targets in _sequence_cases():
        n, t, c = logits_data.shape
        logits = logits_data.clone().requires_grad_()
        try:
            got = answer(logits, targets)
        except Exception as error:
            if _same_error(error, logits_data, targets):  # (N, T, C) handed over as it is
                return _CLASSES_IN_DIM_1
            if _same_error(error, logits_data.reshape(-1, c), targets):
                return (
                    f"the logits became {n * t} rows of {c} scores, one per step, but the "
                    f"targets are still ({n}, {t}): they need one class index per row too."
                )
            return (
                f"sequence_ce raised {type(error).__name__}: {first_line(error).rstrip('.')}. "
                "Print the "
                "shapes you hand to F.cross_entropy and compare them with the shapes it takes."
            )
        per_step = F.cross_entropy(
            logits_data.reshape(-1, c), targets.reshape(-1), reduction="none"
        )
        if isinstance(got, torch.Tensor) and got.dim() > 0 and got.numel() in (n, n * t):
            return (
                f"sequence_ce returns a tensor of shape {tuple(got.shape)}; the loss is one "
                "number, the mean over every step of every sequence."
            )
        if hint := _scalar_loss_hint(got, "sequence_ce"):
            return hint
        if t == c and _is(got, F.cross_entropy(logits_data, targets)):
            silently_wrong = True  # (N, T, C) as it is, or a reshape: the T != C case tells
            continue
        if _is(got, F.cross_entropy(logits_data.reshape(n, c, t), targets)):
            return (
                f"reshape (or view) to ({n}, {c}, {t}) keeps the numbers in memory order: it "
                "regroups them, it does not move the class scores into dimension 1, so classes "
                "and steps get mixed up. The class scores of one step must stay together."
            )
        if _is(
            got, F.cross_entropy(F.softmax(logits_data, dim=-1).reshape(-1, c), targets.reshape(-1))
        ):
            return (
                "you applied a softmax before the loss, so it is applied twice: "
                "F.cross_entropy takes raw logits."
            )
        if _is(got, per_step.sum()):
            return f"you summed over the steps: take the mean over all {n}×{t} steps."
        if hint := compare_number(
            got, float(per_step.mean()), name=f"sequence_ce for logits of shape {(n, t, c)}"
        ):
            return hint
    return _CLASSES_IN_DIM_1 if silently_wrong else None


_CLASSES_IN_DIM_1 = (
    "F.cross_entropy reads dimension 1 of the logits as the classes, and in (N, T, C) that is "
    "the time steps (when T == C nothing complains, and the loss is simply wrong). Bring the "
    "logits into a shape it takes, with the targets to match."
)
