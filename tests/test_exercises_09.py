"""Notebook 09's exercise checks: right answers pass, typical mistakes get their own hint."""

from __future__ import annotations

import os
import random
import tempfile
from pathlib import Path

import numpy as np
import torch

from helpers.checkpoints import set_rng_state
from tests.test_checks import grade_keeping_random_state as grade


def _atomic(obj, path, fsync=True):
    path = Path(path)
    handle, temporary = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            torch.save(obj, file)
            file.flush()
            if fsync:
                os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _atomic_by_name(obj, path):
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


ALL_KEYS = {"model", "optimizer", "scheduler", "epoch", "rng"}


def test_needed_keys():
    assert grade("09.needed_keys", ALL_KEYS).ok
    assert grade("09.needed_keys", sorted(ALL_KEYS)).ok
    assert "Adam's running averages" in grade("09.needed_keys", ALL_KEYS - {"optimizer"}).message
    assert "shuffle order" in grade("09.needed_keys", ALL_KEYS - {"rng"}).message
    assert "learning-rate schedule" in grade("09.needed_keys", ALL_KEYS - {"scheduler"}).message
    assert "not needed" in grade("09.needed_keys", ALL_KEYS | {"loss_history"}).message
    assert "set of strings" in grade("09.needed_keys", "model").message


def test_atomic_save():
    assert grade("09.atomic_save", _atomic).ok
    assert "power cut" in grade("09.atomic_save", lambda o, p: _atomic(o, p, fsync=False)).message
    assert "power cut" in grade("09.atomic_save", _atomic_by_name).message
    assert "damaged the existing file" in grade("09.atomic_save", _in_place).message
    assert "temporary file was left behind" in grade("09.atomic_save", _leaves_temp).message
    assert "did not raise" in grade("09.atomic_save", _swallows).message
    assert "no file at path" in grade("09.atomic_save", lambda obj, path: None).message
    assert "raised ZeroDivisionError" in grade("09.atomic_save", lambda obj, path: 1 / 0).message
    assert "itself, not the result of calling it" in grade("09.atomic_save", 3).message


def _resume(path, model, optimizer, scheduler, generator, plus=1, skip=()):
    checkpoint = torch.load(path, weights_only=True, map_location="cpu")
    model.load_state_dict(checkpoint["model"])
    if "optimizer" not in skip:
        optimizer.load_state_dict(checkpoint["optimizer"])
    if "scheduler" not in skip:
        scheduler.load_state_dict(checkpoint["scheduler"])
    rng = checkpoint["rng"]
    if "torch" in skip:
        rng = {**rng, "torch": torch.get_rng_state()}
    if "python" in skip:
        rng = {**rng, "python": random.getstate()}
    if "numpy" in skip:
        rng = {key: value for key, value in rng.items() if key != "numpy"}
    set_rng_state(rng, None if "generator" in skip else generator)
    return checkpoint["epoch"] + plus


def _by_hand(path, model, optimizer, scheduler, generator):
    checkpoint = torch.load(path, weights_only=True, map_location="cpu")
    model.load_state_dict(checkpoint["model"])
    optimizer.load_state_dict(checkpoint["optimizer"])
    scheduler.load_state_dict(checkpoint["scheduler"])
    torch.set_rng_state(checkpoint["rng"]["torch"])
    random.setstate(checkpoint["rng"]["python"])
    np.random.set_state(checkpoint["rng"]["numpy"])
    generator.set_state(checkpoint["rng"]["generator"])
    return checkpoint["epoch"] + 1


def _grade_resume(**kwargs):
    return grade("09.resume", lambda *args: _resume(*args, **kwargs))


def test_resume():
    assert grade("09.resume", _resume).ok
    assert grade("09.resume", _by_hand).ok
    assert "one more" in _grade_resume(plus=0).message
    assert "optimizer's state was not restored" in _grade_resume(skip={"optimizer"}).message
    assert "scheduler's state was not restored" in _grade_resume(skip={"scheduler"}).message
    assert "torch's global random state" in _grade_resume(skip={"torch"}).message
    assert "Python's random state" in _grade_resume(skip={"python"}).message
    assert "NumPy's random state" in _grade_resume(skip={"numpy"}).message
    assert "the generator's state" in _grade_resume(skip={"generator"}).message
    assert "weights were not restored" in grade("09.resume", lambda *args: 8).message
    assert "raised TypeError" in grade("09.resume", lambda p, m, o: 8).message


def test_resume_check_leaves_the_notebooks_random_state_alone():
    torch.manual_seed(5)
    random.seed(5)
    np.random.seed(5)
    before = (torch.rand(1), random.random(), np.random.rand())
    torch.manual_seed(5)
    random.seed(5)
    np.random.seed(5)
    grade("09.resume", _resume)
    assert (torch.rand(1), random.random(), np.random.rand()) == before
