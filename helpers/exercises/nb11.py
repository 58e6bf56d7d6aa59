"""Exercise checks for 11 — Autograd beyond deep learning (lstsq, LBFGS, a per-sample loop)."""

from __future__ import annotations

import copy
import inspect
import math
from collections.abc import Callable
from functools import partial
from typing import Any

import torch
from torch import nn
from torch.optim.optimizer import register_optimizer_step_pre_hook

from helpers._util import first_line
from helpers.checks import close, compare_tensor, expect_function, raised

__all__ = ["fit_line", "closure", "per_sample"]


LINE_CASES = (
    # (first x, last x, slope, intercept, points, seed)
    (-1.0, 3.0, 2.5, -1.0, 30, 1101),
    (0.0, 4.0, -1.5, 4.0, 25, 1102),
)
LINE_TOL = 0.02


def _line_data(
    lo: float, hi: float, slope: float, intercept: float, n: int, seed: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Noisy points around a line, float32, seeded."""
    torch.manual_seed(seed)
    x = torch.linspace(lo, hi, n)
    y = slope * x + intercept + 0.2 * torch.randn(n)
    return x, y


def _lstsq_line(x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    """The least-squares slope and intercept, from torch.linalg.lstsq in float64."""
    A = torch.stack([x, torch.ones_like(x)], dim=1).double()
    solution = torch.linalg.lstsq(A, y.double().unsqueeze(1)).solution.squeeze(1)
    return float(solution[0]), float(solution[1])


def _number(value: Any, name: str) -> float | str:
    """A one-element tensor or a number as a float, or a hint saying why it is neither."""
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            return (
                f"{name} is a tensor of shape {tuple(value.shape)}; it should hold one number "
                "(create it as torch.tensor(0.0, requires_grad=True))."
            )
        return float(value.detach().cpu().double().reshape(()))
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return f"{name} should be a tensor holding one number, but it is a {type(value).__name__}."
    return float(value)


def _near(a: float, b: float) -> bool:
    return abs(a - b) <= LINE_TOL


def _line_loss(x: torch.Tensor, y: torch.Tensor, slope: float, intercept: float) -> float:
    return float(((slope * x.double() + intercept - y.double()) ** 2).mean())


class _StepWatch:
    """Counts every optimizer.step() while it is active, and the steps whose .grad tensors were
    the very ones of the step before (so nothing cleared them in between): a global pre-hook."""

    def __enter__(self) -> _StepWatch:
        self.steps = 0
        self.uncleared = 0
        self._last: dict[int, list[torch.Tensor]] = {}
        self._handle = register_optimizer_step_pre_hook(self._hook)
        return self

    def _hook(self, optimizer: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
        self.steps += 1
        grads = [p.grad for g in optimizer.param_groups for p in g["params"] if p.grad is not None]
        last = self._last.get(id(optimizer))
        if grads and last is not None and len(grads) == len(last):
            if all(a is b for a, b in zip(grads, last, strict=True)):
                self.uncleared += 1
        self._last[id(optimizer)] = grads  # holding them keeps their identity unambiguous

    def __exit__(self, *exc: object) -> None:
        self._handle.remove()
        self._last.clear()


_ONE_STUCK = (
    "The {good} is the best one for your {stuck}, but the {stuck} is off: either it was not in "
    "the optimizer's list (so it never moved), or the loop stopped before it got there — give "
    "it more steps or a larger learning rate."
)


def _diagnose_line(
    x: torch.Tensor,
    y: torch.Tensor,
    slope: float,
    intercept: float,
    where: str,
    watch: _StepWatch,
) -> str | None:
    """None if (slope, intercept) is the least-squares line of (x, y), else a hint."""
    best_slope, best_intercept = _lstsq_line(x, y)
    if _near(slope, best_slope) and _near(intercept, best_intercept):
        return None
    got = f"{where} you returned slope {slope:.4g} and intercept {intercept:.4g}"
    want = f"least squares gives slope {best_slope:.4g} and intercept {best_intercept:.4g}"
    if _near(slope, best_intercept) and _near(intercept, best_slope):
        return f"{got}; {want}: the two are swapped. Return them in the order `slope, intercept`."
    xd, yd = x.double(), y.double()
    loss, best = _line_loss(x, y, slope, intercept), _line_loss(x, y, best_slope, best_intercept)
    through_origin = float((xd * yd).sum() / (xd * xd).sum())
    mistakes = (
        (
            _near(slope, -best_slope) and _near(intercept, best_intercept),
            "The slope has the right size but the wrong sign: your line is "
            "probably `intercept - slope * x`. The model is `slope * x + intercept`.",
        ),
        (
            abs(intercept) < 1e-6 and _near(slope, through_origin),
            "That is the best line through the origin: the intercept never "
            "took part. Put it into the model (`slope * x + intercept`), create it with "
            "requires_grad=True, and give both tensors to the optimizer.",
        ),
        (
            _near(slope, float((xd * (yd - intercept)).sum() / (xd * xd).sum())),
            _ONE_STUCK.format(good="slope", stuck="intercept"),
        ),
        (
            _near(intercept, float((yd - slope * xd).mean())),
            _ONE_STUCK.format(good="intercept", stuck="slope"),
        ),
        (
            watch.steps > 1 and watch.uncleared >= watch.steps - 1,
            "Your loop never cleared the gradients: at every step .grad still "
            "held the gradients of all earlier steps, added up. Call optimizer.zero_grad() once "
            "per step, before loss.backward().",
        ),
        (
            watch.steps == 0,
            "Your function never called optimizer.step(), so nothing used the "
            "gradients: after loss.backward(), call optimizer.step().",
        ),
    )
    for found, hint in mistakes:
        if found:
            return f"{got}; {want}. {hint}"
    return (
        f"{got}; {want}. Your line's mean squared error is {loss:.4g}, the best possible is "
        f"{best:.4g}: the fit has not converged. Check that the loop calls zero_grad(), "
        "computes the loss, calls backward() and step() every time, then try more steps or a "
        "larger learning rate (Adam with lr=0.1 and 500 steps is plenty here)."
    )


def fit_line(answer: Any) -> str | None:
    """the five steps fit a line, and agree with torch.linalg.lstsq."""
    if hint := expect_function(answer, "fit_line"):
        return hint
    first: tuple[float, float] | None = None
    for lo, hi, slope_true, intercept_true, n, seed in LINE_CASES:
        x, y = _line_data(lo, hi, slope_true, intercept_true, n, seed)
        sign = "+" if intercept_true >= 0 else "-"
        where = f"for {n} points around y = {slope_true:g}·x {sign} {abs(intercept_true):g},"
        call = f"fit_line(x, y) on {n} points"
        with _StepWatch() as watch:
            try:
                result = answer(x.clone(), y.clone())
            except Exception as error:
                return raised(call, error)
        if result is None:
            return f"{call} returned None: end the function with `return slope, intercept`."
        if not isinstance(result, (tuple, list)) or len(result) != 2:
            what = (
                f"{len(result)} things"
                if isinstance(result, (tuple, list))
                else f"a {type(result).__name__}"
            )
            return f"{call} returned {what}; return two: `return slope, intercept`."
        slope = _number(result[0], "the slope")
        if isinstance(slope, str):
            return slope
        intercept = _number(result[1], "the intercept")
        if isinstance(intercept, str):
            return intercept
        if not (math.isfinite(slope) and math.isfinite(intercept)):
            return (
                f"{call} returned slope {slope} and intercept {intercept}: the fit blew up. "
                "The learning rate is too large for this data (with SGD try lr=0.05, or use "
                "Adam with lr=0.1), or the update climbs instead of descending (a negative "
                "learning rate, or maximize=True)."
            )
        if first is not None and _near(slope, first[0]) and _near(intercept, first[1]):
            return (
                f"{call} returned the same line as for the first data set: fit the x and y "
                "your function is given, not fixed numbers."
            )
        if hint := _diagnose_line(x, y, slope, intercept, where, watch):
            return hint
        first = (slope, intercept) if first is None else first
    return None


CLOSURE_START = (1.0, 0.1)
CLOSURE_STEPS = 5


class _DecayLoss:
    """The mean squared error of a * exp(-b * t) on noisy decay data; counts its calls."""

    def __init__(self, params: list[torch.Tensor]) -> None:
        torch.manual_seed(1111)
        self.t = torch.linspace(0.0, 4.0, 20, dtype=torch.float64)
        self.y = 3.0 * torch.exp(-0.7 * self.t) + 0.05 * torch.randn(20, dtype=torch.float64)
        self.params = params
        self.calls = 0

    def value(self) -> torch.Tensor:
        a, b = self.params
        return ((a * torch.exp(-b * self.t) - self.y) ** 2).mean()

    def __call__(self) -> torch.Tensor:
        self.calls += 1
        return self.value()


def _start_params() -> list[torch.Tensor]:
    return [torch.tensor(value, dtype=torch.float64, requires_grad=True) for value in CLOSURE_START]


def _reference_optimum() -> torch.Tensor:
    """Where LBFGS ends after CLOSURE_STEPS steps with a right closure."""
    params = _start_params()
    loss_fn = _DecayLoss(params)
    optimizer = torch.optim.LBFGS(params, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = loss_fn()
        loss.backward()
        return loss

    for _ in range(CLOSURE_STEPS):
        optimizer.step(closure)
    return torch.stack([p.detach() for p in params])


def _closure_error_hint(error: BaseException, where: str) -> str:
    text = str(error)
    if isinstance(error, RecursionError) or "argument: 'closure'" in text:
        return (
            f"{where} raised {type(error).__name__}: {first_line(error)}. Do not call "
            "optimizer.step() inside the closure: LBFGS's step() calls your closure, and "
            "moves the parameters itself."
        )
    if "second time" in text:
        return (
            f"{where} raised RuntimeError: backward through the graph a second time. The "
            "closure reuses a loss computed once, outside it. Call loss_fn() inside the "
            "closure: LBFGS changes the parameters between calls, so each call needs a fresh loss."
        )
    return raised(where, error)


def _probe_closure(
    closure: Callable, params: list[torch.Tensor], loss_fn: _DecayLoss
) -> str | None:
    """Call the closure once, by hand, with a stale gradient in .grad; None if it behaved."""
    with torch.no_grad():
        for p in params:
            p.grad = torch.full_like(p, 0.5)
    before = torch.stack([p.detach().clone() for p in params])
    calls = loss_fn.calls
    try:
        returned = closure()
    except Exception as error:
        return _closure_error_hint(error, "calling your closure")
    if not torch.equal(torch.stack([p.detach() for p in params]), before):
        return (
            "calling your closure changed the parameters. A closure only computes the loss "
            "and the gradient; LBFGS's step() moves the parameters. Remove optimizer.step() "
            "(and any update by hand) from it."
        )
    if loss_fn.calls == calls:
        return (
            "your closure did not call loss_fn(). Compute the loss inside the closure: LBFGS "
            "changes the parameters between calls, so each call needs a fresh loss."
        )
    if any(p.grad is None for p in params):
        return (
            ".grad is None after your closure ran. Call loss.backward() inside it (after "
            "optimizer.zero_grad(), not before it): LBFGS reads the gradient from .grad."
        )
    got = torch.stack([p.grad.detach() for p in params])
    want = torch.stack(list(torch.autograd.grad(loss_fn.value(), params)))
    if torch.allclose(got, want + 0.5, rtol=1e-6, atol=1e-9):
        return (
            "the checker left an old gradient in .grad, and your closure added to it. Start "
            "the closure with optimizer.zero_grad() (on the optimizer make_closure was given), "
            "so that .grad holds this call's gradient only."
        )
    if not torch.allclose(got, want, rtol=1e-6, atol=1e-9):
        return (
            "after your closure ran, .grad does not hold the gradient of loss_fn(). Call "
            "optimizer.zero_grad(), then loss = loss_fn(), then loss.backward(), in that order."
        )
    if returned is None:
        return (
            "your closure returned None. End it with `return loss`: LBFGS needs the loss value "
            "to decide whether a step went downhill."
        )
    value = _number(returned, "what your closure returned")
    if isinstance(value, str):
        return value + " Return the loss itself: `return loss`."
    expected = loss_fn.value().item()
    if not math.isclose(value, expected, rel_tol=1e-9, abs_tol=1e-12):
        return (
            f"your closure returned {value:.4g}, but the loss at these parameters is "
            f"{expected:.4g}: return the loss this call computed."
        )
    return None


def _takes_no_arguments(function: Callable) -> bool:
    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):  # a builtin or something without a signature: just call it
        return False
    return not any(
        p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL) for p in parameters
    )


def closure(answer: Any) -> str | None:
    """the closure clears, recomputes the loss, calls backward and returns the loss; LBFGS calls it several times per step."""
    if hint := expect_function(answer, "make_closure"):
        return hint
    if _takes_no_arguments(answer):
        return (
            "your answer takes no arguments: it looks like a closure itself. The answer is "
            "make_closure, the function that builds a closure from (optimizer, loss_fn): "
            "write `answer = make_closure`."
        )
    params = _start_params()
    loss_fn = _DecayLoss(params)
    optimizer = torch.optim.LBFGS(params, line_search_fn="strong_wolfe")
    try:
        closure = answer(optimizer, loss_fn)
    except Exception as error:
        return _closure_error_hint(error, "make_closure(optimizer, loss_fn)")
    if closure is None:
        return (
            "make_closure returned None. Define `def closure(): ...` inside it, then "
            "`return closure` — the function itself, without parentheses."
        )
    if not callable(closure):
        return (
            f"make_closure returned a {type(closure).__name__}, not a function. Return the "
            "closure itself (`return closure`, no parentheses), so that LBFGS can call it again "
            "and again."
        )
    if hint := _probe_closure(closure, params, loss_fn):
        return hint
    with torch.no_grad():  # back to the start, with a clean .grad, for the real run
        for p, value in zip(params, CLOSURE_START, strict=True):
            p.fill_(value)
            p.grad = None
    calls = loss_fn.calls
    for step in range(CLOSURE_STEPS):
        try:
            optimizer.step(closure)
        except Exception as error:
            return _closure_error_hint(error, f"optimizer.step(closure) (step {step + 1})")
    got = torch.stack([p.detach() for p in params])
    want = _reference_optimum()
    if not torch.isfinite(got).all() or not torch.allclose(got, want, rtol=1e-5, atol=1e-6):
        return (
            f"after {CLOSURE_STEPS} LBFGS steps with your closure the parameters are "
            f"{[round(float(v), 4) for v in got]}, but they should reach "
            f"{[round(float(v), 4) for v in want]}. Check the closure: zero_grad(), loss = "
            "loss_fn(), loss.backward(), return loss."
        )
    if loss_fn.calls - calls <= CLOSURE_STEPS:  # cannot happen with a working closure
        return "LBFGS called your closure only once per step; return the loss from it."
    return None


def _per_sample_problem(case: int) -> tuple[nn.Module, nn.Module, torch.Tensor, torch.Tensor]:
    """A small model, its loss function and 10 samples, built from the checker's own seed."""
    torch.manual_seed(1120 + case)
    if case == 0:
        model: nn.Module = nn.Linear(4, 2)
        loss_fn: nn.Module = nn.MSELoss()
        X, y = torch.randn(10, 4), torch.randn(10, 2)
    else:
        model = nn.Sequential(nn.Linear(4, 5), nn.Tanh(), nn.Linear(5, 3))
        loss_fn = nn.CrossEntropyLoss()
        X, y = torch.randn(10, 4), torch.randint(0, 3, (10,))
    return model, loss_fn, X, y


def _loop_grads(
    model: nn.Module, loss_fn: nn.Module, X: torch.Tensor, y: torch.Tensor
) -> dict[str, torch.Tensor]:
    """Per-sample gradients the slow way: one backward pass per sample, on a copy of the model."""
    twin = copy.deepcopy(model)
    rows: dict[str, list[torch.Tensor]] = {name: [] for name, _ in twin.named_parameters()}
    for i in range(len(X)):
        twin.zero_grad()
        loss_fn(twin(X[i : i + 1]), y[i : i + 1]).backward()
        for name, p in twin.named_parameters():
            rows[name].append(p.grad.detach().clone())
    return {name: torch.stack(grads) for name, grads in rows.items()}


_close = partial(close, rtol=1e-4, atol=1e-6)


def _per_sample_error_hint(error: BaseException, call: str) -> str:
    text = str(error)
    if "in_dims" in text:
        return (
            f"{call} raised {type(error).__name__}: {first_line(error)}. vmap needs one in_dims "
            "entry per argument of the function it maps: None for the parameters (shared by "
            "all samples), 0 for X and for y — in_dims=(None, 0, 0)."
        )
    if ".item()" in text or "data-dependent" in text:
        return (
            f"{call} raised {type(error).__name__}: {first_line(error)}. Inside a function that "
            "vmap maps, keep everything a tensor: no .item(), no Python if on a tensor's value."
        )
    return raised(call, error)


def _diagnose_per_sample(
    name: str, got: torch.Tensor, want: torch.Tensor, full: torch.Tensor, n: int, where: str
) -> str:
    label = f"{where} the gradients of {name!r}"
    if not got.abs().any():
        return (
            f"{label} are all zero: the loss did not depend on the parameters you took the "
            "gradient with respect to. Compute the prediction with "
            "functional_call(model, params, (x.unsqueeze(0),)), not with model(x)."
        )
    if _close(got, want / n):
        return (
            f"{label} are {n} times too small: each sample's loss was divided by the batch size. "
            "The loss of one sample is the loss function on that sample alone: "
            "loss_fn(prediction, target) on a batch of one, nothing else."
        )
    if _close(got, want * n):
        return (
            f"{label} are {n} times too large: do not multiply a sample's loss by the batch size."
        )
    if _close(got, full.expand_as(got)) or _close(got, (full * n).expand_as(got)):
        return (
            f"{label} are the same for every sample: the full-batch gradient, repeated. "
            "Map over the samples with vmap(grad(sample_loss), in_dims=(None, 0, 0)), so that "
            "each sample gets its own loss and its own gradient."
        )
    return (
        compare_tensor(got, want, name=label, atol=1e-6, rtol=1e-4)
        or f"{label} differ from the per-sample gradients of a loop of backward passes."
    )


def per_sample(answer: Any) -> str | None:
    """vmap(grad(...)) gives every sample's own gradient, equal to a loop of backward passes."""
    if hint := expect_function(answer, "per_sample_grads"):
        return hint
    for case, where in (
        (0, "for nn.Linear(4, 2) and MSELoss,"),
        (1, "for a 4-5-3 MLP and CrossEntropyLoss,"),
    ):
        model, loss_fn, X, y = _per_sample_problem(case)
        want = _loop_grads(model, loss_fn, X, y)
        twin = copy.deepcopy(model)
        loss_fn(twin(X), y).backward()
        full = {name: p.grad.detach() for name, p in twin.named_parameters()}
        before = {name: p.detach().clone() for name, p in model.named_parameters()}
        call = "per_sample_grads(model, loss_fn, X, y) " + where.rstrip(",")
        try:
            result = answer(model, loss_fn, X.clone(), y.clone())
        except Exception as error:
            return _per_sample_error_hint(error, call)
        if any(not torch.equal(p.detach(), before[n]) for n, p in model.named_parameters()):
            return "per_sample_grads changed the model's weights: only compute gradients."
        if result is None:
            return (
                f"{call} returned None: end the function with `return` and the dict of gradients."
            )
        if not isinstance(result, dict):
            return (
                f"{call} returned a {type(result).__name__}; return a dict that maps each "
                "parameter's name to its per-sample gradients — what vmap(grad(...)) returns "
                "when the parameters go in as a dict."
            )
        names = [name for name, _ in model.named_parameters()]
        if sorted(map(str, result)) != sorted(names):
            return (
                f"the dict's keys are {sorted(map(str, result))}, but the model's parameters are "
                f"{names}. Build the parameters with dict(model.named_parameters())."
            )
        n = len(X)
        for name, p in model.named_parameters():
            got = result[name]
            if not isinstance(got, torch.Tensor):
                return f"{where} result[{name!r}] is a {type(got).__name__}, not a tensor."
            if tuple(got.shape) == tuple(p.shape):
                return (
                    f"{where} result[{name!r}] has the parameter's own shape {tuple(p.shape)}: "
                    f"that is one gradient for the whole batch. Per-sample gradients have an "
                    f"extra first dimension, one row per sample: {(n, *p.shape)}."
                )
            if tuple(got.shape) != (n, *p.shape):
                return (
                    f"{where} result[{name!r}] has shape {tuple(got.shape)}, but it should be "
                    f"{(n, *p.shape)}: one gradient per sample, each shaped like the parameter."
                )
            got = got.detach()
            if not _close(got, want[name]):
                return _diagnose_per_sample(name, got, want[name], full[name], n, where)
        if any(p.grad is not None for p in model.parameters()):
            return (
                "the values are right, but your function filled .grad: it ran backward(), one "
                "sample at a time. Do it with vmap(grad(sample_loss)) from torch.func, which "
                "returns the gradients without touching .grad."
            )
    return None
