"""Pictures of training: the autograd graph, loss curves, loss surfaces and a live loss plot.

Every function builds a `matplotlib.figure.Figure` without pyplot and returns it, so the same
call works in a notebook (the Figure is the cell's last expression), in a widget (PNG bytes)
and in a test. Nothing here needs Graphviz or a network connection. Imported inside IPython,
this module makes a Figure display as a PNG even before pyplot has been imported.
"""

from __future__ import annotations

import io
import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import ipywidgets as widgets
import numpy as np
import torch
from matplotlib import patheffects
from matplotlib.axes import Axes
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter, MaxNLocator, NullLocator

__all__ = [
    "GraphNode",
    "AutogradGraph",
    "autograd_graph",
    "draw_graph",
    "plot_loss_surface",
    "plot_losses",
    "LiveLossPlot",
    "PALETTE",
    "MARKERS",
]

# Okabe and Ito's colours, which people with the common colour-vision deficiencies can tell
# apart; every plot here draws from them. Where two things must be told apart, a marker shape
# (MARKERS) or a label says it too, never the colour alone.
PALETTE: tuple[str, ...] = (
    "#0072B2",  # blue
    "#E69F00",  # orange
    "#009E73",  # bluish green
    "#D55E00",  # vermillion
    "#CC79A7",  # reddish purple
    "#56B4E9",  # sky blue
    "#F0E442",  # yellow
)
MARKERS: tuple[str, ...] = ("o", "s", "^", "D", "v", "P", "X")
_VERMILLION, _YELLOW = PALETTE[3], PALETTE[6]

# ----------------------------------------------------------------------------------------------
# The autograd graph
# ----------------------------------------------------------------------------------------------

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
class GraphNode:
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
        return f"{self.name}\n{_shape_text(self.shape)}"


@dataclass(frozen=True)
class AutogradGraph:
    """The graph behind a tensor: nodes, and edges (from, to, count) in gradient direction.

    `routes[k]` lists the (x, layer) points that edge k passes through between its two boxes.
    """

    nodes: tuple[GraphNode, ...]
    edges: tuple[tuple[int, int, int], ...]
    routes: tuple[tuple[tuple[float, int], ...], ...] = ()  # per edge: (x, layer) waypoints

    def names(self, kind: str | None = None) -> list[str]:
        """Return the node names in discovery order, optionally only those of one kind."""
        return [n.name for n in self.nodes if kind is None or n.kind == kind]


def _shape_text(shape: tuple[int, ...]) -> str:
    if len(shape) == 0:
        return "scalar ()"
    if len(shape) == 1:
        return f"({shape[0]},)"
    return "(" + ", ".join(str(s) for s in shape) + ")"


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


def autograd_graph(
    tensor: torch.Tensor,
    params: Mapping[str, torch.Tensor] | None = None,
    *,
    max_nodes: int = 150,
) -> AutogradGraph:
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

    nodes = tuple(
        GraphNode(i, kinds[i], labels[i], shapes[i], layer[i], pos[i]) for i in range(count)
    )
    ordered = sorted(edge_count.items())
    edges = tuple((p, c, n) for (p, c), n in ordered)
    routes = tuple(
        tuple((pos[i], item_layer[i]) for i in chains[(p, c)][1:-1]) for (p, c), _ in ordered
    )
    return AutogradGraph(nodes, edges, routes)


def draw_graph(
    tensor: torch.Tensor,
    params: Mapping[str, torch.Tensor] | None = None,
    *,
    max_nodes: int = 150,
) -> Figure:
    """Draw the autograd graph behind `tensor` (arrows: the way gradients flow) as a Figure."""
    graph = autograd_graph(tensor, params, max_nodes=max_nodes)
    layers = max(n.layer for n in graph.nodes) + 1
    every_x = [n.x for n in graph.nodes] + [x for route in graph.routes for x, _ in route]
    left, right = min(every_x) - 0.5, max(every_x) + 0.5
    widest = right - left  # units across, waypoints included
    width = min(max(1.85 * widest + 0.8, 5.5), 20.0)
    height = min(max(0.78 * layers + 1.3, 3.0), 16.0)
    fig = Figure(figsize=(width, height), layout="constrained")
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


# ----------------------------------------------------------------------------------------------
# Loss surfaces and loss curves
# ----------------------------------------------------------------------------------------------


def _as_float(value: Any, what: str) -> float:
    """Turn a number or a one-element tensor into a float, or raise a clear TypeError."""
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise TypeError(
                f"{what} must be a single number, but it is a tensor of shape {tuple(value.shape)}."
            )
        return float(value.detach().cpu().item())
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.number)):
        raise TypeError(f"{what} must be a number, not {type(value).__name__}.")
    return float(value)


def _grid_values(values: Any, what: str) -> np.ndarray:
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu().numpy()
    if isinstance(values, (str, bytes)) or not isinstance(values, (Sequence, np.ndarray)):
        raise TypeError(
            f"{what} must be a 1-D sequence of numbers such as torch.linspace(-2, 2, 41), "
            f"not {type(values).__name__}."
        )
    try:
        array = np.asarray(values, dtype=float)
    except (TypeError, ValueError) as error:
        raise TypeError(f"{what} must contain only numbers ({error}).") from None
    if array.ndim != 1 or array.size < 2:
        raise ValueError(
            f"{what} must be 1-D with at least 2 values, got shape {tuple(array.shape)}."
        )
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{what} contains NaN or infinity; use finite grid values.")
    if not np.all(np.diff(array) > 0):
        raise ValueError(f"{what} must be strictly increasing, e.g. torch.linspace(-2, 2, 41).")
    return array


def _path_points(path: Any) -> np.ndarray:
    if isinstance(path, torch.Tensor):
        path = path.detach().cpu().tolist()
    if isinstance(path, np.ndarray):
        path = path.tolist()
    if isinstance(path, (str, bytes)) or not isinstance(path, Sequence):
        raise TypeError(f"path must be a list of (w, b) pairs, not {type(path).__name__}.")
    if len(path) == 0:
        raise ValueError("path is empty; pass at least one (w, b) pair, or leave path out.")
    points = []
    for step, pair in enumerate(path):
        if isinstance(pair, torch.Tensor):
            pair = pair.detach().cpu().reshape(-1).tolist()
        if isinstance(pair, (str, bytes)) or not isinstance(pair, (Sequence, np.ndarray)):
            raise TypeError(f"path[{step}] must be a (w, b) pair, not {type(pair).__name__}.")
        if len(pair) != 2:
            raise ValueError(f"path[{step}] must hold 2 values (w, b), but it holds {len(pair)}.")
        points.append(
            (_as_float(pair[0], f"path[{step}][0]"), _as_float(pair[1], f"path[{step}][1]"))
        )
    return np.array(points, dtype=float)


def _evaluate_surface(
    loss_fn: Callable[[Any, Any], Any], ws: np.ndarray, bs: np.ndarray
) -> np.ndarray:
    """Evaluate the loss on the grid: rows are b values, columns w values."""
    dtype = torch.get_default_dtype()
    try:  # fast path: torch.func.vmap over both axes, for loss functions made of torch ops
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            over_w = torch.func.vmap(loss_fn, in_dims=(0, None))
            over_both = torch.func.vmap(over_w, in_dims=(None, 0))
            values = over_both(torch.tensor(ws, dtype=dtype), torch.tensor(bs, dtype=dtype))
        if isinstance(values, torch.Tensor) and tuple(values.shape) == (bs.size, ws.size):
            return values.detach().cpu().to(torch.float64).numpy()
    except Exception:  # Python floats, .item(), if-statements on values: use the plain loop
        pass
    grid = np.empty((bs.size, ws.size))
    with torch.no_grad():
        for i, b in enumerate(bs):
            for j, w in enumerate(ws):
                try:
                    value = loss_fn(torch.tensor(w, dtype=dtype), torch.tensor(b, dtype=dtype))
                except Exception as error:
                    raise ValueError(
                        f"loss_fn(w={w:.4g}, b={b:.4g}) raised {type(error).__name__}: {error}. "
                        "loss_fn must take two numbers (0-dim tensors) and return the loss."
                    ) from error
                grid[i, j] = _as_float(value, f"loss_fn(w={w:.4g}, b={b:.4g})")
    return grid


def _contour_levels(values: np.ndarray, levels: Any) -> tuple[np.ndarray, bool]:
    """Return the contour levels and whether they are log-spaced."""
    low, high = float(values.min()), float(values.max())
    if isinstance(levels, str):
        if levels not in ("auto", "log", "linear"):
            raise ValueError(
                f"levels must be 'auto', 'log', 'linear', a count or a list, not {levels!r}."
            )
        if high - low <= 1e-12 * max(1.0, abs(high)):
            return np.array([low - 0.5, low + 0.5]), False
        use_log = levels == "log" or (
            levels == "auto" and low >= 0 and high > 100 * max(low, 1e-12)
        )
        if use_log:
            floor = max(low, high * 1e-4)  # at most four decades: finer rings are noise
            if low < 0 or floor <= 0:
                raise ValueError("levels='log' needs positive loss values; use levels='linear'.")
            return np.geomspace(floor, high, 21), True
        return np.linspace(low, high, 21), False
    if isinstance(levels, int) and not isinstance(levels, bool):
        if levels < 2:
            raise ValueError(f"levels must be at least 2 when it is a count, got {levels}.")
        if high - low <= 1e-12 * max(1.0, abs(high)):
            return np.array([low - 0.5, low + 0.5]), False
        return np.linspace(low, high, levels), False
    if isinstance(levels, (Sequence, np.ndarray)) and not isinstance(levels, bytes):
        array = np.asarray([_as_float(v, "each level") for v in levels])
        if array.size < 2 or not np.all(np.diff(array) > 0):
            raise ValueError("levels must be at least 2 increasing numbers.")
        return array, False
    raise TypeError(
        "levels must be 'auto', 'log', 'linear', a whole number of levels or a list of values, "
        f"not {type(levels).__name__}."
    )


def _log_ticks(low: float, high: float) -> list[float]:
    """Powers of ten between low and high (or three log-spaced values if fewer fit)."""
    ticks = [10.0**e for e in range(math.floor(math.log10(low)), math.ceil(math.log10(high)) + 1)]
    ticks = [t for t in ticks if low <= t <= high]
    if len(ticks) < 3:
        ticks = sorted(set(ticks) | {float(f"{v:.2g}") for v in np.geomspace(low, high, 4)})
        ticks = [t for t in ticks if low <= t <= high]
    return ticks


_STAR_ZORDER = 10  # above the default of lines (2) and of the paths and markers drawn here


def plot_loss_surface(
    loss_fn: Callable[[Any, Any], Any],
    w_values: Any,
    b_values: Any,
    path: Any = None,
    ax: Axes | None = None,
    levels: int | Sequence[float] | str = "auto",
    *,
    names: tuple[str, str] = ("w", "b"),
    title: str = "Loss surface",
    colorbar: bool | None = None,
) -> Figure:
    """Draw the contours of `loss_fn(w, b)` over a grid, with an optional path of (w, b) steps."""
    if not callable(loss_fn):
        raise TypeError(
            f"loss_fn must be a function loss_fn(w, b) -> loss, not {type(loss_fn).__name__}."
        )
    ws = _grid_values(w_values, "w_values")
    bs = _grid_values(b_values, "b_values")
    points = None if path is None else _path_points(path)
    if ax is not None and not isinstance(ax, Axes):
        raise TypeError(f"ax must be a matplotlib Axes (or None), not {type(ax).__name__}.")
    if not (
        isinstance(names, tuple) and len(names) == 2 and all(isinstance(n, str) for n in names)
    ):
        raise TypeError("names must be a pair of axis names such as ('w', 'b').")
    grid = _evaluate_surface(loss_fn, ws, bs)
    finite = np.isfinite(grid)
    if not finite.any():
        raise ValueError(
            "loss_fn returned NaN or infinity everywhere on the grid; use a smaller range."
        )
    level_values, use_log = _contour_levels(grid[finite], levels)
    row, col = np.unravel_index(np.argmin(np.where(finite, grid, np.inf)), grid.shape)
    if use_log:  # values under the lowest level (0 has no logarithm) go into the lowest band
        grid = np.where(finite, np.maximum(grid, level_values[0]), grid)
    masked = np.ma.masked_invalid(grid)

    if ax is None:
        fig = Figure(figsize=(6.0, 4.6), layout="constrained")
        ax = fig.add_subplot()
        colorbar = True if colorbar is None else colorbar
    else:
        fig = ax.figure
        colorbar = False if colorbar is None else colorbar
    norm = LogNorm(level_values[0], level_values[-1]) if use_log else None
    filled = ax.contourf(
        ws,
        bs,
        masked,
        levels=level_values,
        cmap="viridis",
        norm=norm,
        extend="neither" if isinstance(levels, str) else "both",
    )
    ax.contour(
        ws, bs, masked, levels=level_values, colors="white", linewidths=0.4, alpha=0.5, norm=norm
    )
    if colorbar:
        bar = fig.colorbar(filled, ax=ax)
        bar.set_label("loss (log scale)" if use_log else "loss")
        if use_log:
            bar.set_ticks(_log_ticks(level_values[0], level_values[-1]))
            bar.ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:.3g}"))
            bar.ax.yaxis.set_minor_locator(NullLocator())
    if points is not None:
        ax.plot(
            points[:, 0],
            points[:, 1],
            "-o",
            color=_VERMILLION,
            markersize=3,
            linewidth=1.4,
            zorder=3,
            label=f"path ({len(points)} points)",
        )
        ax.plot(
            points[0, 0],
            points[0, 1],
            "o",
            color=_VERMILLION,
            markersize=8,
            markeredgecolor="black",
            zorder=4,
            label="start",
        )
        ax.plot(  # an open ring, so the star can show inside it when the path ends at the bottom
            points[-1, 0],
            points[-1, 1],
            "s",
            markerfacecolor="none",
            markeredgecolor=_YELLOW,
            markersize=16,
            markeredgewidth=2.2,
            path_effects=[patheffects.withStroke(linewidth=4, foreground="black")],
            zorder=5,
            label="end",
        )
    ax.plot(  # drawn last and on top: paths a caller adds later stay under it too
        ws[col],
        bs[row],
        marker="*",
        markersize=13,
        color="white",
        markeredgecolor="black",
        linestyle="none",
        zorder=_STAR_ZORDER,
        label="lowest on grid",
    )
    ax.set_xlim(ws[0], ws[-1])
    ax.set_ylim(bs[0], bs[-1])
    ax.set_xlabel(names[0])
    ax.set_ylabel(names[1])
    ax.set_title(title)
    ax.legend(loc="upper right", fontsize=8, framealpha=0.85, markerscale=0.7, labelspacing=0.7)
    return fig


def _series_from(losses: Any, labels: Any) -> dict[str, tuple[list[float], list[float]]]:
    """Normalise plot_losses' input to {label: (steps, values)}."""

    def values_of(seq: Any, what: str) -> list[float]:
        if isinstance(seq, torch.Tensor):
            seq = seq.detach().cpu().reshape(-1).tolist()
        if isinstance(seq, (str, bytes)) or not isinstance(seq, (Sequence, np.ndarray)):
            raise TypeError(f"{what} must be a list of numbers, not {type(seq).__name__}.")
        if len(seq) == 0:
            raise ValueError(f"{what} is empty; log at least one loss value before plotting.")
        return [_as_float(v, f"{what}[{i}]") for i, v in enumerate(seq)]

    if isinstance(losses, Mapping):
        if labels is not None:
            raise TypeError(
                "labels must be left out when losses is a dict: its keys are the labels."
            )
        if not losses:
            raise ValueError("losses is an empty dict; give at least one label -> list of losses.")
        curves = {str(k): values_of(v, f"losses[{k!r}]") for k, v in losses.items()}
    elif isinstance(losses, (Sequence, np.ndarray, torch.Tensor)) and not isinstance(
        losses, (str, bytes)
    ):
        several = len(losses) > 0 and all(
            isinstance(v, (Sequence, np.ndarray)) and not isinstance(v, (str, bytes))
            for v in losses
        )
        if several:
            if labels is None:
                labels = [f"run {i}" for i in range(len(losses))]
            if (
                isinstance(labels, str)
                or not isinstance(labels, Sequence)
                or len(labels) != len(losses)
            ):
                raise ValueError(f"labels must be a list of {len(losses)} names, one per curve.")
            curves = {
                str(lab): values_of(v, f"losses[{i}]")
                for i, (lab, v) in enumerate(zip(labels, losses, strict=True))
            }
        else:
            if labels is None:
                labels = "loss"
            if isinstance(labels, Sequence) and not isinstance(labels, str) and len(labels) == 1:
                labels = labels[0]
            if not isinstance(labels, str):
                raise TypeError("labels must be one name (str) for a single curve.")
            curves = {labels: values_of(losses, "losses")}
    else:
        raise TypeError(
            "losses must be a list of numbers, a list of such lists, or a dict label -> list, "
            f"not {type(losses).__name__}."
        )
    return {k: (list(range(len(v))), v) for k, v in curves.items()}


def _draw_curves(
    ax: Axes,
    series: Mapping[str, tuple[Sequence[float], Sequence[float]]],
    title: str,
    logy: bool,
) -> None:
    for k, (label, (steps, values)) in enumerate(series.items()):
        ax.plot(  # colour and marker shape both tell the curves apart; long curves get a few marks
            steps,
            values,
            color=PALETTE[k % len(PALETTE)],
            marker=MARKERS[k % len(MARKERS)],
            markevery=1 if len(values) <= 30 else max(1, len(values) // 12),
            markersize=3.5,
            linewidth=1.4,
            label=label,
        )
    if logy:
        positive = all(v > 0 for _, vs in series.values() for v in vs if math.isfinite(v))
        if not positive:
            raise ValueError("logy=True needs every loss to be positive; use logy=False.")
        ax.set_yscale("log")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("step")
    ax.set_ylabel("loss (log scale)" if logy else "loss")
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    if len(series) > 1:
        ax.legend(fontsize=8)


def plot_losses(
    losses: Any,
    labels: Any = None,
    ax: Axes | None = None,
    title: str = "Loss per step",
    logy: bool = False,
) -> Figure:
    """Plot one loss curve (a list) or several (a dict label -> list), step on the x-axis."""
    series = _series_from(losses, labels)
    if ax is not None and not isinstance(ax, Axes):
        raise TypeError(f"ax must be a matplotlib Axes (or None), not {type(ax).__name__}.")
    if not isinstance(title, str):
        raise TypeError(f"title must be a str, not {type(title).__name__}.")
    if ax is None:
        fig = Figure(figsize=(6.0, 3.6), layout="constrained")
        ax = fig.add_subplot()
    else:
        fig = ax.figure
    _draw_curves(ax, series, title, bool(logy))
    return fig


# ----------------------------------------------------------------------------------------------
# A live loss plot
# ----------------------------------------------------------------------------------------------


def _png(figure: Figure, dpi: int) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


class LiveLossPlot(widgets.Image):
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

    def __repr__(self) -> str:
        return "LiveLossPlot()"

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
        fig = Figure(figsize=self.figsize, layout="constrained")
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
        self.value = _png(self._figure, self.dpi)
        self.draws += 1
        self._pending = 0


def _register_png_display() -> None:
    """In IPython, show a bare Figure as PNG (pyplot's inline backend does the same on import)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return
    shell = get_ipython()
    if shell is None or not hasattr(shell, "display_formatter"):
        return
    formatter = shell.display_formatter.formatters.get("image/png")
    if formatter is None:
        return
    try:
        formatter.lookup_by_type(Figure)
    except KeyError:  # nobody shows Figures yet: render them like the inline backend does
        formatter.for_type(Figure, lambda fig: _png(fig, int(fig.dpi)))


_register_png_display()
