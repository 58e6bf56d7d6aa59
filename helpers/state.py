"""Snapshots of a model's parameters, gradients and optimizer state, and what changed between two.

`snapshot(model, optimizer)` copies, for every parameter (by its name in `named_parameters()`),
its value, its `.grad` (or None) and the optimizer's state for it (`momentum_buffer`, `exp_avg`,
`step`, ...), plus the optimizer's hyper-parameters. `diff(before, after)` lists what changed.
`ownership(model, optimizer)` tabulates who holds which state, read from the live objects.
Every result prints as a plain-text table and shows as an HTML table in a notebook, with numbers
rounded to 4 significant digits and large tensors summarised.
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from helpers._util import require_model, require_optimizer, shape_text

__all__ = [
    "Change",
    "Ownership",
    "ParameterState",
    "StateDiff",
    "TrainingState",
    "diff",
    "format_value",
    "ownership",
    "snapshot",
]

MAX_SHOWN = 8  # tensors with at most this many elements are shown in full
_FIRST = 3  # how many leading values a summary of a large tensor shows


# ---------------------------------------------------------------------------------------------
# Formatting
# ---------------------------------------------------------------------------------------------


def _number(x: float | int | bool) -> str:
    if isinstance(x, bool):
        return str(x)
    if isinstance(x, int):
        return str(x)
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    if x == 0:
        return "0"  # also for -0.0, whose sign is noise
    return f"{x:.4g}"


def _nested(values: Any) -> str:
    if isinstance(values, list):
        return "[" + ", ".join(_nested(v) for v in values) + "]"
    return _number(values)


def format_value(value: Any, max_elements: int = MAX_SHOWN) -> str:
    """Format a tensor, number or None for a table: 4 significant digits, large tensors summarised."""
    if isinstance(max_elements, bool) or not isinstance(max_elements, int):
        raise TypeError(
            f"max_elements must be a whole number such as 8, not {type(max_elements).__name__}."
        )
    if max_elements < 0:
        raise ValueError(f"max_elements must be 0 or more, got {max_elements}.")
    if value is None:
        return "None"
    if isinstance(value, torch.Tensor):
        t = value.detach()
        if t.is_complex():
            return f"complex tensor of shape {shape_text(t)}"
        if t.device.type == "meta":
            return f"tensor of shape {shape_text(t)} (no values: meta device)"
        t = t.cpu()
        if t.numel() <= max_elements:
            return _nested(t.tolist())
        flat = t.reshape(-1)
        first = ", ".join(_number(v) for v in flat[:_FIRST].tolist())
        norm = (
            _number(float(torch.linalg.vector_norm(flat.double())))
            if flat.is_floating_point()
            else None
        )
        described = f"shape {shape_text(t)}"
        if norm is not None:
            described += f", norm {norm}"
        return f"{described}, first {first}, …"
    if isinstance(value, (bool, int, float)):
        return _number(value)
    if isinstance(value, (tuple, list)):
        inner = ", ".join(format_value(v, max_elements) for v in value)
        return f"({inner})" if isinstance(value, tuple) else f"[{inner}]"
    text = repr(value)
    text = re.sub(r" at 0x[0-9a-fA-F]+", "", text)  # no memory addresses in stored outputs
    return text if len(text) <= 60 else text[:59] + "…"


def _text_table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
        for row in [header, *rows]
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


_CELL = (
    "border:1px solid #ccc;padding:2px 6px;text-align:left;vertical-align:top;font-family:monospace"
)
_HEAD = "border:1px solid #ccc;padding:2px 6px;text-align:left;background:#f0f0f0"


def _html_table(header: tuple[str, ...], rows: list[tuple[str, ...]], caption: str = "") -> str:
    parts = ['<table style="border-collapse:collapse;margin:4px 0">']
    if caption:
        parts.append(
            f'<caption style="text-align:left;font-weight:bold">{html.escape(caption)}</caption>'
        )
    parts.append(
        "<tr>" + "".join(f'<th style="{_HEAD}">{html.escape(h)}</th>' for h in header) + "</tr>"
    )
    for row in rows:
        parts.append(
            "<tr>" + "".join(f'<td style="{_CELL}">{html.escape(c)}</td>' for c in row) + "</tr>"
        )
    parts.append("</table>")
    return "".join(parts)


def _hyper_text(group: dict[str, Any]) -> str:
    return ", ".join(f"{key}={format_value(value)}" for key, value in group.items())


# ---------------------------------------------------------------------------------------------
# Snapshots
# ---------------------------------------------------------------------------------------------


def _copy(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.detach().clone()
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_copy(v) for v in value)
    return value


@dataclass(frozen=True, eq=False)
class ParameterState:
    """One parameter at one moment: a copy of its value, its .grad and the optimizer's state for it."""

    name: str
    value: torch.Tensor
    grad: torch.Tensor | None
    optimizer_state: dict[str, Any] = field(default_factory=dict)
    group: int | None = None  # index into optimizer.param_groups, None if the optimizer lacks it


@dataclass(frozen=True, eq=False)
class TrainingState:
    """Copies of every parameter, gradient and optimizer buffer at one moment (see `snapshot`)."""

    parameters: dict[str, ParameterState]
    hyperparameters: tuple[dict[str, Any], ...] = ()
    optimizer_name: str | None = None

    def __getitem__(self, name: str) -> ParameterState:
        if name not in self.parameters:
            known = ", ".join(self.parameters) or "none"
            raise KeyError(
                f"no parameter called {name!r} in this snapshot; its parameters: {known}."
            )
        return self.parameters[name]

    def __contains__(self, name: object) -> bool:
        return name in self.parameters

    def __iter__(self) -> Iterator[str]:
        return iter(self.parameters)

    def __len__(self) -> int:
        return len(self.parameters)

    @property
    def names(self) -> list[str]:
        """The parameter names, in the model's order."""
        return list(self.parameters)

    def __repr__(self) -> str:
        return f"TrainingState({len(self.parameters)} parameters, optimizer={self.optimizer_name})"

    def _rows(self) -> list[tuple[str, ...]]:
        rows = []
        for p in self.parameters.values():
            if p.group is None and self.optimizer_name is not None:
                state = "(not in the optimizer)"
            elif p.optimizer_state:
                state = "; ".join(f"{k}: {format_value(v)}" for k, v in p.optimizer_state.items())
            else:
                state = "—"
            rows.append(
                (p.name, shape_text(p.value), format_value(p.value), format_value(p.grad), state)
            )
        return rows

    _HEADER = ("parameter", "shape", "value", ".grad", "optimizer state")

    def __str__(self) -> str:
        lines = [
            f"Training state: {len(self.parameters)} parameters, optimizer {self.optimizer_name}"
        ]
        lines.append(_text_table(self._HEADER, self._rows()))
        for i, group in enumerate(self.hyperparameters):
            lines.append(f"param_groups[{i}]: {_hyper_text(group)}")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        caption = (
            f"Training state: {len(self.parameters)} parameters, optimizer {self.optimizer_name}"
        )
        parts = [_html_table(self._HEADER, self._rows(), caption)]
        for i, group in enumerate(self.hyperparameters):
            parts.append(
                f"<div><code>param_groups[{i}]</code>: <code>{html.escape(_hyper_text(group))}</code></div>"
            )
        return "<div>" + "".join(parts) + "</div>"


def _optimizer_names(
    model: nn.Module, optimizer: torch.optim.Optimizer
) -> list[tuple[str, int, nn.Parameter]]:
    """(name, group index, parameter) for every parameter the optimizer holds, in its order."""
    by_id = {id(p): name for name, p in model.named_parameters()}
    held = []
    for g, group in enumerate(optimizer.param_groups):
        for i, p in enumerate(group["params"]):
            held.append((by_id.get(id(p), f"param_groups[{g}]['params'][{i}]"), g, p))
    return held


def snapshot(model: nn.Module, optimizer: torch.optim.Optimizer | None = None) -> TrainingState:
    """Copy every parameter's value and .grad, and the optimizer's state and hyper-parameters."""
    require_model(model)
    require_optimizer(optimizer, allow_none=True)
    groups: dict[int, int] = {}
    states: dict[int, dict[str, Any]] = {}
    extra: list[tuple[str, int, torch.Tensor]] = []
    hyper: tuple[dict[str, Any], ...] = ()
    if optimizer is not None:
        model_ids = {id(p) for p in model.parameters()}
        for name, g, p in _optimizer_names(model, optimizer):
            groups[id(p)] = g
            states[id(p)] = _copy(dict(optimizer.state.get(p, {})))
            if id(p) not in model_ids:
                extra.append((name, g, p))
        hyper = tuple(
            {k: _copy(v) for k, v in group.items() if k != "params"}
            for group in optimizer.param_groups
        )
    parameters: dict[str, ParameterState] = {}
    everything = [(name, p) for name, p in model.named_parameters()] + [(n, p) for n, _, p in extra]
    for name, p in everything:
        parameters[name] = ParameterState(
            name=name,
            value=p.detach().clone(),
            grad=None if p.grad is None else p.grad.detach().clone(),
            optimizer_state=states.get(id(p), {}),
            group=groups.get(id(p)),
        )
    name = None if optimizer is None else type(optimizer).__name__
    return TrainingState(parameters=parameters, hyperparameters=hyper, optimizer_name=name)


# ---------------------------------------------------------------------------------------------
# Differences
# ---------------------------------------------------------------------------------------------

_MISSING = object()


@dataclass(frozen=True, eq=False)
class Change:
    """One thing that differs between two snapshots.

    `parameter` is a parameter name, or "param_groups[i]" for a hyper-parameter; `what` is
    "value", "grad", "state['<key>']" (an optimizer buffer), a hyper-parameter's key, or
    "parameter" when a whole parameter was added or removed. `kind` is one of "changed",
    "appeared", "disappeared", "reshaped", "added" or "removed".
    """

    parameter: str
    what: str
    kind: str
    before: Any
    after: Any
    max_abs_change: float | None = None

    def describe(self) -> str:
        """One line: what changed and by how much."""
        if self.kind == "changed":
            small = not any(
                isinstance(v, torch.Tensor) and v.numel() > MAX_SHOWN
                for v in (self.before, self.after)
            )
            values = f"{format_value(self.before)} → {format_value(self.after)}"
            if self.max_abs_change is None:
                return values
            largest = f"largest change {_number(self.max_abs_change)}"
            return f"{values} ({largest})" if small else largest
        if self.kind == "reshaped":
            return f"shape {shape_text(self.before)} → {shape_text(self.after)}"
        if self.kind in ("appeared", "added"):
            return f"None → {format_value(self.after)}"
        return f"{format_value(self.before)} → None"

    def __str__(self) -> str:
        return f"{self.parameter} {self.what}: {self.kind}, {self.describe()}"

    def __repr__(self) -> str:
        return f"Change({self.parameter!r}, {self.what!r}, {self.kind!r})"


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor):
        if a.shape != b.shape or a.dtype != b.dtype:
            return False
        if torch.equal(a, b):
            return True
        if a.is_floating_point() or a.is_complex():  # NaN in the same places counts as the same
            return bool(((a == b) | (a.isnan() & b.isnan())).all())
        return torch.equal(a, b)
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        return False
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return (
            type(a) is type(b)
            and len(a) == len(b)
            and all(_same(x, y) for x, y in zip(a, b, strict=True))
        )
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    try:
        return bool(a == b)
    except Exception:  # an exotic value whose == does not give a truth value
        return a is b


def _largest_change(a: Any, b: Any) -> float | None:
    if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor):
        if a.shape != b.shape or a.numel() == 0:
            return None
        if not (
            a.is_floating_point()
            or a.dtype in (torch.int8, torch.int16, torch.int32, torch.int64, torch.uint8)
        ):
            return None
        return float((b.double() - a.double()).abs().max())
    numbers = (int, float)
    if (
        isinstance(a, numbers)
        and isinstance(b, numbers)
        and not isinstance(a, bool)
        and not isinstance(b, bool)
    ):
        return float(abs(b - a))
    return None


def _compare(parameter: str, what: str, a: Any, b: Any) -> Change | None:
    if a is None and b is None:
        return None
    if a is None:
        return Change(parameter, what, "appeared", None, b)
    if b is None:
        return Change(parameter, what, "disappeared", a, None)
    if _same(a, b):
        return None
    if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and a.shape != b.shape:
        return Change(parameter, what, "reshaped", a, b)
    return Change(parameter, what, "changed", a, b, _largest_change(a, b))


@dataclass(frozen=True, eq=False)
class StateDiff:
    """What changed between two TrainingStates (see `diff`): a sequence of Change records."""

    changes: tuple[Change, ...]

    def __len__(self) -> int:
        return len(self.changes)

    def __iter__(self) -> Iterator[Change]:
        return iter(self.changes)

    def get(self, parameter: str, what: str) -> Change | None:
        """The change to `what` ("value", "grad", "state['exp_avg']", "lr") of `parameter`, or None."""
        for change in self.changes:
            if change.parameter == parameter and change.what == what:
                return change
        return None

    def parameters_changed(self, what: str = "value") -> list[str]:
        """Names of the parameters whose `what` changed ("value" by default), in order."""
        return [c.parameter for c in self.changes if c.what == what]

    def __repr__(self) -> str:
        n = len(self.changes)
        return f"StateDiff({n} change{'' if n == 1 else 's'})"

    _HEADER = ("parameter", "what", "kind", "detail")

    def _rows(self) -> list[tuple[str, ...]]:
        return [(c.parameter, c.what, c.kind, c.describe()) for c in self.changes]

    def __str__(self) -> str:
        if not self.changes:
            return "No changes: every value, .grad and optimizer buffer is exactly as before."
        n = len(self.changes)
        return f"{n} change{'' if n == 1 else 's'}:\n" + _text_table(self._HEADER, self._rows())

    def _repr_html_(self) -> str:
        if not self.changes:
            return f"<div>{html.escape(str(self))}</div>"
        n = len(self.changes)
        return _html_table(self._HEADER, self._rows(), f"{n} change{'' if n == 1 else 's'}")


def diff(before: TrainingState, after: TrainingState) -> StateDiff:
    """List what changed from `before` to `after`: values, grads, optimizer buffers, hyper-parameters."""
    for label, value in (("before", before), ("after", after)):
        if not isinstance(value, TrainingState):
            raise TypeError(
                f"{label} must be a TrainingState made by helpers.state.snapshot(model, optimizer), "
                f"not {type(value).__name__}."
            )
    changes: list[Change] = []
    for name, old in before.parameters.items():
        new = after.parameters.get(name)
        if new is None:
            changes.append(Change(name, "parameter", "removed", old.value, None))
            continue
        for what, a, b in (("value", old.value, new.value), ("grad", old.grad, new.grad)):
            change = _compare(name, what, a, b)
            if change is not None:
                changes.append(change)
        keys = list(old.optimizer_state) + [
            k for k in new.optimizer_state if k not in old.optimizer_state
        ]
        for key in keys:
            change = _compare(
                name, f"state[{key!r}]", old.optimizer_state.get(key), new.optimizer_state.get(key)
            )
            if change is not None:
                changes.append(change)
    for name, new in after.parameters.items():
        if name not in before.parameters:
            changes.append(Change(name, "parameter", "added", None, new.value))
    for g in range(max(len(before.hyperparameters), len(after.hyperparameters))):
        old_group = before.hyperparameters[g] if g < len(before.hyperparameters) else {}
        new_group = after.hyperparameters[g] if g < len(after.hyperparameters) else {}
        keys = list(old_group) + [k for k in new_group if k not in old_group]
        for key in keys:
            a, b = old_group.get(key, _MISSING), new_group.get(key, _MISSING)
            if a is _MISSING or b is _MISSING:
                kind = "added" if a is _MISSING else "removed"
                changes.append(
                    Change(
                        f"param_groups[{g}]",
                        key,
                        kind,
                        None if a is _MISSING else a,
                        None if b is _MISSING else b,
                    )
                )
            elif not _same(a, b):
                changes.append(
                    Change(f"param_groups[{g}]", key, "changed", a, b, _largest_change(a, b))
                )
    return StateDiff(tuple(changes))


# ---------------------------------------------------------------------------------------------
# Who holds which state
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Ownership:
    """The "who holds which state" table, read from a live model and optimizer (see `ownership`).

    `rows` are (owner, holds, details) strings; `same_objects[name]` is True when the optimizer
    holds that very Parameter object of the model (checked with `is`); `state_keys[name]` lists
    the optimizer's per-parameter state keys from `optimizer.state_dict()`.
    """

    rows: tuple[tuple[str, str, str], ...]
    same_objects: dict[str, bool]
    state_keys: dict[str, tuple[str, ...]]
    model_name: str
    optimizer_name: str | None

    _HEADER = ("owner", "holds", "details")

    def __repr__(self) -> str:
        return f"Ownership(model={self.model_name}, optimizer={self.optimizer_name})"

    def __str__(self) -> str:
        return _text_table(self._HEADER, list(self.rows))

    def _repr_html_(self) -> str:
        return _html_table(self._HEADER, list(self.rows), "Who holds which state")


def _names_list(names: list[str], limit: int = 12) -> str:
    if len(names) <= limit:
        return ", ".join(names)
    return ", ".join(names[:limit]) + f", … and {len(names) - limit} more"


def ownership(model: nn.Module, optimizer: torch.optim.Optimizer | None = None) -> Ownership:
    """Build the "who holds which state" table from the live model and optimizer."""
    require_model(model)
    require_optimizer(optimizer, allow_none=True)
    model_name = type(model).__name__
    named = list(model.named_parameters())
    rows: list[tuple[str, str, str]] = []
    shapes = [f"{n} {shape_text(p)}" for n, p in named]
    rows.append(
        (f"model ({model_name})", "parameters (named_parameters())", _names_list(shapes) or "none")
    )
    for n, p in named:
        grad = "None" if p.grad is None else f"tensor of shape {shape_text(p.grad)}"
        rows.append((f"parameter {n}", ".grad", grad))
    same: dict[str, bool] = {}
    keys: dict[str, tuple[str, ...]] = {}
    if optimizer is None:
        return Ownership(tuple(rows), same, keys, model_name, None)
    opt = f"optimizer ({type(optimizer).__name__})"
    held = _optimizer_names(model, optimizer)
    for n, p in named:
        same[n] = any(q is p for _, _, q in held)
    held_names = [n for n, _, _ in held]
    verdict = []
    if held_names and all(n in same and same[n] for n in held_names):
        verdict.append("each `is` the model's own Parameter object")
    foreign = [n for n, _, _ in held if n not in same]
    if foreign:
        verdict.append(f"not parameters of this model: {_names_list(foreign)}")
    left_out = [n for n, is_held in same.items() if not is_held]
    if left_out:
        verdict.append(
            f"not given to the optimizer, so step() never changes: {_names_list(left_out)}"
        )
    rows.append(
        (
            opt,
            "references to parameters",
            _names_list(held_names) + (" — " + "; ".join(verdict) if verdict else ""),
        )
    )
    for g, group in enumerate(optimizer.param_groups):
        hyper = {k: v for k, v in group.items() if k != "params"}
        rows.append((opt, f"hyper-parameters (param_groups[{g}])", _hyper_text(hyper)))
    saved = optimizer.state_dict()
    index_to_name: dict[Any, str] = {}
    position = 0
    for saved_group in saved["param_groups"]:
        for index in saved_group["params"]:
            index_to_name[index] = (
                held_names[position] if position < len(held_names) else str(index)
            )
            position += 1
    for index, state in saved["state"].items():
        keys[index_to_name.get(index, str(index))] = tuple(state)
    if keys:
        detail = "; ".join(f"{n}: {', '.join(k) or 'nothing'}" for n, k in keys.items())
    else:
        detail = "empty (the first step() creates it)"
    rows.append((opt, "per-parameter state (state_dict()['state'])", detail))
    return Ownership(tuple(rows), same, keys, model_name, type(optimizer).__name__)
