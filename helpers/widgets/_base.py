"""What every explorer shares: a message line, callbacks that never raise, figures as PNG images.

Rules that keep notebooks stable under strict nbval and working on ipywidgets 7.7 and 8:
- no `Output` widget and no `clear_output()`: text goes into `HTML` widgets, figures into
  `Image` widgets (PNG bytes rendered with matplotlib's Agg backend);
- a short, fixed `__repr__`, because the text/plain of a displayed widget is what nbval compares.
"""

from __future__ import annotations

import html
import io
from collections.abc import Callable
from typing import Any

import ipywidgets as widgets
from matplotlib.figure import Figure

__all__ = ["Explorer", "figure_to_png"]


def figure_to_png(figure: Figure, dpi: int = 80) -> bytes:
    """Render a matplotlib Figure (made without pyplot) to PNG bytes."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


class Explorer(widgets.VBox):
    """Base class: a VBox with a message line and a `safely` wrapper for callbacks."""

    def __init__(self, **kwargs: Any) -> None:
        self._message_html = widgets.HTML(value="")
        self.message = ""
        super().__init__(**kwargs)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"

    def say(self, text: str, kind: str = "info") -> None:
        """Show one plain sentence under the controls (kind: info, warning or error)."""
        self.message = text
        colour = {"info": "#1f4e79", "warning": "#8a5a00", "error": "#a40000"}.get(kind, "#1f4e79")
        self._message_html.value = (
            f'<div class="looplab-message looplab-{kind}" style="color:{colour}">'
            f"{html.escape(text)}</div>"
        )

    def safely(self, action: Callable[[], Any], what: str) -> Any:
        """Run `action`; if it raises, show a plain message naming `what` failed instead."""
        try:
            return action()
        except Exception as error:  # ipywidgets would only log it; the learner must see it
            first_line = str(error).strip().splitlines()[0] if str(error).strip() else ""
            self.say(f"{what} did not work: {type(error).__name__}: {first_line}", kind="error")
            return None

    def click_buttons(self, names: Any, tooltips: dict[str, str], min_width: str) -> dict:
        """One button per name; a click runs `self.click(name)`, and never raises ("reset" warns)."""
        buttons = {}
        for name in names:
            button = widgets.Button(
                description=name,
                tooltip=tooltips[name],
                button_style="warning" if name == "reset" else "",
                layout=widgets.Layout(width="auto", min_width=min_width),
            )
            button.on_click(lambda _button, name=name: self.safely(lambda: self.click(name), name))
            buttons[name] = button
        return buttons
