"""helpers.plots.graph: the same graph picture every run, right labels, clear errors."""

from __future__ import annotations

import io

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from matplotlib.figure import Figure
from torch import nn

from helpers.plots import draw_graph
from helpers.plots.graph import _autograd_graph as autograd_graph
from helpers.plots.graph import _Graph

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


def names(graph: _Graph, kind: str | None = None) -> list[str]:
    """The node names in discovery order, optionally only those of one kind."""
    return [n.name for n in graph.nodes if kind is None or n.kind == kind]


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
    assert names(graph) == MLP_NAMES
    assert sorted(names(graph, "leaf")) == sorted(params)
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
    assert names(graph, "leaf") == ["leaf"] * 4
    assert sorted(n.shape for n in graph.nodes if n.kind == "leaf") == [(1,), (1, 4), (4,), (4, 2)]
    other = {"not_in_graph": torch.zeros(3, requires_grad=True)}
    assert names(autograd_graph(loss, other), "leaf") == ["leaf"] * 4


def test_params_are_matched_by_identity_not_by_value():
    a = torch.ones(3, requires_grad=True)
    twin = torch.ones(3, requires_grad=True)  # equal values, another tensor
    graph = autograd_graph((a * 2).sum(), {"twin": twin, "a": a})
    assert names(graph, "leaf") == ["a"]


def test_a_leaf_used_twice_is_one_node_with_a_double_edge():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    graph = autograd_graph((x * x).sum(), {"x": x})
    assert names(graph) == ["output", "SumBackward0", "MulBackward0", "AccumulateGrad", "x"]
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
    assert sorted(names(graph, "leaf")) == sorted(f"p{k}" for k in depends[-1])
    assert len(names(graph, "accumulate")) == len(depends[-1])
    for parent, child, _ in graph.edges:
        assert graph.nodes[child].layer > graph.nodes[parent].layer
    fig = draw_graph(output, params)
    texts = [text for text, _ in _texts(fig)]
    for k in depends[-1]:
        assert any(text.startswith(f"p{k}\n") for text in texts)
    assert _png(fig)[:8] == b"\x89PNG\r\n\x1a\n"
