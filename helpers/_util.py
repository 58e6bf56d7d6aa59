"""Small shared utilities, each written once: error text, PNG bytes, shape text, argument checks."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

if TYPE_CHECKING:  # matplotlib is imported by whoever draws a figure, not by every notebook
    from matplotlib.figure import Figure

__all__ = [
    "first_line",
    "one_thread",
    "png_bytes",
    "require_model",
    "require_optimizer",
    "shape_text",
]


def first_line(error: BaseException, limit: int = 160) -> str:
    """The first line of an exception's message, cut to `limit` characters."""
    try:
        text = str(error).strip()
    except Exception:  # a broken __str__ must not break the message about it
        text = ""
    text = text.splitlines()[0] if text else ""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def png_bytes(figure: Figure, dpi: int = 80) -> bytes:
    """Render a matplotlib Figure (made with or without pyplot) to PNG bytes."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def shape_text(shape: torch.Size | tuple[int, ...] | torch.Tensor) -> str:
    """A shape as Python writes a tuple: (), (3,), (2, 3); a tensor gives its own shape."""
    if isinstance(shape, torch.Tensor):
        shape = shape.shape
    sizes = tuple(int(s) for s in shape)
    if len(sizes) == 1:
        return f"({sizes[0]},)"
    return "(" + ", ".join(str(s) for s in sizes) + ")"


def require_model(model: Any, name: str = "model", example: str = "nn.Linear(2, 1)") -> nn.Module:
    """Return `model` if it is an nn.Module; otherwise raise a TypeError saying what to pass."""
    if not isinstance(model, nn.Module):
        raise TypeError(
            f"{name} must be a torch.nn.Module such as {example}, not {type(model).__name__}."
        )
    return model


def require_optimizer(
    optimizer: Any, name: str = "optimizer", allow_none: bool = False
) -> torch.optim.Optimizer | None:
    """Return `optimizer` if it is a torch optimizer (or None when allowed); else a TypeError."""
    if optimizer is None and allow_none:
        return None
    if not isinstance(optimizer, torch.optim.Optimizer):
        extra = ", or None" if allow_none else ""
        raise TypeError(
            f"{name} must be a torch.optim.Optimizer such as "
            f"torch.optim.SGD(model.parameters(), lr=0.1){extra}; not {type(optimizer).__name__}."
        )
    return optimizer


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """Run tiny tensors on one CPU thread, restoring the caller's thread count afterwards."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
