"""helpers.plots: the same graph picture every run, right labels, clear errors, working plots."""

from __future__ import annotations

import io
import math

import ipywidgets as widgets
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from matplotlib.figure import Figure
from torch import nn

from helpers.plots import (
    MARKERS,
    PALETTE,
    LiveLossPlot,
    autograd_graph,
    draw_graph,
    plot_loss_surface,
    plot_losses,
)

MLP_NAMES = [
    "output",
    "MseLossBackward0",
    "AddmmBackward0",
    "AccumulateGrad",
    "2.bias",
    "ReluBackward0",
    "TBackward0",
    "AddmmBackward0",
    "AccumulateGrad",
    "0.bias",
    "TBackward0",
    "AccumulateGrad",
    "0.weight",
    "AccumulateGrad",
    "2.weight",
]


def _mlp_loss(seed: int = 0) -> tuple[torch.Tensor, nn.Module]:
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(2, 4), nn.ReLU(), nn.Linear(4, 1))
    X, y = torch.randn(5, 2), torch.randn(5, 1)
    return nn.functional.mse_loss(model(X), y), model


def _texts(fig: Figure) -> list[tuple[str, tuple[float, float]]]:
    return [(t.get_text(), tuple(map(float, t.get_position()))) for t in fig.axes[0].texts]


def _png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=40)
    return buffer.getvalue()


# ---------------------------------------------------------------------------------------------
# draw_graph / autograd_graph
# ---------------------------------------------------------------------------------------------


def test_draw_graph_is_the_same_picture_every_run():
    loss, model = _mlp_loss()
    params = dict(model.named_parameters())
    first, second = draw_graph(loss, params), draw_graph(loss, params)
    assert _texts(first) == _texts(second)
    assert _png(first) == _png(second)
    rebuilt_loss, rebuilt_model = _mlp_loss()  # a new, identical graph: new grad_fn objects
    assert rebuilt_loss.grad_fn is not loss.grad_fn
    rebuilt = draw_graph(rebuilt_loss, dict(rebuilt_model.named_parameters()))
    assert _texts(rebuilt) == _texts(first)
    assert _png(rebuilt) == _png(first)


def test_small_model_nodes_and_leaf_labels():
    loss, model = _mlp_loss()
    params = dict(model.named_parameters())
    graph = autograd_graph(loss, params)
    assert graph.names() == MLP_NAMES
    assert sorted(graph.names("leaf")) == sorted(params)
    for node in graph.nodes:
        if node.kind == "leaf":
            assert node.shape == tuple(params[node.name].shape)
    assert graph.nodes[0].shape == () and graph.nodes[0].layer == 0
    relu = next(n for n in graph.nodes if n.name == "ReluBackward0")
    assert relu.shape == (5, 4)
    for parent, child, count in graph.edges:  # every arrow points one or more layers down
        assert graph.nodes[child].layer > graph.nodes[parent].layer and count == 1
    places = [(n.layer, n.x) for n in graph.nodes]
    assert len(set(places)) == len(places), "two boxes in the same place"
    texts = [text for text, _ in _texts(draw_graph(loss, params))]
    assert "0.weight\n(4, 2)" in texts and "2.bias\n(1,)" in texts
    assert "ReluBackward0\n(5, 4)" in texts and "output\nscalar ()" in texts


def test_leaves_without_params_are_called_leaf_with_their_shape():
    loss, _ = _mlp_loss()
    graph = autograd_graph(loss)
    assert graph.names("leaf") == ["leaf"] * 4
    assert sorted(n.shape for n in graph.nodes if n.kind == "leaf") == [(1,), (1, 4), (4,), (4, 2)]
    other = {"not_in_graph": torch.zeros(3, requires_grad=True)}
    assert autograd_graph(loss, other).names("leaf") == ["leaf"] * 4


def test_params_are_matched_by_identity_not_by_value():
    a = torch.ones(3, requires_grad=True)
    twin = torch.ones(3, requires_grad=True)  # equal values, another tensor
    graph = autograd_graph((a * 2).sum(), {"twin": twin, "a": a})
    assert graph.names("leaf") == ["a"]


def test_a_leaf_used_twice_is_one_node_with_a_double_edge():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    graph = autograd_graph((x * x).sum(), {"x": x})
    assert graph.names() == ["output", "SumBackward0", "MulBackward0", "AccumulateGrad", "x"]
    assert (2, 3, 2) in graph.edges
    assert "×2" in [text for text, _ in _texts(draw_graph((x * x).sum(), {"x": x}))]


def test_long_edges_are_routed_beside_the_boxes():
    a = torch.tensor([0.1, 0.2, 0.3], requires_grad=True)
    c = torch.tensor(2.0, requires_grad=True)
    out = (torch.tanh(a * c).sin() ** 2).sum() + c  # c feeds the top and the bottom
    graph = autograd_graph(out, {"a": a, "c": c})
    assert len(graph.routes) == len(graph.edges)
    boxes = {(n.x, n.layer) for n in graph.nodes}
    long_edges = 0
    for (parent, child, _), route in zip(graph.edges, graph.routes, strict=True):
        span = graph.nodes[child].layer - graph.nodes[parent].layer
        assert [depth for _, depth in route] == list(
            range(graph.nodes[parent].layer + 1, graph.nodes[child].layer)
        )
        assert not boxes & set(route), "an edge passes through a box"
        long_edges += span > 1
    assert long_edges >= 1


def test_title_says_which_way_the_arrows_point():
    x = torch.tensor(1.0, requires_grad=True)
    title = draw_graph(x * 3).axes[0].get_title()
    assert "gradients flow" in title and "output → leaves" in title


@pytest.mark.parametrize(
    ("value", "error", "phrases"),
    [
        ([1.0, 2.0], TypeError, ["must be a torch.Tensor", "list"]),
        (torch.ones(2, requires_grad=True), ValueError, ["is a leaf", "no history"]),
        (
            torch.ones(2) * 3,
            ValueError,
            ["does not require grad", "requires_grad=True", "nn.Parameter"],
        ),
        (torch.ones(2, requires_grad=True).detach(), ValueError, ["does not require grad"]),
    ],
)
def test_tensors_without_history_get_a_clear_message(value, error, phrases):
    with pytest.raises(error) as caught:
        draw_graph(value)
    for phrase in phrases:
        assert phrase in str(caught.value)


def test_no_grad_result_is_explained():
    x = torch.ones(2, requires_grad=True)
    with torch.no_grad():
        y = x * 2
    with pytest.raises(ValueError, match="torch.no_grad"):
        draw_graph(y)


@pytest.mark.parametrize(
    ("params", "phrase"),
    [
        ([("w", torch.ones(1))], "must be a dict"),
        ({"w": [1.0]}, "params['w'] must be a tensor"),
        ({1: torch.ones(1)}, "keys must be names"),
    ],
)
def test_bad_params_raise_type_error(params, phrase):
    x = torch.ones(2, requires_grad=True)
    with pytest.raises(TypeError) as caught:
        draw_graph(x * 2, params)
    assert phrase in str(caught.value)


def test_too_large_graph_is_refused_with_advice():
    x = torch.ones(1, requires_grad=True)
    y = x
    for _ in range(30):
        y = y * 1.01
    with pytest.raises(ValueError, match="too many to draw"):
        draw_graph(y, max_nodes=20)
    assert len(autograd_graph(y).nodes) == 1 + 30 + 2


_UNARY = {
    "sin": torch.sin,
    "tanh": torch.tanh,
    "relu": torch.relu,
    "square": lambda a: a**2,
    "sum": torch.sum,
    "mean": torch.mean,
    "clone": torch.clone,
    "neg": torch.neg,
}
_BINARY = {
    "add": torch.add,
    "sub": torch.sub,
    "mul": torch.mul,
    "div": lambda a, b: a / (1 + b**2),
    "inplace_add": lambda a, b: torch.broadcast_tensors(a, b)[0].clone().add_(b),
}
_OPS = st.tuples(
    st.sampled_from(sorted(_UNARY) + sorted(_BINARY) + ["detach"]),
    st.integers(0, 50),
    st.integers(0, 50),
)


@settings(max_examples=30, deadline=None)
@given(n_leaves=st.integers(1, 3), ops=st.lists(_OPS, min_size=1, max_size=8))
def test_fuzz_draw_graph_contains_exactly_the_leaves_the_output_depends_on(n_leaves, ops):
    leaves = [torch.linspace(0.1, 0.9, 3).add(k).requires_grad_() for k in range(n_leaves)]
    constant = torch.tensor([0.5, -1.0, 2.0])  # requires no grad: never drawn
    values: list[torch.Tensor] = [*leaves, constant]
    depends: list[set[int]] = [{k} for k in range(n_leaves)] + [set()]
    for name, i, j in ops:
        i, j = i % len(values), j % len(values)
        if name == "detach":
            values.append(values[i].detach())
            depends.append(set())
        elif name in _UNARY:
            values.append(_UNARY[name](values[i]))
            depends.append(set(depends[i]))
        else:
            values.append(_BINARY[name](values[i], values[j]))
            depends.append(depends[i] | depends[j])
    output = values[-1].sum()
    params = {f"p{k}": leaf for k, leaf in enumerate(leaves)} | {"constant": constant}
    if not depends[-1]:
        with pytest.raises(ValueError, match="grad"):
            draw_graph(output, params)
        return
    graph = autograd_graph(output, params)
    assert sorted(graph.names("leaf")) == sorted(f"p{k}" for k in depends[-1])
    assert len(graph.names("accumulate")) == len(depends[-1])
    for parent, child, _ in graph.edges:
        assert graph.nodes[child].layer > graph.nodes[parent].layer
    fig = draw_graph(output, params)
    texts = [text for text, _ in _texts(fig)]
    for k in depends[-1]:
        assert any(text.startswith(f"p{k}\n") for text in texts)
    assert _png(fig)[:8] == b"\x89PNG\r\n\x1a\n"


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
    from helpers.plots import _evaluate_surface

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
    bundle = live._repr_mimebundle_() if hasattr(live, "_repr_mimebundle_") else None
    if bundle is not None:  # ipywidgets 8: the text/plain nbval compares
        assert bundle["text/plain"] == "LiveLossPlot()"


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


def test_figures_display_as_png_in_ipython_without_pyplot():
    from IPython.core.interactiveshell import InteractiveShell

    from helpers.plots import _register_png_display

    shell = InteractiveShell.instance()
    try:
        formatter = shell.display_formatter.formatters["image/png"]
        formatter.type_printers.pop(Figure, None)
        _register_png_display()
        png = formatter(plot_losses([2.0, 1.0]))
        assert png is not None and bytes(png)[:8] == b"\x89PNG\r\n\x1a\n"
    finally:
        InteractiveShell.clear_instance()
