"""Loss curves and loss surfaces, drawn with matplotlib from the colour-blind-safe palette.

Each function builds a `matplotlib.figure.Figure` without pyplot and returns it (or draws into
the Axes it is given), so the same call works in a notebook, in a widget and in a test.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from matplotlib import patheffects
from matplotlib.axes import Axes
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator, NullLocator

from helpers.figures import PngFigure

__all__ = ["MARKERS", "PALETTE", "plot_loss_surface", "plot_losses"]

# Okabe and Ito's colours, which people with the common colour-vision deficiencies can tell
# apart; every plot here draws from them. Where two things must be told apart, a marker shape
# (MARKERS) or a label says it too, never the colour alone.
PALETTE: tuple[str, ...] = (
    "#0072B2",  # blue
    "#E69F00",  # orange
    "#009E73",  # bluish green
    "#D55E00",  # vermillion
    "#CC79A7",  # reddish purple
    "#56B4E9",  # sky blue
    "#F0E442",  # yellow
)
MARKERS: tuple[str, ...] = ("o", "s", "^", "D", "v", "P", "X")
_VERMILLION, _YELLOW = PALETTE[3], PALETTE[6]


def _as_float(value: Any, what: str) -> float:
    """Turn a number or a one-element tensor into a float, or raise a clear TypeError."""
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise TypeError(
                f"{what} must be a single number, but it is a tensor of shape {tuple(value.shape)}."
            )
        return float(value.detach().cpu().item())
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.number)):
        raise TypeError(f"{what} must be a number, not {type(value).__name__}.")
    return float(value)


def _grid_values(values: Any, what: str) -> np.ndarray:
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu().numpy()
    if isinstance(values, (str, bytes)) or not isinstance(values, (Sequence, np.ndarray)):
        raise TypeError(
            f"{what} must be a 1-D sequence of numbers such as torch.linspace(-2, 2, 41), "
            f"not {type(values).__name__}."
        )
    try:
        array = np.asarray(values, dtype=float)
    except (TypeError, ValueError) as error:
        raise TypeError(f"{what} must contain only numbers ({error}).") from None
    if array.ndim != 1 or array.size < 2:
        raise ValueError(
            f"{what} must be 1-D with at least 2 values, got shape {tuple(array.shape)}."
        )
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{what} contains NaN or infinity; use finite grid values.")
    if not np.all(np.diff(array) > 0):
        raise ValueError(f"{what} must be strictly increasing, e.g. torch.linspace(-2, 2, 41).")
    return array


def _path_points(path: Any) -> np.ndarray:
    if isinstance(path, torch.Tensor):
        path = path.detach().cpu().tolist()
    if isinstance(path, np.ndarray):
        path = path.tolist()
    if isinstance(path, (str, bytes)) or not isinstance(path, Sequence):
        raise TypeError(f"path must be a list of (w, b) pairs, not {type(path).__name__}.")
    if len(path) == 0:
        raise ValueError("path is empty; pass at least one (w, b) pair, or leave path out.")
    points = []
    for step, pair in enumerate(path):
        if isinstance(pair, torch.Tensor):
            pair = pair.detach().cpu().reshape(-1).tolist()
        if isinstance(pair, (str, bytes)) or not isinstance(pair, (Sequence, np.ndarray)):
            raise TypeError(f"path[{step}] must be a (w, b) pair, not {type(pair).__name__}.")
        if len(pair) != 2:
            raise ValueError(f"path[{step}] must hold 2 values (w, b), but it holds {len(pair)}.")
        points.append(
            (_as_float(pair[0], f"path[{step}][0]"), _as_float(pair[1], f"path[{step}][1]"))
        )
    return np.array(points, dtype=float)


def _evaluate_surface(
    loss_fn: Callable[[Any, Any], Any], ws: np.ndarray, bs: np.ndarray
) -> np.ndarray:
    """Evaluate the loss on the grid: rows are b values, columns w values."""
    dtype = torch.get_default_dtype()
    try:  # fast path: torch.func.vmap over both axes, for loss functions made of torch ops
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            over_w = torch.func.vmap(loss_fn, in_dims=(0, None))
            over_both = torch.func.vmap(over_w, in_dims=(None, 0))
            values = over_both(torch.tensor(ws, dtype=dtype), torch.tensor(bs, dtype=dtype))
        if isinstance(values, torch.Tensor) and tuple(values.shape) == (bs.size, ws.size):
            return values.detach().cpu().to(torch.float64).numpy()
    except Exception:  # Python floats, .item(), if-statements on values: use the plain loop
        pass
    grid = np.empty((bs.size, ws.size))
    with torch.no_grad():
        for i, b in enumerate(bs):
            for j, w in enumerate(ws):
                try:
                    value = loss_fn(torch.tensor(w, dtype=dtype), torch.tensor(b, dtype=dtype))
                except Exception as error:
                    raise ValueError(
                        f"loss_fn(w={w:.4g}, b={b:.4g}) raised {type(error).__name__}: {error}. "
                        "loss_fn must take two numbers (0-dim tensors) and return the loss."
                    ) from error
                grid[i, j] = _as_float(value, f"loss_fn(w={w:.4g}, b={b:.4g})")
    return grid


def _contour_levels(values: np.ndarray, levels: Any) -> tuple[np.ndarray, bool]:
    """Return the contour levels and whether they are log-spaced."""
    low, high = float(values.min()), float(values.max())
    if isinstance(levels, str):
        if levels not in ("auto", "log", "linear"):
            raise ValueError(
                f"levels must be 'auto', 'log', 'linear', a count or a list, not {levels!r}."
            )
        if high - low <= 1e-12 * max(1.0, abs(high)):
            return np.array([low - 0.5, low + 0.5]), False
        use_log = levels == "log" or (
            levels == "auto" and low >= 0 and high > 100 * max(low, 1e-12)
        )
        if use_log:
            floor = max(low, high * 1e-4)  # at most four decades: finer rings are noise
            if low < 0 or floor <= 0:
                raise ValueError("levels='log' needs positive loss values; use levels='linear'.")
            return np.geomspace(floor, high, 21), True
        return np.linspace(low, high, 21), False
    if isinstance(levels, int) and not isinstance(levels, bool):
        if levels < 2:
            raise ValueError(f"levels must be at least 2 when it is a count, got {levels}.")
        if high - low <= 1e-12 * max(1.0, abs(high)):
            return np.array([low - 0.5, low + 0.5]), False
        return np.linspace(low, high, levels), False
    if isinstance(levels, (Sequence, np.ndarray)) and not isinstance(levels, bytes):
        array = np.asarray([_as_float(v, "each level") for v in levels])
        if array.size < 2 or not np.all(np.diff(array) > 0):
            raise ValueError("levels must be at least 2 increasing numbers.")
        return array, False
    raise TypeError(
        "levels must be 'auto', 'log', 'linear', a whole number of levels or a list of values, "
        f"not {type(levels).__name__}."
    )


def _log_ticks(low: float, high: float) -> list[float]:
    """Powers of ten between low and high (or three log-spaced values if fewer fit)."""
    ticks = [10.0**e for e in range(math.floor(math.log10(low)), math.ceil(math.log10(high)) + 1)]
    ticks = [t for t in ticks if low <= t <= high]
    if len(ticks) < 3:
        ticks = sorted(set(ticks) | {float(f"{v:.2g}") for v in np.geomspace(low, high, 4)})
        ticks = [t for t in ticks if low <= t <= high]
    return ticks


_STAR_ZORDER = 10  # above the default of lines (2) and of the paths and markers drawn here


def plot_loss_surface(
    loss_fn: Callable[[Any, Any], Any],
    w_values: Any,
    b_values: Any,
    path: Any = None,
    ax: Axes | None = None,
    levels: int | Sequence[float] | str = "auto",
    *,
    names: tuple[str, str] = ("w", "b"),
    title: str = "Loss surface",
    colorbar: bool | None = None,
) -> Figure:
    """Draw the contours of `loss_fn(w, b)` over a grid, with an optional path of (w, b) steps."""
    if not callable(loss_fn):
        raise TypeError(
            f"loss_fn must be a function loss_fn(w, b) -> loss, not {type(loss_fn).__name__}."
        )
    ws = _grid_values(w_values, "w_values")
    bs = _grid_values(b_values, "b_values")
    points = None if path is None else _path_points(path)
    if ax is not None and not isinstance(ax, Axes):
        raise TypeError(f"ax must be a matplotlib Axes (or None), not {type(ax).__name__}.")
    if not (
        isinstance(names, tuple) and len(names) == 2 and all(isinstance(n, str) for n in names)
    ):
        raise TypeError("names must be a pair of axis names such as ('w', 'b').")
    grid = _evaluate_surface(loss_fn, ws, bs)
    finite = np.isfinite(grid)
    if not finite.any():
        raise ValueError(
            "loss_fn returned NaN or infinity everywhere on the grid; use a smaller range."
        )
    level_values, use_log = _contour_levels(grid[finite], levels)
    row, col = np.unravel_index(np.argmin(np.where(finite, grid, np.inf)), grid.shape)
    if use_log:  # values under the lowest level (0 has no logarithm) go into the lowest band
        grid = np.where(finite, np.maximum(grid, level_values[0]), grid)
    masked = np.ma.masked_invalid(grid)

    if ax is None:
        fig = PngFigure(figsize=(6.0, 4.6), layout="constrained")
        ax = fig.add_subplot()
        colorbar = True if colorbar is None else colorbar
    else:
        fig = ax.figure
        colorbar = False if colorbar is None else colorbar
    norm = LogNorm(level_values[0], level_values[-1]) if use_log else None
    filled = ax.contourf(
        ws,
        bs,
        masked,
        levels=level_values,
        cmap="viridis",
        norm=norm,
        extend="neither" if isinstance(levels, str) else "both",
    )
    ax.contour(
        ws, bs, masked, levels=level_values, colors="white", linewidths=0.4, alpha=0.5, norm=norm
    )
    if colorbar:
        bar = fig.colorbar(filled, ax=ax)
        bar.set_label("loss (log scale)" if use_log else "loss")
        if use_log:
            bar.set_ticks(_log_ticks(level_values[0], level_values[-1]))
            bar.ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:.3g}"))
            bar.ax.yaxis.set_minor_locator(NullLocator())
    if points is not None:
        ax.plot(
            points[:, 0],
            points[:, 1],
            "-o",
            color=_VERMILLION,
            markersize=3,
            linewidth=1.4,
            zorder=3,
            label=f"path ({len(points)} points)",
        )
        ax.plot(
            points[0, 0],
            points[0, 1],
            "o",
            color=_VERMILLION,
            markersize=8,
            markeredgecolor="black",
            zorder=4,
            label="start",
        )
        ax.plot(  # an open ring, so the star can show inside it when the path ends at the bottom
            points[-1, 0],
            points[-1, 1],
            "s",
            markerfacecolor="none",
            markeredgecolor=_YELLOW,
            markersize=16,
            markeredgewidth=2.2,
            path_effects=[patheffects.withStroke(linewidth=4, foreground="black")],
            zorder=5,
            label="end",
        )
    ax.plot(  # drawn last and on top: paths a caller adds later stay under it too
        ws[col],
        bs[row],
        marker="*",
        markersize=13,
        color="white",
        markeredgecolor="black",
        linestyle="none",
        zorder=_STAR_ZORDER,
        label="lowest on grid",
    )
    ax.set_xlim(ws[0], ws[-1])
    ax.set_ylim(bs[0], bs[-1])
    ax.set_xlabel(names[0])
    ax.set_ylabel(names[1])
    ax.set_title(title)
    ax.legend(loc="upper right", fontsize=8, framealpha=0.85, markerscale=0.7, labelspacing=0.7)
    return fig


def _series_from(losses: Any, labels: Any) -> dict[str, tuple[list[float], list[float]]]:
    """Normalise plot_losses' input to {label: (steps, values)}."""

    def values_of(seq: Any, what: str) -> list[float]:
        if isinstance(seq, torch.Tensor):
            seq = seq.detach().cpu().reshape(-1).tolist()
        if isinstance(seq, (str, bytes)) or not isinstance(seq, (Sequence, np.ndarray)):
            raise TypeError(f"{what} must be a list of numbers, not {type(seq).__name__}.")
        if len(seq) == 0:
            raise ValueError(f"{what} is empty; log at least one loss value before plotting.")
        return [_as_float(v, f"{what}[{i}]") for i, v in enumerate(seq)]

    if isinstance(losses, Mapping):
        if labels is not None:
            raise TypeError(
                "labels must be left out when losses is a dict: its keys are the labels."
            )
        if not losses:
            raise ValueError("losses is an empty dict; give at least one label -> list of losses.")
        curves = {str(k): values_of(v, f"losses[{k!r}]") for k, v in losses.items()}
    elif isinstance(losses, (Sequence, np.ndarray, torch.Tensor)) and not isinstance(
        losses, (str, bytes)
    ):
        several = len(losses) > 0 and all(
            isinstance(v, (Sequence, np.ndarray)) and not isinstance(v, (str, bytes))
            for v in losses
        )
        if several:
            if labels is None:
                labels = [f"run {i}" for i in range(len(losses))]
            if (
                isinstance(labels, str)
                or not isinstance(labels, Sequence)
                or len(labels) != len(losses)
            ):
                raise ValueError(f"labels must be a list of {len(losses)} names, one per curve.")
            curves = {
                str(lab): values_of(v, f"losses[{i}]")
                for i, (lab, v) in enumerate(zip(labels, losses, strict=True))
            }
        else:
            if labels is None:
                labels = "loss"
            if isinstance(labels, Sequence) and not isinstance(labels, str) and len(labels) == 1:
                labels = labels[0]
            if not isinstance(labels, str):
                raise TypeError("labels must be one name (str) for a single curve.")
            curves = {labels: values_of(losses, "losses")}
    else:
        raise TypeError(
            "losses must be a list of numbers, a list of such lists, or a dict label -> list, "
            f"not {type(losses).__name__}."
        )
    return {k: (list(range(len(v))), v) for k, v in curves.items()}


def _draw_curves(
    ax: Axes,
    series: Mapping[str, tuple[Sequence[float], Sequence[float]]],
    title: str,
    logy: bool,
) -> None:
    for k, (label, (steps, values)) in enumerate(series.items()):
        ax.plot(  # colour and marker shape both tell the curves apart; long curves get a few marks
            steps,
            values,
            color=PALETTE[k % len(PALETTE)],
            marker=MARKERS[k % len(MARKERS)],
            markevery=1 if len(values) <= 30 else max(1, len(values) // 12),
            markersize=3.5,
            linewidth=1.4,
            label=label,
        )
    if logy:
        positive = all(v > 0 for _, vs in series.values() for v in vs if math.isfinite(v))
        if not positive:
            raise ValueError("logy=True needs every loss to be positive; use logy=False.")
        ax.set_yscale("log")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("step")
    ax.set_ylabel("loss (log scale)" if logy else "loss")
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    if len(series) > 1:
        ax.legend(fontsize=8)


def plot_losses(
    losses: Any,
    labels: Any = None,
    ax: Axes | None = None,
    title: str = "Loss per step",
    logy: bool = False,
) -> Figure:
    """Plot one loss curve (a list) or several (a dict label -> list), step on the x-axis."""
    series = _series_from(losses, labels)
    if ax is not None and not isinstance(ax, Axes):
        raise TypeError(f"ax must be a matplotlib Axes (or None), not {type(ax).__name__}.")
    if not isinstance(title, str):
        raise TypeError(f"title must be a str, not {type(title).__name__}.")
    if ax is None:
        fig = PngFigure(figsize=(6.0, 3.6), layout="constrained")
        ax = fig.add_subplot()
    else:
        fig = ax.figure
    _draw_curves(ax, series, title, bool(logy))
    return fig
