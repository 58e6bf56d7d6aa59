"""Notebook 03's exercise checks: the right answer passes, each typical mistake gets its hint."""

from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn.functional as F

from helpers.checks import grade


def test_the_checkers_leave_the_learners_random_numbers_alone():
    before = torch.random.get_rng_state()
    grade("03.mse", lambda pred, target: ((pred - target) ** 2).mean())
    grade("03.cross_entropy", lambda logits, targets: None)
    grade("03.fix_shapes", lambda pred, target: None)
    assert torch.equal(torch.random.get_rng_state(), before)


# --- 03.mse ----------------------------------------------------------------------------------


def test_mse_right_answers_pass():
    assert grade("03.mse", lambda pred, target: ((pred - target) ** 2).mean()).ok
    assert grade("03.mse", lambda pred, target: (pred - target).pow(2).sum() / pred.numel()).ok
    assert grade("03.mse", F.mse_loss).ok


@pytest.mark.parametrize(
    ("answer", "phrase"),
    [
        (lambda p, t: ((p - t) ** 2).sum(), "you summed the squared errors"),
        (lambda p, t: ((p - t) ** 2).mean().sqrt(), "that is RMSE"),
        (lambda p, t: torch.linalg.vector_norm(p - t), "Euclidean distance"),
        (lambda p, t: ((p - t) ** 2).sum() / p.shape[0], "divided by the number of rows"),
        (lambda p, t: (p - t).mean(), "square the differences"),
        (lambda p, t: (t - p).mean(), "square the differences"),
        (lambda p, t: (p - t).abs().mean(), "mean absolute error"),
        (lambda p, t: (p - t) ** 2, "one squared error per element"),
        (lambda p, t: ((p - t) ** 2).mean().item(), "returns a Python float"),
        (lambda p, t: ((p - t) ** 2).mean().detach(), "not in the graph"),
        (lambda p, t: ((p - t) ** 2).mean(dim=-1), "returns a tensor of shape"),
        (lambda p, t: None, "returns None"),
        (lambda p, t: "0.5", "should return a torch.Tensor"),
        (lambda p, t: 2 * ((p - t) ** 2).mean(), "factor of 2"),
        (lambda p, t: ((p - t) ** 2).mean() + 1, "but it should be about"),
        (F.mse_loss(torch.zeros(2), torch.ones(2)), "should be your function `mse` itself"),
    ],
)
def test_mse_mistakes_get_their_hint(answer, phrase):
    feedback = grade("03.mse", answer)
    assert not feedback.ok
    assert phrase in feedback.message, feedback.message


# --- 03.cross_entropy ------------------------------------------------------------------------


def _ce(logits, targets):
    return -F.log_softmax(logits, dim=1)[torch.arange(len(targets)), targets].mean()


def _naive_ce(logits, targets):
    return -torch.log(F.softmax(logits, dim=1))[torch.arange(len(targets)), targets].mean()


def test_cross_entropy_right_answers_pass():
    assert grade("03.cross_entropy", _ce).ok
    assert grade(
        "03.cross_entropy",
        lambda logits, t: (torch.logsumexp(logits, 1) - logits[torch.arange(len(t)), t]).mean(),
    ).ok
    assert grade("03.cross_entropy", F.cross_entropy).ok


@pytest.mark.parametrize(
    ("answer", "phrase"),
    [
        (_naive_ce, "infinite for logits far apart"),
        (lambda lg, t: -F.softmax(lg, 1)[torch.arange(len(t)), t].mean(), "averaged probabilities"),
        (lambda lg, t: F.cross_entropy(F.softmax(lg, 1), t), "softmax before the loss"),
        (lambda lg, t: -_ce(lg, t), "wrong sign"),
        (lambda lg, t: len(t) * _ce(lg, t), "summed over the batch"),
        (lambda lg, t: -F.log_softmax(lg, 0)[torch.arange(len(t)), t].mean(), "dim=0"),
        (lambda lg, t: -F.log_softmax(lg, 1)[:, t].mean(), "N×N block"),
        (lambda lg, t: -F.log_softmax(lg, 1)[torch.arange(len(t)), t], "one loss per sample"),
        (lambda lg, t: _ce(lg, t).item(), "returns a Python float"),
        (lambda lg, t: _ce(lg.detach(), t), "not in the graph"),
        (lambda lg, t: None, "returns None"),
        (lambda lg, t: _ce(lg, t) + 0.3, "but it should be about"),
        (lambda lg, t: _ce(lg, t) * float("nan"), "NaN"),
    ],
)
def test_cross_entropy_mistakes_get_their_hint(answer, phrase):
    feedback = grade("03.cross_entropy", answer)
    assert not feedback.ok
    assert phrase in feedback.message, feedback.message


# --- 03.fix_shapes ---------------------------------------------------------------------------


def test_fix_shapes_right_answers_pass():
    assert grade("03.fix_shapes", lambda pred, target: F.mse_loss(pred.squeeze(1), target)).ok
    assert grade("03.fix_shapes", lambda pred, target: F.mse_loss(pred, target.unsqueeze(1))).ok
    assert grade("03.fix_shapes", lambda pred, target: ((pred.view(-1) - target) ** 2).mean()).ok


def test_fix_shapes_checker_keeps_the_warnings_it_provokes_to_itself():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        grade("03.fix_shapes", F.mse_loss)
    assert caught == []


@pytest.mark.parametrize(
    ("answer", "phrase"),
    [
        (F.mse_loss, "mean over all 7×7 pairs"),
        (lambda pred, target: ((pred - target) ** 2).mean(), "mean over all 7×7 pairs"),
        (lambda pred, target: F.mse_loss(pred.squeeze(), target), "batch of ONE sample"),
        (lambda pred, target: F.mse_loss(pred.squeeze(1), target).item(), "Python float"),
        (lambda pred, target: (pred.squeeze(1) - target) ** 2, "returns a tensor of shape"),
        (lambda pred, target: F.mse_loss(pred.squeeze(1), target).detach(), "not in the graph"),
        (lambda pred, target: ((pred.squeeze(1) - target) ** 2).sum(), "7 times too large"),
        (lambda pred, target: None, "returns None"),
    ],
)
def test_fix_shapes_mistakes_get_their_hint(answer, phrase):
    feedback = grade("03.fix_shapes", answer)
    assert not feedback.ok
    assert phrase in feedback.message, feedback.message
