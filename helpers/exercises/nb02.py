"""Exercise checks for notebook 02 — The forward pass: y_hat = model(X)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from helpers.checks import close, compare_tensor, expect_function

__all__ = ["linear", "collapse", "predict"]

# PyTorch's words when the two sides of a matrix product do not fit.
_SHAPE_ERRORS = ("shapes cannot be multiplied", "must match the size", "size mismatch")


def _layers(sizes: list[int], seed: int) -> list[nn.Linear]:
    """Linear layers sizes[0] -> sizes[1] -> ..., seeded."""
    torch.manual_seed(seed)
    return [nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:], strict=True)]


def _bias_through_transposed_weights(layers: list[nn.Linear]) -> torch.Tensor | None:
    """The bias of the fold when it meets each later weight from the wrong side (b @ W), if square."""
    b = layers[0].bias
    for layer in layers[1:]:
        if layer.in_features != layer.out_features:
            return None
        b = b @ layer.weight + layer.bias
    return b


def _randn(*shape: int, seed: int) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def linear(answer: Any) -> str | None:
    """linear_by_hand computes X @ W.T + b, as nn.Linear does."""
    if hint := expect_function(answer, "linear_by_hand"):
        return hint
    for in_features, out_features in ((4, 3), (3, 3)):
        X = _randn(5, in_features, seed=1)
        W = _randn(out_features, in_features, seed=2)
        b = _randn(out_features, seed=3)
        try:
            got = answer(X, W, b)
        except RuntimeError as error:
            if "shapes cannot be multiplied" in str(error):
                return (
                    f"your function failed for X of shape {tuple(X.shape)} and W of shape "
                    f"{tuple(W.shape)}: {error}. W stores one row per output, so the product "
                    "needs W transposed (W.T)."
                )
            raise
        if got is None:
            return "linear_by_hand returns None: replace the None after `return` with your code."
        want = X @ W.T + b
        if close(got, want.T):
            return (
                "your result is transposed: it has one row per output instead of one row per "
                "sample. Keep the batch first: X goes on the left of the product."
            )
        if close(got, X @ W.T):
            return "the values are missing the bias: add b (it broadcasts over the batch)."
        if close(got, X @ W.T - b):
            return "the bias is subtracted; nn.Linear adds it: X @ W.T + b."
        if in_features == out_features and close(got, X @ W + b):
            return "you multiplied by W, not by W.T: W stores one row per output feature."
        hint = compare_tensor(got, want, name="linear_by_hand(X, W, b)")
        if hint:
            return f"{hint} (X {tuple(X.shape)}, W {tuple(W.shape)}, b {tuple(b.shape)})"
    return None


def collapse(answer: Any) -> str | None:
    """stacked linear layers fold into one weight W and bias b."""
    if hint := expect_function(answer, "collapse"):
        return hint
    for sizes, seed in (([2, 3, 3], 11), ([3, 4, 4, 2], 12)):
        layers = _layers(sizes, seed)
        with torch.no_grad():
            W_want, b_want = torch.eye(sizes[0]), torch.zeros(sizes[0])
            for layer in layers:
                W_want, b_want = layer.weight @ W_want, layer.weight @ b_want + layer.bias
            b_wrong_side = _bias_through_transposed_weights(layers)
        stack = f"{len(layers)} layers {' -> '.join(map(str, sizes))}"
        try:
            got = answer(list(layers))
        except RuntimeError as error:
            if any(phrase in str(error) for phrase in _SHAPE_ERRORS):
                return (
                    f"your function failed on {stack}: {error}. A product in your fold has its "
                    "factors in the wrong order. A later layer acts on the result of the earlier "
                    "ones the way nn.Linear's weight acts on one sample. Write out what two layers "
                    "do to one sample x, step by step, and check the order of every product you "
                    "wrote, for the weights and for the bias."
                )
            raise
        if got is None:
            return "collapse returns None: replace the None after `return` with your code (W, b)."
        if not isinstance(got, (tuple, list)) or len(got) != 2:
            return (
                f"collapse should return a tuple (W, b) of two tensors, not a {type(got).__name__}."
            )
        W, b = got
        if close(W, W_want.T):
            return (
                f"W is transposed: nn.Linear stores it as (out_features, in_features), here "
                f"{tuple(W_want.shape)}."
            )
        if hint := compare_tensor(W, W_want, name=f"W for {stack}", check_dtype=False):
            return hint
        if close(b, layers[-1].bias):
            return (
                "b is just the last layer's bias, so the earlier biases are lost. An earlier "
                "layer's bias is part of its output, and every later layer acts on that output."
            )
        if len(sizes) == 3 and close(b, layers[0].bias + layers[1].bias):
            return (
                "b = b1 + b2 adds the first bias as it is. But the second layer acts on the first "
                "layer's whole output, its bias included, before it adds its own bias."
            )
        if b_wrong_side is not None and close(b, b_wrong_side):
            return (
                "the bias so far meets a later layer's weight from the wrong side: for a vector b "
                "and a square W, b @ W is W.T @ b, the transposed weight. Check the order of the "
                "product that carries the bias through a layer."
            )
        if hint := compare_tensor(b, b_want, name=f"b for {stack}", check_dtype=False):
            return hint
    return None


def predict(answer: Any) -> str | None:
    """predictions through model(X) under torch.no_grad(), with no graph built."""
    if hint := expect_function(answer, "predict"):
        return hint
    (hidden, out) = _layers([3, 8, 1], seed=21)
    model = nn.Sequential(hidden, nn.ReLU(), out)
    X = _randn(6, 3, seed=22)
    with torch.no_grad():
        want = model(X)
    calls: list[int] = []
    saved: list[torch.Tensor] = []

    def pack(t: torch.Tensor) -> torch.Tensor:
        saved.append(t)
        return t

    handle = model.register_forward_hook(lambda module, inputs, output: calls.append(1))
    grad_was_on = torch.is_grad_enabled()
    try:
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            got = answer(model, X)
        grad_left_on = torch.is_grad_enabled()
    finally:
        handle.remove()
        torch.set_grad_enabled(grad_was_on)
    if got is None:
        return "predict returns None: replace the None after `return` with your code."
    if not calls:
        return (
            "the model's forward hooks never ran: you called model.forward(X) (or skipped the "
            "module). Call model(X), so that hooks run."
        )
    if grad_was_on and not grad_left_on:
        return (
            "gradient recording is still switched off after your function returned: use "
            "`with torch.no_grad():` around the call, so it switches back on by itself."
        )
    if isinstance(got, torch.Tensor) and (got.requires_grad or got.grad_fn is not None):
        return (
            f"your predictions still carry a graph (grad_fn={type(got.grad_fn).__name__}): "
            "run the model inside `with torch.no_grad():`."
        )
    if saved:
        return (
            "a graph was recorded and then cut off (did you use .detach()?): the work and memory "
            "were already spent. Run the model inside `with torch.no_grad():` so none is built."
        )
    if len(calls) > 1:
        return f"your function ran the model {len(calls)} times; once is enough."
    return compare_tensor(got, want, name="predict(model, X)")
