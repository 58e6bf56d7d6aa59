"""Exercise checks for notebook 09 — checkpoints."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import torch
from torch import nn

from helpers.checks import exercise, expect_function

NEEDED = {"model", "optimizer", "epoch", "rng"}
WHY = {
    "model": "without the model's state_dict the weights start from scratch",
    "optimizer": "without the optimizer's state_dict Adam's running averages restart from zero",
    "epoch": "without the epoch you don't know where to continue",
    "rng": "without the random states the shuffle order and dropout masks differ",
}


@exercise(
    "09.needed_keys", "model, optimizer, epoch and random state are all an exact resume needs"
)
def _needed_keys(answer):
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


def _call_quietly(function, *args):
    try:
        return function(*args), None
    except Exception as error:
        return None, f"your function raised {type(error).__name__}: {error}"


@exercise("09.atomic_save", "the old file survives a crash, and no temporary file is left behind")
def _atomic_save(answer):
    hint = expect_function(answer, "atomic_save")
    if hint:
        return hint
    with tempfile.TemporaryDirectory() as folder:
        target = Path(folder) / "ckpt.pt"
        _, error = _call_quietly(answer, {"w": torch.ones(3)}, target)
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
            _, error = _call_quietly(answer, {"w": torch.zeros(3)}, target)
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
    return None


@exercise("09.resume", "model and optimizer restored, and the next epoch returned")
def _resume(answer):
    hint = expect_function(answer, "resume")
    if hint:
        return hint
    torch.manual_seed(0)
    model = nn.Linear(3, 1)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.1)
    for _ in range(3):
        optimizer.zero_grad()
        model(torch.randn(4, 3)).pow(2).mean().backward()
        optimizer.step()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "ckpt.pt"
        torch.save(
            {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": 7}, path
        )
        fresh = nn.Linear(3, 1)
        fresh_optimizer = torch.optim.Adam(fresh.parameters(), lr=0.1)
        result, error = _call_quietly(answer, path, fresh, fresh_optimizer)
    if error:
        return error
    if not torch.equal(fresh.weight, model.weight):
        return "the model's weights were not restored: model.load_state_dict(checkpoint['model'])."
    if not fresh_optimizer.state:
        return (
            "the optimizer's state was not restored (Adam's moments are empty): "
            "optimizer.load_state_dict(checkpoint['optimizer'])."
        )
    if result == 7:
        return "you returned the saved epoch (7); the next epoch to run is one more."
    if result != 8:
        return f"your function returned {result!r}; it should return the next epoch, checkpoint['epoch'] + 1."
    return None
