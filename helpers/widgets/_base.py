"""What every explorer shares: a message line, callbacks that never raise, a static picture.

Rules that keep notebooks stable under strict nbval and working on ipywidgets 7.7 and 8:
- no `Output` widget and no `clear_output()`: text goes into `HTML` widgets, figures into
  `Image` widgets (PNG bytes rendered with matplotlib's Agg backend);
- a short, fixed `__repr__`;
- displayed, an explorer stores beside its live view an `image/png` picture of its state and a
  one-line `text/plain` caption (its `CAPTION`), so a page that cannot run widgets (GitHub, a
  static book) shows what it holds instead of a blank placeholder. A live front end picks the
  widget view, which it ranks above images.
"""

from __future__ import annotations

import functools
import html
import io
import textwrap
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import ipywidgets as widgets
import matplotlib
from PIL import Image, ImageDraw, ImageFont

from helpers._util import first_line
from helpers.figures import StaticPicture

__all__ = ["Explorer", "state_picture"]

_FONT_PX = 12
_CELL_CHARS = 40  # a longer cell is cut with "…"


def _fit(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


@functools.cache
def _font(name: str) -> ImageFont.FreeTypeFont:
    """One of matplotlib's bundled DejaVu fonts (the same file on every machine)."""
    return ImageFont.truetype(str(Path(matplotlib.get_data_path(), "fonts", "ttf", name)), _FONT_PX)


def state_picture(
    title: str, header: Sequence[str], rows: Sequence[Sequence[str]], message: str = ""
) -> bytes:
    """A PNG of a small table (an explorer's state): a title, a header row, rows, a message.

    Drawn with Pillow in matplotlib's DejaVu fonts, a monospaced line per row: a few
    milliseconds, where matplotlib's text layout took hundreds (it runs at every display).
    """
    widths = [
        min(_CELL_CHARS, max(len(str(row[i])) for row in [header, *rows]))
        for i in range(len(header))
    ]

    def joined(cells: Sequence[str]) -> str:
        return "  ".join(_fit(str(c), w).ljust(w) for c, w in zip(cells, widths, strict=True))

    chars = max(len(joined(header)), 70)
    mono, mono_bold = _font("DejaVuSansMono.ttf"), _font("DejaVuSansMono-Bold.ttf")
    sans, sans_bold = _font("DejaVuSans.ttf"), _font("DejaVuSans-Bold.ttf")
    title_lines = textwrap.wrap(title, int(chars * 0.9)) or [""]
    note_lines = textwrap.wrap(message, int(chars * 1.1))
    pad, step, gap = 8, _FONT_PX + 6, 6  # pixels
    size = (
        int(2 * pad + chars * mono.getlength("M")),
        2 * pad + step * (len(title_lines) + 1 + len(rows) + len(note_lines)) + gap,
    )
    image = Image.new("RGB", size, (255, 255, 255))
    draw = ImageDraw.Draw(image)
    y = pad

    def line(text: str, font: ImageFont.FreeTypeFont, colour: str = "#000000") -> None:
        nonlocal y
        draw.text((pad, y), text, font=font, fill=colour)
        y += step

    for text in title_lines:
        line(text, sans_bold)
    line(joined(header), mono_bold)
    draw.line((pad, y - 3, size[0] - pad, y - 3), fill="#888888", width=1)
    for row in rows:
        line(joined(row), mono)
    y += gap
    for text in note_lines:
        line(text, sans, "#1f4e79")
    buffer = io.BytesIO()
    image.save(buffer, format="png")
    return buffer.getvalue()


class Explorer(StaticPicture, widgets.VBox):
    """Base class: a VBox with a message line, a `safely` wrapper and a stored static picture."""

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
            self.say(
                f"{what} did not work: {type(error).__name__}: {first_line(error, 300)}", "error"
            )
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
