"""Exercise checks of 13 — The loop in practice: the right answers pass, each usual mistake gets
its own hint, and nothing a learner hands in makes a check raise."""

from __future__ import annotations

from itertools import permutations

import pytest
import torch
from torch.nn.utils import clip_grad_norm_

from tests.test_checks import grade_keeping_random_state as grade

# --- 13.order --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "answer",
    ["CDBAEF", "cdbfea", "C, D, B, E, A, F", list("CDBEAF"), ("C", "D", "B", "F", "A", "E")],
)
def test_order_right(answer):
    assert grade("13.order", answer).ok


def test_order_exactly_the_six_orders_that_keep_the_rules_pass():
    passing = ["".join(p) for p in permutations("ABCDEF") if grade("13.order", "".join(p)).ok]
    assert sorted(passing) == ["CDBAEF", "CDBAFE", "CDBEAF", "CDBEFA", "CDBFAE", "CDBFEA"]


@pytest.mark.parametrize(
    ("answer", "phrase"),
    [
        ("DCBAEF", "clip the *scaled* gradients"),
        ("CBDAEF", "clipped after scaler.step(optimizer)"),
        ("BCDAEF", "clipped after scaler.step(optimizer)"),
        ("CDFBAE", "wipes the gradients the step needs"),
        ("CDABEF", "scaler.update() comes before scaler.step(optimizer)"),
        ("CDEBAF", "first learning rate of the schedule is skipped"),
    ],
)
def test_order_each_wrong_order_gets_its_hint(answer, phrase):
    feedback = grade("13.order", answer)
    assert not feedback.ok
    assert phrase in feedback.message, feedback.message


@pytest.mark.parametrize(
    ("answer", "phrase"),
    [
        ("CDBAE", "F missing"),
        ("CDBAEFF", "F more than once"),
        ("CDBAEG", "G is not one of the lines"),
        (3, "got a int"),
        ([1, 2], "as strings"),
    ],
)
def test_order_malformed_answers_get_a_hint(answer, phrase):
    feedback = grade("13.order", answer)
    assert not feedback.ok and phrase in feedback.message, feedback.message


def test_order_hints_never_give_the_answer():
    for p in permutations("ABCDEF"):
        feedback = grade("13.order", "".join(p))
        assert "CDB" not in feedback.message


# --- 13.find_bug -----------------------------------------------------------------------------


@pytest.mark.parametrize("answer", [8, "8", " 8 "])
def test_find_bug_right(answer):
    assert grade("13.find_bug", answer).ok


@pytest.mark.parametrize("line", [1, 2, 3, 4, 5, 6, 7, 9, 10, 11])
def test_find_bug_every_other_line_gets_its_own_hint(line):
    feedback = grade("13.find_bug", line)
    assert not feedback.ok
    assert feedback.message.startswith(f"line {line}"), feedback.message
    assert "line 8" not in feedback.message


@pytest.mark.parametrize(
    ("answer", "phrase"), [(12, "lines 1 to 11"), (True, "bool"), (8.5, "float")]
)
def test_find_bug_malformed(answer, phrase):
    feedback = grade("13.find_bug", answer)
    assert not feedback.ok and phrase in feedback.message


# --- 13.clip_accumulate ----------------------------------------------------------------------


def canonical(model, optimizer, loader, loss_fn, K, max_norm):
    for i, (xb, yb) in enumerate(loader):
        (loss_fn(model(xb), yb) / K).backward()
        if (i + 1) % K == 0:
            clip_grad_norm_(model.parameters(), max_norm)
            optimizer.step()
            optimizer.zero_grad()


def zero_first(model, optimizer, loader, loss_fn, K, max_norm):
    optimizer.zero_grad()
    for i, (xb, yb) in enumerate(loader, start=1):
        loss = loss_fn(model(xb), yb)
        (loss / K).backward()
        if i % K == 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=max_norm)
            optimizer.step()
            optimizer.zero_grad(set_to_none=False)


def plain(model, optimizer, loader, loss_fn, K, max_norm):
    for xb, yb in loader:
        optimizer.zero_grad()
        loss_fn(model(xb), yb).backward()
        optimizer.step()


def step_every(model, optimizer, loader, loss_fn, K, max_norm):
    for xb, yb in loader:
        (loss_fn(model(xb), yb) / K).backward()
        clip_grad_norm_(model.parameters(), max_norm)
        optimizer.step()
        optimizer.zero_grad()


def zero_in_window(model, optimizer, loader, loss_fn, K, max_norm):
    for i, (xb, yb) in enumerate(loader):
        optimizer.zero_grad()
        (loss_fn(model(xb), yb) / K).backward()
        if (i + 1) % K == 0:
            clip_grad_norm_(model.parameters(), max_norm)
            optimizer.step()


def never_zero(model, optimizer, loader, loss_fn, K, max_norm):
    for i, (xb, yb) in enumerate(loader):
        (loss_fn(model(xb), yb) / K).backward()
        if (i + 1) % K == 0:
            clip_grad_norm_(model.parameters(), max_norm)
            optimizer.step()


def not_divided(model, optimizer, loader, loss_fn, K, max_norm):
    for i, (xb, yb) in enumerate(loader):
        loss_fn(model(xb), yb).backward()
        if (i + 1) % K == 0:
            clip_grad_norm_(model.parameters(), max_norm)
            optimizer.step()
            optimizer.zero_grad()


def clip_each(model, optimizer, loader, loss_fn, K, max_norm):
    for i, (xb, yb) in enumerate(loader):
        (loss_fn(model(xb), yb) / K).backward()
        clip_grad_norm_(model.parameters(), max_norm)
        if (i + 1) % K == 0:
            optimizer.step()
            optimizer.zero_grad()


def clip_after(model, optimizer, loader, loss_fn, K, max_norm):
    for i, (xb, yb) in enumerate(loader):
        (loss_fn(model(xb), yb) / K).backward()
        if (i + 1) % K == 0:
            optimizer.step()
            clip_grad_norm_(model.parameters(), max_norm)
            optimizer.zero_grad()


def no_clip(model, optimizer, loader, loss_fn, K, max_norm):
    for i, (xb, yb) in enumerate(loader):
        (loss_fn(model(xb), yb) / K).backward()
        if (i + 1) % K == 0:
            optimizer.step()
            optimizer.zero_grad()


def does_nothing(model, optimizer, loader, loss_fn, K, max_norm):
    pass


def raises(model, optimizer, loader, loss_fn, K, max_norm):
    raise ValueError("my own error")


@pytest.mark.parametrize("answer", [canonical, zero_first])
def test_clip_accumulate_right(answer):
    feedback = grade("13.clip_accumulate", answer)
    assert feedback.ok, feedback.message


@pytest.mark.parametrize(
    ("answer", "phrase"),
    [
        (plain, "still the plain loop"),
        (step_every, "stepped after every micro-batch"),
        (zero_in_window, "cleared .grad inside the window"),
        (never_zero, "never cleared"),
        (not_divided, "K times too large"),
        (clip_each, "clipped partial sums"),
        (clip_after, "the steps used the unclipped gradient"),
        (no_clip, "the steps used the unclipped gradient"),
        (does_nothing, "did not move"),
        (raises, "raised ValueError: my own error"),
        (3, "not the result of calling it"),
    ],
)
def test_clip_accumulate_each_mistake_gets_its_hint(answer, phrase):
    feedback = grade("13.clip_accumulate", answer)
    assert not feedback.ok
    assert phrase in feedback.message, feedback.message
    assert "Traceback" not in feedback.message
