"""Every explorer stores a static picture of its state and a one-line caption beside its view."""

from __future__ import annotations

import base64
import io

import ipywidgets as widgets
import pytest
from PIL import Image

from helpers.plots import LiveLossPlot
from helpers.widgets import (
    AccumulationExplorer,
    LearningRateExplorer,
    ScalerStepExplorer,
    TrainingStepExplorer,
)
from helpers.widgets._base import state_picture

VIEW = "application/vnd.jupyter.widget-view+json"
EXPLORERS = [TrainingStepExplorer, LearningRateExplorer, AccumulationExplorer, ScalerStepExplorer]


@pytest.fixture(autouse=True)
def _close_widgets():
    yield
    widgets.Widget.close_all()


def _image(png: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(png))
    image.load()
    return image


@pytest.mark.parametrize("kind", [*EXPLORERS, LiveLossPlot], ids=lambda k: k.__name__)
def test_the_bundle_holds_the_view_a_picture_and_a_caption(kind):
    made = kind()
    bundle, metadata = made._repr_mimebundle_()
    assert bundle[VIEW]["model_id"] == made.model_id  # the live widget, as ipywidgets gives it
    png = base64.b64decode(bundle["image/png"])
    assert png == made.picture()
    image = _image(png)
    assert image.format == "PNG" and image.width >= 300 and image.height >= 60
    caption = bundle["text/plain"]
    assert caption == kind.CAPTION and caption.startswith(f"{kind.__name__}: ")
    assert "\n" not in caption and len(caption) < 200
    assert metadata == {"image/png": {"alt": caption}}  # the caption is the picture's alt text
    assert repr(made) == f"{kind.__name__}()"  # the repr stays short and fixed


@pytest.mark.parametrize("kind", EXPLORERS, ids=lambda k: k.__name__)
def test_the_picture_is_the_same_for_the_same_state(kind):
    assert kind().picture() == kind().picture()


def test_training_step_picture_follows_the_clicks():
    explorer = TrainingStepExplorer()
    start = explorer.picture()
    for phase in ("zero_grad", "forward", "loss", "backward", "step"):
        explorer.click(phase)
    after = explorer.picture()
    assert after != start
    explorer.click("reset")
    explorer.history.clear()
    explorer.say(TrainingStepExplorer().message)
    assert explorer.picture() == start  # back where it began: the same picture


def test_learning_rate_picture_is_the_figure_it_shows():
    explorer = LearningRateExplorer()
    first = explorer.picture()
    assert first == explorer.figure_image.value
    explorer.set(lr=0.5)
    assert explorer.picture() == explorer.figure_image.value != first


def test_accumulation_and_scaler_pictures_change_with_their_state():
    accumulation = AccumulationExplorer()
    before = accumulation.picture()
    accumulation.set(scale="off")
    assert accumulation.picture() != before
    scaler = ScalerStepExplorer()
    before = scaler.picture()
    scaler.click("backward")
    assert scaler.picture() != before


def test_state_picture_draws_long_cells_cut_and_empty_tables():
    wide = state_picture("title", ("a", "b"), [("x" * 200, "y")], "a message " * 40)
    assert _image(wide).width < 1000  # a long cell is cut, not stretched across the page
    empty = state_picture("nothing yet", ("a", "b"), [])
    assert _image(empty).height < _image(wide).height
