"""The accumulation explorer: K micro-batches, backward() on each, compared with one full batch.

The explorer splits a batch into K micro-batches, calls backward() once per micro-batch so the
gradients add up in `.grad`, and shows, for every parameter, the largest difference from the
gradient of one backward() over the whole batch, with a sentence saying why they agree or not.
"""

from __future__ import annotations

import copy
import html
import math
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

import ipywidgets as widgets
import torch
from torch import nn

from helpers._util import one_thread, shape_text
from helpers.widgets._base import Explorer, state_picture

__all__ = ["AccumulationExplorer"]

MAX_MICRO_BATCHES = 16
SCALINGS = ("off", "1/K", "share")
SCALING_LABELS = (
    ("no scaling", "off"),
    ("divide each loss by K", "1/K"),
    ("weight each loss by its share", "share"),
)
DEFAULT_SAMPLES = 48
DEFAULT_FEATURES = 4

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _regression_batch(
    n: int = DEFAULT_SAMPLES, features: int = DEFAULT_FEATURES, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """A seeded regression batch X (n, features), y (n, 1); the global seed is left alone."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(n, features, generator=generator)
    true_w = torch.randn(features, 1, generator=generator)
    true_w = 0.5 * true_w / true_w.norm()  # small targets: gradients well below 1
    y = x @ true_w + 0.1 * torch.randn(n, 1, generator=generator)
    return x, y


def _small_model(features: int, outputs: int, batchnorm: bool, seed: int = 0) -> nn.Module:
    """Linear -> (BatchNorm1d) -> Tanh -> Linear, with the same Linear weights either way."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        layers: list[tuple[str, nn.Module]] = [("hidden", nn.Linear(features, 8))]
        if batchnorm:
            layers.append(("norm", nn.BatchNorm1d(8)))
        layers += [("act", nn.Tanh()), ("out", nn.Linear(8, outputs))]
        return nn.Sequential(OrderedDict(layers))


def _has(model: nn.Module, kind: type) -> bool:
    """Whether a module of this kind is in the model and in train mode."""
    return any(isinstance(m, kind) and m.training for m in model.modules())


def _micro_batch_sizes(samples: int, k: int, uneven: bool) -> list[int]:
    """Sizes of K micro-batches: K of samples // K each, or with the last one about half as big."""
    size = samples // k
    if not uneven or k == 1 or size < 2:
        return [size] * k
    return [size] * (k - 1) + [size - size // 2]


class AccumulationExplorer(Explorer):
    """Gradient accumulation over K micro-batches against one full batch, parameter by parameter.

    `AccumulationExplorer()` uses a small seeded regression problem (48 samples, 4 features) and a
    model Linear(4, 8) -> [BatchNorm1d(8)] -> Tanh -> Linear(8, 1).
    `AccumulationExplorer(model, (X, y), loss_fn=...)` uses yours (on a copy: your model's `.grad`
    and BatchNorm statistics are left alone). After every change: `.max_differences`, `.message`.
    """

    CAPTION = (
        "AccumulationExplorer: choose the number of micro-batches, the loss scaling, an uneven "
        "split or BatchNorm and see whether accumulated gradients equal the full-batch gradient."
    )

    def __init__(
        self,
        model: nn.Module | None = None,
        data: tuple[torch.Tensor, torch.Tensor] | None = None,
        *,
        loss_fn: LossFn | None = None,
        micro_batches: int = 4,
        scale: bool | str = True,
        uneven: bool = False,
        batchnorm: bool | None = None,
        tolerance: float = 1e-6,
    ) -> None:
        if data is None:
            self.data = _regression_batch()
        else:
            self.data = _check_data(data)
        x, y = self.data
        if model is None:
            if x.dim() != 2:
                raise ValueError(
                    f"data X must have shape (samples, features) for the built-in model, not "
                    f"{tuple(x.shape)}; flatten it, or pass your own model."
                )
            if y.dim() == 1:
                y = y.unsqueeze(1)  # the built-in model predicts shape (samples, 1)
                self.data = (x, y)
            outputs = y.shape[1] if y.dim() == 2 else 1
            self._models = {
                flag: _small_model(x.shape[1], outputs, batchnorm=flag) for flag in (False, True)
            }
            self.custom_model = False
        elif isinstance(model, nn.Module):
            if not any(p.requires_grad for p in model.parameters()):
                raise ValueError(
                    "model has no parameter with requires_grad=True, so there is no gradient to "
                    "compare; pass a model with trainable parameters."
                )
            own = copy.deepcopy(model)  # backward() on the copy leaves your model's .grad alone
            self._models = {_has(own, nn.modules.batchnorm._BatchNorm): own}
            self.custom_model = True
        else:
            raise TypeError(
                f"model must be a torch.nn.Module (or left out for the built-in one), not "
                f"{type(model).__name__}."
            )
        self.custom_loss = loss_fn is not None
        if loss_fn is None:
            loss_fn = nn.functional.mse_loss
        elif not callable(loss_fn):
            raise TypeError(
                f"loss_fn must be a function loss_fn(prediction, target) -> 0-dim tensor, such as "
                f"torch.nn.MSELoss(), not {type(loss_fn).__name__}."
            )
        self.loss_fn: LossFn = loss_fn
        if isinstance(tolerance, bool) or not isinstance(tolerance, (int, float)):
            raise TypeError(f"tolerance must be a small number such as 1e-6, not {tolerance!r}.")
        if not (math.isfinite(tolerance) and tolerance > 0):
            raise ValueError(f"tolerance must be a positive number such as 1e-6, got {tolerance}.")
        self.tolerance = float(tolerance)
        if batchnorm is None:  # the built-in model starts without; the toggle shows what yours has
            batchnorm = next(iter(self._models)) if self.custom_model else False
        micro_batches, scale, uneven, batchnorm = self._check_settings(
            micro_batches, scale, uneven, batchnorm
        )

        self.max_differences: dict[str, float] = {}
        self.full_gradients: dict[str, torch.Tensor] = {}
        self.accumulated_gradients: dict[str, torch.Tensor] = {}
        self.sizes: list[int] = []
        self.weights: list[float] = []
        self.equal = False
        self._holding = False

        super().__init__()
        self.micro_batches_slider = widgets.IntSlider(
            value=micro_batches,
            min=1,
            max=MAX_MICRO_BATCHES,
            description="micro-batches K",
            continuous_update=False,
            style={"description_width": "initial"},
            layout=widgets.Layout(width="360px"),
        )
        self.scale_toggle = widgets.ToggleButtons(
            options=list(SCALING_LABELS),
            value=scale,
            description="loss scaling",
            style={"button_width": "210px"},
        )
        self.uneven_toggle = widgets.Checkbox(
            value=uneven, description="uneven last micro-batch", indent=False
        )
        self.batchnorm_toggle = widgets.Checkbox(
            value=batchnorm,
            description="BatchNorm layer" + (" (your model: fixed)" if self.custom_model else ""),
            indent=False,
            disabled=self.custom_model,
        )
        self.table_html = widgets.HTML(value="")
        self.children = [
            self.micro_batches_slider,
            self.scale_toggle,
            widgets.HBox([self.uneven_toggle, self.batchnorm_toggle]),
            self._message_html,
            self.table_html,
        ]
        for control in (
            self.micro_batches_slider,
            self.scale_toggle,
            self.uneven_toggle,
            self.batchnorm_toggle,
        ):
            control.observe(self._on_change, names="value")
        self._update()

    # ----- settings -----------------------------------------------------------------------------
    @property
    def micro_batches(self) -> int:
        """K, the number of micro-batches the slider shows."""
        return int(self.micro_batches_slider.value)

    @property
    def scale(self) -> str:
        """The loss scaling: 'off', '1/K' or 'share'."""
        return str(self.scale_toggle.value)

    @property
    def uneven(self) -> bool:
        """Whether the last micro-batch is smaller than the others."""
        return bool(self.uneven_toggle.value)

    @property
    def batchnorm(self) -> bool:
        """Whether the model has a BatchNorm layer."""
        return bool(self.batchnorm_toggle.value)

    @property
    def model(self) -> nn.Module:
        """The model the gradients are computed on (a copy, if you passed your own)."""
        return self._models[self.batchnorm]

    def set(
        self,
        *,
        micro_batches: int | None = None,
        scale: bool | str | None = None,
        uneven: bool | None = None,
        batchnorm: bool | None = None,
    ) -> None:
        """Set any of the controls from Python (as a click would) and update once.

        scale=True means "divide by K", or "weight by share" when the micro-batches are uneven.
        """
        micro_batches, scale, uneven, batchnorm = self._check_settings(
            self.micro_batches if micro_batches is None else micro_batches,
            self.scale if scale is None else scale,
            self.uneven if uneven is None else uneven,
            self.batchnorm if batchnorm is None else batchnorm,
        )
        self._holding = True
        try:
            self.micro_batches_slider.value = micro_batches
            self.scale_toggle.value = scale
            self.uneven_toggle.value = uneven
            self.batchnorm_toggle.value = batchnorm
        finally:
            self._holding = False
        self._update()

    def _check_settings(
        self, micro_batches: Any, scale: Any, uneven: Any, batchnorm: Any
    ) -> tuple[int, str, bool, bool]:
        if isinstance(micro_batches, bool) or not isinstance(micro_batches, int):
            raise TypeError(
                f"micro_batches must be a whole number such as 4, not "
                f"{type(micro_batches).__name__}."
            )
        if not 1 <= micro_batches <= MAX_MICRO_BATCHES:
            raise ValueError(
                f"micro_batches must be between 1 and {MAX_MICRO_BATCHES}, got {micro_batches}."
            )
        for name, value in (("uneven", uneven), ("batchnorm", batchnorm)):
            if not isinstance(value, bool):
                raise TypeError(f"{name} must be True or False, not {value!r}.")
        if scale is True:
            scale = "share" if uneven else "1/K"
        elif scale is False:
            scale = "off"
        elif scale not in SCALINGS:
            raise ValueError(
                f"scale must be True, False, 'off', '1/K' or 'share', not {scale!r} "
                f"('1/K' divides each micro-batch loss by K; 'share' weights it by its share "
                f"of the samples)."
            )
        if batchnorm not in self._models:
            raise ValueError(
                f"batchnorm={batchnorm} cannot be chosen: your model "
                f"{'has a' if not batchnorm else 'has no'} BatchNorm layer in train mode, and the "
                f"explorer does not change your model; leave batchnorm out."
            )
        return micro_batches, scale, uneven, batchnorm

    # ----- one update ---------------------------------------------------------------------------
    def _on_change(self, _change: Any) -> None:
        if not self._holding:
            self._update()

    def _update(self) -> None:
        self.max_differences, self.full_gradients, self.accumulated_gradients = {}, {}, {}
        self.sizes, self.weights, self.equal = [], [], False
        what = {
            (False, False): "the update",
            (True, False): "your model",
            (False, True): "your loss_fn",
            (True, True): "your model or loss_fn",
        }[self.custom_model, self.custom_loss]
        if self.safely(self._compare, what) is None:
            self.max_differences = {}
            self.table_html.value = ""

    def _compare(self) -> bool:
        x, y = self.data
        k, scale, model = self.micro_batches, self.scale, self.model
        if x.shape[0] < k:
            raise ValueError(
                f"{k} micro-batches need at least {k} samples, but the data has {x.shape[0]}; "
                f"choose fewer micro-batches."
            )
        self.sizes = _micro_batch_sizes(x.shape[0], k, self.uneven)
        samples = sum(self.sizes)
        if _has(model, nn.modules.batchnorm._BatchNorm) and min(self.sizes) < 2:
            raise ValueError(
                f"BatchNorm in train mode needs at least 2 samples per micro-batch, but one has "
                f"{min(self.sizes)}; choose fewer micro-batches."
            )
        self.weights = [
            {"off": 1.0, "1/K": 1.0 / k, "share": size / samples}[scale] for size in self.sizes
        ]
        x, y = x[:samples], y[:samples]
        batches = list(zip(x.split(self.sizes), y.split(self.sizes), strict=True))
        # One seeded random stream for both runs, one after the other (as in a notebook): the
        # same numbers on every update, and dropout draws fresh masks for the micro-batches.
        with one_thread(), torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            self.full_gradients = self._gradients(model, [(x, y)], [1.0])
            self.accumulated_gradients = self._gradients(model, batches, self.weights)

        self.max_differences, scales = {}, {}
        for name, full in self.full_gradients.items():
            accumulated = self.accumulated_gradients[name]
            self.max_differences[name] = float((accumulated - full).abs().max())
            scales[name] = max(1.0, float(full.abs().max()))
        self.equal = all(
            self.max_differences[name] <= self.tolerance * scales[name] for name in scales
        )
        self._scales = scales
        self.table_html.value = self._table(scales)
        self.say(self._explain(model), kind="info" if self.equal else "warning")
        return True

    def _gradients(
        self,
        model: nn.Module,
        batches: list[tuple[torch.Tensor, torch.Tensor]],
        weights: list[float],
    ) -> dict[str, torch.Tensor]:
        """backward() once per (micro-)batch, each loss times its weight; then what .grad holds."""
        model.zero_grad(set_to_none=True)
        for (xb, yb), weight in zip(batches, weights, strict=True):
            loss = _as_loss(self.loss_fn(model(xb), yb))
            (loss * weight if weight != 1.0 else loss).backward()
        grads = {
            name: (p.grad.detach().clone() if p.grad is not None else torch.zeros_like(p))
            for name, p in model.named_parameters()
            if p.requires_grad
        }
        model.zero_grad(set_to_none=True)
        return grads

    # ----- what is shown ------------------------------------------------------------------------
    def _rows(self, scales: dict[str, float]) -> list[tuple[str, str, str, str, str]]:
        """Per parameter: name, shape, largest |full-batch grad|, largest difference, verdict."""
        rows = []
        for name, diff in self.max_differences.items():
            full = self.full_gradients[name]
            above = diff > self.tolerance * scales[name]
            verdict = "differs" if above else "equal"
            rows.append(
                (name, shape_text(full), f"{float(full.abs().max()):.3g}", f"{diff:.1e}", verdict)
            )
        return rows

    def _setup_text(self) -> str:
        """One sentence: the samples, the micro-batch sizes and the weight of each loss."""
        k, samples = self.micro_batches, sum(self.sizes)
        sizes = ", ".join(str(s) for s in self.sizes)
        weights = {"off": "1 (no scaling)", "1/K": f"1/{k}", "share": "n_i / " + str(samples)}
        return (
            f"{samples} samples in {k} micro-batch{'es' if k != 1 else ''} of sizes {sizes}; each "
            f"micro-batch loss is multiplied by {weights[self.scale]} before backward()."
        )

    def _table(self, scales: dict[str, float]) -> str:
        cell = "<td style='padding:2px 10px;text-align:{}'>{}</td>"
        rows = []
        for name, shape, largest, diff, verdict in self._rows(scales):
            style = " style='background:#fde2e1;font-weight:bold'" if verdict == "differs" else ""
            cells = (
                cell.format("left", f"<code>{html.escape(name)}</code>"),
                cell.format("left", html.escape(shape)),
                cell.format("right", largest),
                cell.format("right", diff),
                cell.format("left", verdict),
            )
            rows.append(f"<tr{style}>{''.join(cells)}</tr>")
        heads = (
            "parameter",
            "shape",
            "largest |full-batch grad|",
            "largest |accumulated &minus; full|",
            "verdict",
        )
        head = "".join(f"<th style='padding:2px 10px'>{h}</th>" for h in heads)
        return (
            f"<div class='looplab-accumulation'><p>{html.escape(self._setup_text())}</p>"
            f"<table style='border-collapse:collapse'><thead><tr>{head}</tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table>"
            f"<p style='font-size:smaller'>Highlighted: a difference above "
            f"{self.tolerance:g} &times; max(1, largest gradient entry).</p></div>"
        )

    def picture(self) -> bytes:
        """A PNG of the table as it is now: per parameter, accumulated against full-batch."""
        rows = self._rows(self._scales) if self.max_differences else []
        title = "AccumulationExplorer: " + (self._setup_text() if self.sizes else "no result")
        return state_picture(
            title,
            (
                "parameter",
                "shape",
                "largest |full grad|",
                "largest |accumulated − full|",
                "verdict",
            ),
            rows,
            self.message,
        )

    def _explain(self, model: nn.Module) -> str:
        """One or two sentences: why the accumulated gradient equals the full-batch one, or not."""
        k, sizes = self.micro_batches, self.sizes
        scaling_right, scaling = self._scaling_reason()
        if k == 1:
            expected_equal = True
            reason = (
                "With one micro-batch, accumulation is one backward() over the whole batch, "
                "so the gradients are the same."
            )
        elif _has(model, nn.modules.batchnorm._BatchNorm):
            expected_equal = False
            reason = (
                "BatchNorm in train mode normalises each micro-batch with that micro-batch's own "
                "mean and variance, so the small forward passes compute a different function "
                "from the one big pass, and no loss scaling can fix that (in eval mode it uses "
                "its running statistics instead, and then correctly scaled accumulation agrees)."
            )
            if not self.custom_model:
                reason += (
                    " hidden.bias agrees only because its gradient is about zero either way: "
                    "BatchNorm subtracts the mean right after it."
                )
            if not scaling_right:
                reason += " The scaling is wrong too: " + scaling
        elif _has(model, nn.modules.dropout._DropoutNd):
            expected_equal = False
            reason = (
                "Dropout draws a new random mask on every forward pass, so the micro-batches see "
                "different masks from the full batch (in eval mode dropout is off, and then "
                "correctly scaled accumulation agrees)."
            )
            if not scaling_right:
                reason += " The scaling is wrong too: " + scaling
        else:
            expected_equal, reason = scaling_right, scaling
        if self.uneven and len(set(sizes)) == 1:
            reason += (
                " (With one micro-batch there is no last one to make smaller.)"
                if k == 1
                else f" (With {sizes[0]} sample per micro-batch the last one cannot be smaller.)"
            )
        verdict = "equal" if self.equal else "different"
        if expected_equal == self.equal:
            return f"The gradients are {verdict}. {reason}"
        return (
            f"The gradients are {verdict}, which the rule for a mean loss does not predict: "
            f"{reason} Does your loss_fn sum instead of average (reduction='sum'), or does your "
            f"model behave differently on small batches?"
        )

    def _scaling_reason(self) -> tuple[bool, str]:
        """Whether the loss weights turn K micro-batch means into the full-batch mean, and why."""
        k, sizes, samples = self.micro_batches, self.sizes, sum(self.sizes)
        if k == 1:
            return True, "One micro-batch needs no scaling."
        if self.scale == "off":
            ratio = self._ratio()
            times = f" (here {ratio:.3g} times)" if ratio is not None else ""
            return False, (
                f"Each micro-batch loss is already a mean over its own samples and backward() "
                f"adds the {k} gradients, so without scaling you get about {k} times the "
                f"full-batch gradient{times}; divide each loss by {k}."
            )
        if self.scale == "1/K" and len(set(sizes)) > 1:
            return False, (
                f"The last micro-batch has {sizes[-1]} samples, not {sizes[0]}, but dividing by "
                f"{k} gives it the same weight as the others, so its samples count more; weight "
                f"each loss by its share of the samples (n_i / {samples}) instead."
            )
        if self.scale == "1/K":
            return True, (
                f"Each micro-batch loss is a mean over {sizes[0]} samples; dividing each by {k} "
                f"and letting backward() add the {k} gradients gives the mean over all "
                f"{samples} samples: the full-batch gradient."
            )
        return True, (
            f"Weighting each micro-batch mean by its share of the samples (n_i / {samples}) "
            f"and letting backward() add the gradients gives the mean over all {samples} "
            f"samples: the full-batch gradient."
        )

    def _ratio(self) -> float | None:
        """accumulated / full for the largest full-batch gradient entry (None if all are zero)."""
        best, where = 0.0, None
        for name, full in self.full_gradients.items():
            index = int(full.abs().argmax())
            value = float(full.reshape(-1)[index])
            if abs(value) > abs(best):
                best, where = value, (name, index)
        if where is None:
            return None
        return float(self.accumulated_gradients[where[0]].reshape(-1)[where[1]]) / best


def _check_data(data: Any) -> tuple[torch.Tensor, torch.Tensor]:
    if isinstance(data, (str, bytes)) or not isinstance(data, Sequence) or len(data) != 2:
        raise TypeError("data must be a pair (X, y) of tensors with the samples along dim 0.")
    x, y = data
    for name, value in (("X", x), ("y", y)):
        if not isinstance(value, torch.Tensor):
            raise TypeError(f"data's {name} must be a torch tensor, not {type(value).__name__}.")
        if value.dim() == 0:
            raise ValueError(f"data's {name} must have the samples along dim 0, not be 0-dim.")
    if x.shape[0] != y.shape[0]:
        raise ValueError(
            f"data's X and y must hold the same number of samples, got {x.shape[0]} and "
            f"{y.shape[0]}."
        )
    if x.shape[0] < 2:
        raise ValueError(f"data must hold at least 2 samples to split, got {x.shape[0]}.")
    return x, y


def _as_loss(result: Any) -> torch.Tensor:
    """Check what loss_fn(prediction, target) returned: one floating-point number, with a graph."""
    if not isinstance(result, torch.Tensor):
        raise TypeError(
            f"loss_fn(prediction, target) must return a torch tensor holding one number; it "
            f"returned {type(result).__name__}."
        )
    if result.numel() != 1:
        raise ValueError(
            f"loss_fn(prediction, target) must return a single number, but it returned a tensor "
            f"of shape {tuple(result.shape)}; reduce it, e.g. with .mean()."
        )
    if not result.is_floating_point() or not result.requires_grad:
        raise ValueError(
            "loss_fn(prediction, target) returned a tensor without a gradient: compute it from "
            "the prediction with torch operations (not .item(), float() or NumPy)."
        )
    return result.reshape(())
