"""Notebook 12's exercise checks: right answers pass, typical mistakes get their own hint."""

from __future__ import annotations

import torch

from tests.test_checks import grade_keeping_random_state as grade

G0 = torch.tensor([0.5, -1.0, 2.0])
G1 = torch.tensor([1.5, 1.0, 0.0])


def test_rounds():
    assert grade("12.rounds", 1).ok
    assert "without no_sync" in grade("12.rounds", 8).message
    assert "number of ranks" in grade("12.rounds", 4).message


def test_average():
    assert grade("12.average", (G0 + G1) / 2).ok
    assert "that is the sum" in grade("12.average", G0 + G1).message
    assert "one rank's local gradient" in grade("12.average", G0.clone()).message
    assert "should have shape (3,)" in grade("12.average", torch.zeros(2)).message


def test_shard():
    def right(batch, rank, world_size):
        share = len(batch) // world_size
        return batch[rank * share : (rank + 1) * share]

    assert grade("12.shard", right).ok
    strided = grade("12.shard", lambda b, r, w: b[r::w]).message
    assert "strided" in strided and "DistributedSampler" in strided  # a fine split, not wrong
    assert "consecutive" in strided
    assert "rows" in grade("12.shard", lambda b, r, w: b[: len(b) // 2]).message
    assert "raised ZeroDivisionError" in grade("12.shard", lambda b, r, w: 1 / 0).message
    assert "returned NoneType" in grade("12.shard", lambda b, r, w: None).message
