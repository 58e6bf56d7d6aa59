"""helpers._util: the small shared pieces every module uses."""

import matplotlib

matplotlib.use("Agg")

import pytest
import torch
from matplotlib.figure import Figure
from torch import nn

from helpers._util import (
    first_line,
    one_thread,
    png_bytes,
    require_model,
    require_optimizer,
    shape_text,
)


def test_first_line_takes_the_first_line_and_cuts_long_ones():
    assert first_line(ValueError("one\ntwo")) == "one"
    assert first_line(ValueError("")) == ""
    cut = first_line(ValueError("x" * 500), limit=20)
    assert len(cut) == 20 and cut.endswith("…")


def test_first_line_survives_a_broken_str():
    class Broken(Exception):
        def __str__(self):
            raise RuntimeError("no")

    assert first_line(Broken()) == ""


def test_png_bytes_is_a_png():
    figure = Figure(figsize=(1, 1))
    figure.add_subplot().plot([0, 1])
    assert png_bytes(figure).startswith(b"\x89PNG")


@pytest.mark.parametrize(
    ("shape", "text"),
    [((), "()"), ((3,), "(3,)"), ((2, 3), "(2, 3)"), (torch.zeros(4, 1), "(4, 1)")],
)
def test_shape_text_writes_shapes_as_python_tuples(shape, text):
    assert shape_text(shape) == text


def test_require_model_and_optimizer_name_what_to_pass():
    model = nn.Linear(2, 1)
    assert require_model(model) is model
    with pytest.raises(TypeError, match="must be a torch.nn.Module"):
        require_model("model")
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    assert require_optimizer(optimizer) is optimizer
    assert require_optimizer(None, allow_none=True) is None
    with pytest.raises(TypeError, match="or None"):
        require_optimizer(3, allow_none=True)
    with pytest.raises(TypeError, match="torch.optim.Optimizer"):
        require_optimizer(None)


def test_one_thread_restores_the_thread_count(two_threads):
    before = torch.get_num_threads()
    assert before == two_threads
    with one_thread():
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
