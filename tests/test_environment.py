"""helpers.environment: seeding, device choice, versions, platform."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from helpers.environment import pick_device, running_on, seed_everything, versions


def test_seed_everything_makes_every_generator_repeat():
    seed_everything(123)
    first = (random.random(), np.random.rand(), torch.rand(3))
    seed_everything(123)
    second = (random.random(), np.random.rand(), torch.rand(3))
    assert first[0] == second[0]
    assert first[1] == second[1]
    assert torch.equal(first[2], second[2])


def test_different_seeds_differ():
    seed_everything(1)
    a = torch.rand(5)
    seed_everything(2)
    assert not torch.equal(a, torch.rand(5))


@pytest.mark.parametrize("bad", ["0", 1.5, None, True])
def test_seed_rejects_non_integers_with_a_message(bad):
    with pytest.raises(TypeError, match="seed must be a whole number"):
        seed_everything(bad)


@pytest.mark.parametrize("bad", [-1, 2**32])
def test_seed_rejects_out_of_range(bad):
    with pytest.raises(ValueError, match="between 0 and"):
        seed_everything(bad)


def test_pick_device_prefers_cuda_then_mps_then_cpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert pick_device().type == "cuda"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert pick_device().type == "mps"
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert pick_device().type == "cpu"


def test_pick_device_prefer_checks_its_argument(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert pick_device("cpu").type == "cpu"
    with pytest.raises(ValueError, match="does not have"):
        pick_device("cuda")
    with pytest.raises(ValueError, match="one of"):
        pick_device("tpu")


def test_versions_lists_python_and_packages():
    found = versions(("torch", "surely_not_a_package_xyz"))
    assert found["python"].count(".") == 2
    assert found["torch"] == torch.__version__
    assert found["surely_not_a_package_xyz"] == "not installed"


@pytest.mark.parametrize(
    ("variable", "expected"),
    [("COLAB_RELEASE_TAG", "colab"), ("BINDER_SERVICE_HOST", "binder"), ("VSCODE_PID", "vscode")],
)
def test_running_on_reads_the_platform(monkeypatch, variable, expected):
    for name in (
        "COLAB_RELEASE_TAG",
        "BINDER_SERVICE_HOST",
        "BINDER_REPO_URL",
        "VSCODE_PID",
        "VSCODE_CWD",
    ):
        monkeypatch.delenv(name, raising=False)
    assert running_on() == "local"
    monkeypatch.setenv(variable, "1")
    assert running_on() == expected
