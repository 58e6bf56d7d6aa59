"""Show a matplotlib figure with a text description (alt text) that travels with the picture.

`show_figure(fig, alt="...")` stores one output: the PNG, and the description twice, as the
image's `alt` metadata and as its `text/plain`, so a screen reader, a static page built from the
notebook, and a front end that cannot show images all get the words. Then it closes the figure,
so pyplot's inline backend does not show a second copy at the end of the cell.
"""

from __future__ import annotations

import base64
import sys
from typing import Any, ClassVar

import ipywidgets as widgets
from IPython.core.pylabtools import print_figure
from IPython.display import display
from matplotlib.figure import Figure

__all__ = ["PngFigure", "StaticPicture", "figure_output", "show_figure"]

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def _checked_alt(alt: Any) -> str:
    if not isinstance(alt, str):
        raise TypeError(
            f"alt must be a str that says what the figure shows, not {type(alt).__name__}; "
            'e.g. show_figure(fig, alt="Loss falls from 2.3 to 0.4 over 30 steps").'
        )
    text = " ".join(alt.split())
    if not text:
        raise ValueError(
            "alt is empty: describe what the figure shows in a sentence, e.g. "
            'show_figure(fig, alt="Loss falls from 2.3 to 0.4 over 30 steps"), so that a '
            "screen-reader user knows what the picture shows."
        )
    return text


def figure_output(fig: Figure, alt: str) -> tuple[dict[str, str], dict[str, dict[str, str]]]:
    """The (data, metadata) bundle show_figure displays: base64 PNG, alt text as text/plain."""
    if not isinstance(fig, Figure):
        raise TypeError(
            f"fig must be a matplotlib Figure (e.g. from plt.subplots() or draw_graph), "
            f"not {type(fig).__name__}."
        )
    text = _checked_alt(alt)
    # What pyplot's inline backend does for a figure: the figure's dpi, a tight bounding box.
    png = print_figure(fig, fmt="png", bbox_inches="tight")
    if not png:
        raise ValueError(
            "the figure is empty (no axes, no lines): draw something before showing it."
        )
    data = {"image/png": base64.b64encode(png).decode("ascii"), "text/plain": text}
    return data, {"image/png": {"alt": text}}


class PngFigure(Figure):
    """A Figure that IPython shows as a PNG when it ends a cell, whether or not pyplot is in use.

    The helpers' drawing functions return one, so that `draw_graph(loss)` typed in a cell shows
    the picture in a notebook that never imported pyplot; stored notebooks use show_figure.
    """

    def _repr_png_(self) -> bytes | None:
        """The PNG IPython shows (what pyplot's inline backend would draw)."""
        return print_figure(self, fmt="png", bbox_inches="tight")


def show_figure(fig: Figure, alt: str) -> None:
    """Display `fig` as one PNG output carrying `alt` (what it shows), then close the figure."""
    data, metadata = figure_output(fig, alt)
    pyplot = sys.modules.get("matplotlib.pyplot")  # close only through a pyplot already in use
    if pyplot is not None:
        pyplot.close(fig)
    display(data, raw=True, metadata=metadata)


class StaticPicture:
    """Mixin for a widget: its output also stores a PNG of its state and a one-line caption.

    Displayed, the widget's bundle holds the live view, `image/png` (from `picture()`) and
    `text/plain` (`CAPTION`). JupyterLab and Colab rank the widget view above the image and show
    the live widget; GitHub, nbviewer and a static book show the picture with the caption.
    """

    CAPTION: ClassVar[str] = "A widget: run the notebook to use it."

    def picture(self) -> bytes:
        """PNG bytes of the widget's current state (each widget draws its own)."""
        raise NotImplementedError

    def _repr_mimebundle_(self, **kwargs: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        """The live view, `image/png` (its picture) and `text/plain` (its caption, also the alt)."""
        parent = getattr(super(), "_repr_mimebundle_", None)  # ipywidgets 8; 7.7 has none
        bundle = dict(parent(**kwargs) or {}) if callable(parent) else {}
        if WIDGET_VIEW not in bundle and getattr(self, "_view_name", None) is not None:
            model_id = self.model_id  # type: ignore[attr-defined]
            bundle[WIDGET_VIEW] = {"version_major": 2, "version_minor": 0, "model_id": model_id}
        bundle["image/png"] = base64.b64encode(self.picture()).decode("ascii")
        bundle["text/plain"] = self.CAPTION
        return bundle, {"image/png": {"alt": self.CAPTION}}

    if hasattr(widgets.Widget, "_ipython_display_"):  # ipywidgets 7.7 displays through this hook

        def _ipython_display_(self, **kwargs: Any) -> None:
            """Display the bundle of `_repr_mimebundle_` (ipywidgets 7.7 only)."""
            data, metadata = self._repr_mimebundle_()
            display(data, raw=True, metadata=metadata)
            if getattr(self, "_view_name", None) is not None:
                self._handle_displayed(**kwargs)  # type: ignore[attr-defined]
