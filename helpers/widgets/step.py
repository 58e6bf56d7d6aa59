"""TrainingStepExplorer: one button per phase of a training step, clickable in any order.

zero_grad, forward, loss, backward and step each run the real PyTorch call on a real model.
A panel shows the prediction, the loss and, per parameter, its value, its .grad and the
optimizer's state, with what the last click changed highlighted (found with helpers.state).
A click out of the usual order is not an error here: the message says what it did and why.
"""

from __future__ import annotations

import copy
import html
import warnings
from collections.abc import Callable
from typing import Any, NamedTuple

import ipywidgets as widgets
import torch
from torch import nn

from helpers._util import first_line, require_model, require_optimizer, shape_text
from helpers.state import StateDiff, TrainingState, diff, format_value, snapshot
from helpers.widgets._base import Explorer, state_picture

__all__ = ["PHASES", "Click", "TrainingStepExplorer", "default_problem"]

PHASES = ("zero_grad", "forward", "loss", "backward", "step")
_BUTTONS = (*PHASES, "reset")
_CODE = {
    "zero_grad": "optimizer.zero_grad()",
    "forward": "prediction = model(inputs)",
    "loss": "loss = loss_fn(prediction, targets)",
    "backward": "loss.backward()",
    "step": "optimizer.step()",
    "reset": "start again from the first state",
}
_HIGHLIGHT = "background:#fff3b0"


class Click(NamedTuple):
    """One entry of `TrainingStepExplorer.history`: the phase clicked and the message it gave."""

    phase: str
    message: str


def default_problem() -> tuple[
    nn.Module, nn.Module, torch.optim.Optimizer, torch.Tensor, torch.Tensor
]:
    """The built-in example: nn.Linear(2, 1) on 8 seeded points, MSELoss, SGD(lr=0.1, momentum=0.5)."""
    with torch.random.fork_rng(devices=[]):  # same example every time, the caller's RNG untouched
        torch.manual_seed(0)
        inputs = torch.randn(8, 2)
        targets = inputs @ torch.tensor([[2.0], [-3.0]]) + 1.0 + 0.1 * torch.randn(8, 1)
        model = nn.Linear(2, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.5)
    return model, nn.MSELoss(), optimizer, inputs, targets


def _first_sentence(error: BaseException) -> str:
    """PyTorch's own words, shortened to the first sentence of the first line."""
    line = first_line(error, limit=1000) or type(error).__name__
    cut = line.find(". ")
    return line[: cut + 1] if 0 < cut < len(line) - 2 else line


class TrainingStepExplorer(Explorer):
    """Buttons for zero_grad, forward, loss, backward, step and reset, and a panel of the state."""

    PHASES = PHASES
    CAPTION = (
        "TrainingStepExplorer: click zero_grad, forward, loss, backward, step and watch each "
        "tensor change."
    )

    def __init__(
        self,
        model: nn.Module | None = None,
        loss_fn: Callable[[Any, Any], torch.Tensor] | None = None,
        optimizer: torch.optim.Optimizer | None = None,
        inputs: torch.Tensor | None = None,
        targets: torch.Tensor | None = None,
    ) -> None:
        model, loss_fn, optimizer, inputs, targets = _checked(
            model, loss_fn, optimizer, inputs, targets
        )
        self.model = model
        self.loss_fn = loss_fn
        self.optimizer = optimizer
        self.inputs = inputs
        self.targets = targets
        self._initial_model = {k: v.detach().clone() for k, v in model.state_dict().items()}
        self._initial_optimizer = copy.deepcopy(optimizer.state_dict())
        self._initial_grads = [
            None if p.grad is None else p.grad.detach().clone() for p in model.parameters()
        ]
        self.history: list[Click] = []
        self.last_diff: StateDiff = StateDiff(())
        self._forget()

        super().__init__()
        self.buttons = self.click_buttons(_BUTTONS, _CODE, min_width="90px")
        self._panel = widgets.HTML(value="")
        title = widgets.HTML(
            value="<b>One training step, one phase at a time.</b> "
            "Click the phases in any order; the panel shows what each click changed."
        )
        self.children = [
            title,
            widgets.HBox(list(self.buttons.values())),
            self._message_html,
            self._panel,
        ]
        self._state: TrainingState = self.snapshot()
        self.say(
            "Nothing clicked yet. The usual order is zero_grad, forward, loss, backward, step."
        )
        self._render()

    # -- public ---------------------------------------------------------------------------------

    def click(self, phase: str) -> None:
        """Do what the button `phase` does: one of zero_grad, forward, loss, backward, step, reset."""
        if not isinstance(phase, str) or phase not in _BUTTONS:
            raise ValueError(
                f"phase must be one of {', '.join(repr(p) for p in _BUTTONS)}; got {phase!r}."
            )
        before = self.snapshot()  # fresh: the learner may have changed the model in between
        self._fresh = set()
        self._measured: tuple[TrainingState, StateDiff] | None = None
        result = self.safely(lambda: getattr(self, f"_do_{phase}")(before), what=phase)
        if result is not None:
            text, kind = result
            self.say(text, kind)
        self.history.append(Click(phase, self.message))
        self.safely(lambda: self._after(before), what="updating the panel")
        self.history[-1] = Click(phase, self.message)  # the panel's own error, if it had one

    def snapshot(self) -> TrainingState:
        """A helpers.state TrainingState of the model and optimizer as they are now."""
        return snapshot(self.model, self.optimizer)

    @property
    def panel_html(self) -> str:
        """The panel's HTML, as the notebook shows it."""
        return self._panel.value

    def picture(self) -> bytes:
        """A PNG of the panel as it is now: prediction, loss, and each parameter's state."""
        rows = [
            ("prediction", _shown(self.prediction, "not computed yet"), "", ""),
            ("loss", _shown(self.loss, "not computed yet"), "", ""),
        ]
        for name, p in self._state.parameters.items():
            if p.group is None:
                state = "not in the optimizer"
            else:
                state = "; ".join(f"{k}: {_shown(v)}" for k, v in p.optimizer_state.items())
            rows.append((name, _shown(p.value), _shown(p.grad), state or "empty"))
        clicked = " → ".join(c.phase for c in self.history[-6:]) or "nothing yet"
        return state_picture(
            f"TrainingStepExplorer (clicked: {clicked})",
            ("", "value", ".grad", "optimizer state"),
            rows,
            self.message,
        )

    # -- bookkeeping ----------------------------------------------------------------------------

    def _forget(self) -> None:
        """Clear the prediction, the loss and what the explorer remembers about the order."""
        self.prediction: torch.Tensor | None = None
        self.loss: torch.Tensor | None = None
        self._prediction_stale = False  # step changed the weights after the forward
        self._loss_stale = False  # a newer prediction replaced the one this loss came from
        self._graph_used = False  # backward already walked the prediction's graph
        self._loss_used = False  # backward already ran from this loss
        self._accumulated = 0 if all(p.grad is None for p in self._held()) else 1
        self._unused_grads = False  # grads from a backward that no step has used yet
        self._wiped = False  # zero_grad cleared such grads
        self._steps_since_backward = 0
        self._last_step_change: float | None = None
        self._fresh: set[str] = set()

    def _held(self) -> list[torch.Tensor]:
        return [p for group in self.optimizer.param_groups for p in group["params"]]

    def _changes(self, before: TrainingState) -> StateDiff:
        """What the action changed; kept so that the panel need not take the snapshot again."""
        after = self.snapshot()
        self._measured = (after, diff(before, after))
        return self._measured[1]

    def _after(self, before: TrainingState) -> None:
        if self._measured is not None:
            self._state, self.last_diff = self._measured
        else:
            self._state = self.snapshot()
            self.last_diff = diff(before, self._state)
        self._render()

    # -- the phases -----------------------------------------------------------------------------

    def _do_zero_grad(self, before: TrainingState) -> tuple[str, str]:
        held = self._held()
        had_grads = any(p.grad is not None for p in held)
        wiped = self._unused_grads and had_grads
        self.optimizer.zero_grad()
        self._accumulated = 0
        self._unused_grads = False
        self._wiped = wiped
        self._steps_since_backward = 0
        notes = []
        kept = [
            n
            for n, p in self.model.named_parameters()
            if p.grad is not None and not _holds(held, p)
        ]
        if kept:
            notes.append(
                f"It clears only the parameters it holds: {', '.join(kept)} kept their .grad "
                "(model.zero_grad() would clear every one)."
            )
        if not had_grads:
            text = "optimizer.zero_grad(): every .grad was already None, so nothing changed."
            return _with(text, notes, [], "warning" if kept else "info")
        to_none = all(p.grad is None for p in held)
        cleared = "None" if to_none else "zero"
        if wiped:
            text = (
                f"optimizer.zero_grad() set every .grad to {cleared} before step() used them: the "
                "gradients of your backward are gone"
                + (
                    ", so step() would now change nothing (optimizers skip parameters whose "
                    ".grad is None)"
                    if to_none
                    else ""
                )
                + ". In a loop, zero_grad belongs before backward or after step, never between them."
            )
            return _with(text, notes, [], "warning")
        text = (
            f"optimizer.zero_grad() set every .grad to {cleared}, ready for the next backward; "
            "the weights and the optimizer's state did not change."
        )
        return _with(text, notes, [], "warning" if kept else "info")

    def _do_forward(self, before: TrainingState) -> tuple[str, str]:
        old = self.prediction
        warn = False
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            prediction = self.model(self.inputs)
        self.prediction = prediction
        self._fresh.add("prediction")
        self._prediction_stale = False
        self._graph_used = False
        notes = []
        if self.loss is not None and not self._loss_stale:
            self._loss_stale = True
            if not self._loss_used:
                warn = True
                notes.append(
                    "The loss on the panel still belongs to the previous prediction; click loss "
                    "for this one."
                )
        if old is not None and _same_tensor(old, prediction):
            notes.append(
                "Same values as before, because the weights have not changed (but a new graph)."
            )
        count = prediction.numel() if isinstance(prediction, torch.Tensor) else 1
        text = (
            f"prediction = model(inputs) computed {count} value{'' if count == 1 else 's'} "
            "from the current weights and recorded the graph that backward will walk; "
            "weights, .grad and optimizer state did not change."
        )
        return _with(text, notes, caught, "warning" if warn else "info")

    def _do_loss(self, before: TrainingState) -> tuple[str, str]:
        if self.prediction is None:
            return (
                "There is no prediction yet, so there is nothing to compare with the targets: "
                "click forward first, then loss. Nothing changed.",
                "warning",
            )
        again = self.loss is not None and not self._loss_stale
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            loss = self.loss_fn(self.prediction, self.targets)
        self.loss = loss
        self._fresh.add("loss")
        self._loss_stale = False
        self._loss_used = False
        value = _scalar_text(loss)
        notes = []
        if again:
            notes.append(
                "Computed again from the same prediction: the same number, in a new graph node."
            )
        warn = self._prediction_stale or self._graph_used
        if self._prediction_stale:
            notes.append(
                "But the prediction was made before the last step, so this is the loss of the "
                "old weights: click forward for the current ones."
            )
        elif self._graph_used:
            notes.append(
                "Note: backward already walked this prediction's graph and freed what it saved; "
                "click forward before the next backward."
            )
        text = (
            f"loss = loss_fn(prediction, targets) = {value}: one number (a 0-dim tensor) at the "
            "end of the graph; weights, .grad and optimizer state did not change."
        )
        return _with(text, notes, caught, "warning" if warn else "info")

    def _do_backward(self, before: TrainingState) -> tuple[str, str]:
        if self.loss is None:
            if self.prediction is None:
                return (
                    "There is no loss yet, so backward has nothing to start from: click forward, "
                    "then loss, then backward. Nothing changed.",
                    "warning",
                )
            return (
                "There is a prediction but no loss yet, so backward has nothing to start from: "
                "click loss, then backward. Nothing changed.",
                "warning",
            )
        try:
            self.loss.backward()
        except RuntimeError as error:
            return self._backward_failed(error), "warning"
        self._loss_used = True
        self._graph_used = True
        self._unused_grads = True
        self._wiped = False
        self._steps_since_backward = 0
        self._accumulated += 1
        changes = self._changes(before)
        notes = []
        if self._loss_stale:
            notes.append(
                "These gradients belong to the loss of an earlier prediction, not the latest one."
            )
        if self._prediction_stale:
            notes.append(
                "The prediction was made before the last step, so these are the gradients at the "
                "old weights."
            )
        if self._accumulated > 1:
            text = (
                "loss.backward() added this pass's gradients to those already in .grad (no "
                f"zero_grad in between): each .grad is now the sum of {self._accumulated} "
                f"backward passes.{_sum_example(before, changes)} The weights did not change."
            )
            return _with(text, notes, [], "warning")
        text = (
            "loss.backward() filled .grad of every parameter with d(loss)/d(parameter); "
            "the weights did not change."
        )
        missing = [n for n, grad in self._trainable_grads() if grad is None]
        if missing:
            notes.append(
                f"No gradient reached {', '.join(missing)}: the loss does not depend on it."
            )
        return _with(text, notes, [], "warning" if notes else "info")

    def _backward_failed(self, error: RuntimeError) -> str:
        words = _first_sentence(error)
        said = f"PyTorch refused: “{words}”"
        text = str(error)
        if "second time" in text or "freed" in text:
            return (
                f"{said} backward() frees the graph it walks, so the same forward pass cannot be "
                "backpropagated twice. Click forward and loss again, then backward."
            )
        if "modified by an inplace operation" in text:
            return (
                f"{said} step() changed the weights in place after this prediction was computed, "
                "and backward needs them as they were. Click forward and loss again, then "
                "backward."
            )
        if "does not require grad" in text:
            return (
                f"{said} The loss is not connected to any parameter (did loss_fn use .item(), "
                ".detach() or torch.no_grad()?). Return a tensor computed from the prediction."
            )
        return f"{said} Click forward and loss again, then backward."

    def _do_step(self, before: TrainingState) -> tuple[str, str]:
        stale_outputs = self.prediction is not None and not self._prediction_stale
        self.optimizer.step()
        changes = self._changes(before)
        moved = [c for c in changes if c.what == "value"]
        held = self._held()
        if not moved:
            if all(p.grad is None for p in held):
                why = (
                    "zero_grad wiped the gradients of your backward before step could use them"
                    if self._wiped
                    else "no backward has filled them since the start or the last zero_grad"
                )
                text = (
                    "optimizer.step() changed nothing: every .grad is None, and the optimizer "
                    f"skips parameters whose .grad is None ({why}). Weights and optimizer state "
                    "are exactly as before: click forward, loss and backward first."
                )
                return text, "warning"
            return (
                "optimizer.step() ran but no weight changed (the gradients are zero, or the "
                "learning rate is 0).",
                "warning",
            )
        self._unused_grads = False
        largest = max((c.max_abs_change or 0.0) for c in moved)
        previous = self._last_step_change
        self._last_step_change = largest
        self._steps_since_backward += 1
        if stale_outputs:
            self._prediction_stale = True
        notes = []
        skipped = [
            n for n, p in before.parameters.items() if p.group is not None and p.grad is None
        ]
        if skipped:
            notes.append(f"Skipped {', '.join(skipped)} (.grad is None).")
        if stale_outputs:
            notes.append(
                "The prediction and loss on the panel were computed with the old weights: click "
                "forward for new ones."
            )
        if self._steps_since_backward > 1:
            grown = sorted(
                {
                    c.what[7:-2]
                    for c in changes
                    if c.what.startswith("state[") and c.kind == "changed"
                }
            )
            buffers = (
                f" The optimizer's state ({', '.join(grown)}) changed again too." if grown else ""
            )
            if (
                "momentum_buffer" in grown
                and _rule(self.optimizer).startswith(" (buf")
                and previous is not None
                and largest > previous
            ):
                buffers = (
                    " The momentum buffer grew (buf ← momentum·buf + p.grad), so this move is "
                    "bigger than the last."
                )
            text = (
                "optimizer.step() ran again with the same .grad (no new backward in between): the "
                "weights moved again, another update from the same gradient "
                f"(largest change now {format_value(largest)}, the previous step "
                f"{format_value(previous)}).{buffers}"
            )
            return _with(text, notes, [], "warning")
        created = sorted(
            {c.what[7:-2] for c in changes if c.what.startswith("state[") and c.kind == "appeared"}
        )
        made = f" and created the optimizer's state ({', '.join(created)})" if created else ""
        text = (
            f"optimizer.step() changed the weights in place{_rule(self.optimizer)}{made}; "
            f".grad is unchanged (largest weight change {format_value(largest)})."
        )
        return _with(text, notes, [])

    def _do_reset(self, before: TrainingState) -> tuple[str, str]:
        self.model.load_state_dict(self._initial_model)
        self.optimizer.load_state_dict(copy.deepcopy(self._initial_optimizer))
        for p, grad in zip(self.model.parameters(), self._initial_grads, strict=True):
            p.grad = None if grad is None else grad.clone()
        self._forget()
        self._fresh = {"prediction", "loss"}
        return (
            "Back to the start: the first weights and .grad, the optimizer's state as it began, "
            "no prediction and no loss.",
            "info",
        )

    # -- helpers for the messages -----------------------------------------------------------------

    def _trainable_grads(self) -> list[tuple[str, torch.Tensor | None]]:
        held = {id(p) for p in self._held()}
        return [
            (n, p.grad)
            for n, p in self.model.named_parameters()
            if id(p) in held and p.requires_grad
        ]

    # -- the panel ------------------------------------------------------------------------------

    def _render(self) -> None:
        self._panel.value = self._panel_html()

    def _panel_html(self) -> str:
        state = self._state
        parts = ['<div class="looplab-step-panel" style="font-size:0.95em">']
        clicked = [c.phase for c in self.history[-9:]]
        if clicked:
            more = "… → " if len(self.history) > 9 else ""
            parts.append(f"<div>Clicked: {more}{html.escape(' → '.join(clicked))}</div>")
        rows = [
            ("prediction", self.prediction, self._prediction_note()),
            ("loss", self.loss, self._loss_note()),
        ]
        parts.append('<table style="border-collapse:collapse;margin:4px 0">')
        for label, value, note in rows:
            style = _HIGHLIGHT if label in self._fresh else ""
            shown = "not computed yet" if value is None else format_value(value)
            extra = f' <span style="color:#666">({html.escape(note)})</span>' if note else ""
            parts.append(
                f'<tr><td style="{_CELL}"><b>{label}</b></td>'
                f'<td style="{_CELL};{style}"><code>{html.escape(shown)}</code>{extra}</td></tr>'
            )
        parts.append("</table>")
        parts.append('<table style="border-collapse:collapse;margin:4px 0"><tr>')
        for head in ("parameter", "value", ".grad", "optimizer state"):
            parts.append(f'<th style="{_CELL};background:#f0f0f0">{head}</th>')
        parts.append("</tr>")
        for name, p in state.parameters.items():
            cells = [f'<td style="{_CELL}"><code>{html.escape(name)}</code></td>']
            for what, value in (("value", p.value), ("grad", p.grad)):
                cells.append(self._cell(name, what, format_value(value)))
            if p.group is None:
                cells.append(f'<td style="{_CELL}">not in the optimizer</td>')
            else:
                keys = list(p.optimizer_state) + [
                    c.what[7:-2]
                    for c in self.last_diff
                    if c.parameter == name
                    and c.kind == "disappeared"
                    and c.what.startswith("state[")
                ]
                lines = []
                for key in keys:
                    value = p.optimizer_state.get(key)
                    change = self.last_diff.get(name, f"state[{key!r}]")
                    style = f' style="{_HIGHLIGHT}"' if change is not None else ""
                    note = _note(change)
                    lines.append(
                        f"<div{style}>{html.escape(key)}: <code>{html.escape(format_value(value))}</code>{note}</div>"
                    )
                cells.append(f'<td style="{_CELL}">{"".join(lines) or "empty"}</td>')
            parts.append("<tr>" + "".join(cells) + "</tr>")
        parts.append("</table>")
        for g, group in enumerate(state.hyperparameters):
            shown = ", ".join(f"{k}={format_value(v)}" for k, v in group.items())
            parts.append(
                f'<div style="color:#444">{html.escape(type(self.optimizer).__name__)} '
                f"param_groups[{g}]: <code>{html.escape(shown)}</code></div>"
            )
        parts.append(
            f'<div style="color:#666"><span style="{_HIGHLIGHT}">Highlighted</span>: '
            "changed by the last click.</div></div>"
        )
        return "".join(parts)

    def _cell(self, name: str, what: str, shown: str) -> str:
        change = self.last_diff.get(name, what)
        style = f"{_CELL};{_HIGHLIGHT}" if change is not None else _CELL
        return f'<td style="{style}"><code>{html.escape(shown)}</code>{_note(change)}</td>'

    def _prediction_note(self) -> str:
        if self.prediction is not None and self._prediction_stale:
            return "made before the last step, from the old weights"
        return ""

    def _loss_note(self) -> str:
        if self.loss is None:
            return ""
        if self._loss_stale:
            return "from an earlier prediction"
        if self._loss_used:
            return "backward already ran from it"
        return ""


_CELL = "border:1px solid #ccc;padding:2px 6px;text-align:left;vertical-align:top"


def _note(change: Any) -> str:
    if change is None:
        return ""
    if change.kind == "changed" and change.max_abs_change is not None:
        text = f"changed by up to {format_value(change.max_abs_change)}"
    elif change.kind == "appeared":
        text = "new"
    elif change.kind == "disappeared":
        text = "now None"
    else:
        text = change.kind
    return f' <span style="color:#8a5a00">({html.escape(text)})</span>'


def _shown(value: Any, missing: str = "None") -> str:
    """format_value's text of a value, or `missing` for None (a cell of the stored picture)."""
    return missing if value is None else format_value(value)


def _holds(held: list[torch.Tensor], p: torch.Tensor) -> bool:
    return any(q is p for q in held)


def _same_tensor(a: Any, b: Any) -> bool:
    return (
        isinstance(a, torch.Tensor)
        and isinstance(b, torch.Tensor)
        and a.shape == b.shape
        and torch.equal(a.detach(), b.detach())
    )


def _scalar_text(loss: Any) -> str:
    if isinstance(loss, torch.Tensor) and loss.numel() == 1:
        return format_value(float(loss.detach().reshape(())))
    return format_value(loss)


def _with(
    text: str, notes: list[str], caught: list[warnings.WarningMessage], kind: str = "info"
) -> tuple[str, str]:
    """Join a message, its notes and any warning PyTorch gave (shown, not printed to stderr)."""
    said = [f"PyTorch warned: {str(w.message).strip().splitlines()[0]}" for w in caught[:2]]
    if said:
        kind = "warning"
    return " ".join([text, *notes, *said]), kind


def _sum_example(before: TrainingState, changes: StateDiff) -> str:
    """' weight.grad: old + this pass = new.' for the first parameter, when it is small."""
    for change in changes:
        if change.what == "grad" and change.kind == "changed":
            old, new = change.before, change.after
            if new.numel() > 4:
                return ""
            added = new - old
            return (
                f" {change.parameter}.grad: {format_value(old)} + {format_value(added)} "
                f"= {format_value(new)}."
            )
    return ""


def _rule(optimizer: torch.optim.Optimizer) -> str:
    """The update rule in words, when it is the plain one; '' otherwise."""
    if len(optimizer.param_groups) != 1:
        return ""
    group = optimizer.param_groups[0]
    if isinstance(optimizer, torch.optim.SGD):
        plain = (
            not group.get("weight_decay")
            and not group.get("maximize")
            and not group.get("nesterov")
        )
        if plain and not group.get("momentum"):
            return " (p ← p − lr·p.grad)"
        if plain and not group.get("dampening"):
            return " (buf ← momentum·buf + p.grad, then p ← p − lr·buf)"
        return ""
    if (
        type(optimizer) is torch.optim.Adam
        and not group.get("amsgrad")
        and not group.get("maximize")
    ):
        return " (Adam: running averages exp_avg of p.grad and exp_avg_sq of p.grad², then a step of about lr in each coordinate)"
    return ""


def _checked(
    model: Any, loss_fn: Any, optimizer: Any, inputs: Any, targets: Any
) -> tuple[nn.Module, Callable[..., Any], torch.optim.Optimizer, torch.Tensor, torch.Tensor]:
    """Fill in the built-in example where arguments are left out, and check the rest."""
    if model is not None:
        require_model(model)
    if loss_fn is not None and not callable(loss_fn):
        raise TypeError(
            f"loss_fn must be callable, such as nn.MSELoss() or F.mse_loss, not {type(loss_fn).__name__}."
        )
    require_optimizer(optimizer, allow_none=True)
    for label, value in (("inputs", inputs), ("targets", targets)):
        if value is not None and not isinstance(value, torch.Tensor):
            raise TypeError(
                f"{label} must be a torch.Tensor, not {type(value).__name__}; "
                f"convert it with torch.tensor(...)."
            )
    if (inputs is None) != (targets is None):
        raise ValueError("pass inputs and targets together (both or neither).")
    if model is None:
        if optimizer is not None:
            raise ValueError(
                "optimizer was given without model: an optimizer must hold the model's own "
                "parameters. Pass model=... as well, or leave both out for the built-in example."
            )
        model, default_loss, optimizer, default_inputs, default_targets = default_problem()
        loss_fn = default_loss if loss_fn is None else loss_fn
        if inputs is None:
            inputs, targets = default_inputs, default_targets
    elif inputs is None:
        raise ValueError(
            "with your own model, pass inputs and targets too, e.g. "
            "TrainingStepExplorer(model, loss_fn, optimizer, inputs=X, targets=y)."
        )
    assert inputs is not None and targets is not None
    if inputs.dim() == 0 or targets.dim() == 0:
        label = "inputs" if inputs.dim() == 0 else "targets"
        raise ValueError(f"{label} must have a batch dimension first, not be a single number.")
    if inputs.shape[0] != targets.shape[0]:
        raise ValueError(
            f"inputs and targets must have the same number of samples (first dimension): inputs "
            f"has shape {shape_text(inputs)}, targets {shape_text(targets)}."
        )
    trainable = [p for p in model.parameters() if p.requires_grad]
    if not trainable:
        raise ValueError(
            "model has no parameters that require grad, so there is nothing to train; "
            "use a model with parameters (e.g. nn.Linear(2, 1)) or unfreeze them."
        )
    if loss_fn is None:
        loss_fn = nn.MSELoss()
    if optimizer is None:
        optimizer = torch.optim.SGD(trainable, lr=0.1, momentum=0.5)
    else:
        held = [p for group in optimizer.param_groups for p in group["params"]]
        if not any(q is p for q in held for p in trainable):
            raise ValueError(
                "optimizer holds none of model's parameters (checked with `is`), so step() "
                "could never change the model: build it from this model, e.g. "
                "torch.optim.SGD(model.parameters(), lr=0.1)."
            )
    _dry_run(model, loss_fn, inputs, targets)
    return model, loss_fn, optimizer, inputs, targets


def _dry_run(
    model: nn.Module, loss_fn: Callable[..., Any], inputs: torch.Tensor, targets: torch.Tensor
) -> None:
    """Run forward and loss once without a graph, so a shape mistake is reported now."""
    saved = {k: v.detach().clone() for k, v in model.state_dict().items()}
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a warning is shown when the learner clicks loss
            try:
                prediction = model(inputs)
            except Exception as error:
                raise ValueError(
                    f"model(inputs) failed with {type(error).__name__}: {_first_sentence(error)} "
                    f"Check that inputs (shape {shape_text(inputs)}, {inputs.dtype}) is what the "
                    "model expects."
                ) from error
            try:
                loss = loss_fn(prediction, targets)
            except Exception as error:
                shape = shape_text(prediction) if isinstance(prediction, torch.Tensor) else "?"
                raise ValueError(
                    f"loss_fn(prediction, targets) failed with {type(error).__name__}: "
                    f"{_first_sentence(error)} The prediction has shape {shape}, targets "
                    f"{shape_text(targets)}: check that they fit loss_fn."
                ) from error
    finally:
        model.load_state_dict(saved)  # undo side effects such as BatchNorm's running statistics
    if not isinstance(loss, torch.Tensor):
        raise TypeError(
            f"loss_fn must return a torch.Tensor, but it returned {type(loss).__name__} "
            "(did it call .item()?); return the tensor so backward() can start from it."
        )
    if loss.numel() != 1:
        raise ValueError(
            f"loss_fn must return one number, but it returned shape {shape_text(loss)}: backward() "
            "without an argument needs a single value; use reduction='mean' (or 'sum')."
        )
