"""The autograd graph behind a tensor, drawn with matplotlib: no Graphviz, same picture every run.

`draw_graph(loss, dict(model.named_parameters()))` walks `loss.grad_fn.next_functions` and draws
the output at the top, the backward functions below it and the leaves at the bottom, with
arrows the way gradients flow in backward().
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from helpers._util import shape_text
from helpers.figures import PngFigure

__all__ = ["draw_graph"]

_KIND_COLOURS = {  # (fill, edge): light tints of the palette's orange, blue and bluish green
    "output": ("#fbe3b8", "#a86f00"),
    "function": ("#cfe3f2", "#0072B2"),
    "accumulate": ("#e6e6e6", "#555555"),
    "leaf": ("#c8eadf", "#007a58"),
}
_KIND_NAMES = {
    "output": "output tensor",
    "function": "backward function (grad_fn)",
    "accumulate": "AccumulateGrad (writes .grad)",
    "leaf": "leaf tensor",
}


@dataclass(frozen=True)
class _Node:
    """One box of the drawn graph: what it is, its label, and where it sits."""

    index: int  # order of discovery, walking next_functions depth-first from the output
    kind: str  # "output", "function", "accumulate" or "leaf"
    name: str  # e.g. "MulBackward0", "fc1.weight", "leaf", "output"
    shape: tuple[int, ...] | None  # the tensor's shape (None where unknown)
    layer: int  # 0 for the output, growing towards the leaves
    x: float  # horizontal position (data units; boxes in a layer are at least 1 apart)

    @property
    def label(self) -> str:
        """The text drawn in the box: the name, and the shape on a second line."""
        if self.shape is None:
            return self.name
        return f"{self.name}\n{'scalar ()' if self.shape == () else shape_text(self.shape)}"


@dataclass(frozen=True)
class _Graph:
    """The graph behind a tensor: nodes, and edges (from, to, count) in gradient direction.

    `routes[k]` lists the (x, layer) points that edge k passes through between its two boxes.
    """

    nodes: tuple[_Node, ...]
    edges: tuple[tuple[int, int, int], ...]
    routes: tuple[tuple[tuple[float, int], ...], ...]  # per edge: (x, layer) waypoints


def _function_shape(fn: Any) -> tuple[int, ...] | None:
    """The shape of what a backward function's forward op produced (None if unknown)."""
    try:  # `_input_metadata` is how autograd records it; older PyTorch versions lack it
        metadata = fn._input_metadata
        if len(metadata) == 1:
            return tuple(int(s) for s in metadata[0].shape)
    except Exception:
        pass
    return None


def _check_tensor_with_history(tensor: Any, what: str = "tensor") -> None:
    if not isinstance(tensor, torch.Tensor):
        raise TypeError(
            f"{what} must be a torch.Tensor (for example a loss), not {type(tensor).__name__}."
        )
    if tensor.grad_fn is None:
        if tensor.requires_grad:
            raise ValueError(
                f"{what} is a leaf: it requires grad but was created directly, not computed, "
                "so it has no history (grad_fn is None) and there is no graph to draw. "
                "Draw a tensor computed from it instead, e.g. draw_graph((x * 2).sum())."
            )
        raise ValueError(
            f"{what} does not require grad, so autograd recorded no graph (grad_fn is None). "
            "Create the inputs with requires_grad=True (or use nn.Parameter), compute the "
            "result outside torch.no_grad(), and do not .detach() it."
        )


def _check_params(params: Any) -> dict[str, torch.Tensor]:
    if params is None:
        return {}
    if not isinstance(params, Mapping):
        raise TypeError(
            "params must be a dict of name -> tensor, e.g. dict(model.named_parameters()), "
            f"not {type(params).__name__}."
        )
    for name, value in params.items():
        if not isinstance(name, str):
            raise TypeError(f"params keys must be names (str), but one is {name!r}.")
        if not isinstance(value, torch.Tensor):
            raise TypeError(
                f"params[{name!r}] must be a tensor, not {type(value).__name__}; "
                "pass dict(model.named_parameters())."
            )
    return dict(params)


def _autograd_graph(
    tensor: torch.Tensor,
    params: Mapping[str, torch.Tensor] | None = None,
    *,
    max_nodes: int = 150,
) -> _Graph:
    """Walk `tensor.grad_fn.next_functions` and return the graph's nodes, layers and edges."""
    _check_tensor_with_history(tensor)
    names = _check_params(params)
    if isinstance(max_nodes, bool) or not isinstance(max_nodes, int) or max_nodes < 2:
        raise ValueError(f"max_nodes must be a whole number of at least 2, got {max_nodes!r}.")

    # 1. Discover nodes depth-first, in next_functions order (deterministic).
    kinds: list[str] = ["output"]
    labels: list[str] = ["output"]
    shapes: list[tuple[int, ...] | None] = [tuple(tensor.shape)]
    edge_count: dict[tuple[int, int], int] = {}
    index_of: dict[Any, int] = {}  # keys keep each grad_fn alive, so objects stay distinct
    leaf_of: dict[int, int] = {}

    def add(kind: str, name: str, shape: tuple[int, ...] | None) -> int:
        if len(kinds) >= max_nodes:
            raise ValueError(
                f"the graph has more than {max_nodes} nodes, too many to draw readably; "
                "draw a smaller computation (fewer layers or steps), or raise max_nodes."
            )
        kinds.append(kind)
        labels.append(name)
        shapes.append(shape)
        return len(kinds) - 1

    def node_for(fn: Any) -> tuple[int, bool]:
        if fn in index_of:
            return index_of[fn], False
        variable = getattr(fn, "variable", None)
        if isinstance(variable, torch.Tensor):
            index = add("accumulate", type(fn).__name__, None)
            index_of[fn] = index
            leaf_name = next((n for n, p in names.items() if p is variable), "leaf")
            leaf_of[index] = add("leaf", leaf_name, tuple(variable.shape))
            edge_count[(index, leaf_of[index])] = 1
        else:
            index = add("function", type(fn).__name__, _function_shape(fn))
            index_of[fn] = index
        return index, True

    root, _ = node_for(tensor.grad_fn)
    edge_count[(0, root)] = 1
    stack = [tensor.grad_fn]
    while stack:
        fn = stack.pop()
        parent = index_of[fn]
        children = []
        for child_fn, _ in fn.next_functions:
            if child_fn is None:
                continue
            child, new = node_for(child_fn)
            edge_count[(parent, child)] = edge_count.get((parent, child), 0) + 1
            if new:
                children.append(child_fn)
        stack.extend(reversed(children))  # visit the first input first

    # 2. Layers: longest path from the output, so every arrow points down (Kahn's algorithm).
    count = len(kinds)
    children_of: list[list[int]] = [[] for _ in range(count)]
    parents_of: list[list[int]] = [[] for _ in range(count)]
    for parent, child in edge_count:
        children_of[parent].append(child)
        parents_of[child].append(parent)
    waiting = [len(p) for p in parents_of]
    layer = [0] * count
    ready = [0]
    while ready:
        ready.sort()
        node = ready.pop(0)
        for child in children_of[node]:
            layer[child] = max(layer[child], layer[node] + 1)
            waiting[child] -= 1
            if waiting[child] == 0:
                ready.append(child)

    # 3. An edge that spans several layers gets a waypoint in each layer it crosses, so it can
    #    pass beside the boxes instead of through them. Then each layer is ordered by the mean
    #    position of its neighbours, sweeping down and up a few times (a stable, fixed rule).
    depths = max(layer) + 1
    item_layer = list(layer)
    ups: list[list[int]] = [[] for _ in range(count)]
    downs: list[list[int]] = [[] for _ in range(count)]
    chains: dict[tuple[int, int], list[int]] = {}
    for parent, child in sorted(edge_count):
        chain = [parent]
        for depth in range(layer[parent] + 1, layer[child]):
            item_layer.append(depth)
            ups.append([])
            downs.append([])
            chain.append(len(item_layer) - 1)
        chain.append(child)
        for upper, lower in zip(chain, chain[1:], strict=False):
            downs[upper].append(lower)
            ups[lower].append(upper)
        chains[(parent, child)] = chain
    rows = [[i for i in range(len(item_layer)) if item_layer[i] == d] for d in range(depths)]
    pos: dict[int, float] = {}

    def place(row: list[int]) -> None:
        for slot, item in enumerate(row):
            pos[item] = slot - (len(row) - 1) / 2

    def sort_by(row: list[int], neighbours: list[list[int]]) -> None:
        row.sort(
            key=lambda i: (
                sum(pos[n] for n in neighbours[i]) / len(neighbours[i]) if neighbours[i] else pos[i]
            )
        )
        place(row)

    for row in rows:
        place(row)
    for _ in range(3):
        for depth in range(1, depths):
            sort_by(rows[depth], ups)
        for depth in range(depths - 2, 0, -1):
            sort_by(rows[depth], downs)
    for depth in range(1, depths):
        sort_by(rows[depth], ups)
    # 4. Positions: each item as close as it can get to the mean of its parents, in the order
    #    found above and at least one unit from its neighbour.
    for depth in range(1, depths):
        row = rows[depth]
        want = [sum(pos[u] for u in ups[i]) / len(ups[i]) for i in row]
        xs = list(want)
        for k in range(1, len(xs)):
            xs[k] = max(xs[k], xs[k - 1] + 1.0)
        shift = sum(x - w for x, w in zip(xs, want, strict=True)) / len(xs)
        for item, x in zip(row, xs, strict=True):
            pos[item] = x - shift

    nodes = tuple(_Node(i, kinds[i], labels[i], shapes[i], layer[i], pos[i]) for i in range(count))
    ordered = sorted(edge_count.items())
    edges = tuple((p, c, n) for (p, c), n in ordered)
    routes = tuple(
        tuple((pos[i], item_layer[i]) for i in chains[(p, c)][1:-1]) for (p, c), _ in ordered
    )
    return _Graph(nodes, edges, routes)


def draw_graph(
    tensor: torch.Tensor,
    params: Mapping[str, torch.Tensor] | None = None,
    *,
    max_nodes: int = 150,
) -> Figure:
    """Draw the autograd graph behind `tensor` (arrows: the way gradients flow) as a Figure."""
    graph = _autograd_graph(tensor, params, max_nodes=max_nodes)
    layers = max(n.layer for n in graph.nodes) + 1
    every_x = [n.x for n in graph.nodes] + [x for route in graph.routes for x, _ in route]
    left, right = min(every_x) - 0.5, max(every_x) + 0.5
    widest = right - left  # units across, waypoints included
    width = min(max(1.85 * widest + 0.8, 5.5), 20.0)
    height = min(max(0.78 * layers + 1.3, 3.0), 16.0)
    fig = PngFigure(figsize=(width, height), layout="constrained")
    ax = fig.add_subplot()
    ax.set_axis_off()
    ax.set_xlim(left, right)
    ax.set_ylim(-(layers - 1) - 0.5, 0.5)

    boxes = {}
    for node in graph.nodes:
        face, edge = _KIND_COLOURS[node.kind]
        boxes[node.index] = ax.text(
            node.x,
            -node.layer,
            node.label,
            ha="center",
            va="center",
            fontsize=8.5,
            fontweight="bold" if node.kind in ("output", "leaf") else "normal",
            bbox={"boxstyle": "round,pad=0.35", "facecolor": face, "edgecolor": edge},
            zorder=3,
        )
    arrow = {"arrowstyle": "-|>", "color": "#444444", "lw": 1.0, "shrinkA": 4, "shrinkB": 4}
    for (parent, child, count), route in zip(graph.edges, graph.routes, strict=True):
        start = graph.nodes[parent]
        if route:  # a long edge: a line through its waypoints (hidden under the start box)
            xs = [start.x] + [x for x, _ in route]
            ys = [-start.layer] + [-depth for _, depth in route]
            ax.plot(xs, ys, color=arrow["color"], lw=arrow["lw"], zorder=1)
            tail: dict[str, Any] = {"xytext": (xs[-1], ys[-1]), "textcoords": "data"}
            arrowprops = arrow | {"shrinkA": 0}
        else:
            tail = {"xytext": (0.5, 0.0), "textcoords": boxes[parent]}
            arrowprops = arrow
        ax.annotate(
            "", xy=(0.5, 1.0), xycoords=boxes[child], arrowprops=arrowprops, zorder=2, **tail
        )
        if count > 1:
            end = graph.nodes[child]
            below = route[0] if route else (end.x, end.layer)
            ax.text(
                (start.x + below[0]) / 2 + 0.08,
                -(start.layer + below[1]) / 2,
                f"×{count}",
                fontsize=8,
                color="#a33f00",  # a dark vermillion
                ha="left",
                va="center",
            )
    ax.set_title(
        "Autograd graph\narrows point the way gradients flow in backward(): output → leaves",
        fontsize=10,
    )
    kinds = [k for k in _KIND_NAMES if any(n.kind == k for n in graph.nodes)]
    handles = [
        Patch(facecolor=_KIND_COLOURS[k][0], edgecolor=_KIND_COLOURS[k][1], label=_KIND_NAMES[k])
        for k in kinds
    ]
    columns = len(handles) if width >= 8.5 else 2
    fig.legend(handles=handles, loc="outside lower center", ncols=columns, fontsize=8)
    return fig
