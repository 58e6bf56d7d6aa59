"""helpers.checks: the right hint for each kind of wrong answer, and never an exception."""

from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers.checks import (
    Feedback,
    check,
    compare_number,
    compare_tensor,
    exercise,
    exercise_ids,
    grade,
)

EXPECTED = torch.tensor([[1.0, 2.0], [3.0, 4.0]])


@exercise("test.matrix", "a 2x2 float matrix")
def _check_matrix(answer):
    return compare_tensor(answer, EXPECTED, name="the matrix")


@exercise("test.mean", "the mean of 1..4")
def _check_mean(answer):
    return compare_number(answer, 2.5, name="the mean")


def test_correct_answer():
    feedback = grade("test.matrix", EXPECTED.clone())
    assert feedback.ok and bool(feedback)
    assert str(feedback).startswith("✅ Correct [test.matrix]")


@pytest.mark.parametrize(
    ("answer", "phrase"),
    [
        (None, "still None"),
        (..., "still `...`"),
        ([[1.0, 2.0], [3.0, 4.0]], "should be a torch.Tensor, but it is a list"),
        (np.ones((2, 2)), "but it is a ndarray"),
        ("text", "but it is a str"),
        (EXPECTED.T.reshape(4), "right number of elements"),
        (EXPECTED.unsqueeze(0), "extra dimension of size 1"),
        (torch.zeros(3), "should have shape (2, 2)"),
        (EXPECTED.long(), "dtype torch.int64"),
        (EXPECTED * 2, "factor of 2"),
        (EXPECTED / 2, "factor of 1/2"),
        (-EXPECTED, "wrong sign"),
        (EXPECTED * 8, "8 times too large"),
        (EXPECTED / 4, "4 times too small"),
        (EXPECTED * 1.7, "1.7 times the expected size"),
        (EXPECTED + torch.tensor([[0.0, 0.0], [0.0, 0.5]]), "differ (by up to 0.5)"),
        (torch.full((2, 2), float("nan")), "NaN"),
    ],
)
def test_each_wrong_tensor_gets_its_own_hint(answer, phrase):
    feedback = grade("test.matrix", answer)
    assert not feedback.ok
    assert phrase in feedback.message, feedback.message


@pytest.mark.parametrize(
    ("answer", "phrase"),
    [
        (2.5, None),
        (torch.tensor(2.5), None),
        (5.0, "factor of 2"),
        (10.0, "4 times too large"),
        (torch.ones(3), "single number"),
        ("2.5", "should be a number"),
        (True, "should be a number"),
        (float("nan"), "NaN"),
        (3.1, "should be about 2.5"),
    ],
)
def test_number_hints(answer, phrase):
    feedback = grade("test.mean", answer)
    if phrase is None:
        assert feedback.ok, feedback.message
    else:
        assert not feedback.ok and phrase in feedback.message, feedback.message


def test_requires_grad_hint():
    expected = torch.ones(2)
    assert "requires_grad=True" in compare_tensor(torch.ones(2), expected, requires_grad=True)
    assert "no_grad" in compare_tensor(
        torch.ones(2, requires_grad=True), expected, requires_grad=False
    )


def test_unknown_exercise_names_the_known_ones():
    feedback = grade("no.such", 1)
    assert not feedback.ok
    assert "no exercise called 'no.such'" in feedback.message
    assert "test.matrix" in feedback.message


def test_check_prints_one_line(capsys):
    check("test.mean", 2.5)
    check("test.mean", None)
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        "✅ Correct [test.mean]: the mean of 1..4.",
        "❌ Not yet [test.mean]: the answer is still None. Replace `None` with your code, then run the cell again.",
    ]


class Hostile:
    """An object whose every operation raises."""

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        raise RuntimeError("no attributes here")

    def __eq__(self, other):
        raise RuntimeError("no comparison")

    def __str__(self):
        raise RuntimeError("no str")

    def __repr__(self):
        return "Hostile()"


@exercise("test.raises", "a checker that trips over the answer")
def _check_raises(answer):
    return compare_tensor(answer.weight, EXPECTED)


def test_an_answer_that_breaks_the_checker_gives_a_hint():
    feedback = grade("test.raises", Hostile())
    assert not feedback.ok
    assert "RuntimeError" in feedback.message


def test_registering_twice_is_refused():
    with pytest.raises(ValueError, match="registered twice"):
        exercise("test.mean", "again")(lambda answer: None)


answers = st.one_of(
    st.none(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.lists(st.floats(width=32), max_size=6),
    st.builds(torch.tensor, st.lists(st.floats(width=32, allow_nan=True), max_size=6)),
    st.builds(
        lambda n, m, d: torch.zeros(n, m, dtype=d),
        st.integers(0, 3),
        st.integers(0, 3),
        st.sampled_from([torch.float32, torch.float64, torch.int64, torch.bool]),
    ),
    st.just(Hostile()),
    st.just(object()),
)


@settings(max_examples=300, deadline=None)
@given(
    exercise_id=st.one_of(
        st.sampled_from(["test.matrix", "test.mean", "test.raises"]),
        st.text(max_size=10),
        st.integers(),
    ),
    answer=answers,
)
def test_grade_never_raises(exercise_id, answer):
    feedback = grade(exercise_id, answer)
    assert isinstance(feedback, Feedback)
    assert isinstance(feedback.message, str) and feedback.message


@settings(max_examples=100, deadline=None)
@given(answer=answers)
def test_check_never_raises(answer):
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        check("test.matrix", answer)
    assert buffer.getvalue().startswith(("✅", "❌"))


def test_every_registered_exercise_has_an_id_like_nn_name():
    for exercise_id in exercise_ids():
        prefix, _, name = exercise_id.partition(".")
        assert name, exercise_id
        assert prefix == "test" or (prefix.isdigit() and len(prefix) == 2), exercise_id
