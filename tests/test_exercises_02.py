"""Notebook 02's exercise checks: the right answer passes, each typical mistake gets its hint."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from tests.test_checks import grade_keeping_random_state as grade


def test_the_checkers_leave_the_learners_random_numbers_alone():
    before = torch.random.get_rng_state()
    grade("02.linear", lambda X, W, b: X @ W.T + b)
    grade("02.collapse", lambda layers: None)
    grade("02.predict", lambda model, X: None)
    assert torch.equal(torch.random.get_rng_state(), before)


# --- 02.linear -------------------------------------------------------------------------------


def test_linear_right_answers_pass():
    assert grade("02.linear", lambda X, W, b: X @ W.T + b).ok
    assert grade("02.linear", lambda X, W, b: F.linear(X, W, b)).ok


@pytest.mark.parametrize(
    ("answer", "phrase"),
    [
        (lambda X, W, b: X @ W + b, "needs W transposed"),
        (lambda X, W, b: (X @ W.T + b).T, "transposed"),
        (lambda X, W, b: X @ W.T, "missing the bias"),
        (lambda X, W, b: X @ W.T - b, "subtracted"),
        (lambda X, W, b: None, "returns None"),
        (lambda X, W, b: (X @ W.T + b).tolist(), "should be a torch.Tensor"),
        (lambda X, W, b: 2 * (X @ W.T + b), "factor of 2"),
        (lambda X, W, b: X @ W.T + b + 1, "values differ"),
        (lambda X, W, b: (X @ W.T + b).sum(), "should have shape (5, 3)"),
        ("X @ W.T + b", "should be your function `linear_by_hand` itself"),
    ],
)
def test_linear_mistakes_get_their_hint(answer, phrase):
    feedback = grade("02.linear", answer)
    assert not feedback.ok
    assert phrase in feedback.message, feedback.message


def test_linear_forgetting_the_transpose_on_a_square_layer_is_named():
    def only_right_when_not_square(X, W, b):
        return X @ W + b if W.shape[0] == W.shape[1] else X @ W.T + b

    feedback = grade("02.linear", only_right_when_not_square)
    assert not feedback.ok
    assert "multiplied by W, not by W.T" in feedback.message


# --- 02.collapse -----------------------------------------------------------------------------


def _collapse(layers):
    W, b = torch.eye(layers[0].in_features), torch.zeros(layers[0].in_features)
    for layer in layers:
        W, b = layer.weight @ W, layer.weight @ b + layer.bias
    return W, b


def _last_bias_only(layers):
    W, _ = _collapse(layers)
    return W, layers[-1].bias


def _biases_added(layers):
    W, _ = _collapse(layers)
    return W, sum(layer.bias for layer in layers)


def _reversed_order(layers):
    W = layers[0].weight
    for layer in layers[1:]:
        W = W @ layer.weight
    return W, layers[-1].bias


def _bias_from_the_wrong_side(layers):
    W, b = layers[0].weight, layers[0].bias
    for layer in layers[1:]:
        W, b = layer.weight @ W, b @ layer.weight + layer.bias
    return W, b


def _by_probing(layers):
    """Another right answer: read W and b off the map itself."""

    def run(x):
        for layer in layers:
            x = layer(x)
        return x

    n = layers[0].in_features
    b = run(torch.zeros(1, n))[0]
    W = (run(torch.eye(n)) - b).T
    return W, b


def test_collapse_right_answers_pass():
    assert grade("02.collapse", _collapse).ok
    assert grade("02.collapse", _by_probing).ok
    assert grade("02.collapse", lambda layers: list(_collapse(layers))).ok


@pytest.mark.parametrize(
    ("answer", "phrase"),
    [
        (_last_bias_only, "just the last layer's bias"),
        (_biases_added, "b = b1 + b2 adds the first bias as it is"),
        (_reversed_order, "factors in the wrong order"),
        (_bias_from_the_wrong_side, "from the wrong side"),
        (lambda layers: (_collapse(layers)[0].T, _collapse(layers)[1]), "W is transposed"),
        (lambda layers: _collapse(layers)[0], "should return a tuple (W, b)"),
        (lambda layers: None, "returns None"),
        (lambda layers: (2 * _collapse(layers)[0], _collapse(layers)[1]), "factor of 2"),
        (lambda layers: (_collapse(layers)[0], 0 * _collapse(layers)[1]), "values differ"),
    ],
)
def test_collapse_mistakes_get_their_hint(answer, phrase):
    feedback = grade("02.collapse", answer)
    assert not feedback.ok
    assert phrase in feedback.message, feedback.message


@pytest.mark.parametrize(
    "answer", [_last_bias_only, _biases_added, _reversed_order, _bias_from_the_wrong_side]
)
def test_collapse_hints_name_the_mistake_without_giving_the_formula(answer):
    message = grade("02.collapse", answer).message
    for formula in ("W2 @ W1", "W2 @ b1", "layer.weight @", "LEFT"):
        assert formula not in message, message


# --- 02.predict ------------------------------------------------------------------------------


def _predict(model, X):
    with torch.no_grad():
        return model(X)


def _predict_inference_mode(model, X):
    with torch.inference_mode():
        return model(X)


def _switched_off(model, X):
    torch.set_grad_enabled(False)
    return model(X)


def test_predict_right_answers_pass():
    assert grade("02.predict", _predict).ok
    assert grade("02.predict", _predict_inference_mode).ok


@pytest.mark.parametrize(
    ("answer", "phrase"),
    [
        (lambda model, X: model(X), "still carry a graph"),
        (lambda model, X: model(X).detach(), "recorded and then cut off"),
        (lambda model, X: _predict(model.forward, X), "hooks never ran"),
        (_switched_off, "still switched off"),
        (lambda model, X: (model(X), _predict(model, X))[1], "recorded and then cut off"),
        (lambda model, X: (_predict(model, X), _predict(model, X))[1], "ran the model 2 times"),
        (lambda model, X: _predict(model, X).squeeze(1), "should have shape (6, 1)"),
        (lambda model, X: _predict(model, X).numpy(), "should be a torch.Tensor"),
        (lambda model, X: None, "returns None"),
        (_predict(torch.nn.Linear(3, 1), torch.zeros(6, 3)), "should be your function"),
    ],
)
def test_predict_mistakes_get_their_hint(answer, phrase):
    feedback = grade("02.predict", answer)
    assert not feedback.ok
    assert phrase in feedback.message, feedback.message


def test_predict_checker_restores_grad_mode():
    grade("02.predict", _switched_off)
    assert torch.is_grad_enabled()
