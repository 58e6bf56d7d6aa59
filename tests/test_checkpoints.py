"""helpers.checkpoints: atomic saves, exact resumes, clear errors for bad files."""

from __future__ import annotations

import os
import random

import numpy as np
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


def _scheduler(optimizer):
    return torch.optim.lr_scheduler.StepLR(optimizer, step_size=3, gamma=0.5)


def _train(model, optimizer, steps, generator, scheduler=None):
    losses = []
    for _ in range(steps):
        x = torch.randn(8, 3, generator=generator)
        x = x * random.uniform(0.9, 1.1) + torch.from_numpy(np.random.normal(0, 0.01, (8, 3)))
        y = x.sum(dim=1, keepdim=True)
        optimizer.zero_grad()
        loss = ((model(x.float()) - y) ** 2).mean()  # dropout draws from torch's global generator
        loss.backward()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        losses.append(loss.item())
    return losses


def _seed_all():
    torch.manual_seed(2)
    random.seed(3)
    np.random.seed(4)


def test_resume_matches_an_uninterrupted_run_exactly(tmp_path):
    model, optimizer = _model_and_optimizer()
    scheduler = _scheduler(optimizer)
    generator = torch.Generator().manual_seed(1)
    _seed_all()
    straight = _train(model, optimizer, 10, generator, scheduler)
    final = [p.detach().clone() for p in model.parameters()]

    model, optimizer = _model_and_optimizer()
    scheduler = _scheduler(optimizer)
    generator = torch.Generator().manual_seed(1)
    _seed_all()
    first = _train(model, optimizer, 4, generator, scheduler)
    save_checkpoint(
        tmp_path / "ckpt.pt", model, optimizer, epoch=4, scheduler=scheduler, generator=generator
    )
    _train(model, optimizer, 3, generator, scheduler)  # work that the "crash" loses

    model, optimizer = _model_and_optimizer()
    scheduler = _scheduler(optimizer)
    generator = torch.Generator()
    _seed_all()  # a restarted program seeds again; the checkpoint must win
    checkpoint = load_checkpoint(
        tmp_path / "ckpt.pt", model, optimizer, scheduler=scheduler, generator=generator
    )
    assert checkpoint["epoch"] == 4
    assert scheduler.last_epoch == 4 and optimizer.param_groups[0]["lr"] == 0.005
    rest = _train(model, optimizer, 6, generator, scheduler)
    assert first + rest == straight
    for a, b in zip(final, model.parameters(), strict=True):
        assert torch.equal(a, b)


@pytest.mark.parametrize("left_out", ["scheduler", "torch", "python", "numpy", "generator"])
def test_each_left_out_state_changes_the_resumed_run(tmp_path, left_out):
    model, optimizer = _model_and_optimizer()
    scheduler = _scheduler(optimizer)
    generator = torch.Generator().manual_seed(1)
    _seed_all()
    _train(model, optimizer, 4, generator, scheduler)
    save_checkpoint(
        tmp_path / "ckpt.pt", model, optimizer, epoch=4, scheduler=scheduler, generator=generator
    )
    straight = _train(model, optimizer, 4, generator, scheduler)

    model, optimizer = _model_and_optimizer()
    scheduler = _scheduler(optimizer)
    generator = torch.Generator().manual_seed(1)
    _seed_all()
    checkpoint = load_checkpoint(tmp_path / "ckpt.pt", model, optimizer, restore_rng=False)
    if left_out != "scheduler":
        scheduler.load_state_dict(checkpoint["scheduler"])
    rng = {k: v for k, v in checkpoint["rng"].items() if k != left_out}
    set_rng_state(
        {"torch": torch.get_rng_state(), "python": random.getstate(), **rng},
        generator if left_out != "generator" else None,
    )
    assert _train(model, optimizer, 4, generator, scheduler) != straight


def test_every_save_is_fsynced_before_the_rename(tmp_path, monkeypatch):
    model, optimizer = _model_and_optimizer()
    events = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: (events.append("fsync"), real_fsync(fd))[1])
    monkeypatch.setattr(os, "replace", lambda *a: (events.append("replace"), real_replace(*a))[1])
    save_checkpoint(tmp_path / "ckpt.pt", model, optimizer, epoch=1)
    assert events[:2] == ["fsync", "replace"]
    if os.name == "posix":
        assert events == ["fsync", "replace", "fsync"]  # the folder, so the rename is on disk


def test_every_part_loads_with_weights_only(tmp_path):
    model, optimizer = _model_and_optimizer()
    scheduler = _scheduler(optimizer)
    path = save_checkpoint(
        tmp_path / "ckpt.pt",
        model,
        optimizer,
        epoch=1,
        scheduler=scheduler,
        generator=torch.Generator(),
    )
    checkpoint = torch.load(path, weights_only=True)
    assert checkpoint["rng"]["python"] == random.getstate()  # stored as getstate() gives it
    assert set(checkpoint["rng"]) >= {"torch", "python", "numpy", "generator"}
    assert checkpoint["scheduler"] == scheduler.state_dict()


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
    with pytest.raises(CheckpointError, match="no scheduler state"):
        load_checkpoint(tmp_path / "no_opt.pt", model, scheduler=_scheduler(optimizer))
    assert latest_good_checkpoint(tmp_path, "missing*.pt") is None


def test_bad_arguments_are_named(tmp_path):
    model, optimizer = _model_and_optimizer()
    with pytest.raises(TypeError, match="model must be a torch.nn.Module"):
        save_checkpoint(tmp_path / "x.pt", "model", epoch=0)
    with pytest.raises(TypeError, match="optimizer must be"):
        save_checkpoint(tmp_path / "x.pt", model, "adam", epoch=0)
    with pytest.raises(TypeError, match="scheduler must be"):
        save_checkpoint(tmp_path / "x.pt", model, optimizer, epoch=0, scheduler=optimizer)
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
    a = (torch.rand(3), random.random(), torch.rand(2, generator=generator), np.random.rand(2))
    set_rng_state(state, generator)
    b = (torch.rand(3), random.random(), torch.rand(2, generator=generator), np.random.rand(2))
    assert torch.equal(a[0], b[0]) and a[1] == b[1] and torch.equal(a[2], b[2])
    assert (a[3] == b[3]).all()
    with pytest.raises(ValueError, match="no generator state"):
        set_rng_state(rng_state(), generator)
