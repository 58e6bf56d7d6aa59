"""Notebook 03's exercise checks: the right answer passes, each typical mistake gets its hint."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from tests.test_checks import grade_keeping_random_state as grade


def test_the_checkers_leave_the_learners_random_numbers_alone():
    before = torch.random.get_rng_state()
    grade("03.masked_mse", lambda pred, target, mask: ((pred - target)[mask] ** 2).mean())
    grade("03.cross_entropy", lambda logits, targets: None)
    grade("03.sequence_ce", _sequence_ce)
    assert torch.equal(torch.random.get_rng_state(), before)


# --- 03.masked_mse ---------------------------------------------------------------------------


def _sq(p, t):
    return (p - t) ** 2


@pytest.mark.parametrize(
    "answer",
    [
        lambda p, t, m: F.mse_loss(p[m], t[m]),
        lambda p, t, m: (_sq(p, t)[m]).mean(),
        lambda p, t, m: (_sq(p, t) * m).sum() / m.sum(),
        lambda p, t, m: torch.where(m, _sq(p, t), 0.0).sum() / m.count_nonzero(),
    ],
    ids=["mse_loss on the known", "index then mean", "multiply by mask", "where"],
)
def test_masked_mse_right_answers_pass(answer):
    assert grade("03.masked_mse", answer).ok


@pytest.mark.parametrize(
    ("answer", "phrase"),
    [
        (lambda p, t, m: F.mse_loss(p, t), "placeholder values"),
        (lambda p, t, m: (_sq(p, t) * m).mean(), "still count in the mean"),
        (lambda p, t, m: F.mse_loss(p * m, t), "still count in the mean"),
        (lambda p, t, m: (_sq(p, t) * m).sum(), "you summed"),
        (lambda p, t, m: F.mse_loss(p[~m], t[~m]), "True marks the known targets"),
        (lambda p, t, m: F.mse_loss(p[m], t[m]).sqrt(), "RMSE"),
        (
            lambda p, t, m: ((_sq(p, t) * m).sum(-1) / m.sum(-1)).mean(),
            "averaged each row first",
        ),
        (lambda p, t, m: _sq(p, t)[m], "returns a tensor of shape"),
        (lambda p, t, m: _sq(p, t) * m, "returns a tensor of shape"),
        (lambda p, t, m: F.mse_loss(p[m], t[m]).item(), "returns a Python float"),
        (lambda p, t, m: F.mse_loss(p[m].detach(), t[m]), "not in the graph"),
        (lambda p, t, m: None, "returns None"),
        (lambda p, t, m: 2 * F.mse_loss(p[m], t[m]), "factor of 2"),
        (lambda p, t, m: F.mse_loss(p[m], t[m]) + 1, "but it should be about"),
        (F.mse_loss(torch.zeros(2), torch.ones(2)), "your function `masked_mse` itself"),
    ],
)
def test_masked_mse_mistakes_get_their_hint(answer, phrase):
    feedback = grade("03.masked_mse", answer)
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


# --- 03.sequence_ce --------------------------------------------------------------------------


def _sequence_ce(logits, targets):
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))


def _by_hand(logits, targets):
    log_p = F.log_softmax(logits, dim=-1)
    return -log_p.gather(-1, targets.unsqueeze(-1)).mean()


@pytest.mark.parametrize(
    "answer",
    [
        _sequence_ce,
        lambda lg, t: F.cross_entropy(lg.transpose(1, 2), t),
        lambda lg, t: F.cross_entropy(lg.permute(0, 2, 1), t),
        lambda lg, t: F.cross_entropy(lg.flatten(0, 1), t.flatten()),
        lambda lg, t: nn.CrossEntropyLoss()(lg.transpose(1, 2), t),
        lambda lg, t: torch.stack(
            [F.cross_entropy(s, u) for s, u in zip(lg, t, strict=True)]
        ).mean(),
        _by_hand,
    ],
    ids=["flatten", "transpose", "permute", "flatten(0, 1)", "module", "per sequence", "by hand"],
)
def test_sequence_ce_right_answers_pass(answer):
    assert grade("03.sequence_ce", answer).ok


def _n_c_t(logits):
    n, t, c = logits.shape
    return logits.reshape(n, c, t)


@pytest.mark.parametrize(
    ("answer", "phrase"),
    [
        (F.cross_entropy, "reads dimension 1 of the logits as the classes"),
        (lambda lg, t: F.cross_entropy(_n_c_t(lg), t), "keeps the numbers in memory order"),
        (
            lambda lg, t: F.cross_entropy(lg.reshape(-1, lg.shape[-1]), t),
            "the targets are still",
        ),
        (
            lambda lg, t: F.cross_entropy(lg.transpose(1, 2), t, reduction="sum"),
            "you summed over the steps",
        ),
        (
            lambda lg, t: F.cross_entropy(lg.transpose(1, 2), t, reduction="none"),
            "returns a tensor of shape",
        ),
        (
            lambda lg, t: F.cross_entropy(lg.transpose(1, 2), t, reduction="none").mean(1),
            "returns a tensor of shape",
        ),
        (lambda lg, t: F.cross_entropy(F.softmax(lg, -1).transpose(1, 2), t), "softmax"),
        (lambda lg, t: _sequence_ce(lg, t).item(), "returns a Python float"),
        (lambda lg, t: _sequence_ce(lg.detach(), t), "not in the graph"),
        (lambda lg, t: None, "returns None"),
        (lambda lg, t: _sequence_ce(lg, t) + 0.3, "but it should be about"),
        (lambda lg, t: F.cross_entropy(lg.transpose(0, 2), t), "sequence_ce raised"),
    ],
)
def test_sequence_ce_mistakes_get_their_hint(answer, phrase):
    feedback = grade("03.sequence_ce", answer)
    assert not feedback.ok
    assert phrase in feedback.message, feedback.message


def test_sequence_ce_hints_never_name_the_fix():
    for answer in (F.cross_entropy, lambda lg, t: F.cross_entropy(_n_c_t(lg), t)):
        message = grade("03.sequence_ce", answer).message
        assert "transpose" not in message and "permute" not in message
