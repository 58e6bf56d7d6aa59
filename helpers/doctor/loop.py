"""The loop doctor, second half: judge a learner's `train_epoch` against the canonical loop.

`diagnose_loop(train_epoch, accumulation_steps=K, max_grad_norm=M, amp=A)` builds a probe of its
own (a 4 → 8 → 1 network, plain SGD, `nn.MSELoss()`, a scheduler that changes the learning rate
at every update, a GradScaler when A is true, and a loader of K × 4 micro-batches), hands the
learner's function the objects it names among its parameters, and runs it once. While it runs,
the doctor records every call in order: forward passes, `backward()`, `scaler.scale`,
`scaler.unscale_`, clipping (with the gradients' scale at that moment), `optimizer.step()`,
`scaler.step`, `scaler.update`, `scheduler.step()` and `zero_grad()`, and the weights after every
update. It then runs the canonical loop on a copy of the same model and data,

    for i, (inputs, targets) in enumerate(loader):
        loss = loss_fn(model(inputs), targets) / K
        scaler.scale(loss).backward()
        if (i + 1) % K == 0:
            scaler.unscale_(optimizer)
            clip_grad_norm_(model.parameters(), M)
            scaler.step(optimizer)
            scaler.update()
            scheduler.step()
            optimizer.zero_grad()

compares the weights after every update within a tolerance set by the dtype in use, and names
what is out of order. Everything it patches is its own probe's objects, except
`torch.autograd.backward`/`grad` and the clipping functions, which are put back when the run ends.
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from helpers._util import first_line
from helpers.doctor._calls import probe_conditions, watching
from helpers.doctor.findings import ALL_CLEAR_LOOP, Diagnosis, Finding
from helpers.doctor.step import autocast_dtype

__all__ = ["LOOP_CODES", "LOOP_PARAMETERS", "cpu_grad_scaler_supported", "diagnose_loop"]

# Every code diagnose_loop can report, in the order findings are listed.
LOOP_CODES: dict[str, str] = {
    "bad-signature": "train_epoch has a parameter the doctor cannot fill",
    "amp-unsupported": "this PyTorch has no GradScaler for the CPU, so amp=True cannot be probed",
    "epoch-raised": "train_epoch raised an exception",
    "no-forward": "train_epoch never ran the model it was given",
    "no-backward": "backward() is never called",
    "no-step": "the optimizer never stepped",
    "step-per-micro-batch": "optimizer.step() runs after every micro-batch, not every K",
    "uneven-windows": "the updates do not come every K micro-batches",
    "zero-grad-in-window": "zero_grad() runs between backward() and the step that needs the sum",
    "unscaled-accumulation": "micro-batch losses are not divided by K",
    "loss-not-scaled": "backward() ran on the loss itself, not on scaler.scale(loss)",
    "scaler-bypassed": "optimizer.step() is called directly, not through scaler.step(optimizer)",
    "clip-before-unscale": "gradients are clipped while still multiplied by the scaler's scale",
    "clip-after-step": "gradients are clipped after optimizer.step(), which already used them",
    "clip-per-micro-batch": "gradients are clipped inside the accumulation window",
    "no-clip": "max_grad_norm was given, but nothing clipped the gradients",
    "unscale-per-micro-batch": "scaler.unscale_() runs more than once per update",
    "no-scaler-update": "scaler.update() is missing after scaler.step(optimizer)",
    "scheduler-before-step": "scheduler.step() runs before optimizer.step()",
    "scheduler-per-micro-batch": "scheduler.step() runs after every micro-batch, not every update",
    "scheduler-not-per-update": "scheduler.step() does not run once per update",
    "wrong-update": "the weights differ from the canonical loop's for a reason not named above",
    "epoch-warned": "train_epoch issued a warning",
}

# The names train_epoch's parameters may have; the doctor fills each one by name.
LOOP_PARAMETERS = (
    "model",
    "optimizer",
    "loss_fn",
    "loader",
    "scheduler",
    "scaler",
    "accumulation_steps",
    "max_grad_norm",
    "device",
)

PROBE_LR = 0.1
_UPDATES = 4  # updates in the probe epoch; the loader holds K times as many micro-batches
_BATCH, _D, _H = 8, 4, 8  # samples per micro-batch, input features, hidden units
_LR_FACTORS = (1.0, 0.5, 0.25, 0.75, 0.6)  # the scheduler's factor for update 0, 1, 2, ...
_TOL = {None: 1e-4, torch.bfloat16: 5e-2, torch.float16: 2e-2}  # relative to the distance moved


def _probe_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(_D, _H), nn.Tanh(), nn.Linear(_H, 1))


def _probe_data(micro_batches: int) -> TensorDataset:
    gen = torch.Generator().manual_seed(4321)
    x = torch.randn(micro_batches * _BATCH, _D, generator=gen)
    w = torch.tensor([[1.0], [-2.0], [0.5], [1.5]])
    y = x @ w + 0.1 * torch.randn(len(x), 1, generator=gen)
    return TensorDataset(x, y)


def _scheduler(optimizer: torch.optim.Optimizer) -> torch.optim.lr_scheduler.LRScheduler:
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda update: _LR_FACTORS[update % len(_LR_FACTORS)]
    )


def cpu_grad_scaler_supported() -> bool:
    """True when this PyTorch has a working GradScaler for the CPU (`torch.amp.GradScaler("cpu")`)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            scaler = torch.amp.GradScaler("cpu")
            if not scaler.is_enabled():
                return False
            p = nn.Parameter(torch.ones(1))
            optimizer = torch.optim.SGD([p], lr=0.5)
            scaler.scale(2 * p.sum()).backward()
            scaler.unscale_(optimizer)
            scaler.step(optimizer)
            scaler.update()
    except Exception:  # no CPU kernels, no device argument, ...: not supported
        return False
    return bool(torch.allclose(p.detach(), torch.zeros(1)))


def _flat(tensors: Any) -> torch.Tensor:
    return torch.cat([t.detach().reshape(-1).to(torch.float64) for t in tensors])


def _grads(params: list[nn.Parameter]) -> torch.Tensor | None:
    """All gradients as one vector, or None when every .grad is None."""
    if all(p.grad is None for p in params):
        return None
    return _flat(torch.zeros_like(p) if p.grad is None else p.grad for p in params)


# ----------------------------------------------------------------------------------------------
# The canonical loop
# ----------------------------------------------------------------------------------------------


@dataclass
class _Canon:
    weights: list[torch.Tensor]  # after each update
    moved: list[float]  # how far the weights had moved in total after each update
    first_grad: torch.Tensor  # the accumulated, unscaled gradient of the first window


def _canonical(
    dataset: TensorDataset, accumulation_steps: int, clip: tuple[str, Any] | None, scheduled: bool
) -> _Canon:
    """Run the canonical loop (float32, no scaler: scaling by a power of 2 is exact) once."""
    model = _probe_model()
    optimizer = torch.optim.SGD(model.parameters(), lr=PROBE_LR)
    scheduler = _scheduler(optimizer) if scheduled else None
    params = list(model.parameters())
    start = _flat(params)
    weights, moved, first_grad = [], [], None
    loader = DataLoader(dataset, batch_size=_BATCH)
    total, previous = 0.0, start
    for i, (x, y) in enumerate(loader):
        loss = nn.functional.mse_loss(model(x), y) / accumulation_steps
        loss.backward()
        if (i + 1) % accumulation_steps == 0:
            if first_grad is None:
                first_grad = _grads(params)
            if clip is not None:
                getattr(nn.utils, clip[0])(params, clip[1])
            optimizer.step()
            if scheduler is not None:
                scheduler.step()
            optimizer.zero_grad()
            now = _flat(params)
            total += float((now - previous).norm())
            weights.append(now)
            moved.append(total)
            previous = now
    return _Canon(weights, moved, first_grad)


# ----------------------------------------------------------------------------------------------
# Watching the learner's epoch
# ----------------------------------------------------------------------------------------------


@dataclass(eq=False)
class _Event:
    kind: (
        str  # forward, backward, scale, unscale, clip, step, scaler_step, update, sched, zero_grad
    )
    grads: torch.Tensor | None = None  # the gradients when the call began (None: all None)
    detail: Any = None  # forward: autocast dtype; backward: loss value; clip: which; step: inside
    #   scaler.step; zero_grad: whose


@dataclass
class _Record:
    events: list[_Event] = field(default_factory=list)
    updates: list[torch.Tensor] = field(default_factory=list)  # weights after each step()
    scale: float = 1.0  # the scaler's scale when scale() was called


class _Watcher:
    """Wraps the probe's own objects (model hooks, optimizer hooks, instance methods)."""

    def __init__(self, model: nn.Module, optimizer: Any, scheduler: Any, scaler: Any) -> None:
        self.record = _Record()
        self.params = list(model.parameters())
        self.in_scaler_step = 0
        self.handles = [
            model.register_forward_pre_hook(self._forward),
            optimizer.register_step_pre_hook(self._step),
            optimizer.register_step_post_hook(self._stepped),
        ]
        self.wrapped: list[tuple[Any, str]] = []
        self._wrap(optimizer, "zero_grad", "zero_grad", "optimizer")
        self._wrap(model, "zero_grad", "zero_grad", "model")
        if scheduler is not None:
            self._wrap(scheduler, "step", "sched")
        if scaler is not None:
            self._wrap(scaler, "scale", "scale")
            self._wrap(scaler, "unscale_", "unscale")
            self._wrap(scaler, "update", "update")
            self._wrap(scaler, "step", "scaler_step")

    def add(self, kind: str, detail: Any = None) -> None:
        self.record.events.append(_Event(kind, _grads(self.params), detail))

    def _wrap(self, owner: Any, name: str, kind: str, detail: Any = None) -> None:
        original = getattr(owner, name)

        def watched(*args: Any, **kwargs: Any) -> Any:
            self.add(kind, detail)
            if kind == "scale":
                self.record.scale = float(owner.get_scale())
            if kind != "scaler_step":
                return original(*args, **kwargs)
            self.in_scaler_step += 1
            try:
                return original(*args, **kwargs)
            finally:
                self.in_scaler_step -= 1

        setattr(owner, name, watched)
        self.wrapped.append((owner, name))

    def call_seen(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        if name in ("backward", "grad"):
            tensor = args[0] if args else kwargs.get("tensors", kwargs.get("outputs"))
            value = None
            if isinstance(tensor, torch.Tensor) and tensor.numel() == 1:
                value = float(tensor.detach())
            self.add("backward", value)
        elif name.startswith("clip_"):
            limit = args[1] if len(args) > 1 else kwargs.get("max_norm", kwargs.get("clip_value"))
            self.add("clip", (name, limit))

    def _forward(self, module: nn.Module, args: Any) -> None:
        self.add("forward", autocast_dtype())

    def _step(self, optimizer: Any, args: Any, kwargs: Any) -> None:
        self.add("step", self.in_scaler_step > 0)

    def _stepped(self, optimizer: Any, args: Any, kwargs: Any) -> None:
        self.record.updates.append(_flat(self.params))

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()
        for owner, name in self.wrapped:
            try:
                delattr(owner, name)  # the instance attribute goes; the class's method shows again
            except AttributeError:
                pass


# ----------------------------------------------------------------------------------------------
# The diagnosis
# ----------------------------------------------------------------------------------------------


def _fill(train_epoch: Callable[..., Any], known: dict[str, Any]) -> tuple[list, dict, str | None]:
    """Positional and keyword arguments for train_epoch by parameter name, or a problem."""
    try:
        signature = inspect.signature(train_epoch)
    except (TypeError, ValueError):
        return [], {}, "the doctor cannot read train_epoch's parameters."
    args, kwargs, unknown = [], {}, []
    for p in signature.parameters.values():
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        if p.name not in known:
            if p.default is p.empty:
                unknown.append(p.name)
            continue
        if p.kind is p.POSITIONAL_ONLY:
            args.append(known[p.name])
        else:
            kwargs[p.name] = known[p.name]
    if unknown:
        names = ", ".join(f"`{n}`" for n in unknown)
        return (
            [],
            {},
            f"train_epoch{signature} has parameter(s) {names} that the doctor cannot fill. It "
            f"fills parameters by name, from: {', '.join(LOOP_PARAMETERS)}. Rename the "
            "parameter to one of these, or give it a default value.",
        )
    return args, kwargs, None


def _check_arguments(accumulation_steps: Any, max_grad_norm: Any, amp: Any) -> None:
    if isinstance(accumulation_steps, bool) or not isinstance(accumulation_steps, int):
        raise TypeError(f"accumulation_steps must be a whole number, got {accumulation_steps!r}.")
    if not 1 <= accumulation_steps <= 8:
        raise ValueError(f"accumulation_steps must be from 1 to 8, got {accumulation_steps}.")
    if max_grad_norm is not None and (
        isinstance(max_grad_norm, bool)
        or not isinstance(max_grad_norm, (int, float))
        or not max_grad_norm > 0
    ):
        raise ValueError(f"max_grad_norm must be None or a positive number, got {max_grad_norm!r}.")
    if not isinstance(amp, bool):
        raise TypeError(f"amp must be True or False, got {amp!r}.")


def diagnose_loop(
    train_epoch: Callable[..., Any],
    *,
    accumulation_steps: int = 1,
    max_grad_norm: float | None = None,
    amp: bool = False,
) -> Diagnosis:
    """Run train_epoch once on a probe and compare it with the canonical loop; return findings."""
    if not callable(train_epoch):
        raise TypeError(
            "train_epoch must be a function such as `def train_epoch(model, optimizer, loss_fn, "
            f"loader): ...`, but it is a {type(train_epoch).__name__}. Pass the function itself, "
            "without calling it (no parentheses)."
        )
    _check_arguments(accumulation_steps, max_grad_norm, amp)
    if amp and not cpu_grad_scaler_supported():
        return Diagnosis(
            [
                Finding(
                    "amp-unsupported",
                    f"this PyTorch ({torch.__version__}) has no working GradScaler for the CPU "
                    '(`torch.amp.GradScaler("cpu")`), so the doctor cannot run a loop with '
                    "amp=True here. Run it with amp=False (a disabled scaler), or on a newer "
                    "PyTorch.",
                )
            ],
            all_clear=ALL_CLEAR_LOOP,
        )
    found: dict[str, str] = {}
    with probe_conditions() as caught:
        _run(train_epoch, accumulation_steps, max_grad_norm, amp, found, caught)
    return Diagnosis(
        (Finding(code, found[code]) for code in LOOP_CODES if code in found),
        all_clear=ALL_CLEAR_LOOP,
    )


def _run(
    train_epoch: Callable[..., Any],
    k: int,
    max_grad_norm: float | None,
    amp: bool,
    found: dict[str, str],
    caught: list[Any],
) -> None:
    def add(code: str, message: str) -> None:
        found.setdefault(code, message)

    wanted = set()
    try:
        wanted = set(inspect.signature(train_epoch).parameters)
    except (TypeError, ValueError):
        pass
    dataset = _probe_data(k * _UPDATES)
    model = _probe_model()
    optimizer = torch.optim.SGD(model.parameters(), lr=PROBE_LR)
    scheduled = "scheduler" in wanted
    scheduler = _scheduler(optimizer) if scheduled else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a disabled scaler may warn that CUDA is missing
        if amp:
            scaler = torch.amp.GradScaler("cpu")
        elif hasattr(torch.amp, "GradScaler"):
            scaler = torch.amp.GradScaler("cpu", enabled=False)
        else:
            scaler = torch.cuda.amp.GradScaler(enabled=False)
    if amp and "scaler" not in wanted:
        add(
            "bad-signature",
            "amp=True, but train_epoch has no `scaler` parameter: the doctor hands its "
            "GradScaler to a parameter named `scaler`. Add it, and use it instead of one you "
            "create inside.",
        )
        return
    known = {
        "model": model,
        "optimizer": optimizer,
        "loss_fn": nn.MSELoss(),
        "loader": DataLoader(dataset, batch_size=_BATCH),
        "scheduler": scheduler,
        "scaler": scaler,
        "accumulation_steps": k,
        "max_grad_norm": max_grad_norm,
        "device": torch.device("cpu"),
    }
    args, kwargs, problem = _fill(train_epoch, known)
    if problem:
        add("bad-signature", problem)
        return
    watcher = _Watcher(model, optimizer, scheduler, scaler if amp else None)
    error: BaseException | None = None
    namespaces = (getattr(train_epoch, "__globals__", {}),)
    try:
        with watching(watcher.call_seen, namespaces):
            try:
                train_epoch(*args, **kwargs)
            except Exception as exc:  # a broken loop is a finding, never a crash
                error = exc
    finally:
        watcher.remove()
    record = watcher.record
    if error is not None:
        add("epoch-raised", f"train_epoch raised {type(error).__name__}: {first_line(error, 200)}")
    # The canonical loop clips by max_grad_norm; told nothing, it clips as the learner's first
    # clipping call did (a clip_grad_value_, or a norm of the learner's own), to judge the order.
    clip = None if max_grad_norm is None else ("clip_grad_norm_", max_grad_norm)
    clips = [e.detail for e in record.events if e.kind == "clip"]
    if clip is None and clips and isinstance(clips[0][1], (int, float)):
        clip = clips[0]
    canon = _canonical(dataset, k, clip, scheduled)
    _judge(record, canon, k, max_grad_norm, amp, scheduled, add, found, error)
    _judge_warnings(caught, add)


def _judge_warnings(records: list[Any], add: Callable[[str, str], None]) -> None:
    for record in records:
        text = str(record.message).strip()
        if "lr_scheduler.step()" in text and "optimizer.step()" in text:
            continue  # explained by scheduler-before-step
        first = text.split(". ")[0].rstrip(".") + "."
        add(
            "epoch-warned",
            f"train_epoch issued a {record.category.__name__}: {first} Find the line that "
            "causes it and fix it.",
        )


def _windows(events: list[_Event]) -> list[list[_Event]]:
    """The events split after each step attempt (scaler.step, or optimizer.step on its own)."""
    windows: list[list[_Event]] = [[]]
    for event in events:
        windows[-1].append(event)
        if event.kind == "scaler_step" or (event.kind == "step" and not event.detail):
            windows.append([])
    return windows


def _is_step(event: _Event) -> bool:
    return event.kind == "scaler_step" or (event.kind == "step" and not event.detail)


def _judge(
    record: _Record,
    canon: _Canon,
    k: int,
    max_grad_norm: float | None,
    amp: bool,
    scheduled: bool,
    add: Callable[[str, str], None],
    found: dict[str, str],
    error: BaseException | None,
) -> None:
    events = record.events
    kinds = [e.kind for e in events]
    backwards = kinds.count("backward")
    steps = [e for e in events if _is_step(e)]
    micro = k * _UPDATES
    if "forward" not in kinds and error is None:
        add(
            "no-forward",
            "train_epoch never ran the model it was given. Use the `model` and `loader` "
            "parameters (not objects defined outside the function).",
        )
        return
    if backwards == 0:
        if error is None:
            add(
                "no-backward",
                "`backward()` never ran, so no gradient was computed. Call "
                "`loss.backward()` (or `scaler.scale(loss).backward()`) after every loss.",
            )
        return
    if not steps and error is None:
        add(
            "no-step",
            "the optimizer never stepped, so the weights never changed. Call "
            "`optimizer.step()` (or `scaler.step(optimizer)`) once per update.",
        )
        return

    # --- where the updates fall -----------------------------------------------------------
    windows = _windows(events)
    per_step = [sum(e.kind == "backward" for e in w) for w in windows[: len(steps)]]
    if not steps:
        pass  # it stopped before the first update: only the order of the calls can be judged
    elif k > 1 and len(steps) > _UPDATES and all(n <= 1 for n in per_step):
        add(
            "step-per-micro-batch",
            f"`optimizer.step()` ran after every micro-batch ({len(steps)} updates for "
            f"{micro} micro-batches), so nothing accumulated. With accumulation_steps={k} it "
            f"must run once every {k} micro-batches: put `step()`, `zero_grad()`, clipping and "
            f"`scheduler.step()` under `if (i + 1) % {k} == 0:`.",
        )
    elif any(n != k for n in per_step) or (error is None and len(steps) != _UPDATES):
        if all(n == k for n in per_step):
            detail = (
                f"train_epoch made {len(steps)} updates, but one pass over the loader with "
                f"accumulation_steps={k} makes {_UPDATES}: make one pass, and one update every "
                f"{k} micro-batches."
            )
        else:
            counts = ", ".join(map(str, per_step))
            detail = (
                f"`backward()` ran {counts} time(s) before each of the {len(steps)} updates; "
                f"each update should come after exactly {k}."
            )
            if k > 1 and per_step[0] == 1:
                detail += (
                    f" `if i % {k} == 0` is already true at i = 0: count from 1, "
                    f"`if (i + 1) % {k} == 0:`."
                )
        add("uneven-windows", detail)

    # --- zero_grad inside a window ------------------------------------------------------------
    for window in windows:
        seen_backward = False
        for event in window:
            cleared = event.grads is None or not bool(event.grads.any())
            if event.kind == "backward" and seen_backward and cleared:
                add(
                    "zero-grad-in-window",
                    "the gradients were cleared between two `backward()` calls of one "
                    "accumulation window, so the update used only the last micro-batch's "
                    "gradient. Move `optimizer.zero_grad()` under the `if`, just after "
                    "`optimizer.step()`.",
                )
            if _is_step(event) and seen_backward and cleared:
                add(
                    "zero-grad-in-window",
                    "the gradients were cleared after `backward()` and before "
                    "`optimizer.step()`, which then found nothing to apply. Move "
                    "`optimizer.zero_grad()` to just after `optimizer.step()` (or to the start "
                    "of the window).",
                )
            if event.kind == "backward":
                seen_backward = True

    # --- the size of the accumulated gradient -------------------------------------------------
    scaled = amp and "scale" in kinds
    scale = record.scale if scaled else 1.0
    first = windows[0]
    after_last_backward = None
    for i, event in enumerate(first):
        if event.kind == "backward":
            after_last_backward = first[i + 1] if i + 1 < len(first) else None
    ratio = None
    if per_step and per_step[0] == k and after_last_backward is not None:
        got = after_last_backward.grads
        if got is not None and "zero-grad-in-window" not in found:
            ref = canon.first_grad
            ratio = float(got @ ref) / float(ref @ ref) / scale
    if ratio is not None and k > 1 and abs(ratio - k) < 0.05 * k:
        add(
            "unscaled-accumulation",
            f"each micro-batch's loss went into `backward()` undivided, so the {k} gradients "
            f"added up to {k} times the mean gradient. Divide the loss by the number of "
            f"micro-batches per update before `backward()`: `loss = loss_fn(...) / {k}`.",
        )
    if amp and "scale" not in kinds and "scaler_step" in kinds:
        add(
            "loss-not-scaled",
            "`backward()` ran on the loss itself, not on `scaler.scale(loss)`, so "
            '`scaler.step(optimizer)` had no scale to undo (PyTorch stops with "Attempted '
            'step but _scale is None"). Write `scaler.scale(loss).backward()`.',
        )
    if amp and "scale" in kinds and any(e.kind == "step" and not e.detail for e in events):
        add(
            "scaler-bypassed",
            "`optimizer.step()` was called directly, on gradients still multiplied by the "
            "GradScaler's scale, and without its check for inf/NaN (then `scaler.update()` "
            'stops with "No inf checks were recorded"). Call '
            "`scaler.step(optimizer)` followed by `scaler.update()` instead.",
        )

    # --- clipping -----------------------------------------------------------------------------
    clips = [e for e in events if e.kind == "clip"]
    for window in windows:
        state = "start"  # start → backward → unscaled → stepped
        backwards_left = sum(e.kind == "backward" for e in window)
        for event in window:
            if event.kind == "backward":
                state = "backward"
                backwards_left -= 1
            elif event.kind == "unscale":
                state = "unscaled"
            elif event.kind == "clip":
                if state == "start" and window is not windows[0]:
                    add(
                        "clip-after-step",
                        "gradients were clipped after `optimizer.step()`: the update had "
                        "already used the unclipped gradients. Move the clipping line above "
                        "`optimizer.step()` (after `scaler.unscale_(optimizer)` when a "
                        "GradScaler is used).",
                    )
                elif backwards_left > 0:
                    add(
                        "clip-per-micro-batch",
                        "gradients were clipped inside the accumulation window, after a "
                        "micro-batch that was not the last: that clips a partial sum, and the "
                        "micro-batches after it are not clipped. Clip once per update, under "
                        "the `if`, just before `step()`.",
                    )
                elif amp and scaled and state == "backward":
                    measured = ""
                    if event.grads is not None and canon.first_grad is not None:
                        factor = float(event.grads.norm()) / float(canon.first_grad.norm())
                        measured = f" (about {factor:.3g} times their true size here)"
                    add(
                        "clip-before-unscale",
                        f"gradients were clipped while still multiplied by the GradScaler's "
                        f"scale of {scale:g}{measured}, so the max-norm applied to the wrong "
                        "numbers. Call `scaler.unscale_(optimizer)` on the line before "
                        "clipping.",
                    )
    # clipping after the last step of the epoch shows only as a clip after a step
    if clips and steps and events.index(clips[-1]) > events.index(steps[-1]):
        tail = events[events.index(steps[-1]) + 1 :]
        if "backward" not in [e.kind for e in tail]:
            add(
                "clip-after-step",
                "gradients were clipped after `optimizer.step()`: the update had already used "
                "the unclipped gradients. Move the clipping line above `optimizer.step()` "
                "(after `scaler.unscale_(optimizer)` when a GradScaler is used).",
            )
    if max_grad_norm is not None and not clips:
        add(
            "no-clip",
            f"max_grad_norm={max_grad_norm:g} was given, but no `clip_grad_norm_` ran. Clip "
            "once per update, just before `optimizer.step()`: "
            "`torch.nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)`.",
        )

    # --- the scaler -----------------------------------------------------------------------------
    stopped_by_scaler = error is not None and "update()" not in str(error)
    if amp and "scaler_step" in kinds and not stopped_by_scaler:
        after_each = ["update" in [e.kind for e in w] for w in windows[1 : len(steps) + 1]]
        if not all(after_each) or kinds.count("update") < kinds.count("scaler_step"):
            add(
                "no-scaler-update",
                "`scaler.update()` did not follow `scaler.step(optimizer)`: the scale never "
                'adapts, and the next `scaler.step` raises "step() has already been called '
                'since the last update()". Add `scaler.update()` on the line after '
                "`scaler.step(optimizer)`.",
            )

    if amp and any([e.kind for e in w].count("unscale") > 1 for w in windows):
        add(
            "unscale-per-micro-batch",
            "`scaler.unscale_(optimizer)` ran more than once before one update (PyTorch stops "
            'with "unscale_() has already been called"). Call it once per update, under the '
            "`if`, on the line before clipping.",
        )

    # --- the scheduler -------------------------------------------------------------------------
    if scheduled and steps:
        scheds = kinds.count("sched")
        first_sched = kinds.index("sched") if "sched" in kinds else None
        first_step = events.index(steps[0])
        per_micro_batch = k > 1 and scheds >= micro and len(steps) < scheds
        if first_sched is not None and first_sched < first_step and not per_micro_batch:
            add(
                "scheduler-before-step",
                "`scheduler.step()` ran before `optimizer.step()` (PyTorch warns about it): the "
                "first update already ran with the second learning rate, and the first one was "
                "skipped. Move `scheduler.step()` to just after `optimizer.step()` (after "
                "`scaler.update()` when a GradScaler is used).",
            )
        if per_micro_batch:
            add(
                "scheduler-per-micro-batch",
                f"`scheduler.step()` ran {scheds} times, once per micro-batch, for "
                f"{len(steps)} updates: the learning rate ran ahead {k} times too fast. Move "
                "it under the `if`, just after `optimizer.step()` (after `scaler.update()` "
                "when a GradScaler is used).",
            )
        elif scheds != len(steps) and "scheduler-before-step" not in found:
            add(
                "scheduler-not-per-update",
                f"`scheduler.step()` ran {scheds} time(s) for {len(steps)} updates. The "
                "doctor's scheduler changes the learning rate at every update (as warm-up "
                "and one-cycle schedules do): call it once per update, just after "
                "`optimizer.step()`. (A per-epoch scheduler belongs in the loop around "
                "train_epoch; then leave `scheduler` out of its parameters.)",
            )

    # --- the weights, update by update -------------------------------------------------------
    if found.keys() - {"epoch-warned"}:
        return  # the difference is already explained
    dtypes = {e.detail for e in events if e.kind == "forward"}
    tol = max(_TOL.get(d, 5e-2) for d in dtypes) if dtypes else _TOL[None]
    by_value = any(e.kind == "clip" and e.detail[0] == "clip_grad_value_" for e in events)
    hint = ""
    if by_value and max_grad_norm is not None:
        hint = (
            " The loop clips with `clip_grad_value_`, which clamps each entry; max_grad_norm "
            "asks for `clip_grad_norm_(model.parameters(), max_grad_norm)`."
        )
    for u, (got, want) in enumerate(zip(record.updates, canon.weights, strict=False)):
        if float((got - want).norm()) > tol * canon.moved[u] + 1e-7:
            add(
                "wrong-update",
                f"the weights after update {u + 1} differ from the canonical loop's by "
                f"{float((got - want).norm()) / canon.moved[u]:.3g} of the distance they "
                "moved. Compare your loop line by line with the canonical order: forward, "
                "loss / K, backward; every K micro-batches unscale_, clip, step, update, "
                "scheduler.step, zero_grad." + hint,
            )
            return
