"""Exercise checks for notebook 09 — checkpoints."""

from __future__ import annotations

import os
import random
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from helpers.checkpoints import save_checkpoint
from helpers.checks import call, expect_function

__all__ = ["needed_keys", "atomic_save", "resume"]

NEEDED = {"model", "optimizer", "scheduler", "epoch", "rng"}
WHY = {
    "model": "without the model's state_dict the weights start from scratch",
    "optimizer": "without the optimizer's state_dict Adam's running averages restart from zero",
    "scheduler": (
        "without the scheduler's state_dict the learning-rate schedule starts again from its "
        "first epoch"
    ),
    "epoch": "without the epoch you don't know where to continue",
    "rng": (
        "without the random states the shuffle order, the dropout masks and the augmentation differ"
    ),
}


def needed_keys(answer: Any) -> str | None:
    """model, optimizer, scheduler, epoch and random state are all an exact resume needs."""
    if isinstance(answer, (list, tuple)):
        answer = set(answer)
    if not isinstance(answer, (set, frozenset)) or not all(isinstance(k, str) for k in answer):
        return 'give a set of strings, e.g. {"model", "epoch"}.'
    missing = NEEDED - answer
    if missing:
        key = sorted(missing)[0]
        return f"{key!r} is missing: {WHY[key]}."
    extra = answer - NEEDED
    if extra:
        return (
            f"{sorted(extra)[0]!r} is not needed: it can be recomputed, or it is only "
            "for you to look at. Keep what the next training step depends on."
        )
    return None


def atomic_save(answer: Any) -> str | None:
    """the old file survives a crash and a power cut, and no temporary file is left behind."""
    if hint := expect_function(answer, "atomic_save"):
        return hint
    with tempfile.TemporaryDirectory() as folder:
        target = Path(folder) / "ckpt.pt"
        events: list[str] = []
        real_fsync, real_replace = os.fsync, os.replace

        def fsync(descriptor):
            events.append("fsync")
            return real_fsync(descriptor)

        def replace(*args, **kwargs):
            events.append("replace")
            return real_replace(*args, **kwargs)

        os.fsync, os.replace = fsync, replace
        try:
            _, error = call(answer, {"w": torch.ones(3)}, target)
        finally:
            os.fsync, os.replace = real_fsync, real_replace
        if error:
            return error
        if not target.is_file():
            return "after atomic_save(obj, path) there is no file at path: rename the temporary file to path."
        try:
            loaded = torch.load(target, weights_only=True)
        except Exception:
            return "the file at path does not load with torch.load: save with torch.save into the temporary file."
        if not (
            isinstance(loaded, dict) and torch.equal(loaded.get("w", torch.zeros(3)), torch.ones(3))
        ):
            return "the file at path does not hold the object you were given."
        good = target.read_bytes()
        real_save = torch.save

        def crash_halfway(obj, file, *args, **kwargs):
            real_save(obj, file, *args, **kwargs)
            if hasattr(file, "truncate"):
                file.truncate(50)
            elif isinstance(file, (str, os.PathLike)):
                with open(file, "r+b") as handle:
                    handle.truncate(50)
            raise OSError("simulated crash")

        torch.save = crash_halfway
        try:
            _, error = call(answer, {"w": torch.zeros(3)}, target)
        finally:
            torch.save = real_save
        if error is None:
            return "torch.save failed inside your function, but it did not raise: let the error propagate."
        if target.read_bytes() != good:
            return (
                "a crash during the save damaged the existing file: write to a temporary file "
                "first, and only os.replace it over path after torch.save has finished."
            )
        leftovers = [p.name for p in Path(folder).iterdir() if p.name != "ckpt.pt"]
        if leftovers:
            return (
                "the old file survived, but the half-written temporary file was left behind: "
                "delete it when saving fails (try/except, then unlink, then raise)."
            )
    before_rename = events[: events.index("replace")] if "replace" in events else events
    if "fsync" not in before_rename:
        return (
            "a crash is handled, but not a power cut: the operating system may still hold the "
            "new bytes in memory when the rename reaches the disk. Save into the open temporary "
            "file (`with os.fdopen(handle, 'wb') as file: torch.save(obj, file)`), then "
            "`file.flush()` and `os.fsync(file.fileno())`, and only then os.replace."
        )
    return None


def _draws(generator: torch.Generator) -> tuple:
    """One number from each random source a training run draws from."""
    return (
        torch.rand(2).tolist(),
        random.random(),
        float(np.random.rand()),
        torch.rand(2, generator=generator).tolist(),
    )


RNG_HINTS = (
    "torch's global random state (dropout masks) was not restored",
    "Python's random state (random.random(), e.g. in augmentation) was not restored",
    "NumPy's random state (np.random, e.g. in augmentation) was not restored",
    "the generator's state (the DataLoader's shuffle) was not restored",
)


def _small_run(seed: int):
    torch.manual_seed(seed)
    model = nn.Linear(3, 1)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=2, gamma=0.5)
    return model, optimizer, scheduler, torch.Generator().manual_seed(seed)


def resume(answer: Any) -> str | None:
    """model, optimizer, scheduler and every random state restored, and the next epoch returned."""
    if hint := expect_function(answer, "resume"):
        return hint
    model, optimizer, scheduler, generator = _small_run(0)
    for _ in range(3):
        optimizer.zero_grad()
        model(torch.randn(4, 3)).pow(2).mean().backward()
        optimizer.step()
        scheduler.step()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "ckpt.pt"
        save_checkpoint(path, model, optimizer, epoch=7, scheduler=scheduler, generator=generator)
        expected = _draws(generator)
        random.seed(123)
        np.random.seed(123)
        fresh, fresh_optimizer, fresh_scheduler, fresh_generator = _small_run(123)
        result, error = call(answer, path, fresh, fresh_optimizer, fresh_scheduler, fresh_generator)
    if error:
        return error
    got = _draws(fresh_generator)
    if not torch.equal(fresh.weight, model.weight):
        return "the model's weights were not restored: model.load_state_dict(checkpoint['model'])."
    if not fresh_optimizer.state:
        return (
            "the optimizer's state was not restored (Adam's moments are empty): "
            "optimizer.load_state_dict(checkpoint['optimizer'])."
        )
    if fresh_scheduler.last_epoch != scheduler.last_epoch:
        return (
            f"the scheduler's state was not restored (it is at epoch {fresh_scheduler.last_epoch}, "
            f"the saved one at {scheduler.last_epoch}): "
            "scheduler.load_state_dict(checkpoint['scheduler'])."
        )
    for hint, want, have in zip(RNG_HINTS, expected, got, strict=True):
        if want != have:
            return (
                f"{hint}: set_rng_state(checkpoint['rng'], generator) from helpers.checkpoints "
                "restores torch's, Python's, NumPy's and the generator's state in one call."
            )
    if result == 7:
        return "you returned the saved epoch (7); the next epoch to run is one more."
    if result != 8:
        return f"your function returned {result!r}; it should return the next epoch, checkpoint['epoch'] + 1."
    return None
