"""Exercise checks for notebook 01 — Tensors that remember: requires_grad."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import torch

from helpers.checks import compare_tensor, exercise

__all__ = ["check_who_gets_grad", "check_retain_grad", "check_frozen_copy"]

# Exercise 1 builds w, b, X, h (retain_grad), scale (under no_grad) and loss, then backward().
WHO_GETS_GRAD = {"w", "b", "h"}
EXERCISE_1_NAMES = ("w", "b", "X", "h", "scale", "loss")
_WHY_NOT = {
    "X": "X was created without requires_grad=True, so autograd never tracks it and X.grad "
    "stays None.",
    "scale": "scale was computed inside torch.no_grad(): nothing was recorded, so it is a plain "
    "tensor that does not require grad and gets no .grad.",
    "loss": "loss is not a leaf (it has a grad_fn) and nobody called loss.retain_grad(), so "
    "loss.grad stays None: backward() starts from it, it does not store a gradient in it.",
}
_WHY = {
    "w": "w is a leaf created with requires_grad=True: backward() fills w.grad.",
    "b": "b is a leaf created with requires_grad=True: backward() fills b.grad.",
    "h": "h is an intermediate result, but h.retain_grad() was called before backward(), "
    "so h keeps its .grad.",
}


@exercise("01.who_gets_grad", "after backward() exactly w, b and h (retain_grad) have a .grad")
def check_who_gets_grad(answer: Any) -> str | None:
    """The learner names the tensors that have a .grad after loss.backward()."""
    if isinstance(answer, str):
        return (
            f'the answer is one string ({answer!r}); give a set of names, for example {{"w", "X"}}.'
        )
    if not isinstance(answer, (set, frozenset, list, tuple)):
        return (
            f"the answer should be a set of tensor names such as {{'w', 'X'}}, "
            f"not a {type(answer).__name__}."
        )
    if not all(isinstance(name, str) for name in answer):
        return (
            "write the names as strings: {'w', 'b'}, not the tensors themselves "
            "({w, b} would compare tensor values)."
        )
    names = set(answer)
    unknown = sorted(names - set(EXERCISE_1_NAMES))
    if unknown:
        return (
            f"there is no tensor called {unknown[0]!r} in the exercise; "
            f"choose from {', '.join(EXERCISE_1_NAMES)}."
        )
    for name in EXERCISE_1_NAMES:
        if name in names and name not in WHO_GETS_GRAD:
            return _WHY_NOT[name]
    for name in ("w", "b", "h"):
        if name not in names:
            return f"{name} is missing. {_WHY[name]}"
    return None


def _exercise_2_expected(h: torch.Tensor) -> torch.Tensor:
    """For loss = (h ** 2).mean(), dloss/dh = 2 h / N."""
    values = h.detach()
    return 2 * values / values.numel()


@exercise("01.retain_grad", "h.retain_grad() before backward() keeps dloss/dh = 2h/N in h.grad")
def check_retain_grad(answer: Any) -> str | None:
    """The learner hands over the intermediate `h`; its .grad must hold dloss/dh."""
    if not isinstance(answer, torch.Tensor):
        return (
            f"the answer should be the tensor h itself (answer = h), not a {type(answer).__name__}."
        )
    if answer.is_leaf:
        if answer.requires_grad:
            return (
                "h is a leaf: you created it directly. Compute it from x instead "
                "(h = x * 3), so that it is an intermediate result."
            )
        return (
            "h does not require grad, so it is not part of any graph. Compute it from x "
            "(which requires grad), outside torch.no_grad(), without .detach(); "
            "h.grad is a gradient, not the answer: pass h itself."
        )
    if not answer.retains_grad:
        return (
            "h.retain_grad() was not called, so backward() does not keep h's gradient. "
            "Call h.retain_grad() after computing h and before loss.backward()."
        )
    if answer.grad is None:
        return (
            "h is set to keep its gradient, but h.grad is still None: call h.retain_grad() "
            "first and loss.backward() after it (backward() only fills what is marked by then)."
        )
    expected = _exercise_2_expected(answer)
    got = answer.grad.detach()
    if got.shape == expected.shape and torch.allclose(got, 2 * expected, rtol=1e-4, atol=1e-6):
        return (
            "h.grad is twice dloss/dh: backward() ran twice and gradients add up. Run the "
            "cell again from the start (it re-creates x and h) with one backward()."
        )
    if got.shape == expected.shape and torch.allclose(
        got, expected * expected.numel(), rtol=1e-4, atol=1e-6
    ):
        return (
            f"h.grad is {expected.numel()} times too large: the loss should be the mean "
            "(h ** 2).mean(), not the sum."
        )
    return compare_tensor(got, expected, name="h.grad", check_dtype=False)


@exercise("01.frozen_copy", "frozen_copy(t) returns an independent copy that does not require grad")
def check_frozen_copy(answer: Callable[[torch.Tensor], Any]) -> str | None:
    """Call the learner's frozen_copy on a tensor that requires grad and one in a graph."""
    if not callable(answer):
        return (
            "the answer should be your function `frozen_copy` itself, but it is a "
            f"{type(answer).__name__}. Pass the name without calling it: answer = frozen_copy."
        )
    leaf = torch.tensor([1.0, -2.0, 3.5], requires_grad=True)
    computed = leaf * 2
    for original, what in ((leaf, "a leaf that requires grad"), (computed, "a computed tensor")):
        before = original.detach().clone()
        with warnings.catch_warnings():  # torch.tensor(t) warns; the learner sees our hint instead
            warnings.simplefilter("ignore")
            result = answer(original)
        if result is None:
            return "frozen_copy returns None: replace the None after `return` with your code."
        if not isinstance(result, torch.Tensor):
            return f"frozen_copy should return a tensor, but it returned a {type(result).__name__}."
        if result is original:
            return "frozen_copy returns t itself; it should return a new tensor."
        if result.is_inference():
            return (
                "the copy was made under torch.inference_mode(): an inference tensor cannot be "
                "used later in computations autograd records. Use .detach().clone() "
                "(or torch.no_grad())."
            )
        if result.requires_grad:
            return (
                f"for {what} your copy still requires grad (it is part of the graph). "
                "Detach it: t.detach().clone()."
            )
        if result.shape != original.shape or not torch.equal(result, before):
            return f"for {what} the copy holds different values or a different shape than t."
        if result.untyped_storage().data_ptr() == original.untyped_storage().data_ptr():
            return (
                "the copy shares its storage with t (that is what .detach() does): changing it "
                "in place would change t too. Add .clone() to get memory of its own."
            )
        result.add_(1.0)  # an independent copy: t must not change
        if not torch.equal(original.detach(), before):
            return "changing your copy in place changed t: the two still share memory."
    return None
