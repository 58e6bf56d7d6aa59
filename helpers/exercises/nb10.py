"""Exercise checks for 10 — The bug clinic (10.fix_step asks the loop doctor)."""

from __future__ import annotations

import warnings
from typing import Any

import torch
from torch.nn import functional as F

from helpers.checks import compare_number, expect_function, raised
from helpers.doctor import diagnose_step

__all__ = ["which_bug", "broadcast", "fix_step"]


BUG_NAMES = {
    1: "no zero_grad()",
    2: "zero_grad() between backward() and step()",
    3: "no optimizer.step()",
    4: "p = p - lr * p.grad",
    5: "forward pass under no_grad",
    6: "eval() left on",
    7: "softmax before CrossEntropyLoss",
    8: "(N, 1) predictions against (N,) targets",
    9: "loss tensors kept instead of .item()",
}
WHICH_BUG = {"A": 7, "B": 1, "C": 2, "D": 8}

# A hint for each (symptom, wrong bug number) that is a likely confusion; else the symptom's clue.
CONFUSIONS = {
    ("A", 8): (
        "A: broadcasting happens with MSE and (N, 1) against (N,); a classifier's "
        "CrossEntropyLoss gets class indices. Ask what keeps the logged loss above a floor: "
        "what squeezes the numbers the loss sees into [0, 1]?"
    ),
    ("A", 6): (
        "A: eval mode changes dropout and BatchNorm, but it puts no floor under the loss. "
        "What squeezes the numbers the loss sees into [0, 1]?"
    ),
    ("B", 2): "B: with zero_grad() between backward() and step() the loss does not move at all.",
    ("B", 3): "B: with no step() the weights never change, so the loss does not move at all.",
    ("B", 4): "B: `p = p - lr * p.grad` leaves the weights as they were: the loss would be flat.",
    ("C", 3): (
        "C: with no step(), .grad would still hold the gradient (nothing clears it). Here .grad "
        "is None when step() runs: something cleared it after backward()."
    ),
    ("C", 4): (
        "C: with `p = p - lr * p.grad`, .grad still holds the gradient. Here .grad is None "
        "when step() runs: something cleared it after backward()."
    ),
    ("C", 1): "C: without zero_grad() the gradients pile up and the loss swings; here it is flat.",
    ("D", 7): (
        "D: the warning names a 'target size' that differs from the input size: that is a "
        "shape problem, and this is a regression model."
    ),
    ("D", 6): (
        "D: eval mode raises no warning. Which bug makes PyTorch warn about a 'target size'?"
    ),
}
CLUES = {
    "A": "A: the floor of about 1.04 = log(1 + 5/e) is the clue. Which bug puts it there?",
    "B": "B: gradients from earlier steps keep pushing. Which missing line lets them pile up?",
    "C": "C: backward() filled .grad, and it was None at step(). Which bug empties it in between?",
    "D": "D: the loss compared every prediction with every target. Which bug does that?",
}


def _bug_number(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, int) and value in BUG_NAMES:
        return value
    return None


def which_bug(answer: Any) -> str | None:
    """A: softmax before CrossEntropyLoss (7), B: no zero_grad (1), C: zero_grad between backward and step (2), D: (N, 1) against (N,) targets (8)."""
    if not isinstance(answer, dict):
        return (
            "answer with a dict from symptom letter to bug number, such as "
            f"{{'A': 5, 'B': 3, 'C': 9, 'D': 6}}; got a {type(answer).__name__}."
        )
    keys = {str(k).strip().upper(): v for k, v in answer.items()}
    missing = [letter for letter in WHICH_BUG if letter not in keys]
    if missing:
        return f"the dict has no entry for {', '.join(missing)}: give a bug number for each of A–D."
    extra = sorted(set(keys) - set(WHICH_BUG))
    if extra:
        return f"the dict has entries for {', '.join(extra)}; only A, B, C and D are symptoms."
    hints = []
    for letter, right in WHICH_BUG.items():
        number = _bug_number(keys[letter])
        if number is None:
            return (
                f"{letter}: {keys[letter]!r} is not a bug number; use a whole number from 1 to 9, "
                "as in the section titles (Bug 1 … Bug 9)."
            )
        if number != right:
            hints.append(CONFUSIONS.get((letter, number), CLUES[letter]))
    if not hints:
        return None
    right_count = len(WHICH_BUG) - len(hints)
    return f"{right_count} of 4 are right. " + " ".join(hints)


BROADCAST_SIZES = (
    5,
    8,
    1,
)  # N = 1: broadcasting gives no wrong value there, but the shape is still wrong


def _broadcast_case(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A prediction of shape (n, 1) that requires grad, and targets of shape (n,)."""
    gen = torch.Generator().manual_seed(100 + n)
    prediction = torch.randn(n, 1, generator=gen).requires_grad_()
    targets = torch.randn(n, generator=gen)
    return prediction, targets


def broadcast(answer: Any) -> str | None:
    """fixed_mse lines the shapes up before the mean squared error."""
    if hint := expect_function(answer, "fixed_mse"):
        return hint
    for n in BROADCAST_SIZES:
        prediction, targets = _broadcast_case(n)
        call = f"fixed_mse(prediction of shape ({n}, 1), targets of shape ({n},))"
        expected = F.mse_loss(prediction.detach().squeeze(1), targets)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                got = answer(prediction, targets.clone())
            except Exception as error:
                return raised(call, error)
        if got is None:
            return f"{call} returned None: end the function with `return` and the loss."
        if any("target size" in str(w.message) for w in caught):
            if n == 1:
                return (
                    f"{call} made PyTorch warn about different target and input sizes. With a "
                    "batch of one sample, `.squeeze()` removes the batch dimension too: squeeze "
                    "only dimension 1 (`prediction.squeeze(1)`), or unsqueeze the targets."
                )
            return (
                f"{call} made PyTorch warn about different target and input sizes: the shapes "
                "still do not match when they reach the loss. Squeeze the prediction to (N,) "
                "(`prediction.squeeze(1)`) or unsqueeze the targets to (N, 1)."
            )
        if isinstance(got, (int, float)) and not isinstance(got, bool):
            return (
                f"{call} returned a Python number. Return the loss tensor itself: "
                "`backward()` needs it (call `.item()` only for logging)."
            )
        if not isinstance(got, torch.Tensor):
            return f"{call} returned a {type(got).__name__}; return the loss as a 0-dim tensor."
        if got.dim() > 0 and got.numel() > 1:
            if tuple(got.shape) == (n, n):
                return (
                    f"{call} returned a ({n}, {n}) tensor: every prediction was compared with "
                    "every target (broadcasting), and nothing was averaged."
                )
            return (
                f"{call} returned a tensor of shape {tuple(got.shape)}: average the squared "
                "errors into one number (`.mean()`, or use F.mse_loss)."
            )
        if not got.requires_grad:
            return (
                f"{call} returned a loss that does not require grad: it was cut off from the "
                "prediction (`.detach()`, `.item()`, `torch.tensor(...)`). Compute it from "
                "`prediction` directly so that backward() can reach the model."
            )
        broadcast = ((prediction.detach() - targets) ** 2).mean()
        if n > 1 and torch.allclose(got.detach().reshape(()), broadcast, rtol=1e-5, atol=1e-7):
            return (
                f"{call} returned the broadcast value: ({n}, 1) minus ({n},) gives a ({n}, {n}) "
                "table of every prediction against every target. Make the shapes equal first."
            )
        if hint := compare_number(
            float(got.detach().reshape(())), float(expected), name=f"{call}'s loss"
        ):
            return hint
    return None


def fix_step(answer: Any) -> str | None:
    """the loop doctor finds nothing wrong with your train_step."""
    if hint := expect_function(answer, "train_step"):
        return hint
    findings = diagnose_step(answer)
    if not findings:
        return None
    count = "one problem" if len(findings) == 1 else f"{len(findings)} problems"
    lines = "\n".join(f"  - {f.code}: {f.message}" for f in findings)
    return f"the loop doctor still finds {count}:\n{lines}"
