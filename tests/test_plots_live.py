"""helpers.plots.live: LiveLossPlot redraws on a fixed rule; importing helpers.plots has no side effects."""

from __future__ import annotations

import base64
import subprocess
import sys

import ipywidgets as widgets
import pytest
import torch
from matplotlib.figure import Figure

from helpers.plots import LiveLossPlot

# ---------------------------------------------------------------------------------------------
# LiveLossPlot
# ---------------------------------------------------------------------------------------------


def test_live_loss_plot_records_and_redraws_on_a_fixed_rule():
    live = LiveLossPlot(every=3)
    assert isinstance(live, widgets.Image) and live.format == "png"
    empty = live.value
    live.update(torch.tensor(2.0))  # the first update draws at once
    first = live.value
    assert first != empty and live.draws == 2
    live.update(1.5)
    live.update(1.2)
    assert live.value == first, "no redraw before `every` updates"
    live.update(1.0)
    assert live.value != first and live.draws == 3
    live.update(1.4, step=3, series="validation")
    assert live.history == {"train": [2.0, 1.5, 1.2, 1.0], "validation": [1.4]}
    assert live.steps == {"train": [0, 1, 2, 3], "validation": [3.0]}
    fig = live.finish()
    assert isinstance(fig, Figure) and live.draws == 4
    lines = fig.axes[0].lines
    assert [line.get_label() for line in lines] == ["train", "validation"]
    assert list(lines[0].get_ydata()) == [2.0, 1.5, 1.2, 1.0]


def test_live_loss_plot_repr_is_short_and_fixed():
    live = LiveLossPlot()
    before = repr(live)
    for step in range(25):
        live.update(1 / (step + 1))
    assert repr(live) == before == "LiveLossPlot()"
    assert live._repr_mimebundle_()[0]["text/plain"] == LiveLossPlot.CAPTION  # what nbval compares


def test_live_loss_plot_bad_arguments():
    with pytest.raises(ValueError, match="every must be"):
        LiveLossPlot(every=0)
    live = LiveLossPlot()
    with pytest.raises(TypeError, match="loss must be a number"):
        live.update("0.5")
    with pytest.raises(TypeError, match="single number"):
        live.update(torch.ones(3))
    with pytest.raises(TypeError, match="series must be"):
        live.update(1.0, series="")
    live.update(1.0, step=5)
    with pytest.raises(ValueError, match="steps must not go backwards"):
        live.update(1.0, step=2)
    assert live.history == {"train": [1.0]}


def test_live_loss_plot_stores_its_picture_and_a_caption_beside_the_widget():
    live = LiveLossPlot(every=1)
    live.update(2.0)
    live.update(1.0)
    bundle, metadata = live._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert base64.b64decode(bundle["image/png"]) == live.value  # the plot as last drawn
    assert bundle["text/plain"] == LiveLossPlot.CAPTION == metadata["image/png"]["alt"]
    assert bundle["text/plain"].startswith("LiveLossPlot: ") and "\n" not in LiveLossPlot.CAPTION


def test_importing_helpers_registers_no_display_hook_yet_a_figure_shows_as_png():
    code = (
        "from IPython.core.interactiveshell import InteractiveShell\n"
        "shell = InteractiveShell.instance()\n"
        "png = shell.display_formatter.formatters['image/png']\n"
        "before = dict(png.type_printers)\n"
        "import helpers.plots, helpers.widgets, helpers.figures\n"
        "assert png.type_printers == before, 'importing helpers changed how figures display'\n"
        "assert 'matplotlib.pyplot' not in __import__('sys').modules, 'pyplot imported'\n"
        "fig = helpers.plots.plot_losses([2.0, 1.0])  # ending a cell, it still shows as a PNG\n"
        "data, _ = shell.display_formatter.format(fig)\n"
        "assert data['image/png'][:8] == b'\\x89PNG\\r\\n\\x1a\\n', sorted(data)\n"
        "print('ok')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]
