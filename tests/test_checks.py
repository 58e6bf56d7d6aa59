"""helpers.checks: the right hint for each kind of wrong answer, and never an exception."""

from __future__ import annotations

import contextlib
import io
import random
import subprocess
import sys
import textwrap
import types
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import helpers.exercises
from helpers.checks import (
    Feedback,
    check,
    compare_number,
    compare_tensor,
    exercise_ids,
    grade,
)

EXPECTED = torch.tensor([[1.0, 2.0], [3.0, 4.0]])


def grade_keeping_random_state(exercise_id: str, answer: Any) -> Feedback:
    """grade(), asserting that the check left torch's, Python's and NumPy's random state alone.

    The tests of every checker module import it as `grade`, so every right and wrong answer they
    try also proves that calling `check` does not change the learner's random stream.
    """
    states = torch.get_rng_state(), random.getstate(), np.random.get_state()[1].copy()
    feedback = grade(exercise_id, answer)
    assert torch.equal(torch.get_rng_state(), states[0]), f"{exercise_id} moved torch's RNG"
    assert random.getstate() == states[1], f"{exercise_id} moved Python's random state"
    assert np.array_equal(np.random.get_state()[1], states[2]), f"{exercise_id} moved NumPy's"
    return feedback


def matrix(answer: Any) -> str | None:
    """a 2x2 float matrix."""
    return compare_tensor(answer, EXPECTED, name="the matrix")


def mean(answer: Any) -> str | None:
    """the mean of 1..4.

    Only the first line of the docstring is the title.
    """
    return compare_number(answer, 2.5, name="the mean")


def raises(answer: Any) -> str | None:
    """a checker that trips over the answer."""
    return compare_tensor(answer.weight, EXPECTED)


def seeds(answer: Any) -> str | None:
    """a checker that seeds and draws from every random stream."""
    torch.manual_seed(answer)
    random.seed(answer)
    np.random.seed(answer)
    torch.set_grad_enabled(False)
    return None if torch.rand(1).item() + random.random() + np.random.rand() >= 0 else "never"


def not_a_checker(model: Any, answer: Any) -> None:
    """A public helper of a checker module that is not an exercise (it takes other arguments)."""


@pytest.fixture(scope="module", autouse=True)
def _fake_notebook_99():
    """A checker module for notebook 99, as if it were helpers/exercises/nb99.py."""
    module = types.ModuleType("helpers.exercises.nb99")
    for function in (matrix, mean, raises, seeds, not_a_checker):
        setattr(module, function.__name__, function)
    module.__all__ = ["matrix", "mean", "raises", "seeds", "not_a_checker"]
    sys.modules[module.__name__] = module
    yield
    del sys.modules[module.__name__]


def test_correct_answer():
    feedback = grade("99.matrix", EXPECTED.clone())
    assert feedback.ok and bool(feedback)
    assert str(feedback).startswith("✅ Correct [99.matrix]")


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
    feedback = grade("99.matrix", answer)
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
    feedback = grade("99.mean", answer)
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


def test_unknown_exercise_names_the_known_ones_of_its_notebook():
    message = grade("99.no_such", 1).message
    assert "no exercise called '99.no_such'" in message
    assert "Notebook 99's exercises are 99.matrix, 99.mean, 99.raises, 99.seeds:" in message
    assert "not_a_checker" not in message and "copy the id from the exercise's cell" in message
    assert "notebook 98 has no exercise checks" in grade("98.matrix", 1).message
    assert "such as '03.masked_mse'" in grade("no.such", 1).message
    assert "such as '03.masked_mse'" in grade(3, 1).message


def test_an_id_names_the_function_and_a_dash_reads_as_an_underscore():
    assert "[07.train-one-epoch]: the answer is still None" in str(
        grade("07.train-one-epoch", None)
    )
    assert "no exercise called '07.train.one'" in grade("07.train.one", None).message


def test_the_title_is_the_first_line_of_the_docstring():
    assert grade("99.mean", 2.5).message == "the mean of 1..4."


def test_a_checker_leaves_the_learners_random_streams_and_grad_mode_alone():
    torch_state, python_state, numpy_state = (
        torch.get_rng_state(),
        random.getstate(),
        np.random.get_state(),
    )
    assert grade("99.seeds", 7).ok
    assert torch.equal(torch.get_rng_state(), torch_state) and torch.is_grad_enabled()
    assert random.getstate() == python_state
    assert np.array_equal(np.random.get_state()[1], numpy_state[1])


def test_a_broken_checker_module_breaks_only_its_own_notebook(tmp_path, monkeypatch):
    (tmp_path / "nb97.py").write_text("raise ZeroDivisionError('a typo in nb97')\n")
    monkeypatch.setattr(helpers.exercises, "__path__", [*helpers.exercises.__path__, str(tmp_path)])
    message = grade("97.anything", 1).message
    assert message.startswith("the checks of notebook 97 failed to load (ZeroDivisionError: a typo")
    assert "your answer was not checked" in message
    assert grade("99.mean", 2.5).ok and grade("02.linear", lambda X, W, b: X @ W.T + b).ok


def test_the_first_check_imports_only_its_own_notebooks_module():
    code = textwrap.dedent(
        """
        import sys
        from helpers import check
        check("03.masked_mse", None)
        print(sorted(m for m in sys.modules if m.startswith("helpers.exercises.")))
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True
    ).stdout.splitlines()
    assert out[0].startswith("❌ Not yet [03.masked_mse]: the answer is still None")
    assert out[1] == "['helpers.exercises.nb03']"


def test_check_prints_one_line(capsys):
    check("99.mean", 2.5)
    check("99.mean", None)
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        "✅ Correct [99.mean]: the mean of 1..4.",
        "❌ Not yet [99.mean]: the answer is still None. Replace `None` with your code, then run the cell again.",
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


def test_an_answer_that_breaks_the_checker_gives_a_hint():
    feedback = grade("99.raises", Hostile())
    assert not feedback.ok
    assert "RuntimeError" in feedback.message


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
        st.sampled_from(["99.matrix", "99.mean", "99.raises", "99.seeds", "98.x", "99.nope"]),
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
        check("99.matrix", answer)
    assert buffer.getvalue().startswith(("✅", "❌"))


def test_every_exercise_id_is_nn_dot_name_and_has_a_title():
    ids = exercise_ids()
    assert len(ids) >= 39 and "07.train_one_epoch" in ids and "12.shard" in ids
    for exercise_id in ids:
        prefix, _, name = exercise_id.partition(".")
        assert prefix.isdigit() and len(prefix) == 2 and name.isidentifier(), exercise_id
        feedback = grade(exercise_id, 1)
        assert "no exercise called" not in feedback.message, feedback.message
