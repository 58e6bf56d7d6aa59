"""The update of the practical loop, one line at a time: `ScalerStepExplorer`.

Buttons run the real calls — `scaler.scale(loss).backward()` on a micro-batch (or on one with an
overflowing sample), `scaler.unscale_`, `clip_grad_norm_`, `scaler.step`, `scaler.update`,
`scheduler.step` and `optimizer.zero_grad` — on a small model with SGD (momentum), a CPU
GradScaler and a StepLR. A panel shows every holder of state (parameters, `.grad`, the optimizer's
state, the learning rate, the scale, the scheduler's count) and marks what the last click changed;
a message says what happened and, for a line out of its place, what goes wrong.
"""

from __future__ import annotations

import html
import warnings
from typing import Any, NamedTuple

import ipywidgets as widgets
import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils import clip_grad_norm_

from helpers.widgets._base import Explorer, state_picture

__all__ = ["ScalerStepExplorer", "cpu_grad_scaler"]

ACTIONS = (
    "backward",
    "overflow backward",
    "unscale_",
    "clip",
    "step",
    "update",
    "scheduler.step",
    "zero_grad",
    "reset",
)
_CODE = {
    "backward": "scaler.scale(loss_fn(model(xb), yb) / K).backward()",
    "overflow backward": "the same, on a micro-batch whose first input is 1e20",
    "unscale_": "scaler.unscale_(optimizer)",
    "clip": "clip_grad_norm_(model.parameters(), max_norm=1.0)",
    "step": "scaler.step(optimizer)",
    "update": "scaler.update()",
    "scheduler.step": "scheduler.step()",
    "zero_grad": "optimizer.zero_grad()",
    "reset": "start again from the same weights",
}
HOLDERS = (
    "parameters",
    ".grad",
    "optimizer state",
    "learning rate",
    "scaler scale",
    "scheduler steps",
)
K = 2
MAX_NORM = 1.0


class Click(NamedTuple):
    """One click: the action and the message it left."""

    action: str
    message: str


def cpu_grad_scaler(**kwargs: Any) -> Any | None:
    """A `torch.amp.GradScaler("cpu", **kwargs)`, or None where this PyTorch has none."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            scaler = torch.amp.GradScaler("cpu", **kwargs)
    except (AttributeError, TypeError, RuntimeError, ValueError):
        return None
    return scaler if scaler.is_enabled() else None


def _problem() -> tuple[nn.Module, list[tuple[torch.Tensor, torch.Tensor]]]:
    generator = torch.Generator().manual_seed(13)
    X = torch.randn(16, 4, generator=generator)
    y = 5 * X @ torch.randn(4, 1, generator=generator)
    with torch.random.fork_rng(devices=[]):  # the same weights every time; global RNG untouched
        torch.manual_seed(3)
        model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1))
    return model, list(zip(X.chunk(K), y.chunk(K), strict=True))


def _grad_norm(params: list[nn.Parameter]) -> float | None:
    grads = [p.grad.flatten() for p in params if p.grad is not None]
    return None if not grads else torch.cat(grads).norm().item()


class ScalerStepExplorer(Explorer):
    """Buttons for each line of the practical update, and a panel of every holder of state."""

    ACTIONS = ACTIONS
    CAPTION = (
        "ScalerStepExplorer: click backward, unscale_, clip, step, update, scheduler.step and "
        "zero_grad in any order and watch which holder of state each line changes."
    )

    def __init__(self) -> None:
        self.history: list[Click] = []
        self.changed: list[str] = []
        super().__init__()
        self.buttons = self.click_buttons(ACTIONS, _CODE, min_width="80px")
        self._panel = widgets.HTML(value="")
        title = widgets.HTML(
            value="<b>The practical update, one line at a time.</b> Click in any order; the "
            f"panel marks what each click changed (K = {K} micro-batches, max_norm = {MAX_NORM})."
        )
        self.children = [
            title,
            widgets.HBox(list(self.buttons.values())[:4]),
            widgets.HBox(list(self.buttons.values())[4:]),
            self._message_html,
            self._panel,
        ]
        self._start()
        if self.scaler is None:
            for button in self.buttons.values():
                button.disabled = True
            self.say(
                "This PyTorch has no GradScaler for the CPU, so the explorer cannot run here "
                "(a newer PyTorch has one).",
                kind="warning",
            )
        else:
            self.say(
                "Nothing clicked yet. The right order: backward (K times), unscale_, clip, "
                "step, then update, scheduler.step and zero_grad."
            )
        self._render()

    # -- public ---------------------------------------------------------------------------------

    def click(self, action: str) -> None:
        """Do what the button `action` does (one of ACTIONS)."""
        if not isinstance(action, str) or action not in ACTIONS:
            raise ValueError(
                f"action must be one of {', '.join(repr(a) for a in ACTIONS)}; got {action!r}."
            )
        if self.scaler is None:
            self.history.append(Click(action, self.message))
            return
        before = self.state
        result = self.safely(lambda: getattr(self, "_do_" + _method(action))(), what=action)
        if result is not None:
            text, kind = result
            self.say(text, kind)
        after = self.state
        self.changed = [h for h in HOLDERS if before[h] != after[h]]
        self.history.append(Click(action, self.message))
        self._render()

    @property
    def state(self) -> dict[str, Any]:
        """A plain reading of every holder of state, as the panel shows it."""
        params = list(self.model.parameters())
        grads = [p.grad for p in params]
        return {
            "parameters": tuple(round(v, 6) for v in self.model[0].weight[0].tolist())
            + (round(sum(p.detach().double().sum().item() for p in params), 6),),
            ".grad": None
            if all(g is None for g in grads)
            else tuple(None if g is None else f"{g.double().sum().item():.6g}" for g in grads),
            "optimizer state": len(self.optimizer.state),
            "learning rate": self.optimizer.param_groups[0]["lr"],
            "scaler scale": None if self.scaler is None else self.scaler.get_scale(),
            "scheduler steps": self.scheduler.last_epoch,
        }

    @property
    def panel_html(self) -> str:
        """The panel's HTML, as the notebook shows it."""
        return self._panel.value

    # -- the actions ----------------------------------------------------------------------------

    def _start(self) -> None:
        self.model, self.micro_batches = _problem()
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=0.1, momentum=0.9)
        self.scheduler = torch.optim.lr_scheduler.StepLR(self.optimizer, step_size=1, gamma=0.5)
        self.scaler = cpu_grad_scaler(growth_interval=2)
        self._next = 0  # which micro-batch comes next
        self._scaled = False  # .grad holds scaled gradients
        self._unscaled = False  # unscale_ ran in this round
        self._stepped = False  # step ran in this round (since the last update)
        self._backwards = 0  # backward passes since the last zero_grad
        self._used = False  # a step has used the gradients now in .grad
        self._stepped_since_schedule = False  # an optimizer step since the last scheduler.step

    def _do_reset(self) -> tuple[str, str]:
        self._start()
        return (
            "Back to the start: the same weights, no gradients, a fresh scaler and scheduler.",
            "info",
        )

    def _do_backward(self, overflow: bool = False) -> tuple[str, str]:
        xb, yb = self.micro_batches[self._next % K]
        if overflow:
            xb = xb.clone()
            xb[0] = 1e20
        self._next += 1
        loss = F.mse_loss(self.model(xb), yb) / K
        self.scaler.scale(loss).backward()
        self._backwards += 1
        self._used = False
        scale = self.scaler.get_scale()
        norm = _grad_norm(list(self.model.parameters()))
        if self._unscaled:
            self._scaled = True
            return (
                "unscale_ already ran in this round: these scaled gradients were added to "
                "unscaled ones, and the mix is wrong. unscale_ belongs after the last micro-batch.",
                "error",
            )
        self._scaled = True
        if overflow or norm is None or not torch.isfinite(torch.tensor(norm)):
            return (
                f"The loss overflowed: .grad now holds inf or nan. step() will skip this update, "
                f"and update() will halve the scale ({scale:g}).",
                "warning",
            )
        added = " (added to the gradients already there)" if self._backwards > 1 else ""
        tail = (
            f" That is {self._backwards} of K = {K}: the update is complete."
            if self._backwards == K
            else f" That is {self._backwards} of K = {K}."
        )
        if self._backwards > K:
            tail = f" That is {self._backwards} backward passes: more than K = {K} in one update."
        return f".grad now holds the gradient × {scale:g}{added}.{tail}", "info"

    def _do_overflow_backward(self) -> tuple[str, str]:
        return self._do_backward(overflow=True)

    def _do_unscale_(self) -> tuple[str, str]:
        if all(p.grad is None for p in self.model.parameters()):
            return "There are no gradients yet: run backward first.", "warning"
        self.scaler.unscale_(self.optimizer)
        self._unscaled, self._scaled = True, False
        early = (
            f" Only {self._backwards} of K = {K} micro-batches have run: the rest will add scaled "
            "gradients to these."
            if self._backwards < K
            else ""
        )
        return (
            f".grad divided by the scale {self.scaler.get_scale():g}: the true gradient.{early}",
            ("warning" if early else "info"),
        )

    def _do_clip(self) -> tuple[str, str]:
        params = list(self.model.parameters())
        if all(p.grad is None for p in params):
            return "There are no gradients to clip.", "warning"
        norm = clip_grad_norm_(params, MAX_NORM).item()
        if self._stepped:
            return (
                f"Clipped (norm was {norm:.4g}), but step already used the gradient in this round: "
                "the update was made unclipped.",
                "error",
            )
        if self._scaled:
            return (
                f"Clipped the *scaled* gradients: their norm {norm:.4g} is the true norm × the scale, "
                f"so max_norm = {MAX_NORM} shrinks the update to almost nothing. unscale_ first.",
                "error",
            )
        bound = "bound: scaled down to" if norm > MAX_NORM else "did not bind: below"
        return f"The norm before clipping was {norm:.4g}; clipping {bound} {MAX_NORM}.", "info"

    def _do_step(self) -> tuple[str, str]:
        params = list(self.model.parameters())
        if all(p.grad is None for p in params):
            return (
                "There are no gradients: scaler.step() refuses to run before a backward "
                "(PyTorch: 'No inf checks were recorded'). Nothing moved.",
                "warning",
            )
        before = [p.detach().clone() for p in params]
        unscaled_by_step = self._scaled and not self._unscaled
        self.scaler.step(self.optimizer)
        self._stepped = self._used = self._stepped_since_schedule = True
        moved = any(not torch.equal(a, p) for a, p in zip(before, params, strict=True))
        if not moved:
            return (
                "Skipped: a gradient was inf or nan, so optimizer.step() did not run. Weights "
                "and momentum are unchanged; update() will halve the scale.",
                "warning",
            )
        self._scaled = False
        note = " (it unscaled the gradients itself first, since unscale_ had not run)"
        return "The weights moved" + (note if unscaled_by_step else "") + ".", "info"

    def _do_update(self) -> tuple[str, str]:
        scale = self.scaler.get_scale()
        self.scaler.update()
        new = self.scaler.get_scale()
        self._stepped, self._unscaled = False, False
        if new < scale:
            return f"The scale halved, {scale:g} → {new:g}, after the skipped step.", "info"
        if new > scale:
            return f"The scale doubled, {scale:g} → {new:g}, after 2 clean steps in a row.", "info"
        return (
            f"The scale stays {new:g} (it doubles after 2 clean steps here, 2000 by default).",
            "info",
        )

    def _do_scheduler_step(self) -> tuple[str, str]:
        lr = self.optimizer.param_groups[0]["lr"]
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            self.scheduler.step()
        new = self.optimizer.param_groups[0]["lr"]
        text = f"The learning rate went {lr:g} → {new:g}."
        stepped, self._stepped_since_schedule = self._stepped_since_schedule, False
        if caught:
            first = str(caught[0].message).split("In PyTorch")[0].strip()
            return (
                f"{text} PyTorch warns: {first} The first rate of the schedule is skipped.",
                "error",
            )
        if not stepped:
            return f"{text} No optimizer step used the old rate: the schedule ran ahead.", "warning"
        return text, "info"

    def _do_zero_grad(self) -> tuple[str, str]:
        wiped = any(p.grad is not None for p in self.model.parameters()) and not self._used
        self.optimizer.zero_grad()
        self._backwards, self._scaled = 0, False
        if wiped:
            return "The gradients were wiped before any step used them.", "error"
        return ".grad is None again: ready for the next update.", "info"

    # -- drawing --------------------------------------------------------------------------------

    def _rows(self) -> list[tuple[str, str, str]]:
        """(holder, what it holds now, 'changed' if the last click changed it) per holder."""
        params = list(self.model.parameters())
        norm = _grad_norm(params)
        if norm is None:
            grad = "None"
        else:
            kind = "scaled" if self._scaled else "true size"
            grad = f"norm {norm:.4g} ({kind})"
        shown = {
            "parameters": "first weights "
            + ", ".join(f"{v:+.4f}" for v in self.model[0].weight[0, :3].tolist()),
            ".grad": grad,
            "optimizer state": f"momentum buffers for {len(self.optimizer.state)} of {len(params)} parameters",
            "learning rate": f"{self.optimizer.param_groups[0]['lr']:g}",
            "scaler scale": f"{self.scaler.get_scale():g}",
            "scheduler steps": str(self.scheduler.last_epoch),
        }
        return [(h, shown[h], "changed" if h in self.changed else "") for h in HOLDERS]

    def _render(self) -> None:
        if self.scaler is None:
            self._panel.value = ""
            return
        rows = "".join(
            "<tr{}><td>{}</td><td>{}</td><td>{}</td></tr>".format(
                ' style="background:#fff3cd"' if last else "",
                html.escape(holder),
                html.escape(now),
                last,
            )
            for holder, now, last in self._rows()
        )
        self._panel.value = (
            '<table class="looplab-state"><tr><th>holder</th><th>now</th><th>last click</th></tr>'
            f"{rows}</table>"
        )

    def picture(self) -> bytes:
        """A PNG of the panel as it is now: every holder of state and what the last click changed."""
        clicked = " → ".join(c.action for c in self.history[-6:]) or "nothing yet"
        rows = [] if self.scaler is None else self._rows()
        return state_picture(
            f"ScalerStepExplorer (clicked: {clicked})",
            ("holder", "now", "last click"),
            rows,
            self.message,
        )


def _method(action: str) -> str:
    """The name of the method behind a button: "scheduler.step" -> "scheduler_step"."""
    return action.replace(" ", "_").replace(".", "_")
