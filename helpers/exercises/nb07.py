"""Exercise checks for notebook 07 — The whole loop, on real data."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from helpers._util import first_line
from helpers.checks import expect_function, raised

__all__ = [
    "STEP_LINES",
    "batches",
    "steps",
    "accuracy",
    "train_one_epoch",
]

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


def batches(answer: Any) -> str | None:
    """1000 examples in batches of 48: 21 batches, the last one holds 40."""
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


def steps(answer: Any) -> str | None:
    """the five steps in an order that trains: zero_grad, forward, loss, backward, step."""
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
        result = answer(model, images.clone(), labels.clone())
        grad_left_on = torch.is_grad_enabled()
    finally:
        handle.remove()
        torch.set_grad_enabled(grad_was_on)
    return result, calls, grad_was_on and not grad_left_on


def accuracy(answer: Any) -> str | None:
    """accuracy() runs the model in eval mode under no_grad and restores its mode."""
    if hint := expect_function(answer, "accuracy"):
        return hint
    for start_in_training, frozen_norm in ((True, False), (False, False), (True, True)):
        model, images, labels, want = _probe()
        model.train(start_in_training)
        if frozen_norm:  # a layer kept in eval mode on purpose, as 08 does with a frozen backbone
            model[2].eval()
        modes = [layer.training for layer in model.modules()]
        before = {k: v.clone() for k, v in model.state_dict().items()}
        try:
            got, calls, grad_left_off = _call(answer, model, images, labels)
        except Exception as error:  # the learner's function failed on the checker's model
            return raised(
                f"calling accuracy(model, images, labels) on a small model (images of shape "
                f"{tuple(images.shape)}, labels of shape {tuple(labels.shape)})",
                error,
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
                f"the model came in in {mode} mode and left in the other: remember each layer's "
                "mode first, `modes = [(layer, layer.training) for layer in model.modules()]`, "
                "and set `layer.training = mode` for each at the end, so the training loop that "
                "called you carries on as it was."
            )
        if [layer.training for layer in model.modules()] != modes:
            return (
                "the model came in with its BatchNorm layer in eval mode and the rest training "
                "(notebook 08 keeps a frozen part of a model in eval mode like this), and your "
                "function left a layer in another mode. model.train(was_training) switches every "
                "layer alike; remember each layer's mode instead, "
                "`modes = [(layer, layer.training) for layer in model.modules()]`, and afterwards "
                "set `layer.training = mode` for each."
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


EPOCH_SIZES = (16, 16, 8)  # the checker's loader: two full batches and a short last one


def _epoch_probe() -> tuple[nn.Module, DataLoader, torch.optim.Optimizer]:
    """A small model with BatchNorm, in eval mode; a loader with a short last batch; plain SGD."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(717)
        model = nn.Sequential(
            nn.Flatten(), nn.Linear(64, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 10)
        )
        images = torch.rand(sum(EPOCH_SIZES), 1, 8, 8) * 2
        labels = torch.randint(0, 10, (sum(EPOCH_SIZES),))
    model.eval()  # as evaluate() leaves it
    # a generator of its own: iterating a DataLoader draws a seed, and the learner's must not move
    loader = DataLoader(
        TensorDataset(images, labels), batch_size=EPOCH_SIZES[0], generator=torch.Generator()
    )
    return model, loader, torch.optim.SGD(model.parameters(), lr=0.5)


def _reference_epoch(zero_grad: bool = True) -> tuple[list[torch.Tensor], list[float]]:
    """A loop known to be right (or one without zero_grad): the weights after it, the batch losses."""
    model, loader, optimizer = _epoch_probe()
    loss_fn = nn.CrossEntropyLoss()
    model.train()
    losses = []
    for images, labels in loader:
        if zero_grad:
            optimizer.zero_grad()
        loss = loss_fn(model(images), labels)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return [p.detach().clone() for p in model.parameters()], losses


def _recording(method: Callable[..., Any], name: str, events: list[str]) -> Callable[..., Any]:
    """Wrap an optimizer method so that each call is written into `events`."""

    def call(*args: Any, **kwargs: Any) -> Any:
        events.append(name)
        return method(*args, **kwargs)

    return call


def _same(a: list[torch.Tensor], b: list[torch.Tensor]) -> bool:
    return all(torch.allclose(x, y, atol=1e-6) for x, y in zip(a, b, strict=True))


def _epoch_value_hint(value: float, losses: list[float]) -> str | None:
    """Compare the returned number with the right mean and with the usual wrong ones."""
    sizes = EPOCH_SIZES
    weighted_sum = sum(loss * size for loss, size in zip(losses, sizes, strict=True))
    right = weighted_sum / sum(sizes)
    if math.isclose(value, right, rel_tol=1e-5):
        return None
    wrong = [
        (
            sum(losses) / len(losses),
            f"that is the mean of the batch means, so the last batch of {sizes[-1]} examples "
            f"counts as much as a full one of {sizes[0]}. Weight each batch's loss by its size: "
            "add loss.item() * len(labels), and divide by the number of examples at the end.",
        ),
        (
            weighted_sum / len(sizes),
            "the sum is weighted by batch size, but then divided by the number of batches; "
            "divide by the number of examples instead.",
        ),
        (
            weighted_sum,
            "that is the total over all examples; divide it by the number of examples.",
        ),
        (sum(losses), "that is the sum of the batch means; the question asks for a mean."),
        (
            losses[-1],
            "that is the last batch's loss only; add up every batch's loss (weighted by its "
            "size) over the whole epoch.",
        ),
    ]
    for number, hint in wrong:
        if math.isclose(value, number, rel_tol=1e-5):
            return hint
    return (
        f"the loop trains correctly, but it returns {value:.4g} where the mean loss per example "
        f"is {right:.4g}: add up loss.item() * len(labels) over the batches and divide by the "
        "number of examples."
    )


def train_one_epoch(answer: Any) -> str | None:
    """one epoch: model.train(), then per batch zero_grad, forward, loss, backward, step, and the mean loss per example as a float."""
    if hint := expect_function(answer, "my_train_one_epoch"):
        return hint
    model, loader, optimizer = _epoch_probe()
    start = [p.detach().clone() for p in model.parameters()]
    modes: list[bool] = []
    events: list[str] = []  # "zero_grad", "backward", "step", in the order they happened
    handle = model.register_forward_hook(lambda module, i, o: modes.append(module.training))
    model[1].weight.register_hook(lambda grad: events.append("backward"))
    for name in ("zero_grad", "step"):
        method = getattr(optimizer, name)
        setattr(optimizer, name, _recording(method, name, events))
    grad_was_on = torch.is_grad_enabled()
    try:
        got = answer(model, loader, optimizer, nn.CrossEntropyLoss(), torch.device("cpu"))
    except Exception as error:  # the learner's loop failed on the checker's model
        if "does not require grad" in first_line(error):
            return (
                "loss.backward() found no graph: the forward pass ran under torch.no_grad() "
                "(or the loss was detached). Training needs the graph; keep no_grad for "
                "evaluation."
            )
        return raised(
            "calling my_train_one_epoch(model, loader, optimizer, loss_fn, device) on a small model",
            error,
        )
    finally:
        handle.remove()
        torch.set_grad_enabled(grad_was_on)
    if got is None:
        return "my_train_one_epoch returns None: return the epoch's mean loss per example."
    if not modes:
        return "the model never ran (its forward hooks did not fire): call model(images)."
    if not all(modes):
        return (
            "the model came in in eval mode (as evaluate() leaves it) and ran in eval mode, so "
            "BatchNorm used its running averages and Dropout would stay off. Call model.train() "
            "at the start of the epoch."
        )
    if len(modes) != len(EPOCH_SIZES):
        return (
            f"the model ran {len(modes)} times for a loader of {len(EPOCH_SIZES)} batches: one "
            "forward pass per batch, on that batch."
        )
    params = [p.detach() for p in model.parameters()]
    right, losses = _reference_epoch()
    if not _same(params, right):
        if _same(params, start):
            if "backward" not in events:
                return "no parameter got a .grad: call loss.backward() on every batch's loss."
            if "step" not in events:
                return "the weights did not move: call optimizer.step() after loss.backward()."
            if "backward,zero_grad,step" in ",".join(events):
                return (
                    "the weights did not move: optimizer.zero_grad() ran between backward() and "
                    "step() and wiped the gradients just computed. Clear them before backward()."
                )
        if _same(params, _reference_epoch(zero_grad=False)[0]):
            return (
                "the gradients piled up from batch to batch: backward() adds to .grad, so call "
                "optimizer.zero_grad() once per batch, before backward() (notebook 06)."
            )
        return (
            "after your epoch the weights differ from those of a right loop. Per batch, in "
            "order: optimizer.zero_grad(), logits = model(images), loss = loss_fn(logits, "
            "labels), loss.backward(), optimizer.step(); one step per batch."
        )
    if isinstance(got, torch.Tensor):
        if got.requires_grad:
            return (
                "you return a tensor that still holds the graph: keep loss.item(), a float, for "
                "the running total, so no batch's graph stays alive after its step."
            )
        return "the mean loss should be a plain Python float, not a tensor: use loss.item()."
    if isinstance(got, bool) or not isinstance(got, (int, float)):
        return f"return one number, the epoch's mean loss per example, not a {type(got).__name__}."
    return _epoch_value_hint(float(got), losses)
