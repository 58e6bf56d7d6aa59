"""Notebook 07's exercise checks: the right answer passes, each typical mistake gets its hint."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from helpers.exercises.nb07 import STEP_LINES
from tests.test_checks import grade_keeping_random_state as grade

ZERO, FORWARD, LOSS, BACKWARD, STEP = (
    "optimizer.zero_grad()",
    "logits = model(images)",
    "loss = loss_fn(logits, labels)",
    "loss.backward()",
    "optimizer.step()",
)


def test_the_checkers_leave_the_learners_random_numbers_and_grad_mode_alone():
    before = torch.random.get_rng_state()

    def careless(model, images, labels):  # training mode: Dropout draws random numbers
        torch.set_grad_enabled(False)
        return (model(images).argmax(dim=1) == labels).float().mean().item()

    grade("07.accuracy", careless)
    grade("07.accuracy", accuracy)
    grade("07.batches", (21, 40))
    assert torch.equal(torch.random.get_rng_state(), before)
    assert torch.is_grad_enabled()


# --- 07.batches ------------------------------------------------------------------------------


@pytest.mark.parametrize("answer", [(21, 40), [21, 40], (21.0, 40.0), (torch.tensor(21), 40)])
def test_batches_right_answers_pass(answer):
    assert grade("07.batches", answer).ok


@pytest.mark.parametrize(
    ("answer", "phrase"),
    [
        ((20, 40), "rounds down"),
        ((1000 / 48, 40), "not a whole number"),
        ((22, 40), "not what the DataLoader gives"),
        ((21, 48), "the last batch is not full"),
        ((21, 8), "short of a full one"),
        ((21, 39), "does not hold 39"),
        (21, "a pair of two whole numbers"),
        ((21, 40, 0), "a pair of two whole numbers"),
        (("21", 40), "should be a whole number, not a str"),
        ((21, True), "should be a whole number, not a bool"),
        (None, "still None"),
    ],
)
def test_batches_mistakes_get_their_hint(answer, phrase):
    feedback = grade("07.batches", answer)
    assert not feedback.ok
    assert phrase in feedback.message, feedback.message


# --- 07.steps --------------------------------------------------------------------------------


def test_the_shuffled_lines_are_the_five_steps():
    assert sorted(STEP_LINES) == sorted([ZERO, FORWARD, LOSS, BACKWARD, STEP])


def test_steps_every_order_that_trains_passes_and_no_other():
    trains = {
        (ZERO, FORWARD, LOSS, BACKWARD, STEP),
        (FORWARD, ZERO, LOSS, BACKWARD, STEP),
        (FORWARD, LOSS, ZERO, BACKWARD, STEP),
        (FORWARD, LOSS, BACKWARD, STEP, ZERO),
    }
    for order in itertools.permutations([ZERO, FORWARD, LOSS, BACKWARD, STEP]):
        assert grade("07.steps", list(order)).ok == (order in trains), order


def test_steps_accepts_extra_spaces_and_a_tuple():
    answer = (
        "optimizer.zero_grad( )".replace("( )", "()"),
        FORWARD,
        LOSS,
        " loss.backward() ",
        STEP,
    )
    assert grade("07.steps", answer).ok


@pytest.mark.parametrize(
    ("answer", "phrase"),
    [
        ([ZERO, LOSS, FORWARD, BACKWARD, STEP], "forward pass"),
        ([ZERO, FORWARD, BACKWARD, LOSS, STEP], "compute the loss first"),
        ([ZERO, FORWARD, LOSS, STEP, BACKWARD], "step after backward"),
        ([FORWARD, LOSS, BACKWARD, ZERO, STEP], "wipes the gradients"),
        ([ZERO, FORWARD, LOSS, BACKWARD], "'optimizer.step()' is missing"),
        ([ZERO, FORWARD, LOSS, BACKWARD, STEP, STEP], "appears 2 times"),
        ([ZERO, "y = model(x)", LOSS, BACKWARD, STEP], "is not one of the five lines"),
        ([ZERO, FORWARD, LOSS, BACKWARD, 5], "as a string"),
        ("optimizer.zero_grad()", "should be a list"),
    ],
)
def test_steps_mistakes_get_their_hint(answer, phrase):
    feedback = grade("07.steps", answer)
    assert not feedback.ok
    assert phrase in feedback.message, feedback.message


# --- 07.accuracy -----------------------------------------------------------------------------


def accuracy(model, images, labels):
    modes = [(layer, layer.training) for layer in model.modules()]
    model.eval()
    with torch.no_grad():
        predicted = model(images).argmax(dim=1)
    for layer, mode in modes:
        layer.training = mode
    return (predicted == labels).float().mean().item()


def test_accuracy_right_answers_pass():
    assert grade("07.accuracy", accuracy).ok

    def with_inference_mode(model, images, labels):
        modes = {layer: layer.training for layer in model.modules()}
        model.eval()
        with torch.inference_mode():
            correct = (model(images).argmax(1) == labels).sum().item()
        for layer, mode in modes.items():  # parents come before their children: train() is fine
            layer.train(mode)
        return correct / len(labels)

    assert grade("07.accuracy", with_inference_mode).ok


def _whole_model_restore(model, images, labels):
    was_training = model.training
    model.eval()
    with torch.no_grad():
        predicted = model(images).argmax(dim=1)
    model.train(was_training)
    return (predicted == labels).float().mean().item()


def _forgot_eval(model, images, labels):
    with torch.no_grad():
        return (model(images).argmax(dim=1) == labels).float().mean().item()


def _forgot_no_grad(model, images, labels):
    was_training = model.training
    model.eval()
    result = (model(images).argmax(dim=1) == labels).float().mean().item()
    model.train(was_training)
    return result


def _left_in_eval(model, images, labels):
    model.eval()
    with torch.no_grad():
        return (model(images).argmax(dim=1) == labels).float().mean().item()


def _always_train_after(model, images, labels):
    model.eval()
    with torch.no_grad():
        result = (model(images).argmax(dim=1) == labels).float().mean().item()
    model.train()
    return result


def _variant(finish):
    """A function that does everything right except how it turns matches into a number."""

    def answer(model, images, labels):
        modes = [(layer, layer.training) for layer in model.modules()]
        model.eval()
        with torch.no_grad():
            matches = model(images).argmax(dim=1) == labels
        for layer, mode in modes:
            layer.training = mode
        return finish(matches)

    return answer


def _calls_forward(model, images, labels):
    was_training = model.training
    model.eval()
    with torch.no_grad():
        result = (model.forward(images).argmax(dim=1) == labels).float().mean().item()
    model.train(was_training)
    return result


def _switches_grad_off(model, images, labels):
    was_training = model.training
    model.eval()
    torch.set_grad_enabled(False)
    result = (model(images).argmax(dim=1) == labels).float().mean().item()
    model.train(was_training)
    return result


def _crashes(model, images, labels):
    return model(images.view(-1, 8)).argmax(dim=1)


def _changes_weights(model, images, labels):
    was_training = model.training
    model.eval()
    with torch.no_grad():
        model[1].weight.add_(1.0)
        result = (model(images).argmax(dim=1) == labels).float().mean().item()
    model.train(was_training)
    return result


@pytest.mark.parametrize(
    ("answer", "phrase"),
    [
        (_forgot_eval, "Call model.eval()"),
        (_forgot_no_grad, "torch.no_grad()"),
        (_left_in_eval, "remember each layer's mode"),
        (_always_train_after, "remember each layer's mode"),
        (_whole_model_restore, "model.train(was_training) switches every layer alike"),
        (_calls_forward, "not model.forward(images)"),
        (_switches_grad_off, "still off after your function returned"),
        (_crashes, "raised RuntimeError"),
        (_changes_weights, "changed the model's weights"),
        (_variant(lambda m: m.sum().item()), "number of correct predictions"),
        (_variant(lambda m: 100 * m.float().mean().item()), "percentage"),
        (_variant(lambda m: 1 - m.float().mean().item()), "error rate"),
        (_variant(lambda m: m.float().mean()), "finish with .item()"),
        (_variant(lambda m: m.float()), "tensor of shape (40,)"),
        (_variant(lambda m: m.tolist()), "not a list"),
        (_variant(lambda m: 0.5), "should be 0.65"),
        (_variant(lambda m: None), "returns None"),
        (lambda model, images, labels: 0.65, "model never ran"),
        (0.65, "should be your function `accuracy` itself"),
    ],
)
def test_accuracy_mistakes_get_their_hint(answer, phrase):
    feedback = grade("07.accuracy", answer)
    assert not feedback.ok
    assert phrase in feedback.message, feedback.message


def test_accuracy_probe_model_needs_eval_mode_to_give_the_right_number():
    """The probe is built so that training mode changes the answer, not just the flag."""
    from helpers.exercises.nb07 import _probe

    model, images, labels, want = _probe()
    assert math.isclose(accuracy(model, images, labels), want, abs_tol=1e-6)
    model.train()
    with torch.no_grad():
        in_training = (model(images).argmax(dim=1) == labels).float().mean().item()
    assert not math.isclose(in_training, want, abs_tol=1e-6)


# --- 07.train_one_epoch ----------------------------------------------------------------------


def train_one_epoch(model, loader, optimizer, loss_fn, device):
    model.train()
    total_loss, total_examples = 0.0, 0
    for images, labels in loader:
        images, labels = images.to(device), labels.to(device)
        optimizer.zero_grad()
        loss = loss_fn(model(images), labels)
        loss.backward()
        optimizer.step()
        total_loss += loss.item() * len(labels)
        total_examples += len(labels)
    return total_loss / total_examples


def _loop(
    *,
    train=True,
    zero="before",
    backward=True,
    step=True,
    no_grad=False,
    result="weighted",
):
    """A train_one_epoch with one thing changed, to check that each slip gets its hint."""

    def answer(model, loader, optimizer, loss_fn, device):
        if train:
            model.train()
        total, sizes, batch_losses, kept = 0.0, [], [], 0.0
        for images, labels in loader:
            if zero == "before":
                optimizer.zero_grad()
            with torch.set_grad_enabled(not no_grad):
                loss = loss_fn(model(images), labels)
            if backward:
                loss.backward()
            if zero == "between":
                optimizer.zero_grad()
            if step:
                optimizer.step()
            kept = kept + loss * len(labels)
            total += loss.item() * len(labels)
            sizes.append(len(labels))
            batch_losses.append(loss.item())
        return {
            "weighted": lambda: total / sum(sizes),
            "mean_of_means": lambda: sum(batch_losses) / len(batch_losses),
            "per_batch": lambda: total / len(sizes),
            "total": lambda: total,
            "last": lambda: batch_losses[-1],
            "tensor": lambda: kept / sum(sizes),
            "detached_tensor": lambda: (kept / sum(sizes)).detach(),
            "list": lambda: batch_losses,
            "none": lambda: None,
            "odd": lambda: 12.5,
        }[result]()

    return answer


def test_train_one_epoch_right_answers_pass():
    assert grade("07.train_one_epoch", train_one_epoch).ok
    assert grade("07.train_one_epoch", _loop()).ok


def test_train_one_epoch_zero_grad_after_step_also_passes():
    def zero_after(model, loader, optimizer, loss_fn, device):
        model.train()
        optimizer.zero_grad()
        total, n = 0.0, 0
        for images, labels in loader:
            loss = loss_fn(model(images), labels)
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
            total, n = total + loss.item() * len(labels), n + len(labels)
        return total / n

    assert grade("07.train_one_epoch", zero_after).ok


@pytest.mark.parametrize(
    ("answer", "phrase"),
    [
        (_loop(train=False), "Call model.train()"),
        (_loop(zero="never"), "piled up"),
        (_loop(zero="between"), "wiped the gradients"),
        (_loop(backward=False), "call loss.backward()"),
        (_loop(step=False), "call optimizer.step()"),
        (_loop(no_grad=True), "ran under torch.no_grad()"),
        (_loop(result="mean_of_means"), "mean of the batch means"),
        (_loop(result="per_batch"), "divided by the number of batches"),
        (_loop(result="total"), "the total over all examples"),
        (_loop(result="last"), "last batch's loss only"),
        (_loop(result="tensor"), "still holds the graph"),
        (_loop(result="detached_tensor"), "not a tensor"),
        (_loop(result="list"), "not a list"),
        (_loop(result="none"), "returns None"),
        (_loop(result="odd"), "it returns 12.5"),
        (lambda model, loader, optimizer, loss_fn, device: 2.3, "the model never ran"),
        (2.3, "itself"),
    ],
)
def test_train_one_epoch_slips_get_their_hint(answer, phrase):
    feedback = grade("07.train_one_epoch", answer)
    assert not feedback.ok
    assert phrase in feedback.message, feedback.message


def test_train_one_epoch_checker_leaves_random_numbers_and_grad_mode_alone():
    before = torch.random.get_rng_state()
    grade("07.train_one_epoch", train_one_epoch)
    grade("07.train_one_epoch", _loop(no_grad=True))
    assert torch.equal(torch.random.get_rng_state(), before)
    assert torch.is_grad_enabled()


def test_train_one_epoch_probe_has_a_short_last_batch_so_weighting_matters():
    from helpers.exercises.nb07 import EPOCH_SIZES, _reference_epoch

    _, losses = _reference_epoch()
    weighted = sum(x * n for x, n in zip(losses, EPOCH_SIZES, strict=True)) / sum(EPOCH_SIZES)
    assert EPOCH_SIZES[-1] < EPOCH_SIZES[0]
    assert not math.isclose(weighted, sum(losses) / len(losses), rel_tol=1e-3)
