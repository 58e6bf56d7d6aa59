"""The environment a notebook runs in: random seeds, the device, versions and the platform."""

from __future__ import annotations

import importlib
import os
import random
import sys

import torch

__all__ = [
    "seed_everything",
    "pick_device",
    "versions",
    "running_on",
    "NOTEBOOK_DEVICES",
    "notebook_devices",
]

# Which device each lesson notebook computes on. "best" means pick_device() (cuda, else mps,
# else cpu); "cpu" means the notebook pins the CPU, for the reason given, and says in its text
# that it "runs on the CPU". Notebook 00 trains nothing; the solutions run their exercise answers
# on the CPU, as the checkers do. tests/test_devices.py checks every notebook against this table,
# and `make gpu-check` (tools/gpu_check.py) that a GPU is used exactly where it says "best".
NOTEBOOK_DEVICES: dict[str, tuple[str, str]] = {
    "01": ("cpu", "a few small tensors, compared exactly"),
    "02": ("cpu", "a few small tensors, compared exactly"),
    "03": ("cpu", "a few small tensors, compared exactly"),
    "04": ("cpu", "float64 finite differences and exact comparisons"),
    "05": ("cpu", "hand-written updates compared bit for bit with torch.optim"),
    "06": ("cpu", "accumulated and full-batch gradients compared closely"),
    "07": ("best", "trains a small CNN on real images"),
    "08": ("best", "a ResNet-18 training step"),
    "09": ("cpu", "a resumed run compared bit for bit with an uninterrupted one"),
    "10": ("cpu", "each bug compared with the fixed loop on one small problem"),
    "11": ("cpu", "tiny fits checked against closed forms down to float32 rounding"),
    "12": ("cpu", "two processes on one machine, through gloo, the backend for CPUs"),
    "13": ("cpu", "the practical loop compared value for value with a plain big-batch update"),
}


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


def notebook_devices(device: torch.device | None = None) -> dict[str, str]:
    """Map each notebook's number to the device it will use on this machine, as text."""
    best = str(device if device is not None else pick_device())
    return {
        number: best if choice == "best" else "cpu"
        for number, (choice, _) in NOTEBOOK_DEVICES.items()
    }
