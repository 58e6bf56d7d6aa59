"""The loop doctor: run a learner's `train_step` on a probe problem and name what is wrong with it.

The learner writes `train_step(model, optimizer, loss_fn, inputs, targets)`, which does one
training step and returns the loss. `diagnose_step(train_step)` calls it a few times in a row on
a small regression problem of its own (a network with BatchNorm, plain SGD, `nn.MSELoss()`),
each time on a new batch. Before every call it works out, on a separate copy of the model, what
one correct SGD step would do to the weights and what loss it would return; while the step runs
it watches through hooks (forward passes, gradients arriving, `optimizer.step()` calls, warnings).
A step that clips the gradient (by norm or by value) before `step()` is one SGD step on the clipped
gradient; a step under `torch.autocast` is compared within the precision of its dtype. Every
difference becomes a `Finding(code, message)`; an empty `Diagnosis` means the step is right.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from helpers._util import first_line
from helpers.doctor._calls import probe_conditions, watching
from helpers.doctor.findings import Diagnosis, Finding

__all__ = ["CODES", "PROBE_LR", "autocast_dtype", "diagnose_step"]

# Every code the doctor can report, in the order findings are listed (the most basic first).
CODES: dict[str, str] = {
    "bad-signature": "train_step cannot be called with (model, optimizer, loss_fn, inputs, targets)",
    "step-raised": "train_step raised an exception",
    "no-forward": "train_step never ran the model it was given",
    "calls-forward": "train_step called model.forward(...) instead of model(...)",
    "no-graph": "the loss is cut off from the weights (no_grad, inference_mode, .detach())",
    "eval-mode": "the model was in eval mode during the training forward pass",
    "shape-mismatch": "the loss compared tensors of different shapes (broadcasting)",
    "no-backward": "backward() is never called, so no gradient reaches the weights",
    "step-before-backward": "optimizer.step() runs before loss.backward()",
    "grads-accumulate": "gradients are never cleared between steps",
    "no-update": "the weights do not change",
    "wrong-update": "the weights change, but not by one SGD step on the (clipped) gradient",
    "no-return": "train_step returns None instead of the loss",
    "wrong-return": "train_step returns something other than this batch's loss",
    "step-warned": "train_step issued a warning",
}

PROBE_LR = 0.1  # the learning rate of the SGD optimizer the doctor hands to train_step
_N, _D, _H = 16, 3, 8  # samples per batch, input features, hidden units
_ARGUMENTS = "(model, optimizer, loss_fn, inputs, targets)"
_REL_TOL = 1e-3  # float32 steps computed in a different order agree far better than this
# Under autocast the matmuls round to fewer bits: bf16 keeps 8, float16 11 (measured on the probe:
# a bf16 step's gradient differs from the float32 one by about 0.4 %).
_AUTOCAST_TOL = {torch.bfloat16: 3e-2, torch.float16: 1e-2}


# ----------------------------------------------------------------------------------------------
# The probe problem
# ----------------------------------------------------------------------------------------------


def _probe_model() -> nn.Module:
    """A small network whose output differs between train and eval mode (BatchNorm)."""
    return nn.Sequential(nn.Linear(_D, _H), nn.BatchNorm1d(_H), nn.Tanh(), nn.Linear(_H, 1))


def _probe_batches(calls: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """One batch per call; off-centre inputs, so that batch statistics differ from (0, 1)."""
    gen = torch.Generator().manual_seed(1234)
    w = torch.tensor([[1.5], [-2.0], [0.5]])
    batches = []
    for _ in range(calls):
        x = 2.0 * torch.randn(_N, _D, generator=gen) + 1.0
        y = torch.sin(x @ w) + 0.1 * torch.randn(_N, 1, generator=gen)
        batches.append((x, y))
    return batches


def _flat(tensors: Iterable[torch.Tensor]) -> torch.Tensor:
    return torch.cat([t.detach().reshape(-1).to(torch.float64) for t in tensors])


def _grads(params: list[nn.Parameter]) -> list[torch.Tensor | None]:
    return [None if p.grad is None else p.grad.detach().clone() for p in params]


def _flat_grads(grads: list[torch.Tensor | None], params: list[nn.Parameter]) -> torch.Tensor:
    return _flat(
        torch.zeros_like(p) if g is None else g for g, p in zip(grads, params, strict=True)
    )


def _pieces(params: list[nn.Parameter]) -> list[slice]:
    """Where each parameter sits in a flat vector of all of them."""
    pieces, start = [], 0
    for p in params:
        pieces.append(slice(start, start + p.numel()))
        start += p.numel()
    return pieces


def _close(a: torch.Tensor, b: torch.Tensor, tol: float = _REL_TOL) -> bool:
    """True when a and b agree to within `tol` of their size (float32 rounding of one step)."""
    scale = max(float(b.norm()), float(a.norm()), 1e-12)
    return float((a - b).norm()) <= tol * scale + 1e-9


def _clipped(used: torch.Tensor, grad: torch.Tensor, tol: float) -> bool:
    """True when `used` is `grad` clipped: scaled down as a whole (by norm), or clamped (by value)."""
    denominator = float(grad @ grad)
    if denominator == 0:
        return False
    factor = float(used @ grad) / denominator
    if 0 < factor < 1 and _close(used, factor * grad, tol):
        return True  # clip_grad_norm_: every gradient multiplied by one factor
    bound = float(used.abs().max())
    return bound > 0 and _close(used, grad.clamp(-bound, bound), tol)  # clip_grad_value_


def _reference(model: nn.Module, x: torch.Tensor, y: torch.Tensor, train: bool) -> dict[str, Any]:
    """The gradient and loss of one correct step, on a copy of the model (no hooks, no side effects)."""
    twin = _probe_model()
    twin.load_state_dict(model.state_dict())
    twin.train(train)
    loss = nn.functional.mse_loss(twin(x), y)
    grads = torch.autograd.grad(loss, list(twin.parameters()))
    return {"grad": _flat(grads), "loss": float(loss)}


def _loss_now(model: nn.Module, x: torch.Tensor, y: torch.Tensor, train: bool) -> float:
    """The loss of a copy of the model on (x, y), computed without touching the model."""
    twin = _probe_model()
    twin.load_state_dict(model.state_dict())
    twin.train(train)
    with torch.no_grad():
        return float(nn.functional.mse_loss(twin(x), y))


# ----------------------------------------------------------------------------------------------
# Watching one call
# ----------------------------------------------------------------------------------------------


@dataclass
class _Forward:
    training: bool
    grad_enabled: bool
    autocast: torch.dtype | None = None  # the lower-precision dtype autocast ran it in, if any
    got_grad: bool = False


def autocast_dtype() -> torch.dtype | None:
    """The dtype CPU autocast is running in right now, or None when autocast is off."""
    if hasattr(torch, "get_autocast_dtype"):  # torch >= 2.4
        on = torch.is_autocast_enabled("cpu")
        return torch.get_autocast_dtype("cpu") if on else None
    on = torch.is_autocast_cpu_enabled()  # torch 2.3
    return torch.get_autocast_cpu_dtype() if on else None


@dataclass
class _Trace:
    """What the hooks saw during one call of train_step."""

    model_calls: int = 0
    forwards: list[_Forward] = field(default_factory=list)
    grad_arrivals: int = 0
    backward_rounds: dict[int, int] = field(default_factory=dict)  # param index -> arrivals
    step_grads: list[list[torch.Tensor | None]] = field(default_factory=list)
    events: list[str] = field(default_factory=list)  # "backward" and "step", in the order seen
    backward_calls: int = 0  # calls of backward() or autograd.grad(), on any tensor

    def tolerance(self) -> float:
        """How closely a step must match the float32 reference, given the dtypes in use."""
        dtypes = [f.autocast for f in self.forwards if f.autocast is not None]
        return max([_REL_TOL] + [_AUTOCAST_TOL.get(d, 3e-2) for d in dtypes])


class _Watch:
    """Hooks on the probe model and optimizer that fill a fresh _Trace for each call."""

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer) -> None:
        self.trace = _Trace()
        self.params = list(model.parameters())
        norm = model[1]
        self.handles = [
            model.register_forward_pre_hook(self._model_called),
            norm.register_forward_pre_hook(self._norm_called),
            norm.register_forward_hook(self._norm_done),
            optimizer.register_step_pre_hook(self._step_called),
        ]
        for index, p in enumerate(self.params):
            self.handles.append(p.register_post_accumulate_grad_hook(self._arrived(index)))

    def reset(self) -> _Trace:
        self.trace = _Trace()
        return self.trace

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()

    def _model_called(self, module: nn.Module, args: Any) -> None:
        self.trace.model_calls += 1

    def _norm_called(self, module: nn.Module, args: Any) -> None:
        forward = _Forward(module.training, torch.is_grad_enabled(), autocast_dtype())
        self.trace.forwards.append(forward)

    def _norm_done(self, module: nn.Module, args: Any, output: Any) -> None:
        record = self.trace.forwards[-1] if self.trace.forwards else None
        if record is not None and isinstance(output, torch.Tensor) and output.requires_grad:

            def mark(grad: torch.Tensor) -> None:
                record.got_grad = True

            output.register_hook(mark)

    def _step_called(self, optimizer: Any, args: Any, kwargs: Any) -> None:
        self.trace.step_grads.append(_grads(self.params))
        self.trace.events.append("step")

    def call_seen(self, name: str, args: Any, kwargs: Any) -> None:
        """Count backward() and autograd.grad() calls (from `watching`)."""
        if name in ("backward", "grad"):
            self.trace.backward_calls += 1
            if not self.trace.events or self.trace.events[-1] != "backward":
                self.trace.events.append("backward")

    def _arrived(self, index: int) -> Callable[[torch.Tensor], None]:
        def hook(param: torch.Tensor) -> None:
            if not self.trace.events or self.trace.events[-1] != "backward":
                self.trace.events.append("backward")
            self.trace.grad_arrivals += 1
            self.trace.backward_rounds[index] = self.trace.backward_rounds.get(index, 0) + 1

        return hook


# ----------------------------------------------------------------------------------------------
# The diagnosis
# ----------------------------------------------------------------------------------------------


def _signature_problem(train_step: Callable[..., Any]) -> str | None:
    try:
        signature = inspect.signature(train_step)
    except (TypeError, ValueError):  # some builtins have no signature: just try calling it
        return None
    try:
        signature.bind(*range(5))
    except TypeError:
        return (
            f"train_step{signature} cannot be called as train_step{_ARGUMENTS}. "
            "Give it exactly these five parameters, in this order, and use them inside."
        )
    return None


def _as_number(value: Any) -> float | None:
    """The returned loss as a float, or None when it is not one number."""
    if isinstance(value, bool):
        return None
    if isinstance(value, torch.Tensor):
        return float(value.detach().reshape(-1)[0]) if value.numel() == 1 else None
    if isinstance(value, (int, float)):
        return float(value)
    return None


def diagnose_step(train_step: Callable[..., Any], calls: int = 3) -> Diagnosis:
    """Run train_step(model, optimizer, loss_fn, inputs, targets) on a probe problem; return findings."""
    if not callable(train_step):
        raise TypeError(
            f"train_step must be a function such as `def train_step{_ARGUMENTS}: ...`, "
            f"but it is a {type(train_step).__name__}. Pass the function itself, without "
            "calling it (no parentheses)."
        )
    if isinstance(calls, bool) or not isinstance(calls, int) or not 2 <= calls <= 10:
        raise ValueError(
            f"calls must be a whole number from 2 to 10 (the doctor needs two calls in a row "
            f"to see gradients pile up), got {calls!r}."
        )
    problem = _signature_problem(train_step)
    if problem:
        return Diagnosis([Finding("bad-signature", problem)])
    found: dict[str, str] = {}
    with probe_conditions() as caught:
        torch.manual_seed(0)
        _run(train_step, calls, found, caught)
    return Diagnosis(Finding(code, found[code]) for code in CODES if code in found)


def _run(
    train_step: Callable[..., Any], calls: int, found: dict[str, str], caught: list[Any]
) -> None:
    """Call train_step `calls` times on one probe model; add what is wrong to `found`."""
    model = _probe_model()
    optimizer = torch.optim.SGD(model.parameters(), lr=PROBE_LR)
    loss_fn = nn.MSELoss()
    params = list(model.parameters())
    names = [name for name, _ in model.named_parameters()]
    watch = _Watch(model, optimizer)

    def add(code: str, message: str) -> None:
        found.setdefault(code, message)

    try:
        for x, y in _probe_batches(calls):
            leftover = _grads(params)
            before = _flat(params)
            trained = _reference(model, x, y, train=True)
            evaluated = _reference(model, x, y, train=False)
            trace = watch.reset()
            seen_warnings = len(caught)
            error: BaseException | None = None
            result: Any = None
            # enable_grad also undoes a step that switches grad mode off
            with torch.enable_grad(), watching(watch.call_seen):
                try:
                    result = train_step(model, optimizer, loss_fn, x.clone(), y.clone())
                except Exception as exc:  # a broken step is a finding, never a crash
                    error = exc
            _judge_forward(trace, add, raised=error is not None)
            if trace.events[:1] == ["step"] and "backward" in trace.events:
                add(
                    "step-before-backward",
                    "`optimizer.step()` ran before `loss.backward()`: the update used "
                    "whatever `.grad` held before this batch (None after `zero_grad()`, or "
                    "the previous batch's gradient), and changed the weights that this batch's "
                    "`backward()` still needed. Move `optimizer.step()` below `loss.backward()`.",
                )
            _judge_warnings(caught[seen_warnings:], add)
            if error is not None:
                add(
                    "step-raised",
                    f"train_step raised {type(error).__name__}: {first_line(error, 200)}",
                )
                _explain_error(error, add)
                return
            if [id(p) for p in model.parameters()] != [id(p) for p in params]:
                add(
                    "wrong-update",
                    "train_step replaced the model's parameters with new tensors, so the "
                    "optimizer (which holds the old ones) no longer trains the model. Change the "
                    "weights in place: `optimizer.step()`, or `p -= lr * p.grad` inside "
                    "`torch.no_grad()`.",
                )
                return
            eval_forward = "eval-mode" in found
            reference = evaluated if eval_forward else trained
            if "step-before-backward" not in found:
                _judge_update(trace, found, add, params, names, leftover, before, reference["grad"])
            # With eval mode or a shape mismatch, the returned loss differs for a known reason.
            exact = not eval_forward and not {"shape-mismatch", "no-forward"} & set(found)
            expected_loss = reference["loss"] if exact else None
            _judge_return(result, expected_loss, model, x, y, add, trace.tolerance())
    finally:
        watch.remove()


def _judge_forward(trace: _Trace, add: Callable[[str, str], None], raised: bool) -> None:
    if not trace.forwards:
        if raised:
            return  # it may have failed before reaching the model
        add(
            "no-forward",
            "train_step never ran the model it was given. Use the `model` argument (not a "
            "model defined outside the function), and likewise `optimizer`, `loss_fn`, "
            "`inputs` and `targets`: compute `loss_fn(model(inputs), targets)`.",
        )
        return
    if trace.model_calls == 0:
        add(
            "calls-forward",
            "train_step called `model.forward(inputs)`. Call `model(inputs)` instead: "
            "hooks (used by PyTorch tools, and by this doctor) run only through `model(...)`.",
        )
    with_grad = [f for f in trace.forwards if f.grad_enabled]
    if not with_grad:
        add(
            "no-graph",
            "the forward pass ran under `torch.no_grad()` (or `torch.inference_mode()`), so "
            "autograd recorded no graph and nothing can be learned. Compute `model(inputs)` "
            "and the loss outside that block; keep `no_grad` for evaluation only.",
        )
        return
    cut_off = trace.grad_arrivals == 0 and not any(f.got_grad for f in with_grad)
    if trace.backward_calls and cut_off and not raised:
        add(
            "no-graph",
            "`backward()` ran, but no gradient reached the model: the loss was computed from "
            "the model's output cut off from its graph (`.detach()`, `.item()`, "
            "`torch.tensor(...)`, `.numpy()`), so it depends on no weight. Compute the loss "
            "directly as `loss_fn(model(inputs), targets)`, with no `.detach()` in between.",
        )
        return
    used = [f for f in with_grad if f.got_grad] or with_grad
    if any(not f.training for f in used):
        add(
            "eval-mode",
            "the model was in eval mode during the training forward pass (someone called "
            "`model.eval()` and nobody switched back), so BatchNorm used its running "
            "statistics and dropout would be off. Call `model.train()` at the start of the "
            "step (or of each epoch), and `model.eval()` only around evaluation.",
        )


def _judge_warnings(records: list[Any], add: Callable[[str, str], None]) -> None:
    for record in records:
        text = str(record.message).strip()
        first = text.split(". ")[0].rstrip(".") + "."
        if "target size" in text and "input size" in text:
            add(
                "shape-mismatch",
                f"the loss compared a prediction and targets of different shapes, and "
                f'PyTorch broadcast them instead of failing ("{first}"). model(inputs) has '
                f"shape (N, 1) like the targets: pass both to the loss unchanged (or squeeze "
                f"both).",
            )
        else:
            add(
                "step-warned",
                f"train_step issued a {record.category.__name__}: {first} "
                "Find the line that causes it and fix it.",
            )


def _explain_error(error: BaseException, add: Callable[[str, str], None]) -> None:
    text = str(error)
    if "does not require grad" in text:
        add(
            "no-graph",
            "the loss is not connected to the model's weights by an autograd graph: it was "
            "computed from something cut off from it (`.detach()`, `.item()`, "
            "`torch.tensor(...)`, `.numpy()`) or under `no_grad`. Compute the loss directly "
            "as `loss_fn(model(inputs), targets)`.",
        )
    elif "cannot assign" in text and "parameter" in text:
        add(
            "wrong-update",
            "the step tried to replace a weight with a new tensor "
            "(`model.weight = model.weight - ...`). Change the weights in place: "
            "`optimizer.step()`, or `p -= lr * p.grad` inside `torch.no_grad()`.",
        )
    elif "a leaf Variable that requires grad" in text:
        add(
            "wrong-update",
            "the step changed a weight in place while autograd was recording. Update the "
            "weights with `optimizer.step()`, or inside `with torch.no_grad():`.",
        )


def _judge_update(
    trace: _Trace,
    found: dict[str, str],
    add: Callable[[str, str], None],
    params: list[nn.Parameter],
    names: list[str],
    leftover: list[torch.Tensor | None],
    before: torch.Tensor,
    grad: torch.Tensor,
) -> None:
    """Compare the weights after the call with one SGD step, and explain any difference."""
    after = _flat(params)
    delta = after - before
    expected = -PROBE_LR * grad
    tol = trace.tolerance()

    def close(a: torch.Tensor, b: torch.Tensor) -> bool:
        return _close(a, b, tol)

    old = _flat_grads(leftover, params)
    backward_ran = trace.grad_arrivals > 0

    # The gradient the step used (first step() call), or the one it left behind, per parameter.
    if trace.step_grads:
        used = _flat_grads(trace.step_grads[0], params)
    else:
        used = _flat_grads(_grads(params), params)
    piled = []
    for i, part in enumerate(_pieces(params)):
        old_i, grad_i, used_i, delta_i = old[part], grad[part], used[part], delta[part]
        if not old_i.abs().max() > 0 or close(old_i + grad_i, grad_i):
            continue
        if (trace.backward_rounds.get(i) and close(used_i, old_i + grad_i)) or close(
            delta_i, -PROBE_LR * (old_i + grad_i)
        ):
            piled.append(i)
    if piled:
        which = ""
        if len(piled) < len(params):
            which = " for " + ", ".join(names[i] for i in piled)
        add(
            "grads-accumulate",
            "gradients are never cleared" + which + ": `backward()` adds into `.grad`, so "
            "each step used the sum of this gradient and all earlier ones. Call "
            "`optimizer.zero_grad()` (or `model.zero_grad()`) once per step, at the start or "
            "right after `optimizer.step()`.",
        )

    if torch.equal(after, before):
        if "no-forward" in found or "no-graph" in found:
            return  # already explained: nothing could be learned
        if not backward_ran:
            add(
                "no-backward",
                "no gradient reached the weights: `loss.backward()` is never called (or the "
                "loss was cut off from the model before it). Call `loss.backward()` after "
                "computing the loss and before `optimizer.step()`.",
            )
            if trace.step_grads:
                return
        if not trace.step_grads:
            add(
                "no-update",
                "the weights never change: `optimizer.step()` is never called on the optimizer "
                "given to train_step. Call it after `loss.backward()`. (Updating by hand? "
                "`p = p - lr * p.grad` only points the name `p` at a new tensor and leaves the "
                "model's weight as it was; write `p -= lr * p.grad` inside `torch.no_grad()`.)",
            )
        elif all(g is None for grads in trace.step_grads for g in grads):
            add(
                "no-update",
                "the weights never change: `.grad` was None when `optimizer.step()` ran, "
                "although `backward()` had filled it. `zero_grad()` sits between `backward()` "
                "and `step()` and wipes the gradient just before it is used: move it to the "
                "start of the step (or after `step()`).",
            )
        elif all(g is None or not g.any() for grads in trace.step_grads for g in grads):
            add(
                "no-update",
                "the weights never change: `.grad` was all zeros when `optimizer.step()` ran. "
                "`zero_grad(set_to_none=False)` between `backward()` and `step()` zeroes the "
                "gradient just before it is used: move it to the start of the step.",
            )
        else:
            add(
                "no-update",
                "the weights never change, although `optimizer.step()` ran with a gradient. "
                "Does the step put the old weights back, or set the learning rate to 0?",
            )
        return

    if close(delta, expected) or "eval-mode" in found or "shape-mismatch" in found:
        return
    if piled:
        return
    one_step = len(trace.step_grads) == 1 and close(delta, -PROBE_LR * used)
    if one_step and _clipped(used, grad, tol):
        return  # one SGD step on the clipped gradient: clip_grad_norm_ or clip_grad_value_
    add("wrong-update", _update_detail(trace, delta, expected))


def _update_detail(trace: _Trace, delta: torch.Tensor, expected: torch.Tensor) -> str:
    """Say how the weights moved, compared with one SGD step."""
    start = "the weights changed, but not by one SGD step on `loss_fn(model(inputs), targets)`"
    denominator = float(expected @ expected)
    if denominator == 0:
        return start + "."
    factor = float(delta @ expected) / denominator
    if not _close(delta, factor * expected, trace.tolerance()):
        return (
            start + ": they moved in a different direction. Compute the loss with the "
            "`loss_fn`, `model`, `inputs` and `targets` you are given, call `backward()`, then "
            "`optimizer.step()`."
        )
    rounds = max(trace.backward_rounds.values(), default=0)
    if math.isclose(factor, -1.0, rel_tol=1e-2):
        return (
            start + ": they moved uphill, by exactly one step in the wrong direction. Subtract "
            "the gradient (`p -= lr * p.grad`), or let `optimizer.step()` do it."
        )
    if len(trace.step_grads) > 1 and math.isclose(factor, len(trace.step_grads), rel_tol=1e-2):
        return (
            start + f": `optimizer.step()` ran {len(trace.step_grads)} times in one call. "
            "Call it once per step."
        )
    if rounds > 1 and math.isclose(factor, rounds, rel_tol=1e-2):
        return (
            start + f": `backward()` ran {rounds} times in one call, so the gradient is "
            f"{rounds} times too large. Call it once per step."
        )
    if math.isclose(factor, _N, rel_tol=1e-2):
        return (
            start + f": the step was {_N} times too large, the number of samples in the batch. "
            "Average the loss over the samples (`reduction='mean'`, the default), don't sum it."
        )
    return (
        start + f": they moved {factor:.3g} times as far as one SGD step with the optimizer's "
        "learning rate. Use the optimizer you are given (`optimizer.step()`) rather than a "
        "learning rate of your own, and the loss exactly as `loss_fn` gives it."
    )


def _judge_return(
    result: Any,
    loss: float | None,
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    add: Callable[[str, str], None],
    tol: float = _REL_TOL,
) -> None:
    loss_tol = max(1e-4, tol / 3)  # a bf16 loss is off by about 0.1 %
    if result is None:
        add(
            "no-return",
            "train_step returned None: end it with `return loss.item()` so the training loop "
            "can log the loss.",
        )
        return
    value = _as_number(result)
    if value is None:
        add(
            "wrong-return",
            f"train_step returned a {type(result).__name__}; return the loss of this batch as "
            "one number (`loss.item()`) or as the loss tensor itself.",
        )
        return
    if loss is None or math.isclose(value, loss, rel_tol=loss_tol, abs_tol=1e-6):
        return
    if math.isclose(value, _loss_now(model, x, y, train=True), rel_tol=loss_tol, abs_tol=1e-6):
        add(
            "wrong-return",
            "train_step returned the loss after the update. Return the loss that `backward()` "
            "used, computed before `optimizer.step()`.",
        )
        return
    add(
        "wrong-return",
        f"train_step returned {value:.4g}, but the loss of this batch (before the update) is "
        f"{loss:.4g}. Return `loss.item()` of the loss you called `backward()` on.",
    )
