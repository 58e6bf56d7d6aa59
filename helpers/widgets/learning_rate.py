"""The learning-rate explorer: gradient descent on a two-parameter loss, drawn on its contour.

By default the problem is a straight-line fit y = w * x + b to seeded, generated data; a learner
may pass any loss of two parameters instead. Move the learning rate, the number of steps or the
optimizer and the path across the loss contour and the loss after each step are drawn again.
"""

from __future__ import annotations

import io
import math
import warnings
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

import ipywidgets as widgets
import numpy as np
import PIL.Image
import torch
from matplotlib import patheffects
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from helpers._util import png_bytes
from helpers.plots import PALETTE, plot_loss_surface
from helpers.widgets._base import Explorer

__all__ = ["LearningRateExplorer"]

OPTIMIZERS = ("SGD", "SGD with momentum", "Adam")
MOMENTUM = 0.9
LR_MIN_EXPONENT, LR_MAX_EXPONENT = -4, 1  # the slider runs from 1e-4 to 10
MAX_STEPS = 100
GRID_POINTS = 41  # the contour grid is GRID_POINTS x GRID_POINTS, computed once per problem
EXPLODE_FACTOR = 1e3  # a loss this many times larger than anything on the contour has exploded
DPI = 72
KEPT_RUNS = 16  # recent runs kept, so that moving a slider back redraws without re-running
# Colours from helpers.plots' colour-blind-safe palette. A diverged run is told by an X marker and
# by "(diverged)" in both titles, not by colour alone.
PATH_COLOUR, END_COLOUR, LOSS_COLOUR = (
    PALETTE[3],
    PALETTE[6],
    PALETTE[0],
)  # vermillion, yellow, blue
STAR_LABEL = "lowest on grid"  # the label plot_loss_surface gives its star

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _regression_data(n: int = 40, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Seeded points near the line y = 1.5 x + 0.5, x in [0, 2]; the global seed is left alone."""
    generator = torch.Generator().manual_seed(seed)
    x = 2 * torch.rand(n, generator=generator)
    y = 1.5 * x + 0.5 + 0.3 * torch.randn(n, generator=generator)
    return x, y


def _mean_squared_error(x: torch.Tensor, y: torch.Tensor) -> LossFn:
    """The loss of the line y_hat = w * x + b on the points (x, y), as a function of w and b."""

    def loss_fn(w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return ((w * x + b - y) ** 2).mean()

    return loss_fn


def _least_squares(x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    """The (w, b) of the best line through the points, from the normal equations (closed form)."""
    x, y = x.double(), y.double()
    w = ((x - x.mean()) * (y - y.mean())).sum() / ((x - x.mean()) ** 2).sum()
    return float(w), float(y.mean() - w * x.mean())


def _check_range(value: Any, name: str) -> tuple[float, float]:
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or len(value) != 2:
        raise TypeError(f"{name} must be a pair of numbers (low, high), such as (-2, 2).")
    low, high = (_check_number(v, name) for v in value)
    if not low < high:
        raise ValueError(f"{name} must be (low, high) with low < high, got ({low:g}, {high:g}).")
    return low, high


def _check_number(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        if isinstance(value, torch.Tensor) and value.numel() == 1:
            value = value.item()
        else:
            raise TypeError(f"{name} must hold plain numbers, not {type(value).__name__}.")
    if not math.isfinite(value):
        raise ValueError(f"{name} must hold finite numbers, got {value}.")
    return float(value)


def _as_loss(result: Any, needs_grad: bool) -> torch.Tensor:
    """Check what loss_fn(w, b) returned: one floating-point number in a tensor, built from w, b."""
    if not isinstance(result, torch.Tensor):
        raise TypeError(
            f"loss_fn(w, b) must return a torch tensor holding one number, built from w and b; "
            f"it returned {type(result).__name__}."
        )
    if result.numel() != 1:
        raise ValueError(
            f"loss_fn(w, b) must return a single number, but it returned a tensor of shape "
            f"{tuple(result.shape)}; reduce it to one number, e.g. with .mean()."
        )
    if not result.is_floating_point():
        raise TypeError(
            f"loss_fn(w, b) must return a floating-point tensor, not {result.dtype}; "
            f"compute it from w and b with torch operations."
        )
    if needs_grad and not result.requires_grad:
        raise ValueError(
            "loss_fn(w, b) returned a tensor that does not depend on w and b, so there is no "
            "gradient: compute it from w and b with torch operations (not .item(), float() "
            "or NumPy)."
        )
    return result.reshape(())


def _loss_grid(loss_fn: LossFn, w_values: torch.Tensor, b_values: torch.Tensor) -> np.ndarray:
    """loss_fn on every grid point: rows follow b, columns follow w (as contourf expects)."""
    w_grid, b_grid = torch.meshgrid(w_values, b_values, indexing="xy")
    flat_w, flat_b = w_grid.reshape(-1), b_grid.reshape(-1)
    with torch.no_grad():
        values = _vmapped(loss_fn, flat_w, flat_b)
        if values is None:  # the function cannot be batched: call it point by point
            values = torch.stack(
                [_as_loss(loss_fn(w, b), False) for w, b in zip(flat_w, flat_b, strict=True)]
            )
    grid = values.detach().to(torch.float64).reshape(w_grid.shape).numpy()
    finite = grid[np.isfinite(grid)]
    if finite.size == 0:
        raise ValueError(
            "loss_fn(w, b) is not finite anywhere in w_range and b_range: choose ranges where "
            "it is."
        )
    return grid


def _vmapped(loss_fn: LossFn, flat_w: torch.Tensor, flat_b: torch.Tensor) -> torch.Tensor | None:
    """All grid values in one batched call, or None when that is impossible or disagrees."""
    try:
        with warnings.catch_warnings():  # e.g. "no batching rule": only slower, not wrong
            warnings.simplefilter("ignore")
            values = torch.func.vmap(loss_fn)(flat_w, flat_b)
    except Exception:
        return None
    if not isinstance(values, torch.Tensor) or values.shape != flat_w.shape:
        return None
    if not values.is_floating_point():
        return None
    for index in (0, len(flat_w) // 3, len(flat_w) - 1):  # spot-check against plain calls
        direct = _as_loss(loss_fn(flat_w[index], flat_b[index]), False).to(values.dtype)
        if not torch.allclose(values[index], direct, rtol=1e-5, atol=1e-8, equal_nan=True):
            return None
    return values


class LearningRateExplorer(Explorer):
    """Gradient descent on a loss of two parameters (w, b): learning rate, steps and optimizer.

    `LearningRateExplorer()` fits a line y = w * x + b to generated data (seeded).
    `LearningRateExplorer(loss_fn, w_range=(-2, 2), b_range=(-2, 2), start=(-1.5, 1.5))`
    explores your own `loss_fn(w, b) -> 0-dim tensor` instead.
    After every change: `.losses`, `.path`, `.diverged`, `.message` describe the run.
    """

    CAPTION = (
        "LearningRateExplorer: move the learning rate, the steps or the optimizer and watch "
        "gradient descent's path on the loss contour and its loss after each step."
    )

    def __init__(
        self,
        loss_fn: LossFn | None = None,
        *,
        w_range: tuple[float, float] | None = None,
        b_range: tuple[float, float] | None = None,
        start: tuple[float, float] | None = None,
        lr: float = 0.1,
        steps: int = 30,
        optimizer: str = "SGD",
    ) -> None:
        self.least_squares: tuple[float, float] | None = None
        if loss_fn is None:
            self.data: tuple[torch.Tensor, torch.Tensor] | None = _regression_data()
            self.loss_fn: LossFn = _mean_squared_error(*self.data)
            self.least_squares = _least_squares(*self.data)
            w_range = (-1.5, 4.0) if w_range is None else w_range
            b_range = (-2.0, 3.0) if b_range is None else b_range
            start = (-1.0, 2.5) if start is None else start
        elif callable(loss_fn):
            self.data = None
            self.loss_fn = loss_fn
        else:
            raise TypeError(
                f"loss_fn must be a function of two tensors, loss_fn(w, b) -> 0-dim tensor "
                f"(or left out for the line-fitting example), not {type(loss_fn).__name__}."
            )
        self.w_range = _check_range((-2.0, 2.0) if w_range is None else w_range, "w_range")
        self.b_range = _check_range((-2.0, 2.0) if b_range is None else b_range, "b_range")
        if start is None:  # near the upper-left corner, so the path has somewhere to go
            (w_low, w_high), (b_low, b_high) = self.w_range, self.b_range
            start = (w_low + 0.15 * (w_high - w_low), b_high - 0.15 * (b_high - b_low))
        self.start = _check_pair(start, "start")
        lr, steps, optimizer = _check_settings(lr, steps, optimizer)

        self.losses: list[float] = []
        self.path: list[tuple[float, float]] = []
        self.diverged = False
        self.diverged_after: int | None = None
        self._grid: np.ndarray | None = None
        self._trajectories: OrderedDict[tuple[float, str], _Trajectory] = OrderedDict()
        self._holding = False

        super().__init__()
        self.lr_slider = widgets.FloatLogSlider(
            value=lr,
            base=10,
            min=LR_MIN_EXPONENT,
            max=LR_MAX_EXPONENT,
            step=0.05,
            description="learning rate",
            readout_format=".3g",
            continuous_update=False,
            style={"description_width": "initial"},
            layout=widgets.Layout(width="340px"),
        )
        self.steps_slider = widgets.IntSlider(
            value=steps,
            min=1,
            max=MAX_STEPS,
            description="steps",
            continuous_update=False,
            layout=widgets.Layout(width="300px"),
        )
        self.optimizer_choice = widgets.ToggleButtons(
            options=list(OPTIMIZERS),
            value=optimizer,
            description="optimizer",
            style={"button_width": "auto"},  # the default width cuts "SGD with momentum"
        )
        self.figure_image = widgets.Image(format="png")
        self.children = [
            widgets.HBox([self.lr_slider, self.steps_slider]),
            self.optimizer_choice,
            self._message_html,
            self.figure_image,
        ]
        for control in (self.lr_slider, self.steps_slider, self.optimizer_choice):
            control.observe(self._on_change, names="value")
        self._update()

    def picture(self) -> bytes:
        """The figure as it is now: the path on the loss contour and the loss after each step."""
        return self.figure_image.value

    # ----- settings -------------------------------------------------------------------------
    @property
    def lr(self) -> float:
        """The learning rate the slider shows."""
        return float(self.lr_slider.value)

    @property
    def steps(self) -> int:
        """The number of optimizer steps the slider shows."""
        return int(self.steps_slider.value)

    @property
    def optimizer(self) -> str:
        """The chosen optimizer: 'SGD', 'SGD with momentum' or 'Adam'."""
        return str(self.optimizer_choice.value)

    def set(
        self, *, lr: float | None = None, steps: int | None = None, optimizer: str | None = None
    ) -> None:
        """Set any of the controls from Python (as a click would) and update once."""
        lr, steps, optimizer = _check_settings(
            self.lr if lr is None else lr,
            self.steps if steps is None else steps,
            self.optimizer if optimizer is None else optimizer,
        )
        self._holding = True
        try:
            self.lr_slider.value = lr
            self.steps_slider.value = steps
            self.optimizer_choice.value = optimizer
        finally:
            self._holding = False
        self._update()

    # ----- one update ---------------------------------------------------------------------------
    def _on_change(self, _change: Any) -> None:
        if not self._holding:
            self._update()

    def _update(self) -> None:
        self.losses, self.path = [], []
        self.diverged, self.diverged_after = False, None
        what = "the update" if self.data is not None else "your loss_fn"
        if self.safely(self._run_and_draw, what) is None:
            self.losses, self.path = [], []
            self._trajectories.clear()  # a run may have stopped half-way
            self.figure_image.value = self._placeholder_png()

    def _run_and_draw(self) -> bool:
        if self._grid is None:  # once per problem: every later move reuses grid and background
            self._figure, self._artists = self._empty_figure()  # fresh, if a try failed half-way
            grid = self._compute_grid()
            self._draw_background()
            self._grid = grid
        key = (self.lr, self.optimizer)
        run = self._trajectories.pop(key, None)
        if run is None:
            run = _Trajectory(key, self.loss_fn, self.start, self._make_optimizer, self._explode_at)
        self._trajectories[key] = run  # the most recent last; moving back to it costs nothing
        while len(self._trajectories) > KEPT_RUNS:
            self._trajectories.popitem(last=False)
        run.extend_to(self.steps)  # a new steps value only adds (or drops) steps at the end
        self.losses, self.path = run.losses[: self.steps + 1], run.path[: self.steps + 1]
        if run.diverged_after is not None and run.diverged_after <= self.steps:
            self.diverged, self.diverged_after = True, run.diverged_after
        self.figure_image.value = self._draw_run()
        self._say_result()
        return True

    def _compute_grid(self) -> np.ndarray:
        w_values = torch.linspace(*self.w_range, GRID_POINTS)
        b_values = torch.linspace(*self.b_range, GRID_POINTS)
        grid = _loss_grid(self.loss_fn, w_values, b_values)
        self._w_values, self._b_values = w_values.numpy(), b_values.numpy()
        finite = np.abs(grid[np.isfinite(grid)])
        self._explode_at = EXPLODE_FACTOR * max(float(finite.max()), 1e-12)
        return grid

    def _make_optimizer(self, params: list[torch.Tensor]) -> torch.optim.Optimizer:
        if self.optimizer == "Adam":
            return torch.optim.Adam(params, lr=self.lr)
        momentum = MOMENTUM if self.optimizer == "SGD with momentum" else 0.0
        return torch.optim.SGD(params, lr=self.lr, momentum=momentum)

    def _say_result(self) -> None:
        setting = f"{self.optimizer}, learning rate {self.lr:.3g}"
        if self.diverged:
            k = self.diverged_after
            self.say(
                f"diverged after {k} step{'s' if k != 1 else ''}: the learning rate is too large "
                f"for this problem; try a smaller one ({setting}).",
                kind="error",
            )
            return
        first, last = self.losses[0], self.losses[-1]
        w, b = self.path[-1]
        text = (
            f"{setting}: after {self.steps} steps the loss went from {first:.4g} to {last:.4g}, "
            f"at (w, b) = ({w:.3g}, {b:.3g})."
        )
        if self.least_squares is not None:
            best_w, best_b = self.least_squares
            text += f" The best line has (w, b) = ({best_w:.3g}, {best_b:.3g})."
        if last > first:
            self.say(
                text + " It went up: the learning rate is too large; try a smaller one.", "warning"
            )
        else:
            self.say(text)

    # ----- drawing: the contour is drawn once; each move redraws only the path and the loss ----
    def _empty_figure(self) -> tuple[Figure, dict[str, Any]]:
        figure = Figure(figsize=(8.6, 3.4), dpi=DPI)
        FigureCanvasAgg(figure)
        figure.subplots_adjust(left=0.07, right=0.98, bottom=0.15, top=0.88, wspace=0.28)
        contour_ax, loss_ax = figure.subplots(1, 2)
        contour_ax.set_xlim(*self.w_range)
        contour_ax.set_ylim(*self.b_range)
        contour_ax.set_autoscale_on(False)
        contour_ax.set_xlabel("w")
        contour_ax.set_ylabel("b")
        contour_ax.set_title(" ", fontsize=11)
        (path_line,) = contour_ax.plot(
            [],
            [],
            "-o",
            color=PATH_COLOUR,
            markersize=3,
            linewidth=1.5,
            path_effects=[patheffects.withStroke(linewidth=3, foreground="white")],  # any colour
            label="path",
        )
        contour_ax.plot(
            *self.start, "o", color="white", markeredgecolor="black", zorder=4, label="start"
        )
        # The end of the path: an open ring, larger than the star, so that a path ending at the
        # lowest point shows both; a diverged run ends in an X instead (see _draw_run).
        (end_marker,) = contour_ax.plot(
            [],
            [],
            "o",
            markersize=14,
            markerfacecolor="none",
            markeredgecolor=END_COLOUR,
            markeredgewidth=2.2,
            path_effects=[patheffects.withStroke(linewidth=4, foreground="black")],
            linestyle="none",
            zorder=5,
            label="end",
        )
        (loss_line,) = loss_ax.plot([], [], "-", color=LOSS_COLOUR, linewidth=1.8)
        loss_ax.set_xlabel("step")
        loss_ax.set_ylabel("loss")
        loss_ax.grid(True, alpha=0.3)
        diverged_line = loss_ax.axvline(0, color=PATH_COLOUR, linestyle="--", visible=False)
        for moving in (path_line, end_marker, contour_ax.title, loss_ax):
            moving.set_animated(True)  # left out of the cached background, drawn on each move
        artists = {
            "contour_ax": contour_ax,
            "loss_ax": loss_ax,
            "path": path_line,
            "end": end_marker,
            "loss": loss_line,
            "diverged": diverged_line,
        }
        return figure, artists

    def _draw_background(self) -> None:
        contour_ax = self._artists["contour_ax"]
        plot_loss_surface(self.loss_fn, self._w_values, self._b_values, ax=contour_ax, title=" ")
        # The star and the legend go on top of the path: they are drawn after it on every move
        # (blitting draws the moving artists in the order given, whatever their zorder). The
        # legend never changes, so it is drawn once and its pixels are pasted back after the path
        # on every move: drawing it again took about a fifth of a move.
        star = next(line for line in contour_ax.lines if line.get_label() == STAR_LABEL)
        legend = contour_ax.get_legend()
        for on_top in (star, legend):
            on_top.set_animated(True)
        self._artists["star"] = star
        figure, canvas = self._figure, self._figure.canvas
        canvas.draw()
        self._background = canvas.copy_from_bbox(figure.bbox)
        figure.draw_artist(legend)
        self._legend_pixels = canvas.copy_from_bbox(legend.get_window_extent().padded(2))

    def _draw_run(self) -> bytes:
        a = self._artists
        ws = [p[0] for p in self.path]
        bs = [p[1] for p in self.path]
        a["path"].set_data(ws, bs)
        a["end"].set_data(ws[-1:], bs[-1:])
        if self.diverged:  # a filled X: the run flew off (usually beyond the axes)
            a["end"].set(marker="X", markerfacecolor=PATH_COLOUR, markeredgecolor="black")
        else:  # an open ring: the star shows through it when the path ends at the bottom
            a["end"].set(marker="o", markerfacecolor="none", markeredgecolor=END_COLOUR)
        title = f"{self.optimizer}, lr = {self.lr:.3g}" + (" (diverged)" if self.diverged else "")
        a["contour_ax"].set_title(
            title, fontsize=11, color=PATH_COLOUR if self.diverged else "black"
        )

        loss_ax = a["loss_ax"]
        a["loss"].set_data(range(len(self.losses)), self.losses)
        low, high = min(self.losses), max(self.losses)
        if low > 0:
            loss_ax.set_yscale("log")
            loss_ax.set_ylim(low / 1.5, high * 1.5)
        else:
            loss_ax.set_yscale("linear")
            pad = 0.08 * (high - low) or 0.5 * abs(high) or 1.0
            loss_ax.set_ylim(low - pad, high + pad)
        loss_ax.set_xlim(0, self.steps)
        a["diverged"].set_visible(self.diverged)
        if self.diverged:
            a["diverged"].set_xdata([self.diverged_after, self.diverged_after])
            k = self.diverged_after
            title = f"loss: diverged after {k} step{'s' if k != 1 else ''}"
        else:
            title = f"loss after each step (last: {self.losses[-1]:.3g})"
        loss_ax.set_title(title, fontsize=11, y=1.01)  # a fixed y skips a slow layout search

        figure, canvas = self._figure, self._figure.canvas
        canvas.restore_region(self._background)
        for moving in (loss_ax, a["contour_ax"].title, a["path"], a["end"], a["star"]):
            figure.draw_artist(moving)
        canvas.restore_region(self._legend_pixels)
        return _canvas_png(canvas)

    def _placeholder_png(self) -> bytes:
        figure = Figure(figsize=(4, 1))
        figure.text(0.5, 0.5, "no picture: see the message above", ha="center", va="center")
        return png_bytes(figure, dpi=DPI)


class _Trajectory:
    """One optimizer run for a fixed (lr, optimizer), extended step by step when asked."""

    def __init__(
        self,
        key: tuple[float, str],
        loss_fn: LossFn,
        start: tuple[float, float],
        make_optimizer: Callable[[list[torch.Tensor]], torch.optim.Optimizer],
        explode_at: float,
    ) -> None:
        self.key, self.loss_fn, self.start, self.explode_at = key, loss_fn, start, explode_at
        self.w = torch.tensor(start[0], requires_grad=True)
        self.b = torch.tensor(start[1], requires_grad=True)
        self.optimizer = make_optimizer([self.w, self.b])
        self.losses: list[float] = []
        self.path: list[tuple[float, float]] = []
        self.diverged_after: int | None = None
        self._last_loss: torch.Tensor | None = None

    def extend_to(self, steps: int) -> None:
        """Run until the loss after `steps` steps is known, or until the run diverges."""
        w, b = self.w, self.b
        while self.diverged_after is None and len(self.losses) < steps + 1:
            if self._last_loss is not None:  # one step from the last point
                self.optimizer.zero_grad()
                self._last_loss.backward()
                for g in (w.grad, b.grad):
                    if g is not None and not math.isfinite(g.item()):
                        at = self.path[-1]
                        raise ValueError(
                            f"the gradient of loss_fn at (w, b) = ({at[0]:.3g}, {at[1]:.3g}) "
                            f"is not finite: the loss cannot be differentiated there."
                        )
                self.optimizer.step()
            loss = _as_loss(self.loss_fn(w, b), True)
            value = loss.item()
            if not math.isfinite(value) or abs(value) > self.explode_at:
                if not self.losses:
                    why = (
                        "not a finite number"
                        if not math.isfinite(value)
                        else f"over {EXPLODE_FACTOR:g} times the largest loss in the ranges"
                    )
                    raise ValueError(
                        f"loss_fn(w, b) is {value:g} at the start point {self.start}, {why}: "
                        f"choose a start inside the ranges where the loss is finite."
                    )
                self.diverged_after = len(self.losses)
                self._last_loss = None
                return
            self.losses.append(value)
            self.path.append((w.item(), b.item()))
            self._last_loss = loss


def _canvas_png(canvas: FigureCanvasAgg) -> bytes:
    """PNG bytes of what the canvas holds now (fast compression: these images live in memory).

    Not helpers._util.png_bytes: savefig would draw the whole figure again, and the point of
    _draw_run is to redraw only the moving artists over a saved background (blitting).
    """
    width, height = canvas.get_width_height(physical=True)
    image = PIL.Image.frombuffer("RGBA", (width, height), canvas.buffer_rgba(), "raw", "RGBA", 0, 1)
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="png", compress_level=1)
    return buffer.getvalue()


def _check_pair(value: Any, name: str) -> tuple[float, float]:
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or len(value) != 2:
        raise TypeError(f"{name} must be a pair of numbers (w, b), such as (-1.0, 2.0).")
    w, b = (_check_number(v, name) for v in value)
    return w, b


def _check_settings(lr: Any, steps: Any, optimizer: Any) -> tuple[float, int, str]:
    low, high = 10.0**LR_MIN_EXPONENT, 10.0**LR_MAX_EXPONENT
    if isinstance(lr, bool) or not isinstance(lr, (int, float)):
        raise TypeError(f"lr must be a number such as 0.1, not {type(lr).__name__}.")
    if not (math.isfinite(lr) and low <= lr <= high):
        raise ValueError(f"lr must be between {low:g} and {high:g}, got {lr}.")
    if isinstance(steps, bool) or not isinstance(steps, int):
        raise TypeError(f"steps must be a whole number such as 30, not {type(steps).__name__}.")
    if not 1 <= steps <= MAX_STEPS:
        raise ValueError(f"steps must be between 1 and {MAX_STEPS}, got {steps}.")
    if not isinstance(optimizer, str):
        raise TypeError(f"optimizer must be one of {', '.join(map(repr, OPTIMIZERS))}.")
    names = {name.lower(): name for name in OPTIMIZERS}
    if optimizer.strip().lower() not in names:
        raise ValueError(
            f"optimizer must be one of {', '.join(map(repr, OPTIMIZERS))}, got {optimizer!r}."
        )
    return float(lr), steps, names[optimizer.strip().lower()]
