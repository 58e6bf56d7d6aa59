"""The training loop of notebook 12, as a script for torchrun: one process per rank.

    torchrun --standalone --nproc_per_node=2 -m helpers.train_ddp --steps 20 --accumulate 2

(or give the file's path, helpers/train_ddp.py, instead of -m helpers.train_ddp).

On several machines, run the same command on each with --nnodes, --node_rank and
--rdzv-endpoint=HOST:PORT of the first machine; the script itself does not change.
torchrun sets RANK, LOCAL_RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT for every process.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import sys

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP

from helpers.distributed import make_problem, slice_for_rank

__all__ = ["main", "train"]


def main(argv: list[str]) -> int:
    """Train with DDP for --steps updates; rank 0 prints the loss and a final weight check."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=20, help="optimizer updates")
    parser.add_argument("--batch-per-rank", type=int, default=8, help="samples per rank and update")
    parser.add_argument(
        "--accumulate", type=int, default=1, help="micro-batches per update (no_sync)"
    )
    parser.add_argument("--lr", type=float, default=0.1)
    args = parser.parse_args(argv)
    if args.batch_per_rank % args.accumulate:
        parser.error("--batch-per-rank must be divisible by --accumulate")

    backend = "nccl" if torch.cuda.is_available() and dist.is_nccl_available() else "gloo"
    dist.init_process_group(backend)  # reads the variables torchrun set
    try:
        same = train(args, dist.get_rank(), dist.get_world_size())
    finally:
        # train() has returned, so nothing refers to its DDP wrapper any more; collect it now,
        # before the process group goes. A DDP object left for Python's shutdown to clean up can
        # abort the process there ("terminate called without an active exception", gloo).
        gc.collect()
        dist.destroy_process_group()
    return 0 if same else 1


def train(args: argparse.Namespace, rank: int, world: int) -> bool:
    """Train for args.steps updates on this rank; True when every rank ends with equal weights."""
    torch.set_num_threads(1)
    model, inputs, targets = make_problem(world * args.batch_per_rank * args.steps, seed=0)
    ddp = DDP(model)
    optimizer = torch.optim.SGD(ddp.parameters(), lr=args.lr)
    per_step = world * args.batch_per_rank
    for step in range(args.steps):
        x_step = inputs[step * per_step : (step + 1) * per_step]
        y_step = targets[step * per_step : (step + 1) * per_step]
        x_rank, y_rank = slice_for_rank(x_step, rank, world), slice_for_rank(y_step, rank, world)
        optimizer.zero_grad()
        total = 0.0
        for k in range(args.accumulate):
            x = slice_for_rank(x_rank, k, args.accumulate)
            y = slice_for_rank(y_rank, k, args.accumulate)
            last = k == args.accumulate - 1
            with contextlib.nullcontext() if last else ddp.no_sync():
                loss = nn.functional.mse_loss(ddp(x), y) / args.accumulate
                loss.backward()
            total += loss.item()
        optimizer.step()
        if rank == 0:
            print(f"step {step + 1:>3}  loss on rank 0: {total:.4f}", flush=True)
    flat = torch.cat([p.detach().flatten() for p in model.parameters()])
    copies = [torch.empty_like(flat) for _ in range(world)]
    dist.all_gather(copies, flat)
    same = all(torch.equal(copies[0], c) for c in copies)
    if rank == 0:
        print(f"{world} ranks, weights identical on all ranks: {same}", flush=True)
    return same


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
