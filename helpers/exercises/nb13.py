"""Exercise checks for 13 — The loop in practice (the weights compared with the canonical loop)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from torch.nn.utils import clip_grad_norm_

from helpers._util import first_line
from helpers.checks import expect_function

__all__ = ["order", "find_bug", "clip_accumulate"]


LINES = {
    "A": "scaler.update()",
    "B": "scaler.step(optimizer)",
    "C": "scaler.unscale_(optimizer)",
    "D": "clip_grad_norm_(model.parameters(), max_norm)",
    "E": "scheduler.step()",
    "F": "optimizer.zero_grad()",
}

# (earlier, later, hint when `later` comes first): the rules, in the order a hint is worth giving.
RULES = (
    (
        "C",
        "D",
        "clip_grad_norm_ comes before scaler.unscale_(optimizer): it would clip the *scaled* "
        "gradients, about 65536 times too large, so every update shrinks to almost nothing. "
        "Which line turns .grad back into the true gradient?",
    ),
    (
        "D",
        "B",
        "the gradients are clipped after scaler.step(optimizer): the update has already been "
        "made with the unclipped gradient, so clipping changes nothing.",
    ),
    (
        "C",
        "B",
        "scaler.unscale_(optimizer) comes after scaler.step(optimizer): step() already unscaled "
        "the gradients itself, and unscaling again after step() raises an error.",
    ),
    (
        "B",
        "F",
        "optimizer.zero_grad() comes before scaler.step(optimizer): it wipes the gradients the "
        "step needs, and the weights never move.",
    ),
    (
        "B",
        "A",
        "scaler.update() comes before scaler.step(optimizer): update() sets the scale for the "
        "next round from what this round's step found; it belongs after the step.",
    ),
    (
        "B",
        "E",
        "scheduler.step() comes before the optimizer's step: the first learning rate of the "
        "schedule is skipped and every update uses the next one (PyTorch warns about it).",
    ),
)


def _letters(answer: Any) -> list[str] | str:
    """The answer as a list of upper-case letters, or a hint saying why it is not one."""
    if isinstance(answer, str):
        letters = [c for c in answer.upper() if c.isalpha()]
    elif isinstance(answer, (list, tuple)):
        if not all(isinstance(c, str) for c in answer):
            return 'give the letters as strings, such as ["A", "B", ...], or one string "AB...".'
        letters = [c.strip().upper() for c in answer]
    else:
        return f'answer with the six letters in order, such as "ABCDEF"; got a {type(answer).__name__}.'
    unknown = sorted({c for c in letters if c not in LINES})
    if unknown:
        return f"{', '.join(unknown)} is not one of the lines: use the letters A to F."
    if sorted(letters) != sorted(LINES):
        repeated = sorted({c for c in letters if letters.count(c) > 1})
        absent = sorted(set(LINES) - set(letters))
        parts = [f"{', '.join(absent)} missing"] if absent else []
        parts += [f"{', '.join(repeated)} more than once"] if repeated else []
        return f"use each of the six letters A–F exactly once ({'; '.join(parts)})."
    return letters


def order(answer: Any) -> str | None:
    """unscale_ → clip → step, then update, scheduler.step and zero_grad after the step."""
    letters = _letters(answer)
    if isinstance(letters, str):
        return letters
    position = {letter: i for i, letter in enumerate(letters)}
    for earlier, later, hint in RULES:
        if position[later] < position[earlier]:
            return hint
    return None


FIND_BUG_RIGHT = 8
FIND_BUG_HINTS = {
    1: "line 1 only names the function's inputs.",
    2: "line 2, model.train(), is right: the model trains in training mode.",
    3: "line 3 is the ordinary loop over the batches.",
    4: (
        "line 4: zero_grad() at the top of the loop clears the last batch's gradient before this "
        "batch's backward() — a right place when every batch is one update."
    ),
    5: (
        "line 5: autocast around the forward pass and the loss is how mixed precision is meant to "
        "be used; autocast itself runs the loss in float32."
    ),
    6: "line 6 computes the loss inside autocast: that is right.",
    7: "line 7, scaler.scale(loss).backward(), is the GradScaler's way to call backward().",
    9: (
        "line 9, scaler.step(optimizer), is right: it steps unless a gradient is inf or nan. "
        "Look at what the gradients are, at the moment the line before it runs."
    ),
    10: "line 10, scaler.update() after the step, is right.",
    11: (
        "line 11: this loop makes one update per batch, so a per-update schedule steps here, "
        "after the optimizer. That is right."
    ),
}


def find_bug(answer: Any) -> str | None:
    """line 8 clips gradients that are still scaled: unscale_ first."""
    if isinstance(answer, str) and answer.strip().isdigit():
        answer = int(answer.strip())
    if isinstance(answer, bool) or not isinstance(answer, int):
        return f"answer with one line number, such as 3; got a {type(answer).__name__}."
    if answer == FIND_BUG_RIGHT:
        return None
    if answer not in FIND_BUG_HINTS:
        return f"the listing has lines 1 to 11; {answer} is not one of them."
    return FIND_BUG_HINTS[answer] + " What is in .grad between backward() and step() here?"


K_CHECK = 4
MICRO_BATCHES = 8  # two updates of K micro-batches
BINDING, LOOSE = 0.05, 1e6

# The usual mistakes: how each one changes the canonical loop, and its hint.
MISTAKES: dict[str, tuple[dict[str, Any], str]] = {
    "plain_loop": (
        {"step_every": True, "zero_in_window": True, "divide": False, "clip": None},
        "this is still the plain loop: one update per micro-batch and no clipping. Accumulate "
        "K micro-batches into one update, and clip once before each step.",
    ),
    "step_every_micro_batch": (
        {"step_every": True},
        "the optimizer stepped after every micro-batch. With accumulation it steps once per "
        "update, when the K-th micro-batch's backward() is done.",
    ),
    "zero_grad_in_window": (
        {"zero_in_window": True},
        "only the last micro-batch's gradient reached the step: something cleared .grad inside "
        "the window of K micro-batches. Clear it once per update, after the step.",
    ),
    "never_zero_grad": (
        {"zero": False},
        "the second update still carried the first update's gradient: .grad was never cleared. "
        "Clear it once per update, after the step.",
    ),
    "loss_not_divided": (
        {"divide": False},
        "the update was K times too large: each micro-batch's mean loss needs dividing by K, so "
        "that the K gradients add up to the big batch's.",
    ),
    "clip_every_micro_batch": (
        {"clip": "each"},
        "clipping ran after every micro-batch, so it clipped partial sums of the gradient. "
        "Clip once per update, when .grad holds all K micro-batches.",
    ),
    "unclipped_step": (
        {"clip": None},
        "the steps used the unclipped gradient: either clip_grad_norm_ never runs, or it runs "
        "after step(), when the update has already been made (the same weights either way). "
        "Clipping goes between the last backward() and step().",
    ),
}


def _problem() -> tuple[Callable[[], nn.Module], list[tuple[torch.Tensor, torch.Tensor]]]:
    generator = torch.Generator().manual_seed(13)
    X = torch.randn(MICRO_BATCHES * 6, 5, generator=generator, dtype=torch.float64)
    y = 4 * X @ torch.randn(5, 1, generator=generator, dtype=torch.float64)

    def make_model() -> nn.Module:
        torch.manual_seed(7)
        return nn.Sequential(nn.Linear(5, 6), nn.ReLU(), nn.Linear(6, 1)).double()

    return make_model, list(zip(X.chunk(MICRO_BATCHES), y.chunk(MICRO_BATCHES), strict=True))


def _loop(
    model: nn.Module,
    optimizer: Any,
    loader: list,
    max_norm: float,
    *,
    step_every: bool = False,
    zero_in_window: bool = False,
    zero: bool = True,
    divide: bool = True,
    clip: str | None = "once",
) -> None:
    """The canonical loop with the defaults; each flag puts in one of the usual mistakes."""
    loss_fn = nn.MSELoss()
    for i, (xb, yb) in enumerate(loader):
        if zero_in_window:
            optimizer.zero_grad()
        loss = loss_fn(model(xb), yb)
        (loss / K_CHECK if divide else loss).backward()
        if clip == "each":
            clip_grad_norm_(model.parameters(), max_norm)
        if step_every or (i + 1) % K_CHECK == 0:
            if clip == "once":
                clip_grad_norm_(model.parameters(), max_norm)
            optimizer.step()
            if zero:
                optimizer.zero_grad()


def _weights(run: Callable[..., Any], max_norm: float) -> list[torch.Tensor]:
    make_model, loader = _problem()
    model = make_model()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    run(model, optimizer, loader, max_norm)
    return [p.detach().clone() for p in model.parameters()]


def _same(a: list[torch.Tensor], b: list[torch.Tensor]) -> bool:
    return all(
        s.shape == t.shape and torch.allclose(s, t, rtol=1e-7, atol=1e-9)
        for s, t in zip(a, b, strict=True)
    )


def clip_accumulate(answer: Any) -> str | None:
    """loss / K, backward() every micro-batch; clip, step and zero_grad once per K."""
    if hint := expect_function(answer, "train_epoch"):
        return hint
    start = _weights(lambda *args: None, LOOSE)
    for max_norm in (LOOSE, BINDING):

        def learner(model, optimizer, loader, max_norm):
            answer(model, optimizer, loader, nn.MSELoss(), K_CHECK, max_norm)

        try:
            got = _weights(learner, max_norm)
        except Exception as error:
            return (
                f"train_epoch(model, optimizer, loader, loss_fn, K=4, max_norm={max_norm:g}) "
                f"raised {type(error).__name__}: {first_line(error)}."
            )
        if _same(got, start):
            return (
                "the weights did not move: train_epoch must call backward() on each micro-batch "
                "and optimizer.step() once every K micro-batches."
            )
        if _same(got, _weights(_loop, max_norm)):
            continue
        for flags, message in MISTAKES.values():
            if _same(got, _weights(lambda *a, flags=flags: _loop(*a, **flags), max_norm)):
                return message
        return (
            f"with K=4 and max_norm={max_norm:g} the weights after two updates differ from the "
            "canonical loop's. Check the loss division, where the step, the clipping and "
            "zero_grad() sit, and that every micro-batch runs backward() once."
        )
    return None
