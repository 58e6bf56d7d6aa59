"""Exercise checks of 10 — The bug clinic: the right answers pass, each usual mistake gets its own
hint, and nothing a learner hands in makes a check raise."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch.nn import functional as F

from tests.test_checks import grade_keeping_random_state as grade

# --- 10.which_bug --------------------------------------------------------------------------

RIGHT = {"A": 7, "B": 1, "C": 2, "D": 8}


@pytest.mark.parametrize(
    "answer",
    [
        RIGHT,
        {"a": 7, "b": 1, "c": 2, "d": 8},
        {"A": "7", "B": " 1", "C": 2, "D": 8},
        {" D ": 8, "C": 2, "B": 1, "A": 7},
    ],
)
def test_which_bug_right(answer):
    assert grade("10.which_bug", answer).ok


@pytest.mark.parametrize(
    ("change", "phrase"),
    [
        ({"A": 8}, "what squeezes the numbers the loss sees into [0, 1]"),
        ({"A": 6}, "eval mode changes dropout and BatchNorm"),
        ({"A": 3}, "log(1 + 5/e)"),
        ({"B": 2}, "does not move at all"),
        ({"B": 3}, "weights never change"),
        ({"B": 4}, "loss would be flat"),
        ({"B": 9}, "pile up"),
        ({"C": 3}, "with no step(), .grad would still hold the gradient"),
        ({"C": 4}, "`p = p - lr * p.grad`, .grad still holds the gradient"),
        ({"C": 1}, "gradients pile up"),
        ({"C": 5}, "Which bug empties it in between"),
        ({"D": 7}, "shape problem"),
        ({"D": 6}, "eval mode raises no warning"),
        ({"D": 1}, "every prediction with every target"),
    ],
)
def test_which_bug_each_confusion_gets_its_hint(change, phrase):
    feedback = grade("10.which_bug", {**RIGHT, **change})
    assert not feedback.ok
    assert phrase in feedback.message, feedback.message
    assert feedback.message.startswith("3 of 4 are right.")


def test_which_bug_several_wrong_lists_each():
    feedback = grade("10.which_bug", {"A": 1, "B": 7, "C": 2, "D": 8})
    assert feedback.message.startswith("2 of 4 are right.")
    assert "A: the floor" in feedback.message and "B: gradients" in feedback.message


@pytest.mark.parametrize(
    ("answer", "phrase"),
    [
        (None, "still None"),
        ([7, 1, 2, 8], "answer with a dict"),
        ("A7 B1 C2 D8", "answer with a dict"),
        ({"A": 7, "B": 1, "C": 2}, "no entry for D"),
        ({**RIGHT, "E": 3}, "only A, B, C and D"),
        ({**RIGHT, "C": 12}, "not a bug number"),
        ({**RIGHT, "C": "two"}, "not a bug number"),
        ({**RIGHT, "C": True}, "not a bug number"),
        ({**RIGHT, "C": 2.0}, "not a bug number"),
    ],
)
def test_which_bug_malformed_answers(answer, phrase):
    feedback = grade("10.which_bug", answer)
    assert not feedback.ok
    assert phrase in feedback.message, feedback.message


# --- 10.broadcast --------------------------------------------------------------------------


def fixed_mse_squeeze(prediction, targets):
    return F.mse_loss(prediction.squeeze(1), targets)


def fixed_mse_unsqueeze(prediction, targets):
    return F.mse_loss(prediction, targets.unsqueeze(1))


def fixed_mse_by_hand(prediction, targets):
    return ((prediction.reshape(-1) - targets) ** 2).mean()


def fixed_mse_view(prediction, targets):
    return torch.nn.MSELoss()(prediction, targets.view(-1, 1))


@pytest.mark.parametrize(
    "answer", [fixed_mse_squeeze, fixed_mse_unsqueeze, fixed_mse_by_hand, fixed_mse_view]
)
def test_broadcast_right(answer):
    assert grade("10.broadcast", answer).ok


@pytest.mark.parametrize(
    ("answer", "phrase"),
    [
        (lambda p, t: F.mse_loss(p, t), "warn about different target and input sizes"),
        (lambda p, t: F.mse_loss(p.squeeze(), t), "removes the batch dimension too"),
        (lambda p, t: ((p - t) ** 2).mean(), "returned the broadcast value"),
        (lambda p, t: (p - t) ** 2, "every prediction was compared with every target"),
        (lambda p, t: (p.squeeze(1) - t) ** 2, "average the squared errors"),
        (lambda p, t: F.mse_loss(p.squeeze(1), t).item(), "returned a Python number"),
        (lambda p, t: F.mse_loss(p.squeeze(1).detach(), t), "does not require grad"),
        (lambda p, t: F.mse_loss(p.squeeze(1), t, reduction="sum"), "times too large"),
        (lambda p, t: F.l1_loss(p.squeeze(1), t), "but it should be about"),
        (lambda p, t: None, "returned None"),
        (lambda p, t: "loss", "returned a str"),
        (lambda p: p, "raised TypeError"),
        (3.5, "itself, not the result of calling it"),
    ],
)
def test_broadcast_mistakes(answer, phrase):
    feedback = grade("10.broadcast", answer)
    assert not feedback.ok
    assert phrase in feedback.message, feedback.message


def test_broadcast_check_lets_no_warning_out():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert not grade("10.broadcast", lambda p, t: F.mse_loss(p, t)).ok


# --- 10.fix_step ---------------------------------------------------------------------------


def train_step_fixed(model, optimizer, loss_fn, inputs, targets):
    model.train()
    optimizer.zero_grad()
    loss = loss_fn(model(inputs), targets)
    loss.backward()
    optimizer.step()
    return loss.item()


def train_step_as_given(model, optimizer, loss_fn, inputs, targets):
    model.eval()
    with torch.no_grad():
        prediction = model(inputs)
    loss = loss_fn(prediction, targets)
    loss.backward()
    optimizer.zero_grad()
    optimizer.step()


def train_step_half_fixed(model, optimizer, loss_fn, inputs, targets):
    model.eval()
    prediction = model(inputs)
    loss = loss_fn(prediction, targets)
    loss.backward()
    optimizer.zero_grad()
    optimizer.step()
    return loss.item()


def test_fix_step_right():
    assert grade("10.fix_step", train_step_fixed).ok


def test_fix_step_the_given_step_gets_the_doctors_findings():
    feedback = grade("10.fix_step", train_step_as_given)
    assert not feedback.ok
    assert "the loop doctor still finds" in feedback.message
    assert "- step-raised: train_step raised RuntimeError" in feedback.message
    assert "- no-graph:" in feedback.message and "torch.no_grad()" in feedback.message


def test_fix_step_half_fixed_lists_each_remaining_problem():
    feedback = grade("10.fix_step", train_step_half_fixed)
    assert not feedback.ok
    assert "2 problems" in feedback.message
    assert "- eval-mode:" in feedback.message and "- no-update:" in feedback.message


def test_fix_step_one_problem_left():
    def step(model, optimizer, loss_fn, inputs, targets):
        train_step_fixed(model, optimizer, loss_fn, inputs, targets)

    feedback = grade("10.fix_step", step)
    assert "still finds one problem" in feedback.message and "- no-return:" in feedback.message


@pytest.mark.parametrize("answer", [None, 0.25, "train_step"])
def test_fix_step_not_a_function(answer):
    feedback = grade("10.fix_step", answer)
    assert not feedback.ok
    assert (
        "still None" in feedback.message
        or "itself, not the result of calling it" in feedback.message
    )
