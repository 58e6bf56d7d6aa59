"""helpers.plots.curves: loss surfaces and loss curves, their palette and their clear errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from helpers.plots import MARKERS, PALETTE, plot_loss_surface, plot_losses

# ---------------------------------------------------------------------------------------------
# plot_loss_surface
# ---------------------------------------------------------------------------------------------

X_LINE = torch.linspace(-1, 1, 16)
Y_LINE = 3 * X_LINE + 0.5


def _line_loss(w, b):
    return ((w * X_LINE + b - Y_LINE) ** 2).mean()


def test_loss_surface_draws_the_path_and_the_minimum():
    path = [(-2.0, 3.0), (0.0, 1.0), (torch.tensor(2.5), torch.tensor(0.6))]
    fig = plot_loss_surface(
        _line_loss, torch.linspace(-3, 5, 41), torch.linspace(-2, 4, 31), path=path
    )
    ax = fig.axes[0]
    line = next(line for line in ax.lines if line.get_label().startswith("path"))
    assert np.allclose(line.get_xdata(), [-2.0, 0.0, 2.5])
    assert np.allclose(line.get_ydata(), [3.0, 1.0, 0.6])
    best = next(line for line in ax.lines if line.get_label() == "lowest on grid")
    assert np.allclose([best.get_xdata()[0], best.get_ydata()[0]], [3.0, 0.4], atol=0.21)
    assert ax.get_xlabel() == "w" and ax.get_ylabel() == "b"
    assert len(fig.axes) == 2 and fig.axes[1].get_ylabel() == "loss (log scale)"


def test_loss_surface_star_stays_visible_where_the_path_ends():
    # a path that ends on the lowest grid point: the star is drawn above the end marker, and the
    # end marker is an open ring larger than the star, so both show
    path = [(-2.0, 3.0), (3.0, 0.5)]
    fig = plot_loss_surface(
        _line_loss, torch.linspace(-3, 5, 41), torch.linspace(-2, 4, 31), path=path
    )
    ax = fig.axes[0]
    star = next(line for line in ax.lines if line.get_label() == "lowest on grid")
    end = next(line for line in ax.lines if line.get_label() == "end")
    assert np.allclose([star.get_xdata()[0], star.get_ydata()[0]], path[-1], atol=0.11)
    assert star.get_zorder() > max(line.get_zorder() for line in ax.lines if line is not star)
    assert end.get_markerfacecolor() == "none" and end.get_markersize() > star.get_markersize()
    later = ax.plot([-2.0, 3.0], [3.0, 0.5], "-o")[0]  # a path a notebook adds afterwards
    assert star.get_zorder() > later.get_zorder()


def test_plots_draw_from_the_colour_blind_safe_palette_with_a_second_cue():
    ax = plot_losses({"a": [3.0, 2.0], "b": [2.5, 1.0], "c": list(np.linspace(3, 1, 100))}).axes[0]
    colours = [line.get_color() for line in ax.lines]
    markers = [line.get_marker() for line in ax.lines]
    assert colours == list(PALETTE[:3]) and markers == list(MARKERS[:3])
    assert len(set(PALETTE)) == len(PALETTE) and len(set(MARKERS)) == len(MARKERS)
    fig = plot_loss_surface(_line_loss, [0.0, 1.0, 2.0], [0.0, 1.0], path=[(0.0, 0.0), (1.0, 1.0)])
    path = next(line for line in fig.axes[0].lines if line.get_label().startswith("path"))
    assert path.get_color() in PALETTE


def test_loss_surface_uses_linear_levels_for_a_small_range():
    fig = plot_loss_surface(_line_loss, [1.0, 1.5, 2.0], [0.0, 1.0], levels="auto")
    assert fig.axes[1].get_ylabel() == "loss"


def test_loss_surface_draws_into_a_given_axes_without_a_colorbar():
    fig = Figure()
    ax = fig.add_subplot()
    returned = plot_loss_surface(_line_loss, [0.0, 1.0, 2.0], [0.0, 1.0], ax=ax, path=[(1.0, 0.5)])
    assert returned is fig and fig.axes == [ax]
    assert any(line.get_label() == "start" for line in ax.lines)


def test_loss_surface_accepts_plain_python_functions():
    from helpers.plots.curves import _evaluate_surface

    ws, bs = np.array([-1.0, 0.0, 2.0]), np.array([0.0, 1.0])
    fast = _evaluate_surface(_line_loss, ws, bs)  # torch ops: evaluated with vmap
    slow = _evaluate_surface(lambda w, b: float(_line_loss(float(w), float(b))), ws, bs)
    assert fast.shape == (2, 3)
    assert np.allclose(fast, slow, rtol=1e-5)
    assert math.isclose(fast[1, 0], float(_line_loss(-1.0, 1.0)), rel_tol=1e-5)


def test_loss_surface_bad_inputs():
    with pytest.raises(TypeError, match="loss_fn must be a function"):
        plot_loss_surface(3.0, [0, 1], [0, 1])
    with pytest.raises(ValueError, match="strictly increasing"):
        plot_loss_surface(_line_loss, [1, 0], [0, 1])
    with pytest.raises(ValueError, match="at least 2 values"):
        plot_loss_surface(_line_loss, [0], [0, 1])
    with pytest.raises(TypeError, match="b_values must be a 1-D sequence"):
        plot_loss_surface(_line_loss, [0, 1], "01")
    with pytest.raises(ValueError, match=r"path\[1\] must hold 2 values"):
        plot_loss_surface(_line_loss, [0, 1], [0, 1], path=[(0, 0), (1, 2, 3)])
    with pytest.raises(ValueError, match=r"loss_fn\(w=0, b=0\) raised ZeroDivisionError"):
        plot_loss_surface(lambda w, b: 1 / 0, [0, 1], [0, 1])
    with pytest.raises(TypeError, match="single number"):
        plot_loss_surface(lambda w, b: torch.ones(2) * w, [0, 1], [0, 1])
    with pytest.raises(ValueError, match="levels must be"):
        plot_loss_surface(_line_loss, [0, 1], [0, 1], levels="many")


# ---------------------------------------------------------------------------------------------
# plot_losses
# ---------------------------------------------------------------------------------------------


def test_plot_losses_one_and_several_curves():
    ax = plot_losses([3.0, 2.0, torch.tensor(1.5)]).axes[0]
    assert len(ax.lines) == 1 and list(ax.lines[0].get_ydata()) == [3.0, 2.0, 1.5]
    assert list(ax.lines[0].get_xdata()) == [0, 1, 2] and ax.get_xlabel() == "step"
    ax = plot_losses({"train": [1.0, 0.5], "validation": [1.2, 0.7]}, logy=True).axes[0]
    assert [line.get_label() for line in ax.lines] == ["train", "validation"]
    assert ax.get_yscale() == "log" and ax.get_legend() is not None
    ax = plot_losses([[1.0, 0.5], [2.0, 1.0, 0.1]], labels=["a", "b"]).axes[0]
    assert [len(line.get_xdata()) for line in ax.lines] == [2, 3]


def test_plot_losses_bad_inputs():
    with pytest.raises(ValueError, match="empty"):
        plot_losses([])
    with pytest.raises(TypeError, match="must be a list of numbers"):
        plot_losses(3.0)
    with pytest.raises(TypeError, match=r"losses\[1\] must be a number"):
        plot_losses([1.0, "x"])
    with pytest.raises(TypeError, match="keys are the labels"):
        plot_losses({"a": [1.0]}, labels=["b"])
    with pytest.raises(ValueError, match="logy=True needs every loss to be positive"):
        plot_losses([1.0, 0.0], logy=True)
    with pytest.raises(ValueError, match="list of 2 names"):
        plot_losses([[1.0], [2.0]], labels=["only one"])
