"""Exercise checks for 06 — zero_grad and gradient accumulation (float64, full-batch reference)."""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from functools import partial
from typing import Any

import torch
from torch import nn

from helpers.checks import close, compare_tensor, expect_function, raised

__all__ = ["zero_grad_place", "share_weights", "accumulate"]


PLACES = {
    "A": (
        "at A, zero_grad() runs before every micro-batch, so each backward() starts from an "
        "empty .grad: only the last micro-batch's gradient is left when step() runs. Clear "
        "once per update, not once per micro-batch."
    ),
    "B": (
        "at B, zero_grad() runs after the last backward() and before step(): it wipes the "
        "gradient of all K micro-batches, the optimizer finds .grad = None and skips every "
        "parameter, so the weights never move."
    ),
    "C": None,
}


def zero_grad_place(answer: Any) -> str | None:
    """C: clear right after the step, once per update."""
    if not isinstance(answer, str):
        return f'answer with one letter in quotes, such as "A"; got a {type(answer).__name__}.'
    letter = answer.strip().strip("\"'").upper()
    if letter not in PLACES:
        return f'{answer.strip()[:20]!r} is not one of the places: answer "A", "B" or "C".'
    return PLACES[letter]


SHARE_CASES: tuple[tuple[int, ...], ...] = ((16, 16, 16, 2), (5, 5, 5, 5), (3, 1), (7,), (4, 8, 4))


def _as_weights(result: Any) -> torch.Tensor | str:
    """Turn a returned list / tuple / tensor of numbers into a float64 vector, or say why not."""
    if isinstance(result, torch.Tensor):
        return result.detach().cpu().to(torch.float64).flatten()
    if isinstance(result, (list, tuple)):
        values = []
        for item in result:
            if isinstance(item, torch.Tensor) and item.numel() == 1:
                item = item.item()
            if isinstance(item, bool) or not isinstance(item, (int, float)):
                return (
                    "return a list of numbers (one weight per micro-batch); it holds a "
                    f"{type(item).__name__}."
                )
            values.append(float(item))
        return torch.tensor(values, dtype=torch.float64)
    if result is None:
        return "returned None: end the function with `return` and the list of weights."
    return f"returned a {type(result).__name__}; return a list of numbers, one per micro-batch."


_close = partial(close, rtol=1e-6, atol=1e-9)


def share_weights(answer: Any) -> str | None:
    """the weight of each micro-batch's mean loss is its share of the samples, n_i / N."""
    if hint := expect_function(answer, "share_weights"):
        return hint
    first: torch.Tensor | None = None
    for sizes in SHARE_CASES:
        call = f"share_weights({list(sizes)})"
        try:
            result = answer(list(sizes))
        except Exception as error:
            return raised(call, error)
        got = _as_weights(result)
        if isinstance(got, str):
            return f"{call} {got}"
        if first is not None and _close(got, first):
            return (
                f"{call} returned the same weights as share_weights({list(SHARE_CASES[0])}): "
                "compute the weights from the sizes the function is given, not from fixed numbers."
            )
        first = got if first is None else first
        n, K = sum(sizes), len(sizes)
        sizes_t = torch.tensor(sizes, dtype=torch.float64)
        want = sizes_t / n
        if got.numel() != K:
            return (
                f"{call} returned {got.numel()} weights for {K} micro-batches: return one "
                "weight per micro-batch."
            )
        if _close(got, want):
            continue
        if _close(got, torch.full((K,), 1.0 / K, dtype=torch.float64)):
            return (
                f"{call} gave every micro-batch the weight 1/K = 1/{K}. That is only right when "
                f"all micro-batches are the same size. Weight by share: micro-batch i holds "
                f"n_i of the N = {n} samples, so its weight is n_i / N (the last one here: "
                f"{sizes[-1]}/{n})."
            )
        if _close(got, sizes_t):
            return (
                f"{call} returned the sizes themselves. Divide each by the total number of "
                f"samples, N = sum(sizes) = {n}."
            )
        if _close(got, sizes_t / K):
            return (
                f"{call} divided each size by the number of micro-batches K = {K}; divide by the "
                f"number of samples, N = sum(sizes) = {n}."
            )
        if _close(got, torch.ones(K, dtype=torch.float64)):
            return (
                f"{call} gave every micro-batch the weight 1: the micro-batch means would then add "
                f"up to about K = {K} times the full-batch loss. Use n_i / N."
            )
        if not math.isclose(float(got.sum()), 1.0, rel_tol=1e-6):
            return (
                f"{call} returned weights that add up to {float(got.sum()):.4g}; the shares "
                "n_i / N of all micro-batches add up to 1."
            )
        return (
            f"{call} returned {[round(float(w), 4) for w in got]}, but the shares n_i / N are "
            f"{[round(float(w), 4) for w in want]}."
        )
    return None


def _probe(n: int, seed: int) -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    """A fresh float64 network and data, seeded."""
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 1)).double()
    X = torch.randn(n, 5, dtype=torch.float64)
    y = X @ torch.randn(5, 1, dtype=torch.float64) + 0.1 * torch.randn(n, 1, dtype=torch.float64)
    return model, X, y


def _grad_of(model: nn.Module, loss_fn: Callable, X: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The gradient of loss_fn(model(X), y) as one vector, computed on a copy of the model."""
    twin = copy.deepcopy(model)
    twin.zero_grad()
    loss_fn(twin(X), y).backward()
    return torch.cat([p.grad.flatten() for p in twin.parameters()])


def _rows(X: torch.Tensor, batch: torch.Tensor) -> list[int] | None:
    """The row numbers of X that make up `batch`, or None when they cannot all be found."""
    if batch.dim() != 2 or batch.shape[1] != X.shape[1]:
        return None
    found = []
    for row in batch.detach():
        match = (X == row.to(X.dtype)).all(dim=1).nonzero()
        if len(match) == 0:
            return None
        found.append(int(match[0]))
    return found


ACCUMULATE_CASES = (
    # (samples, K, loss function, description)
    (32, 4, "mse", "32 samples and K = 4"),
    (26, 4, "l1", "26 samples and K = 4"),
)


def _loss_fn(kind: str) -> nn.Module:
    return nn.MSELoss() if kind == "mse" else nn.L1Loss()


_ONLY_LAST = (
    "only the last micro-batch's gradient is left: zero_grad() ran inside the loop and "
    "wiped the earlier micro-batches. Call it once, before the loop."
)


def _diagnose(
    got: torch.Tensor,
    *,
    model: nn.Module,
    loss_fn: Callable,
    X: torch.Tensor,
    y: torch.Tensor,
    batches: list[list[int]],
    stale: torch.Tensor,
    expected: torch.Tensor,
    K: int,
    where: str,
) -> str:
    """Name the usual mistake whose gradient equals `got`; fall back to a plain comparison."""
    N = len(X)
    parts = [_grad_of(model, loss_fn, X[rows], y[rows]) for rows in batches]
    sizes = [len(rows) for rows in batches]
    plain = sum(parts) / K
    unscaled = sum(parts)
    last = parts[-1]
    candidates = [
        (
            expected + stale,
            "the old gradient was still in .grad: the checker left a stale gradient there, and "
            "yours added to it. Call model.zero_grad() once, at the start, before the loop.",
        ),
        (
            unscaled,
            f"the gradient is K times too large (K = {K}): it is the sum of the micro-batch "
            "gradients, not their mean. Divide each micro-batch's loss by K (or, better, weight "
            "it by its share n_i / N) before backward().",
        ),
        *((value, _ONLY_LAST) for value in (last / K, last, last * sizes[-1] / N)),
    ]
    if len(set(sizes)) > 1:
        candidates.insert(
            0,
            (
                plain,
                f"with {where}, the micro-batches have sizes {sizes}, and dividing each loss by "
                f"K treats them as if they were equal. Weight by share: multiply micro-batch "
                f"i's loss by n_i / N (here n_i / {N}).",
            ),
        )
    if not isinstance(loss_fn, nn.MSELoss):
        mse = nn.MSELoss()
        candidates.append(
            (
                _grad_of(model, mse, X, y),
                f"your gradient is the one of the mean squared error, but this time loss_fn is "
                f"{type(loss_fn).__name__}(): call the loss_fn you are given.",
            )
        )
    for value, hint in candidates:
        if torch.allclose(got, value, rtol=1e-6, atol=1e-9):
            return hint
    return (
        compare_tensor(got, expected, name=f"with {where}, the gradient in .grad", atol=1e-8)
        or "the gradient in .grad differs from the full-batch gradient."
    )


def _run_accumulate(answer: Callable, n: int, K: int, kind: str, where: str) -> str | None:
    """Call the learner's accumulate on one fresh problem; None if .grad holds the right gradient."""
    model, X, y = _probe(n, seed=10 + n)
    loss_fn = _loss_fn(kind)
    expected = _grad_of(model, loss_fn, X, y)
    params = list(model.parameters())
    before = [p.detach().clone() for p in params]
    with torch.no_grad():  # a stale gradient, as if an earlier update had not been cleared
        for p in params:
            p.grad = torch.full_like(p, 0.5)
    stale = torch.cat([p.grad.flatten() for p in params])
    seen: list[torch.Tensor] = []
    handle = model.register_forward_pre_hook(lambda _m, args: seen.append(args[0].detach()))
    call = f"accumulate(model, loss_fn, X, y, K={K}) on {n} samples"
    try:
        answer(model, loss_fn, X.clone(), y.clone(), K)
    except Exception as error:
        return raised(call, error)
    finally:
        handle.remove()
    if any(a is not b for a, b in zip(model.parameters(), params, strict=False)):
        return "the model holds new Parameter objects after accumulate: only fill their .grad."
    if any(not torch.equal(p.detach(), old) for p, old in zip(params, before, strict=True)):
        return (
            "accumulate changed the weights. It should only leave the gradient in .grad; "
            "the step is the optimizer's job, after accumulate returns."
        )
    if not seen:
        return (
            f"{call} never ran the model. Split X and y into K micro-batches, and run "
            "model(xb) and backward() on each."
        )
    if any(p.grad is None for p in params):
        return (
            ".grad is None after accumulate. Call loss.backward() for every micro-batch, and "
            "do not call zero_grad() after the last one."
        )
    got = torch.cat([p.grad.detach().flatten() for p in params])
    if torch.allclose(got, stale):
        return (
            ".grad still holds the old gradient the checker left there: nothing was added. "
            "Call model.zero_grad() first, then loss.backward() for every micro-batch."
        )
    if len(seen) == 1 and len(seen[0]) == n:
        return (
            f"you ran the model once, on all {n} samples. Accumulation splits X and y into K "
            "micro-batches (torch.tensor_split(X, K) does that) and runs model(xb) and "
            "backward() on each."
        )
    if len(seen) != K:
        split_hint = ""
        if len(seen) == math.ceil(n / K):
            split_hint = (
                " torch.split(X, K) cuts pieces of K samples each; torch.tensor_split(X, K) cuts "
                "K pieces."
            )
        return (
            f"{call} ran the model {len(seen)} times; run it once on each of the K "
            f"micro-batches.{split_hint}"
        )
    batches = [_rows(X, batch) for batch in seen]
    if any(rows is None for rows in batches):
        return "the micro-batches hold rows that are not in X: take them from X, unchanged."
    flat = sorted(i for rows in batches for i in rows)  # type: ignore[union-attr]
    if flat != list(range(n)):
        return (
            f"your micro-batches hold {len(flat)} rows, but not each of the {n} samples exactly "
            "once: every sample must be in exactly one micro-batch."
        )
    if torch.allclose(got, expected, rtol=1e-6, atol=1e-9):
        return None
    return _diagnose(
        got,
        model=model,
        loss_fn=loss_fn,
        X=X,
        y=y,
        batches=batches,  # type: ignore[arg-type]
        stale=stale,
        expected=expected,
        K=K,
        where=where,
    )


def accumulate(answer: Any) -> str | None:
    """accumulate(model, loss_fn, X, y, K) leaves the full-batch gradient in .grad, from K micro-batches, for even and uneven splits."""
    if hint := expect_function(answer, "accumulate"):
        return hint
    for n, K, kind, where in ACCUMULATE_CASES:
        if hint := _run_accumulate(answer, n, K, kind, where):
            return hint
    return None
