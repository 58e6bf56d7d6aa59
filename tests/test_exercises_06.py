"""Exercise checks of 06 — zero_grad and gradient accumulation: the right answers pass, each
usual mistake gets its own hint, and nothing a learner hands in makes a check raise."""

from __future__ import annotations

import pytest
import torch

from tests.test_checks import grade_keeping_random_state as grade

# --- 06.zero_grad_place --------------------------------------------------------------------


@pytest.mark.parametrize("answer", ["C", "c", " C ", '"C"'])
def test_place_c_is_right(answer):
    assert grade("06.zero_grad_place", answer).ok


@pytest.mark.parametrize(
    ("answer", "phrase"),
    [
        ("A", "only the last micro-batch's gradient is left"),
        ("b", "the weights never move"),
        ("D", "not one of the places"),
        (3, "one letter in quotes"),
        (["C"], "got a list"),
        (None, "still None"),
    ],
)
def test_each_wrong_place_gets_its_hint(answer, phrase):
    feedback = grade("06.zero_grad_place", answer)
    assert not feedback.ok
    assert phrase in feedback.message, feedback.message


# --- 06.share_weights ----------------------------------------------------------------------


def share_weights(sizes):
    N = sum(sizes)
    return [n / N for n in sizes]


def share_weights_tensor(sizes):
    sizes = torch.tensor(sizes, dtype=torch.float32)
    return sizes / sizes.sum()


def share_weights_one_over_k(sizes):
    return [1 / len(sizes)] * len(sizes)


def share_weights_sizes(sizes):
    return list(sizes)


def share_weights_by_k(sizes):
    return [n / len(sizes) for n in sizes]


def share_weights_ones(sizes):
    return [1.0 for _ in sizes]


def share_weights_hard_coded(sizes):
    return [16 / 50, 16 / 50, 16 / 50, 2 / 50]


def share_weights_too_few(sizes):
    N = sum(sizes)
    return [n / N for n in sizes[:-1]]


def share_weights_reversed(sizes):
    N = sum(sizes)
    return [n / N for n in reversed(sizes)]


def share_weights_not_summing(sizes):
    N = sum(sizes)
    return [n / N + 0.1 for n in sizes]


def share_weights_raises(sizes):
    return sizes / 50  # a list divided by a number: TypeError


def share_weights_unfilled(sizes):
    return None


def share_weights_strings(sizes):
    return ["a" for _ in sizes]


@pytest.mark.parametrize("answer", [share_weights, share_weights_tensor])
def test_share_weights_right(answer):
    feedback = grade("06.share_weights", answer)
    assert feedback.ok, feedback.message


@pytest.mark.parametrize(
    ("answer", "phrase"),
    [
        (share_weights_one_over_k, "Weight by share"),
        (share_weights_sizes, "returned the sizes themselves"),
        (share_weights_by_k, "divide by the number of samples"),
        (share_weights_ones, "weight 1"),
        (share_weights_hard_coded, "not from fixed numbers"),
        (share_weights_too_few, "returned 3 weights for 4 micro-batches"),
        (share_weights_reversed, "but the shares n_i / N are"),
        (share_weights_not_summing, "add up to"),
        (share_weights_raises, "raised TypeError"),
        (share_weights_unfilled, "returned None"),
        (share_weights_strings, "holds a str"),
        ([0.32, 0.32, 0.32, 0.04], "itself, not the result of calling it"),
    ],
)
def test_share_weights_mistakes_get_their_hints(answer, phrase):
    feedback = grade("06.share_weights", answer)
    assert not feedback.ok
    assert phrase in feedback.message, feedback.message


def test_hard_coded_weights_pass_the_first_case_only():
    # The hard-coded list is right for [16, 16, 16, 2]; the second case catches it.
    assert "[5, 5, 5, 5]" in grade("06.share_weights", share_weights_hard_coded).message


# --- 06.accumulate -------------------------------------------------------------------------


def accumulate(model, loss_fn, X, y, K):
    model.zero_grad()
    N = len(X)
    for xb, yb in zip(torch.tensor_split(X, K), torch.tensor_split(y, K), strict=True):
        loss = loss_fn(model(xb), yb) * (len(xb) / N)
        loss.backward()


def accumulate_chunk(model, loss_fn, X, y, K):
    for p in model.parameters():
        p.grad = None
    for xb, yb in zip(X.chunk(K), y.chunk(K), strict=True):
        (loss_fn(model(xb), yb) * len(xb) / len(X)).backward()


def accumulate_strided(model, loss_fn, X, y, K):
    model.zero_grad()
    for i in range(K):
        xb, yb = X[i::K], y[i::K]
        (loss_fn(model(xb), yb) * len(xb) / len(X)).backward()


def accumulate_no_division(model, loss_fn, X, y, K):
    model.zero_grad()
    for xb, yb in zip(torch.tensor_split(X, K), torch.tensor_split(y, K), strict=True):
        loss_fn(model(xb), yb).backward()


def accumulate_one_over_k(model, loss_fn, X, y, K):
    model.zero_grad()
    for xb, yb in zip(torch.tensor_split(X, K), torch.tensor_split(y, K), strict=True):
        (loss_fn(model(xb), yb) / K).backward()


def accumulate_zero_grad_inside(model, loss_fn, X, y, K):
    for xb, yb in zip(torch.tensor_split(X, K), torch.tensor_split(y, K), strict=True):
        model.zero_grad()
        (loss_fn(model(xb), yb) / K).backward()


def accumulate_zero_grad_inside_unscaled(model, loss_fn, X, y, K):
    for xb, yb in zip(torch.tensor_split(X, K), torch.tensor_split(y, K), strict=True):
        model.zero_grad()
        loss_fn(model(xb), yb).backward()


def accumulate_no_clear(model, loss_fn, X, y, K):
    N = len(X)
    for xb, yb in zip(torch.tensor_split(X, K), torch.tensor_split(y, K), strict=True):
        (loss_fn(model(xb), yb) * len(xb) / N).backward()


def accumulate_clear_at_end(model, loss_fn, X, y, K):
    accumulate(model, loss_fn, X, y, K)
    model.zero_grad()


def accumulate_full_batch(model, loss_fn, X, y, K):
    model.zero_grad()
    loss_fn(model(X), y).backward()


def accumulate_wrong_count(model, loss_fn, X, y, K):
    model.zero_grad()
    for xb, yb in zip(torch.tensor_split(X, 2), torch.tensor_split(y, 2), strict=True):
        (loss_fn(model(xb), yb) * len(xb) / len(X)).backward()


def accumulate_drops_last(model, loss_fn, X, y, K):
    model.zero_grad()
    size = len(X) // K
    for i in range(K):
        xb, yb = X[i * size : (i + 1) * size], y[i * size : (i + 1) * size]
        (loss_fn(model(xb), yb) / K).backward()


def accumulate_split_by_size(model, loss_fn, X, y, K):
    model.zero_grad()
    for xb, yb in zip(torch.split(X, K), torch.split(y, K), strict=True):
        (loss_fn(model(xb), yb) * len(xb) / len(X)).backward()


def accumulate_wrong_signature(model, X, y):
    model.zero_grad()


def accumulate_and_step(model, loss_fn, X, y, K):
    accumulate(model, loss_fn, X, y, K)
    with torch.no_grad():
        for p in model.parameters():
            p -= 0.1 * p.grad


def accumulate_does_nothing(model, loss_fn, X, y, K):
    pass


def accumulate_raises(model, loss_fn, X, y, K):
    model.zero_grad()
    for xb in torch.tensor_split(X, K):
        model(xb).backward()  # a prediction, not a loss: not a scalar


def accumulate_mse_always(model, loss_fn, X, y, K):
    model.zero_grad()
    for xb, yb in zip(torch.tensor_split(X, K), torch.tensor_split(y, K), strict=True):
        (((model(xb) - yb) ** 2).mean() * len(xb) / len(X)).backward()


@pytest.mark.parametrize("answer", [accumulate, accumulate_chunk, accumulate_strided])
def test_accumulate_right(answer):
    feedback = grade("06.accumulate", answer)
    assert feedback.ok, feedback.message


@pytest.mark.parametrize(
    ("answer", "phrase"),
    [
        (accumulate_no_division, "K times too large"),
        (accumulate_one_over_k, "Weight by share"),
        (accumulate_zero_grad_inside, "only the last micro-batch's gradient is left"),
        (accumulate_zero_grad_inside_unscaled, "only the last micro-batch's gradient is left"),
        (accumulate_no_clear, "the old gradient was still in .grad"),
        (accumulate_clear_at_end, ".grad is None after accumulate"),
        (accumulate_full_batch, "you ran the model once, on all 32 samples"),
        (accumulate_wrong_count, "ran the model 2 times"),
        (accumulate_drops_last, "not each of the 26 samples exactly once"),
        (accumulate_split_by_size, "torch.split(X, K) cuts pieces of K samples"),
        (accumulate_wrong_signature, "raised TypeError"),
        (accumulate_and_step, "changed the weights"),
        (accumulate_does_nothing, "never ran the model"),
        (accumulate_raises, "raised RuntimeError"),
        (accumulate_mse_always, "call the loss_fn you are given"),
        ("accumulate", "itself, not the result of calling it"),
    ],
)
def test_accumulate_mistakes_get_their_hints(answer, phrase):
    feedback = grade("06.accumulate", answer)
    assert not feedback.ok
    assert phrase in feedback.message, feedback.message


def test_accumulate_check_leaves_the_learners_random_state_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    grade("06.accumulate", accumulate)
    assert torch.equal(torch.rand(3), expected)
