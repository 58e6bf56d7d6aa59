"""helpers.checkpoints: atomic saves, exact resumes, clear errors for bad files."""

from __future__ import annotations

import os
import random

import pytest
import torch
from torch import nn

from helpers.checkpoints import (
    CheckpointError,
    latest_good_checkpoint,
    load_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
)


def _model_and_optimizer():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.Dropout(0.3), nn.Linear(4, 1))
    return model, torch.optim.Adam(model.parameters(), lr=0.01)


def _train(model, optimizer, steps, generator):
    losses = []
    for _ in range(steps):
        x = torch.randn(8, 3, generator=generator)
        y = x.sum(dim=1, keepdim=True)
        optimizer.zero_grad()
        loss = ((model(x) - y) ** 2).mean()  # dropout draws from torch's global generator
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


def test_resume_matches_an_uninterrupted_run_exactly(tmp_path):
    model, optimizer = _model_and_optimizer()
    generator = torch.Generator().manual_seed(1)
    torch.manual_seed(2)
    straight = _train(model, optimizer, 10, generator)
    final = [p.detach().clone() for p in model.parameters()]

    model, optimizer = _model_and_optimizer()
    generator = torch.Generator().manual_seed(1)
    torch.manual_seed(2)
    first = _train(model, optimizer, 4, generator)
    save_checkpoint(tmp_path / "ckpt.pt", model, optimizer, epoch=4, generator=generator)
    _train(model, optimizer, 3, generator)  # work that the "crash" loses

    model, optimizer = _model_and_optimizer()
    generator = torch.Generator()
    checkpoint = load_checkpoint(tmp_path / "ckpt.pt", model, optimizer, generator=generator)
    assert checkpoint["epoch"] == 4
    rest = _train(model, optimizer, 6, generator)
    assert first + rest == straight
    for a, b in zip(final, model.parameters(), strict=True):
        assert torch.equal(a, b)


def test_save_leaves_no_temporary_file_and_extras_round_trip(tmp_path):
    model, optimizer = _model_and_optimizer()
    save_checkpoint(tmp_path / "a.pt", model, optimizer, epoch=1, best_loss=0.5, note="hi")
    assert sorted(os.listdir(tmp_path)) == ["a.pt"]
    checkpoint = load_checkpoint(tmp_path / "a.pt", model, optimizer)
    assert checkpoint["extra"] == {"best_loss": 0.5, "note": "hi"}


def test_a_crash_during_save_keeps_the_previous_file(tmp_path, monkeypatch):
    model, optimizer = _model_and_optimizer()
    target = save_checkpoint(tmp_path / "ckpt.pt", model, optimizer, epoch=1)
    before = target.read_bytes()

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(target, model, optimizer, epoch=2)
    assert target.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["ckpt.pt"]


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty"])
def test_a_damaged_file_gives_a_clear_error_and_the_last_good_one_is_found(tmp_path, damage):
    model, optimizer = _model_and_optimizer()
    save_checkpoint(tmp_path / "epoch_001.pt", model, optimizer, epoch=1)
    bad = save_checkpoint(tmp_path / "epoch_002.pt", model, optimizer, epoch=2)
    data = bad.read_bytes()
    bad.write_bytes(
        {"truncate": data[: len(data) // 2], "garbage": b"not a checkpoint", "empty": b""}[damage]
    )
    with pytest.raises(CheckpointError, match="epoch_002.pt is not a readable checkpoint") as info:
        load_checkpoint(bad, model, optimizer)
    assert "weights_only=False" in str(info.value) and "Do not" in str(info.value)
    good = latest_good_checkpoint(tmp_path)
    assert good == tmp_path / "epoch_001.pt"
    assert load_checkpoint(good, model, optimizer)["epoch"] == 1


def test_a_pickle_with_code_is_refused(tmp_path):
    class Sneaky:
        def __reduce__(self):
            return (print, ("this would run on load",))

    path = tmp_path / "evil.pt"
    torch.save({"model": Sneaky(), "epoch": 0, "rng": {}}, path)
    model, _ = _model_and_optimizer()
    with pytest.raises(CheckpointError, match="evil.pt is not a readable checkpoint"):
        load_checkpoint(path, model)


def test_missing_file_and_wrong_content_are_named(tmp_path):
    model, optimizer = _model_and_optimizer()
    with pytest.raises(CheckpointError, match="no checkpoint file at"):
        load_checkpoint(tmp_path / "nope.pt", model)
    torch.save({"weights": 1}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not made by save_checkpoint"):
        load_checkpoint(tmp_path / "other.pt", model)
    save_checkpoint(tmp_path / "no_opt.pt", model, epoch=0)
    with pytest.raises(CheckpointError, match="no optimizer state"):
        load_checkpoint(tmp_path / "no_opt.pt", model, optimizer)
    assert latest_good_checkpoint(tmp_path, "missing*.pt") is None


def test_bad_arguments_are_named(tmp_path):
    model, optimizer = _model_and_optimizer()
    with pytest.raises(TypeError, match="model must be an nn.Module"):
        save_checkpoint(tmp_path / "x.pt", "model", epoch=0)
    with pytest.raises(TypeError, match="optimizer must be"):
        save_checkpoint(tmp_path / "x.pt", model, "adam", epoch=0)
    with pytest.raises(ValueError, match="epoch must be"):
        save_checkpoint(tmp_path / "x.pt", model, epoch=-1)
    with pytest.raises(ValueError, match="does not exist"):
        save_checkpoint(tmp_path / "no" / "x.pt", model, epoch=0)
    with pytest.raises(ValueError, match="rng_state"):
        set_rng_state({"x": 1})
    with pytest.raises(ValueError, match="does not exist"):
        latest_good_checkpoint(tmp_path / "none")


def test_rng_state_round_trip():
    generator = torch.Generator().manual_seed(5)
    state = rng_state(generator)
    a = (torch.rand(3), random.random(), torch.rand(2, generator=generator))
    set_rng_state(state, generator)
    b = (torch.rand(3), random.random(), torch.rand(2, generator=generator))
    assert torch.equal(a[0], b[0]) and a[1] == b[1] and torch.equal(a[2], b[2])
    with pytest.raises(ValueError, match="no generator state"):
        set_rng_state(rng_state(), generator)
