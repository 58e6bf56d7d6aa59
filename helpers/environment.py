"""The environment a notebook runs in: random seeds, the device, versions and the platform."""

from __future__ import annotations

import importlib
import os
import random
import sys

import torch

__all__ = ["seed_everything", "pick_device", "versions", "running_on"]


def seed_everything(seed: int = 0) -> None:
    """Seed Python's, NumPy's and PyTorch's random generators (CPU and every GPU)."""
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed must be a whole number such as 0 or 42, not {type(seed).__name__}.")
    if not 0 <= seed < 2**32:
        raise ValueError(f"seed must be between 0 and 2**32 - 1, got {seed}.")
    random.seed(seed)
    try:
        import numpy as np

        np.random.seed(seed)
    except ImportError:  # NumPy is optional for the helpers
        pass
    torch.manual_seed(seed)  # also seeds every CUDA device


def pick_device(prefer: str | None = None) -> torch.device:
    """Return cuda if available, else mps, else cpu (or `prefer`, if it is available)."""
    available = {"cpu": True, "cuda": torch.cuda.is_available(), "mps": _mps_available()}
    if prefer is not None:
        if prefer not in available:
            raise ValueError(f"prefer must be one of 'cuda', 'mps' or 'cpu', not {prefer!r}.")
        if not available[prefer]:
            raise ValueError(
                f"prefer={prefer!r} asks for a device this machine does not have; "
                f"leave prefer out to take the best one available."
            )
        return torch.device(prefer)
    for name in ("cuda", "mps"):
        if available[name]:
            return torch.device(name)
    return torch.device("cpu")


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def versions(
    packages: tuple[str, ...] = ("torch", "torchvision", "ipywidgets", "matplotlib"),
) -> dict[str, str]:
    """Return {'python': ..., package: version or 'not installed'} for the given packages."""
    found = {"python": sys.version.split()[0]}
    for name in packages:
        try:
            found[name] = str(importlib.import_module(name).__version__)
        except ImportError:
            found[name] = "not installed"
        except AttributeError:
            found[name] = "unknown"
    return found


def running_on() -> str:
    """Say where this kernel runs: 'colab', 'binder', 'vscode' or 'local'."""
    if "google.colab" in sys.modules or "COLAB_RELEASE_TAG" in os.environ:
        return "colab"
    if "BINDER_SERVICE_HOST" in os.environ or "BINDER_REPO_URL" in os.environ:
        return "binder"
    if "VSCODE_PID" in os.environ or "VSCODE_CWD" in os.environ:
        return "vscode"
    return "local"
