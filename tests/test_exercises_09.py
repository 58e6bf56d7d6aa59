"""Notebook 09's exercise checks: right answers pass, typical mistakes get their own hint."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import torch

from helpers.checks import grade


def _atomic(obj, path):
    path = Path(path)
    handle, temporary = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    os.close(handle)
    try:
        torch.save(obj, temporary)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _in_place(obj, path):
    torch.save(obj, path)


def _leaves_temp(obj, path):
    path = Path(path)
    handle, temporary = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    os.close(handle)
    torch.save(obj, temporary)
    os.replace(temporary, path)


def _swallows(obj, path):
    try:
        _atomic(obj, path)
    except OSError:
        pass


def test_needed_keys():
    assert grade("09.needed_keys", {"model", "optimizer", "epoch", "rng"}).ok
    assert grade("09.needed_keys", ["model", "optimizer", "epoch", "rng"]).ok
    assert "Adam's running averages" in grade("09.needed_keys", {"model", "epoch", "rng"}).message
    assert "shuffle order" in grade("09.needed_keys", {"model", "optimizer", "epoch"}).message
    assert (
        "not needed"
        in grade("09.needed_keys", {"model", "optimizer", "epoch", "rng", "loss_history"}).message
    )
    assert "set of strings" in grade("09.needed_keys", "model").message


def test_atomic_save():
    assert grade("09.atomic_save", _atomic).ok
    assert "damaged the existing file" in grade("09.atomic_save", _in_place).message
    assert "temporary file was left behind" in grade("09.atomic_save", _leaves_temp).message
    assert "did not raise" in grade("09.atomic_save", _swallows).message
    assert "no file at path" in grade("09.atomic_save", lambda obj, path: None).message
    assert "raised ZeroDivisionError" in grade("09.atomic_save", lambda obj, path: 1 / 0).message
    assert "itself, not the result of calling it" in grade("09.atomic_save", 3).message


def _resume(path, model, optimizer, plus=1, restore_optimizer=True):
    checkpoint = torch.load(path, weights_only=True)
    model.load_state_dict(checkpoint["model"])
    if restore_optimizer:
        optimizer.load_state_dict(checkpoint["optimizer"])
    return checkpoint["epoch"] + plus


def test_resume():
    assert grade("09.resume", _resume).ok
    assert "one more" in grade("09.resume", lambda p, m, o: _resume(p, m, o, plus=0)).message
    assert (
        "optimizer's state was not restored"
        in grade("09.resume", lambda p, m, o: _resume(p, m, o, restore_optimizer=False)).message
    )
    assert "weights were not restored" in grade("09.resume", lambda p, m, o: 8).message
