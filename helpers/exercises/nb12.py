"""Exercise checks for notebook 12 — from one process to many."""

from __future__ import annotations

from typing import Any

import torch

from helpers.checks import call, compare_number, compare_tensor, expect_function

__all__ = ["rounds", "average", "shard"]

G0 = torch.tensor([0.5, -1.0, 2.0])
G1 = torch.tensor([1.5, 1.0, 0.0])


def rounds(answer: Any) -> str | None:
    """with no_sync(), one all-reduce per optimizer step, however many ranks."""
    if answer == 8:
        return (
            "8 is the count without no_sync() (one per backward); inside no_sync() nothing is sent."
        )
    if answer in (4, 32):
        return (
            "every rank takes part in the same all-reduce: the number of ranks does not add rounds."
        )
    return compare_number(answer, 1, name="the number of rounds")


def average(answer: Any) -> str | None:
    """every rank holds the average of the ranks' gradients."""
    if (
        isinstance(answer, torch.Tensor)
        and answer.shape == G0.shape
        and torch.allclose(answer, G0 + G1)
    ):
        return "that is the sum; DDP divides the sum by the number of ranks, so every rank holds the mean."
    if (
        isinstance(answer, torch.Tensor)
        and answer.shape == G0.shape
        and (torch.equal(answer, G0) or torch.equal(answer, G1))
    ):
        return "that is one rank's local gradient; after the all-reduce every rank holds the same combined one."
    return compare_tensor(answer, (G0 + G1) / 2, name="the gradient after the all-reduce")


def shard(answer: Any) -> str | None:
    """each rank gets its own consecutive, equal slice."""
    hint = expect_function(answer, "shard")
    if hint:
        return hint
    batch = torch.arange(24).reshape(12, 2)
    for world_size in (1, 2, 3, 4):
        share = 12 // world_size
        for rank in range(world_size):
            got, hint = call(
                answer, batch, rank, world_size, what=f"shard(batch, {rank}, {world_size})"
            )
            if hint:
                return hint
            expected = batch[rank * share : (rank + 1) * share]
            if not isinstance(got, torch.Tensor):
                return f"shard(batch, {rank}, {world_size}) returned {type(got).__name__}; return a slice of batch."
            if got.shape[0] != share:
                return (
                    f"shard(batch, {rank}, {world_size}) has {got.shape[0]} rows; each of {world_size} "
                    f"ranks should get 12 // {world_size} = {share}."
                )
            if (
                torch.equal(got, batch[rank::world_size])
                and world_size > 1
                and not torch.equal(got, expected)
            ):
                return (
                    "you took every world_size-th row: the strided share. That is a fine split too "
                    "(DistributedSampler deals rows that way), but this exercise asks for the "
                    "consecutive one, as slice_for_rank: rank r takes rows r * share to "
                    "(r + 1) * share - 1."
                )
            if not torch.equal(got, expected):
                return f"shard(batch, {rank}, {world_size}) returned the wrong rows: rank r starts at row r * share."
    return None
