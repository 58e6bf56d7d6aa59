"""Exercise checks for notebook 01 — Tensors that remember: requires_grad."""

from __future__ import annotations

import warnings
from typing import Any

import torch
from torch import nn

from helpers._util import first_line
from helpers.checks import compare_tensor, expect_function

__all__ = ["who_gets_grad", "buffers", "frozen_copy"]

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


def who_gets_grad(answer: Any) -> str | None:
    """after backward() exactly w, b and h (retain_grad) have a .grad."""
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


def _columns(seed: int) -> torch.Tensor:
    """Six samples of three features whose means and spreads differ from column to column."""
    noise = torch.randn(6, 3, generator=torch.Generator().manual_seed(seed))
    return noise * torch.tensor([1.0, 4.0, 0.5]) + torch.tensor([2.0, -3.0, 10.0])


def _same(a: Any, b: torch.Tensor) -> bool:
    """True when `a` is a tensor with the values of `b`, whatever its dtype or size-1 dims."""
    return (
        isinstance(a, torch.Tensor)
        and a.numel() == b.numel()
        and torch.allclose(a.detach().double().reshape(b.shape), b.double(), atol=1e-5, rtol=1e-4)
    )


def _standardize_hint(out: Any, x: torch.Tensor, data: torch.Tensor) -> str | None:
    """None when `out` is x standardized with data's column statistics, else what went wrong."""
    if out is None:
        return "forward returns None: replace the None after `return` with your code."
    if not isinstance(out, torch.Tensor):
        return f"forward should return a tensor, but it returns a {type(out).__name__}."
    mean = data.mean(dim=0)
    for std in (data.std(dim=0), data.std(dim=0, correction=0)):
        if out.shape == x.shape and _same(out, (x - mean) / std):
            return None
    std = data.std(dim=0)
    if out.shape == x.shape:
        if _same(out, (x - data.mean()) / data.std()):
            return (
                "forward uses one mean and one std for the whole tensor; each column (feature) "
                "needs its own: reduce over the rows only."
            )
        if _same(out, (x - x.mean(dim=0)) / x.std(dim=0)):
            return (
                "forward standardizes x with x's own statistics. Use the ones computed once, "
                "in __init__, from the data the module was built with."
            )
        if _same(out, x / std - mean):
            return "forward divides before it subtracts: subtract the mean first, then divide."
        if _same(out, (x - mean) * std):
            return "forward multiplies by the std; standardizing divides by it."
        if _same(out, (x - mean) / data.var(dim=0)):
            return "forward divides by the variance; the standard deviation is its square root."
        if _same(out, x - mean):
            return "forward subtracts the mean but does not divide by the std."
    return compare_tensor(out, (x - mean) / std, name="forward(x)", check_dtype=False)


def buffers(answer: Any) -> str | None:
    """Standardize keeps its statistics in buffers: converted by .to(), saved."""
    if isinstance(answer, nn.Module):
        return (
            'the answer is a module object; pass the class itself: check("01.buffers", '
            "Standardize), without calling it."
        )
    if not (isinstance(answer, type) and issubclass(answer, nn.Module)):
        return (
            "the answer should be your class `Standardize`, a subclass of nn.Module, "
            f"not a {type(answer).__name__}."
        )
    data, x = _columns(seed=11), _columns(seed=12)[:4]
    module = answer(data.clone())
    try:
        out = module(x)
    except Exception as error:  # e.g. statistics of the wrong shape that do not broadcast
        out = error
    if any(t.numel() == data.shape[0] for t in _held(module).values()):
        return (
            f"one of your statistics has one value per row (sample), {data.shape[0]} in all; "
            f"standardizing needs one per column (feature), {data.shape[1]} here: reduce over "
            "the rows, dim=0."
        )
    if isinstance(out, Exception):
        return (
            f"module(x) raised {type(out).__name__}: {first_line(out)}. Print the shapes of "
            "x and of your statistics."
        )
    if hint := _standardize_hint(out, x, data):
        return hint
    parameters = [name for name, _ in module.named_parameters()]
    if parameters:
        kind = "is an nn.Parameter" if len(parameters) == 1 else "are nn.Parameters"
        return (
            f"{' and '.join(parameters)} {kind}: "
            "parameters require grad, and an optimizer would change them. Statistics are not "
            "trained: make them buffers."
        )
    plain = [name for name, value in vars(module).items() if isinstance(value, torch.Tensor)]
    if plain and getattr(module, plain[0]).shape == data.shape:
        return (
            f"self.{plain[0]} keeps the whole data set, as a plain tensor attribute. The module "
            "needs only the two statistics: compute them in __init__ and keep just those."
        )
    if plain:
        return (
            f"self.{plain[0]} is a plain tensor attribute: .to() leaves it behind and "
            "state_dict() does not save it. Register it as a buffer, as ScaleWithBuffer does."
        )
    buffers = dict(module.named_buffers())
    if any(t.shape == data.shape for t in buffers.values()):
        return (
            "one of your buffers is the whole data set: every checkpoint would carry it. Keep "
            "just the two statistics (compute them in __init__)."
        )
    missing = sorted(set(buffers) - set(module.state_dict()))
    if missing:
        return (
            f"the buffer {missing[0]!r} is not in state_dict(), so checkpoints lose it: "
            "persistent=False leaves it out. Keep the default."
        )
    module.to(torch.float64)
    wrong_dtype = [name for name, t in module.named_buffers() if t.dtype != torch.float64]
    if wrong_dtype or module(x.double()).dtype != torch.float64:
        return "after .to(torch.float64) the module still computes in float32."
    fresh = answer(_columns(seed=13))
    fresh.load_state_dict(module.state_dict())
    if _standardize_hint(fresh.to(torch.float64)(x.double()), x.double(), data.double()):
        return (
            "a module loaded from this one's state_dict() does not standardize like it: "
            "state_dict() must carry both statistics."
        )
    return None


def _held(module: nn.Module) -> dict[str, torch.Tensor]:
    """Every tensor the module holds: parameters, buffers and plain attributes."""
    held = {name: value for name, value in vars(module).items() if isinstance(value, torch.Tensor)}
    held.update(module.named_parameters())
    held.update(module.named_buffers())
    return held


def frozen_copy(answer: Any) -> str | None:
    """frozen_copy(t) returns an independent copy that does not require grad."""
    if hint := expect_function(answer, "frozen_copy"):
        return hint
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
