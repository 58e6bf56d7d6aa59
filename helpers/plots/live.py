"""LiveLossPlot: a loss plot that redraws while training runs, as an ipywidgets Image."""

from __future__ import annotations

import math
from typing import Any

import ipywidgets as widgets
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from helpers._util import png_bytes
from helpers.figures import PngFigure, StaticPicture
from helpers.plots.curves import _as_float, _draw_curves

__all__ = ["LiveLossPlot"]


class LiveLossPlot(StaticPicture, widgets.Image):
    """A loss plot that redraws while training runs: `update(loss)` each step, `finish()` at the end.

    It redraws on the first update, then every `every` updates, and on `finish()`, so what a
    notebook stores does not depend on timing. It is an ipywidgets Image showing a PNG.
    """

    def __init__(
        self,
        every: int = 10,
        title: str = "Training loss",
        logy: bool = False,
        figsize: tuple[float, float] = (5.5, 3.2),
        dpi: int = 80,
    ) -> None:
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise ValueError(f"every must be a whole number of at least 1, got {every!r}.")
        if not isinstance(title, str):
            raise TypeError(f"title must be a str, not {type(title).__name__}.")
        if not isinstance(logy, bool):
            raise TypeError(f"logy must be True or False, not {logy!r}.")
        if isinstance(dpi, bool) or not isinstance(dpi, int) or not 20 <= dpi <= 300:
            raise ValueError(f"dpi must be a whole number between 20 and 300, got {dpi!r}.")
        if (
            not isinstance(figsize, tuple)
            or len(figsize) != 2
            or not all(isinstance(v, (int, float)) and 1 <= v <= 20 for v in figsize)
        ):
            raise ValueError(
                f"figsize must be (width, height) in inches between 1 and 20, got {figsize!r}."
            )
        super().__init__(format="png")
        self.every = every
        self.title = title
        self.logy = logy
        self.figsize = (float(figsize[0]), float(figsize[1]))
        self.dpi = dpi
        self.history: dict[str, list[float]] = {}
        self.steps: dict[str, list[float]] = {}
        self.draws = 0
        self._pending = 0
        self._figure = Figure(figsize=self.figsize, layout="constrained")
        self._redraw()

    CAPTION = "LiveLossPlot: a loss plot that redraws every few steps while the model trains."

    def __repr__(self) -> str:
        return "LiveLossPlot()"

    def picture(self) -> bytes:
        """The plot as it was last drawn (the PNG the widget shows)."""
        return self.value

    def update(self, loss: Any, step: int | float | None = None, series: str = "train") -> None:
        """Record one loss value (a number or a one-element tensor) for `series`; redraw now and then."""
        value = _as_float(loss, "loss")
        if not isinstance(series, str) or not series:
            raise TypeError(f"series must be a non-empty name such as 'train', not {series!r}.")
        steps = self.steps.get(series, [])
        if step is None:
            where = steps[-1] + 1 if steps else 0
        else:
            where = _as_float(step, "step")
            if not math.isfinite(where):
                raise ValueError(f"step must be a finite number, got {step!r}.")
            if steps and where < steps[-1]:
                raise ValueError(
                    f"step {where:g} comes before the last step {steps[-1]:g} of series {series!r}; "
                    "steps must not go backwards (leave step out to count automatically)."
                )
        self.steps.setdefault(series, []).append(where)
        self.history.setdefault(series, []).append(value)
        self._pending += 1
        if self.draws == 1 or self._pending >= self.every:
            self._redraw()

    def finish(self) -> Figure:
        """Draw the final state into the widget and return it as a new static Figure."""
        self._redraw()
        fig = PngFigure(figsize=self.figsize, layout="constrained")
        self._draw_into(fig.add_subplot())
        return fig

    def _draw_into(self, ax: Axes) -> None:
        if not self.history:
            ax.text(
                0.5,
                0.5,
                "waiting for the first loss…",
                ha="center",
                va="center",
                transform=ax.transAxes,
                color="#777777",
            )
            ax.set_xlabel("step")
            ax.set_ylabel("loss")
            ax.set_title(self.title)
            return
        series = {name: (self.steps[name], values) for name, values in self.history.items()}
        logy = self.logy and all(
            v > 0 for vs in self.history.values() for v in vs if math.isfinite(v)
        )
        _draw_curves(ax, series, self.title, logy)

    def _redraw(self) -> None:
        self._figure.clear()
        self._draw_into(self._figure.add_subplot())
        self.value = png_bytes(self._figure, self.dpi)
        self.draws += 1
        self._pending = 0
