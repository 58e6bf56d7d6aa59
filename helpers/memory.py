"""Measure the memory a graph holds for backward: the bytes of the distinct storages it saves.

`SavedTensorMeter` is a context manager around `torch.autograd.graph.saved_tensors_hooks`.
Inside it, autograd hands the meter every tensor it saves for `backward()`; the meter counts the
bytes of each *storage* (the block of memory under a tensor) once, however many nodes save it
and however many views of it are saved, from the moment it is saved until the graph lets it go.
The storages of whatever you name when you make the meter (a model's parameters and buffers,
the batch you hold anyway) are left out, so the count is the memory the graph itself keeps
alive. The count goes on after the `with` block: it drops when `backward()` or `del` frees the
graph.

`storage_bytes(tensors)` counts the distinct storages of any tensors the same way: parameters,
gradients, optimizer state.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable
from types import TracebackType

import torch
from torch import nn

__all__ = ["SavedTensorMeter", "storage_bytes"]


def _storage_key(tensor: torch.Tensor) -> int:
    """Where a tensor's storage starts: two tensors share memory exactly when this is equal."""
    return tensor.untyped_storage().data_ptr()


def storage_bytes(tensors: Iterable[torch.Tensor | None]) -> int:
    """Bytes of the distinct storages behind `tensors`, each counted once (None is skipped)."""
    sizes: dict[int, int] = {}
    for tensor in tensors:
        if tensor is not None:
            sizes[_storage_key(tensor)] = tensor.untyped_storage().nbytes()
    return sum(sizes.values())


class _Saved:
    """Stands in for one saved tensor; autograd keeps it exactly as long as the graph needs it."""

    __slots__ = ("tensor", "__weakref__")

    def __init__(self, tensor: torch.Tensor) -> None:
        self.tensor = tensor


class SavedTensorMeter:
    """Bytes autograd holds for backward, now and at the peak, each storage counted once."""

    def __init__(self, *leave_out: torch.Tensor | nn.Module) -> None:
        """Leave out the storages of these tensors and of these modules' parameters and buffers."""
        self._left_out: dict[int, torch.UntypedStorage] = {}  # holding them keeps each key valid
        for item in leave_out:
            if isinstance(item, nn.Module):
                tensors = [*item.parameters(), *item.buffers()]
            elif isinstance(item, torch.Tensor):
                tensors = [item]
            else:
                raise TypeError(
                    f"SavedTensorMeter leaves out tensors and modules, not {type(item).__name__}."
                )
            for tensor in tensors:
                self._left_out[_storage_key(tensor)] = tensor.untyped_storage()
        self._held: dict[int, list[int]] = {}  # storage key -> [times held, bytes]
        self._hooks: torch.autograd.graph.saved_tensors_hooks | None = None
        self.saves = 0  # tensors autograd saved inside the block, left-out ones and repeats too
        self.peak = 0  # the most bytes held at any moment since the meter was made

    @property
    def now(self) -> int:
        """Bytes held for backward at this moment."""
        return sum(size for _, size in self._held.values())

    @property
    def storages(self) -> int:
        """How many distinct storages are held for backward at this moment."""
        return len(self._held)

    def __enter__(self) -> SavedTensorMeter:
        self._hooks = torch.autograd.graph.saved_tensors_hooks(self._pack, self._unpack)
        self._hooks.__enter__()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        assert self._hooks is not None
        self._hooks.__exit__(kind, error, traceback)
        self._hooks = None

    def _pack(self, tensor: torch.Tensor) -> _Saved:
        self.saves += 1
        # Keep a detached alias (same storage): the tensor itself would point back to its grad_fn,
        # a reference cycle that keeps the graph alive after its output is dropped.
        saved = _Saved(tensor.detach())
        key = _storage_key(tensor)
        if key not in self._left_out:
            entry = self._held.setdefault(key, [0, tensor.untyped_storage().nbytes()])
            entry[0] += 1
            self.peak = max(self.peak, self.now)
            weakref.finalize(saved, self._release, key)
        return saved

    @staticmethod
    def _unpack(saved: _Saved) -> torch.Tensor:
        return saved.tensor

    def _release(self, key: int) -> None:
        entry = self._held.get(key)
        if entry is not None:
            entry[0] -= 1
            if entry[0] == 0:
                del self._held[key]

    def __repr__(self) -> str:
        return (
            f"SavedTensorMeter(now={self.now:,} bytes in {self.storages} storages, "
            f"peak={self.peak:,} bytes)"
        )
