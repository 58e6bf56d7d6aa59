"""helpers.data: the digits as tensors, and FashionMNIST read from small IDX files (no network)."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path
from urllib.error import URLError

import pytest
import torch
from torch.utils.data import TensorDataset

from helpers.data import (
    FASHION_MNIST_CLASSES,
    FASHION_MNIST_FILES,
    DataSplit,
    digits_datasets,
    load_digits_tensors,
    load_fashion_mnist,
)

# ---------------------------------------------------------------------------------------------
# Digits
# ---------------------------------------------------------------------------------------------


def test_digits_shapes_dtypes_and_range():
    split = load_digits_tensors(test_size=0.25, seed=0)
    assert isinstance(split, DataSplit)
    assert split.x_train.shape == (1347, 1, 8, 8)
    assert split.x_test.shape == (450, 1, 8, 8)
    assert split.y_train.shape == (1347,) and split.y_test.shape == (450,)
    assert split.x_train.dtype == split.x_test.dtype == torch.float32
    assert split.y_train.dtype == split.y_test.dtype == torch.int64
    for images in (split.x_train, split.x_test):
        assert images.min() == 0.0 and images.max() == 1.0
    for labels in (split.y_train, split.y_test):
        assert set(labels.tolist()) == set(range(10))


def test_digits_split_is_stratified():
    split = load_digits_tensors(test_size=0.25, seed=3)
    train_share = torch.bincount(split.y_train, minlength=10) / len(split.y_train)
    test_share = torch.bincount(split.y_test, minlength=10) / len(split.y_test)
    assert torch.allclose(train_share, test_share, atol=0.005)


def test_digits_are_the_real_digits_with_their_own_labels_and_nothing_twice():
    # Imported here: scikit-learn takes each test process almost 2 s to import, and only the one
    # that runs this test needs it.
    from sklearn.datasets import load_digits

    digits = load_digits()
    label_of = {}
    for image, label in zip(digits.images, digits.target, strict=True):
        label_of.setdefault((image / 16.0).astype("float32").tobytes(), set()).add(int(label))
    split = load_digits_tensors(test_size=0.3, seed=1)
    images = torch.cat([split.x_train, split.x_test])
    labels = torch.cat([split.y_train, split.y_test])
    assert len(images) == len(digits.images) == 1797
    for image, label in zip(images, labels, strict=True):
        assert int(label) in label_of[image[0].numpy().tobytes()]
    # train and test together hold every digit exactly once (as a multiset of image+label rows)
    rows = torch.cat([images.flatten(1), labels[:, None].float()], dim=1)
    original = torch.cat(
        [
            torch.tensor(digits.images, dtype=torch.float32).flatten(1) / 16.0,
            torch.tensor(digits.target, dtype=torch.float32)[:, None],
        ],
        dim=1,
    )
    assert torch.equal(torch.unique(rows, dim=0), torch.unique(original, dim=0))
    assert torch.equal(
        torch.unique(rows, dim=0, return_counts=True)[1],
        torch.unique(original, dim=0, return_counts=True)[1],
    )


def test_digits_same_seed_same_split_other_seed_other_split():
    a = load_digits_tensors(test_size=0.25, seed=0)
    b = load_digits_tensors(test_size=0.25, seed=0)
    c = load_digits_tensors(test_size=0.25, seed=1)
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    assert not torch.equal(a.y_test, c.y_test)


@pytest.mark.parametrize(("test_size", "n_test"), [(0.1, 180), (0.5, 899), (0.9, 1618)])
def test_digits_test_size_sets_the_test_count(test_size, n_test):
    split = load_digits_tensors(test_size=test_size)
    assert len(split.y_test) == len(split.x_test) == n_test
    assert len(split.y_train) == 1797 - n_test


@pytest.mark.parametrize(
    ("kwargs", "error", "phrase"),
    [
        ({"test_size": "0.25"}, TypeError, "test_size must be a fraction"),
        ({"test_size": True}, TypeError, "test_size must be a fraction"),
        ({"test_size": 0}, ValueError, "between 0 and 1"),
        ({"test_size": 1.0}, ValueError, "between 0 and 1"),
        ({"test_size": 25}, ValueError, "between 0 and 1"),
        ({"test_size": 0.002}, ValueError, "at least one digit per class"),
        ({"test_size": 0.998}, ValueError, "at least one digit per class"),
        ({"seed": 1.5}, TypeError, "seed must be a whole number"),
        ({"seed": True}, TypeError, "seed must be a whole number"),
        ({"seed": -1}, ValueError, "seed must be between"),
    ],
)
def test_digits_bad_arguments_get_clear_messages(kwargs, error, phrase):
    with pytest.raises(error, match=phrase):
        load_digits_tensors(**kwargs)


def test_digits_datasets_are_tensor_datasets_of_pairs():
    train, test = digits_datasets(test_size=0.25, seed=0)
    assert isinstance(train, TensorDataset) and isinstance(test, TensorDataset)
    assert (len(train), len(test)) == (1347, 450)
    image, label = train[0]
    assert image.shape == (1, 8, 8) and label.dtype == torch.int64 and label.dim() == 0
    split = load_digits_tensors(test_size=0.25, seed=0)
    assert torch.equal(test[5][0], split.x_test[5]) and test[5][1] == split.y_test[5]


def test_digits_datasets_check_their_arguments():
    with pytest.raises(ValueError, match="between 0 and 1"):
        digits_datasets(test_size=2.0)


# ---------------------------------------------------------------------------------------------
# FashionMNIST, from small files in the real IDX format
# ---------------------------------------------------------------------------------------------

IMAGE_MAGIC, LABEL_MAGIC = 2051, 2049  # 0x00000803 (uint8, 3 dims) and 0x00000801 (uint8, 1 dim)


def idx_images(images: torch.Tensor) -> bytes:
    """The bytes of an idx3-ubyte file: big-endian magic, count, rows, columns, then pixels."""
    n, rows, cols = images.shape
    return (
        struct.pack(">IIII", IMAGE_MAGIC, n, rows, cols) + images.to(torch.uint8).numpy().tobytes()
    )


def idx_labels(labels: torch.Tensor) -> bytes:
    """The bytes of an idx1-ubyte file: big-endian magic, count, then one byte per label."""
    return struct.pack(">II", LABEL_MAGIC, len(labels)) + labels.to(torch.uint8).numpy().tobytes()


def fake_fashion(n_train: int = 12, n_test: int = 5, seed: int = 0) -> dict[str, bytes]:
    generator = torch.Generator().manual_seed(seed)
    return {
        "train-images-idx3-ubyte": idx_images(
            torch.randint(0, 256, (n_train, 28, 28), generator=generator)
        ),
        "train-labels-idx1-ubyte": idx_labels(torch.arange(n_train) % 10),
        "t10k-images-idx3-ubyte": idx_images(
            torch.randint(0, 256, (n_test, 28, 28), generator=generator)
        ),
        "t10k-labels-idx1-ubyte": idx_labels((torch.arange(n_test) * 3) % 10),
    }


def write_raw(root: Path, files: dict[str, bytes], gzipped: bool = True) -> Path:
    raw = root / "FashionMNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for name, payload in files.items():
        if gzipped:
            (raw / f"{name}.gz").write_bytes(gzip.compress(payload))
        else:
            (raw / name).write_bytes(payload)
    return raw


@pytest.fixture
def no_network(monkeypatch):
    """Fail loudly if torchvision tries to download anything."""
    import torchvision.datasets.mnist as mnist

    def refuse(*args, **kwargs):
        raise AssertionError("a test tried to download")

    monkeypatch.setattr(mnist, "download_and_extract_archive", refuse)


def test_the_fake_files_have_the_real_headers():
    files = fake_fashion()
    assert files["train-images-idx3-ubyte"][:4] == b"\x00\x00\x08\x03"
    assert files["train-labels-idx1-ubyte"][:4] == b"\x00\x00\x08\x01"
    assert struct.unpack(">III", files["t10k-images-idx3-ubyte"][4:16]) == (5, 28, 28)
    assert len(files["train-images-idx3-ubyte"]) == 16 + 12 * 28 * 28
    assert sorted(files) == sorted(FASHION_MNIST_FILES)


@pytest.mark.parametrize("gzipped", [True, False])
def test_fashion_mnist_reads_idx_files(tmp_path, no_network, gzipped):
    files = fake_fashion(n_train=12, n_test=5)
    write_raw(tmp_path, files, gzipped=gzipped)
    split = load_fashion_mnist(tmp_path)
    assert isinstance(split, DataSplit)
    assert split.x_train.shape == (12, 1, 28, 28) and split.x_test.shape == (5, 1, 28, 28)
    assert split.x_train.dtype == torch.float32 and split.y_train.dtype == torch.int64
    pixels = torch.frombuffer(bytearray(files["train-images-idx3-ubyte"][16:]), dtype=torch.uint8)
    assert torch.allclose(split.x_train.flatten(), pixels.float() / 255.0)
    assert 0.0 <= split.x_train.min() and split.x_train.max() <= 1.0
    assert split.y_train.tolist() == [i % 10 for i in range(12)]
    assert split.y_test.tolist() == [(i * 3) % 10 for i in range(5)]


def test_fashion_mnist_unpacks_gz_once_and_accepts_a_path_string(tmp_path, no_network):
    raw = write_raw(tmp_path, fake_fashion())
    load_fashion_mnist(str(tmp_path))
    for name in FASHION_MNIST_FILES:
        assert (raw / name).exists() and (raw / f"{name}.gz").exists()
    assert not list(raw.glob("*.partial"))
    again = load_fashion_mnist(tmp_path)  # reads the unpacked files now
    assert again.x_train.shape == (12, 1, 28, 28)


def test_fashion_mnist_limit_takes_the_first_images(tmp_path, no_network):
    write_raw(tmp_path, fake_fashion(n_train=12, n_test=5))
    full = load_fashion_mnist(tmp_path)
    small = load_fashion_mnist(tmp_path, limit=4)
    assert small.x_train.shape == (4, 1, 28, 28) and small.x_test.shape == (4, 1, 28, 28)
    assert torch.equal(small.x_train, full.x_train[:4])
    assert torch.equal(small.y_test, full.y_test[:4])


def test_fashion_mnist_download_true_with_files_present_stays_offline(tmp_path, no_network):
    write_raw(tmp_path, fake_fashion())
    split = load_fashion_mnist(tmp_path, download=True)
    assert len(split.y_train) == 12


def test_fashion_mnist_missing_files_say_what_to_do(tmp_path, no_network):
    with pytest.raises(FileNotFoundError, match=r"download=True") as info:
        load_fashion_mnist(tmp_path)
    assert "train-images-idx3-ubyte" in str(info.value)
    files = fake_fashion()
    del files["t10k-labels-idx1-ubyte"]
    write_raw(tmp_path, files)
    with pytest.raises(FileNotFoundError, match=r"missing: t10k-labels-idx1-ubyte\b"):
        load_fashion_mnist(tmp_path)


def test_fashion_mnist_failed_download_gets_a_plain_message(tmp_path, monkeypatch):
    import torchvision.datasets.mnist as mnist

    def offline(*args, **kwargs):
        raise URLError("no network here")

    monkeypatch.setattr(mnist, "download_and_extract_archive", offline)
    with pytest.raises(RuntimeError, match="could not download FashionMNIST.*internet"):
        load_fashion_mnist(tmp_path, download=True)


def test_fashion_mnist_wrong_magic_number_is_reported(tmp_path, no_network):
    files = fake_fashion()
    files["train-images-idx3-ubyte"] = (
        struct.pack(">I", 0x12345678) + files["train-images-idx3-ubyte"][4:]
    )
    write_raw(tmp_path, files)
    with pytest.raises(ValueError, match="not valid IDX files"):
        load_fashion_mnist(tmp_path)


def test_fashion_mnist_truncated_file_is_reported(tmp_path, no_network):
    files = fake_fashion()
    files["t10k-images-idx3-ubyte"] = files["t10k-images-idx3-ubyte"][:-100]
    write_raw(tmp_path, files)
    with pytest.raises(ValueError, match="not valid IDX files"):
        load_fashion_mnist(tmp_path)


def test_fashion_mnist_labels_that_do_not_fit_the_images_are_reported(tmp_path, no_network):
    files = fake_fashion(n_train=12)
    files["train-labels-idx1-ubyte"] = idx_labels(torch.arange(7) % 10)
    write_raw(tmp_path, files)
    with pytest.raises(ValueError, match="do not fit together"):
        load_fashion_mnist(tmp_path)


def test_fashion_mnist_broken_gzip_is_reported_and_leaves_no_half_file(tmp_path, no_network):
    raw = write_raw(tmp_path, fake_fashion())
    (raw / "train-images-idx3-ubyte.gz").write_bytes(b"this is not gzip")
    with pytest.raises(ValueError, match="not a readable gzip file"):
        load_fashion_mnist(tmp_path)
    assert not (raw / "train-images-idx3-ubyte").exists()
    assert not list(raw.glob("*.partial"))


@pytest.mark.parametrize(
    ("kwargs", "error", "phrase"),
    [
        ({"root": 5}, TypeError, "root must be a folder path"),
        ({"root": None}, TypeError, "root must be a folder path"),
        ({"download": "yes"}, TypeError, "download must be True or False"),
        ({"limit": 0}, ValueError, "limit must be None"),
        ({"limit": 2.5}, ValueError, "limit must be None"),
        ({"limit": True}, ValueError, "limit must be None"),
    ],
)
def test_fashion_mnist_bad_arguments_get_clear_messages(tmp_path, kwargs, error, phrase):
    kwargs = {"root": tmp_path, **kwargs}
    with pytest.raises(error, match=phrase):
        load_fashion_mnist(**kwargs)


def test_fashion_mnist_class_names_match_torchvision():
    from torchvision.datasets import FashionMNIST

    assert list(FASHION_MNIST_CLASSES) == list(FashionMNIST.classes)
