"""Checkpoints that survive a crash: saved atomically, loaded safely, with every random state.

A checkpoint holds the model's, the optimizer's and the learning-rate scheduler's state_dict,
the epoch, the random states (torch's, Python's, NumPy's, every GPU's once CUDA is in use, and
an optional torch.Generator such as a DataLoader's) and any extras. It is written to a temporary
file in the same folder, forced to disk with fsync, then renamed over the target (and the folder
fsynced), so neither a crash nor a power cut mid-write leaves a half-written file under the
target's name. It is read with `torch.load(weights_only=True)`, which refuses to run code hidden
in a pickle.
"""

from __future__ import annotations

import os
import random
import tempfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from helpers._util import require_model, require_optimizer

__all__ = [
    "CheckpointError",
    "save_checkpoint",
    "load_checkpoint",
    "latest_good_checkpoint",
    "rng_state",
    "set_rng_state",
]


class CheckpointError(ValueError):
    """A checkpoint file that cannot be used; the message names the file and what to do."""


def _numpy_random():
    try:
        import numpy as np
    except ImportError:  # NumPy is optional for the helpers
        return None
    return np.random


def rng_state(generator: torch.Generator | None = None) -> dict[str, Any]:
    """Capture torch's, Python's, NumPy's (and `generator`'s) random state, weights_only-safe."""
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        # A tuple of ints (and None or a float): torch.load(weights_only=True) rebuilds it as is.
        "python": random.getstate(),
    }
    numpy_random = _numpy_random()
    if numpy_random is not None:
        # NumPy's state holds an ndarray, which weights_only=True refuses: store it as a list.
        name, keys, position, has_gauss, cached_gaussian = numpy_random.get_state()
        state["numpy"] = (name, keys.tolist(), position, has_gauss, cached_gaussian)
    # A process that never started CUDA has drawn nothing from the GPUs' generators: asking
    # would start CUDA for nothing.
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    if generator is not None:
        state["generator"] = generator.get_state()
    return state


def set_rng_state(state: dict[str, Any], generator: torch.Generator | None = None) -> None:
    """Restore the random state captured by `rng_state` (and `generator`'s, if given)."""
    if not isinstance(state, dict) or "torch" not in state or "python" not in state:
        raise ValueError("state must be the dict that rng_state() returned.")
    torch.set_rng_state(state["torch"])
    random.setstate(state["python"])
    numpy_random = _numpy_random()
    if "numpy" in state and numpy_random is not None:
        numpy_random.set_state(state["numpy"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    if generator is not None:
        if "generator" not in state:
            raise ValueError("this checkpoint has no generator state: save it with generator=...")
        generator.set_state(state["generator"])


def save_checkpoint(
    path: str | os.PathLike,
    model: nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    *,
    epoch: int,
    scheduler: Any = None,
    generator: torch.Generator | None = None,
    **extra: Any,
) -> Path:
    """Write model, optimizer, scheduler, epoch, random states and `extra` to `path` atomically."""
    require_model(model)
    require_optimizer(optimizer, allow_none=True)
    if scheduler is not None and not _is_scheduler(scheduler):
        raise TypeError(
            "scheduler must be a torch.optim.lr_scheduler scheduler (it has state_dict and "
            f"load_state_dict) or None, not {type(scheduler).__name__}."
        )
    if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 0:
        raise ValueError(f"epoch must be a whole number >= 0, not {epoch!r}.")
    target = Path(path)
    if not target.parent.is_dir():
        raise ValueError(f"the folder {target.parent} does not exist: create it first.")
    checkpoint = {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "epoch": epoch,
        "rng": rng_state(generator),
        "extra": extra,
    }
    # Same folder, so the rename below never crosses file systems and is atomic.
    handle, temporary = tempfile.mkstemp(
        dir=target.parent, prefix=f".{target.name}.", suffix=".tmp"
    )
    try:
        with os.fdopen(handle, "wb") as file:
            torch.save(checkpoint, file)
            file.flush()  # Python's buffer -> the operating system
            os.fsync(file.fileno())  # the operating system's cache -> the disk
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    _fsync_folder(target.parent)  # the rename itself reaches the disk too
    return target


def _fsync_folder(folder: Path) -> None:
    if os.name != "posix":  # Windows cannot open a folder to fsync it
        return
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _is_scheduler(scheduler: Any) -> bool:
    return (
        callable(getattr(scheduler, "state_dict", None))
        and callable(getattr(scheduler, "load_state_dict", None))
        and not isinstance(scheduler, (nn.Module, torch.optim.Optimizer))
    )


def load_checkpoint(
    path: str | os.PathLike,
    model: nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    *,
    scheduler: Any = None,
    generator: torch.Generator | None = None,
    restore_rng: bool = True,
) -> dict[str, Any]:
    """Load `path` (weights_only, onto the CPU) into model, optimizer, scheduler, RNG; return it."""
    source = Path(path)
    if not source.is_file():
        raise CheckpointError(f"no checkpoint file at {source}: check the path, or save one first.")
    try:
        checkpoint = torch.load(source, weights_only=True, map_location="cpu")
    except Exception as error:
        raise CheckpointError(
            f"{source} is not a readable checkpoint (truncated, corrupt or not made by "
            f"save_checkpoint: {type(error).__name__}). Do not retry with weights_only=False; "
            f"load an earlier checkpoint instead (latest_good_checkpoint finds one)."
        ) from None
    if not isinstance(checkpoint, dict) or not {"model", "epoch", "rng"} <= set(checkpoint):
        raise CheckpointError(
            f"{source} holds no model/epoch/rng: it was not made by save_checkpoint."
        )
    model.load_state_dict(checkpoint["model"])
    if optimizer is not None:
        if checkpoint.get("optimizer") is None:
            raise CheckpointError(f"{source} has no optimizer state: save it with optimizer=...")
        optimizer.load_state_dict(checkpoint["optimizer"])
    if scheduler is not None:
        if checkpoint.get("scheduler") is None:
            raise CheckpointError(f"{source} has no scheduler state: save it with scheduler=...")
        scheduler.load_state_dict(checkpoint["scheduler"])
    if restore_rng:
        set_rng_state(checkpoint["rng"], generator)
    return checkpoint


def latest_good_checkpoint(folder: str | os.PathLike, pattern: str = "*.pt") -> Path | None:
    """Return the last file by name (e.g. epoch_003.pt) in `folder` that loads, or None."""
    directory = Path(folder)
    if not directory.is_dir():
        raise ValueError(f"folder {directory} does not exist.")
    for candidate in sorted(directory.glob(pattern), reverse=True):
        try:
            checkpoint = torch.load(candidate, weights_only=True, map_location="cpu")
        except Exception:
            continue
        if isinstance(checkpoint, dict) and {"model", "epoch", "rng"} <= set(checkpoint):
            return candidate
    return None
