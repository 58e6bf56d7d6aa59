"""Data for the notebooks: scikit-learn's bundled digits as tensors, and FashionMNIST from disk.

Nothing here downloads unless asked to: the digits ship inside scikit-learn, and FashionMNIST is
read from files under `root` (torchvision's layout) with `download=False` by default.
"""

from __future__ import annotations

import gzip
import math
import os
import shutil
from pathlib import Path
from typing import NamedTuple

import torch
from torch.utils.data import TensorDataset

from helpers._util import first_line

__all__ = [
    "DataSplit",
    "load_digits_tensors",
    "digits_datasets",
    "load_fashion_mnist",
    "FASHION_MNIST_CLASSES",
    "FASHION_MNIST_FILES",
]

FASHION_MNIST_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
# The four files torchvision reads, in root/FashionMNIST/raw/ (each may also be there gzip'd).
FASHION_MNIST_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)


class DataSplit(NamedTuple):
    """Images (N, 1, H, W) float32 in [0, 1] and labels (N,) int64, for training and testing."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor


def _check_seed(seed: object) -> int:
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed must be a whole number such as 0, not {type(seed).__name__}.")
    if not 0 <= seed < 2**32:
        raise ValueError(f"seed must be between 0 and 2**32 - 1, got {seed}.")
    return seed


def load_digits_tensors(test_size: float = 0.25, seed: int = 0) -> DataSplit:
    """Return scikit-learn's 1797 handwritten 8x8 digits, split by class, as a DataSplit."""
    if isinstance(test_size, bool) or not isinstance(test_size, (int, float)):
        raise TypeError(
            f"test_size must be a fraction such as 0.25, not {type(test_size).__name__}."
        )
    if not 0.0 < float(test_size) < 1.0:
        raise ValueError(
            f"test_size is the fraction of digits kept for testing: pick a number between 0 and "
            f"1 (such as 0.25), not {test_size!r}."
        )
    _check_seed(seed)
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    images = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16.0
    labels = torch.tensor(digits.target, dtype=torch.int64)
    n_classes = int(labels.max()) + 1
    n_test = math.ceil(float(test_size) * len(labels))  # scikit-learn rounds the test part up
    if min(n_test, len(labels) - n_test) < n_classes:
        raise ValueError(
            f"test_size={test_size!r} leaves {n_test} of {len(labels)} digits for testing and "
            f"{len(labels) - n_test} for training; each part needs at least one digit per class "
            f"({n_classes}). Pick a test_size between 0.01 and 0.99."
        )
    index = torch.arange(len(labels)).numpy()
    train_index, test_index = train_test_split(
        index, test_size=n_test, random_state=seed, stratify=digits.target
    )
    train_index, test_index = torch.from_numpy(train_index), torch.from_numpy(test_index)
    return DataSplit(
        images[train_index], labels[train_index], images[test_index], labels[test_index]
    )


def digits_datasets(test_size: float = 0.25, seed: int = 0) -> tuple[TensorDataset, TensorDataset]:
    """Return the digits as (train, test) TensorDatasets of (image (1, 8, 8), label) pairs."""
    split = load_digits_tensors(test_size=test_size, seed=seed)
    return TensorDataset(split.x_train, split.y_train), TensorDataset(split.x_test, split.y_test)


def _unpack_gzipped(raw: Path) -> None:
    """Unpack name.gz to name for each file torchvision reads (what its download step does)."""
    for name in FASHION_MNIST_FILES:
        target, packed = raw / name, raw / f"{name}.gz"
        if target.exists() or not packed.exists():
            continue
        partial = target.with_name(f"{name}.partial")
        try:
            with gzip.open(packed, "rb") as source, open(partial, "wb") as sink:
                shutil.copyfileobj(source, sink)
        except (OSError, EOFError) as error:
            partial.unlink(missing_ok=True)
            raise ValueError(
                f"{packed.name} in {raw} is not a readable gzip file ({error}). Delete it and "
                "download it again (load_fashion_mnist(root, download=True))."
            ) from None
        os.replace(partial, target)  # never leave half a file under the real name


def load_fashion_mnist(
    root: str | os.PathLike[str], download: bool = False, limit: int | None = None
) -> DataSplit:
    """Return FashionMNIST (28x28 clothes, 10 classes) from root/FashionMNIST/raw as a DataSplit."""
    if isinstance(root, bool) or not isinstance(root, (str, os.PathLike)):
        raise TypeError(f"root must be a folder path such as 'data', not {type(root).__name__}.")
    if not isinstance(download, bool):
        raise TypeError(f"download must be True or False, not {download!r}.")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ValueError(
            f"limit must be None (every image) or a whole number of at least 1, got {limit!r}."
        )
    from torchvision.datasets import FashionMNIST

    root = Path(root)
    raw = root / "FashionMNIST" / "raw"
    if raw.is_dir():
        _unpack_gzipped(raw)
    missing = [name for name in FASHION_MNIST_FILES if not (raw / name).exists()]
    if missing and not download:
        raise FileNotFoundError(
            f"FashionMNIST is not in {raw} (missing: {', '.join(missing)}). When you are online, "
            "call load_fashion_mnist(root, download=True) once; or put the four files (or their "
            ".gz versions) into that folder yourself."
        )
    parts = []
    for train in (True, False):
        missing = [name for name in FASHION_MNIST_FILES if not (raw / name).exists()]
        try:
            dataset = FashionMNIST(str(root), train=train, download=download)
        except Exception as error:  # a failed download, or files that are not IDX files
            detail = first_line(error) or type(error).__name__
            if missing and download:
                raise RuntimeError(
                    f"torchvision could not download FashionMNIST into {raw} ({detail}). Check "
                    "your internet connection, or put the four files there yourself."
                ) from None
            raise ValueError(
                f"the FashionMNIST files in {raw} are not valid IDX files ({detail}). Delete "
                "them and download them again (load_fashion_mnist(root, download=True))."
            ) from None
        images, labels = dataset.data, dataset.targets
        if images.dim() != 3 or labels.dim() != 1 or len(images) != len(labels):
            raise ValueError(
                f"the FashionMNIST files in {raw} do not fit together: images of shape "
                f"{tuple(images.shape)} and labels of shape {tuple(labels.shape)}. Delete them "
                "and download them again."
            )
        if limit is not None:
            images, labels = images[:limit], labels[:limit]
        parts += [images.unsqueeze(1).to(torch.float32) / 255.0, labels.to(torch.int64)]
    return DataSplit(*parts)
