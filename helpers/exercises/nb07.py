"""Exercise checks for notebook 07 — The whole loop, on real data."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader

from helpers.checks import exercise

__all__ = ["STEP_LINES", "check_batches", "check_steps", "check_accuracy"]

# ---------------------------------------------------------------------------------------------
# 07.batches: how many batches does one epoch have, and how big is the last one?
# ---------------------------------------------------------------------------------------------

N_EXAMPLES, BATCH_SIZE = 1000, 48


def _whole_number(value: Any) -> int | None:
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        value = value.item()
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


@exercise("07.batches", "1000 examples in batches of 48: 21 batches, the last one holds 40")
def check_batches(answer: Any) -> str | None:
    """Compare (batches per epoch, size of the last batch) with what a real DataLoader gives."""
    # a generator of its own: iterating a DataLoader draws a seed, and the learner's must not move
    loader = DataLoader(range(N_EXAMPLES), batch_size=BATCH_SIZE, generator=torch.Generator())
    sizes = [len(batch) for batch in loader]
    want_batches, want_last = len(loader), sizes[-1]
    if not isinstance(answer, (tuple, list)) or len(answer) != 2:
        return (
            "the answer should be a pair of two whole numbers, (batches per epoch, size of the "
            f"last batch), not a {type(answer).__name__}."
        )
    batches, last = answer
    for value, what in ((batches, "the number of batches"), (last, "the last batch's size")):
        if isinstance(value, float) and not value.is_integer():
            return (
                f"{what} is {value:.4g}, which is not a whole number: a DataLoader hands out "
                "whole batches. Round the division up with math.ceil."
            )
        if _whole_number(value) is None:
            return f"{what} should be a whole number, not a {type(value).__name__}."
    batches, last = _whole_number(batches), _whole_number(last)
    if batches == N_EXAMPLES // BATCH_SIZE:
        return (
            f"{batches} batches rounds down: the {N_EXAMPLES - batches * BATCH_SIZE} examples "
            "left over still come out as one last, smaller batch (only drop_last=True drops it). "
            "Round up: math.ceil(1000 / 48)."
        )
    if batches != want_batches:
        return (
            f"{batches} batches is not what the DataLoader gives. Every batch holds "
            f"{BATCH_SIZE} examples except maybe the last: divide and round up."
        )
    if last == BATCH_SIZE:
        return (
            "the batch count is right, but the last batch is not full: it holds what is left "
            "after the full batches, 1000 - 20 * 48."
        )
    if last == BATCH_SIZE - want_last:
        return (
            f"{last} is how many examples the last batch is short of a full one; the question "
            "asks how many it holds."
        )
    if last != want_last:
        return (
            f"the batch count is right, but the last batch does not hold {last} examples: "
            "count what remains after the full batches (or use the % operator)."
        )
    return None


# ---------------------------------------------------------------------------------------------
# 07.steps: the five lines of a training step, in an order that trains
# ---------------------------------------------------------------------------------------------

ZERO, FORWARD, LOSS, BACKWARD, STEP = (
    "optimizer.zero_grad()",
    "logits = model(images)",
    "loss = loss_fn(logits, labels)",
    "loss.backward()",
    "optimizer.step()",
)
STEP_LINES = (LOSS, STEP, FORWARD, ZERO, BACKWARD)  # shuffled, as the notebook shows them


def _normalise(line: Any) -> str | None:
    return " ".join(line.split()) if isinstance(line, str) else None


@exercise(
    "07.steps", "the five steps in an order that trains: zero_grad, forward, loss, backward, step"
)
def check_steps(answer: Any) -> str | None:
    """Check that the five lines are all there, once each, in an order that trains."""
    if not isinstance(answer, (list, tuple)):
        return (
            "the answer should be a list of the five lines (strings) in order, such as "
            f"[lines[3], lines[2], ...], not a {type(answer).__name__}."
        )
    lines = [_normalise(line) for line in answer]
    if any(line is None for line in lines):
        return "every item of the list should be one of the five lines, as a string."
    unknown = [line for line in lines if line not in STEP_LINES]
    if unknown:
        return (
            f"{unknown[0]!r} is not one of the five lines. Build the list from `lines` "
            "(lines[0], lines[1], ...) so the spelling matches."
        )
    for line in STEP_LINES:
        if lines.count(line) > 1:
            return f"{line!r} appears {lines.count(line)} times; each step runs once per batch."
    absent = [line for line in STEP_LINES if line not in lines]
    if absent:
        return f"{absent[0]!r} is missing: a training step needs all five lines."
    where = {line: lines.index(line) for line in lines}
    if where[LOSS] < where[FORWARD]:
        return (
            "the loss compares the model's logits with the labels, so the forward pass "
            "(`logits = model(images)`) has to come before it."
        )
    if where[BACKWARD] < where[LOSS]:
        return "loss.backward() needs the loss it differentiates: compute the loss first."
    if where[STEP] < where[BACKWARD]:
        return (
            "optimizer.step() moves the weights along .grad, and loss.backward() is what fills "
            ".grad: step after backward, or the step uses stale (or no) gradients."
        )
    if where[BACKWARD] < where[ZERO] < where[STEP]:
        return (
            "optimizer.zero_grad() between backward() and step() wipes the gradients just "
            "computed, so step() has nothing to use. Clear them before backward() instead."
        )
    return None


# ---------------------------------------------------------------------------------------------
# 07.accuracy: evaluation in eval mode, without a graph, leaving the model as it was
# ---------------------------------------------------------------------------------------------

N_PROBE = 40


def _probe() -> tuple[nn.Module, torch.Tensor, torch.Tensor, float]:
    """A small model with Dropout and BatchNorm, images, labels and the right accuracy."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(707)
        model = nn.Sequential(
            nn.Flatten(),
            nn.Linear(64, 32),
            nn.BatchNorm1d(32),
            nn.ReLU(),
            nn.Dropout(0.5),
            nn.Linear(32, 10),
        )
        images = torch.rand(N_PROBE, 1, 8, 8)
        with torch.no_grad():  # give BatchNorm running statistics of its own
            model.train()
            for _ in range(3):
                model(torch.rand(N_PROBE, 1, 8, 8) * 2)
            model.eval()
            predicted = model(images).argmax(dim=1)
        # labels: the eval-mode prediction for the first 26, a different class for the rest
        labels = predicted.clone()
        labels[26:] = (predicted[26:] + 1) % 10
    return model, images, labels, 26 / N_PROBE


def _call(
    answer: Callable[..., Any], model: nn.Module, images: torch.Tensor, labels: torch.Tensor
) -> tuple[Any, list[tuple[bool, bool]], bool]:
    """Run answer(model, images, labels) and record, for every model call, (training, grad on)."""
    calls: list[tuple[bool, bool]] = []
    handle = model.register_forward_hook(
        lambda module, inputs, output: calls.append((module.training, torch.is_grad_enabled()))
    )
    grad_was_on = torch.is_grad_enabled()
    try:
        with torch.random.fork_rng(devices=[]):
            result = answer(model, images.clone(), labels.clone())
        grad_left_on = torch.is_grad_enabled()
    finally:
        handle.remove()
        torch.set_grad_enabled(grad_was_on)
    return result, calls, grad_was_on and not grad_left_on


@exercise(
    "07.accuracy", "accuracy() runs the model in eval mode under no_grad and restores its mode"
)
def check_accuracy(answer: Any) -> str | None:
    """Call the learner's accuracy(model, images, labels) on a small model with Dropout and BatchNorm."""
    if not callable(answer):
        return (
            "the answer should be your function `accuracy` itself, but it is a "
            f"{type(answer).__name__}. Pass the name without calling it: check(..., accuracy)."
        )
    for start_in_training in (True, False):
        model, images, labels, want = _probe()
        model.train(start_in_training)
        before = {k: v.clone() for k, v in model.state_dict().items()}
        try:
            got, calls, grad_left_off = _call(answer, model, images, labels)
        except Exception as error:  # the learner's function failed on the checker's model
            text = str(error).strip().splitlines()[0] if str(error).strip() else ""
            return (
                f"calling accuracy(model, images, labels) on a small model (images of shape "
                f"{tuple(images.shape)}, labels of shape {tuple(labels.shape)}) raised "
                f"{type(error).__name__}: {text[:160]}"
            )
        if got is None:
            return "accuracy returns None: replace the None after `return` with your code."
        if not calls:
            return (
                "the model never ran (its forward hooks did not fire): call model(images), not "
                "model.forward(images)."
            )
        if any(training for training, _ in calls):
            return (
                "the model was still in training mode when your function called it, so Dropout "
                "dropped units at random and BatchNorm used (and updated) the batch's statistics. "
                "Call model.eval() before the forward pass."
            )
        if any(grad_on for _, grad_on in calls):
            return (
                "the forward pass ran with gradient recording on, so it built a graph nobody "
                "needs: run it inside `with torch.no_grad():`."
            )
        if grad_left_off:
            return (
                "gradient recording is still off after your function returned: use "
                "`with torch.no_grad():` so it switches back on by itself."
            )
        if model.training != start_in_training:
            mode = "training" if start_in_training else "eval"
            return (
                f"the model came in in {mode} mode and left in the other: remember "
                "`was_training = model.training` first and call `model.train(was_training)` at "
                "the end, so the training loop that called you carries on as it was."
            )
        after = model.state_dict()
        if any(not torch.equal(before[k], after[k]) for k in before):
            return "your function changed the model's weights or buffers; evaluation must not."
        if isinstance(got, torch.Tensor):
            if got.numel() != 1:
                return (
                    f"accuracy should be one number, but it is a tensor of shape "
                    f"{tuple(got.shape)}: take the mean of the correct/incorrect values."
                )
            return (
                "accuracy should be a plain Python number, but it is a tensor: finish with .item()."
            )
        if isinstance(got, bool) or not isinstance(got, (int, float)):
            return f"accuracy should be a number between 0 and 1, not a {type(got).__name__}."
        value = float(got)
        if math.isclose(value, want * N_PROBE, rel_tol=1e-6):
            return (
                f"{value:g} is the number of correct predictions; divide by the number of "
                f"examples ({N_PROBE}) to get a fraction."
            )
        if math.isclose(value, want * 100, rel_tol=1e-6):
            return f"{value:g} is a percentage; return the fraction between 0 and 1."
        if math.isclose(value, 1 - want, abs_tol=1e-6):
            return f"{value:g} is the share of wrong predictions (the error rate), not accuracy."
        if not math.isclose(value, want, abs_tol=1e-6):
            return (
                f"accuracy is {value:.4g} on the checker's model, but it should be {want:.4g}. "
                "Predicted classes are logits.argmax(dim=1); compare them with the labels and "
                "take the mean of the matches as floats."
            )
    return None
