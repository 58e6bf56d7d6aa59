"""The training loop of notebook 12, as a script for torchrun: one process per rank.

    torchrun --standalone --nproc_per_node=2 -m helpers.train_ddp --steps 20 --accumulate 2

(or give the file's path, helpers/train_ddp.py, instead of -m helpers.train_ddp).

On several machines, run the same command on each with --nnodes, --node_rank and
--rdzv-endpoint=HOST:PORT of the first machine; the script itself does not change.
torchrun sets RANK, LOCAL_RANK, WORLD_SIZE, LOCAL_WORLD_SIZE, MASTER_ADDR and MASTER_PORT for
every process.

--backend picks how the ranks talk, and with it where they compute:
  gloo  every rank on the CPU;
  nccl  every rank on its own GPU, cuda:LOCAL_RANK; it needs one GPU per rank on each machine,
        and with fewer the script stops before training, with a plain message;
  auto  (the default) nccl when this machine has CUDA, nccl and a GPU for every rank on it;
        otherwise gloo on the CPU, with a note when GPUs were there but too few. Two ranks on a
        machine with one GPU (a Colab GPU runtime) therefore still run, on the CPU: two
        processes cannot share one GPU under nccl.
The choice is made from facts that every rank on a machine shares, so they all agree. With
auto on machines that have different numbers of GPUs, give --backend explicitly.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import os
import sys
from typing import NamedTuple

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP

from helpers.distributed import make_problem, slice_for_rank

__all__ = [
    "Backend",
    "choose_backend",
    "detect_backend",
    "main",
    "place_problem",
    "train",
    "weights_identical",
]

BACKENDS = ("auto", "gloo", "nccl")


class Backend(NamedTuple):
    """The process-group backend, this rank's device, and a note for the user ('' if none)."""

    name: str
    device: torch.device
    note: str


def choose_backend(
    requested: str,
    cuda_available: bool,
    nccl_available: bool,
    gpu_count: int,
    local_world_size: int,
    local_rank: int,
) -> Backend:
    """Decide the backend and this rank's device; ValueError with a plain message if impossible."""
    if requested not in BACKENDS:
        raise ValueError(f"--backend must be one of {', '.join(BACKENDS)}, not {requested!r}.")
    if not 0 <= local_rank < local_world_size:
        raise ValueError(
            f"LOCAL_RANK={local_rank} is outside 0..{local_world_size - 1} "
            f"(LOCAL_WORLD_SIZE={local_world_size}); start the script with torchrun."
        )
    cpu = Backend("gloo", torch.device("cpu"), "")
    if requested == "gloo":
        return cpu
    usable = cuda_available and nccl_available
    enough = gpu_count >= local_world_size
    if requested == "nccl":
        if not cuda_available:
            raise ValueError(
                "--backend nccl needs CUDA GPUs, and PyTorch sees none here; "
                "use --backend gloo (or auto) to train on the CPU."
            )
        if not nccl_available:
            raise ValueError(
                "--backend nccl: this PyTorch build has no nccl; use --backend gloo (or auto)."
            )
        if not enough:
            raise ValueError(
                f"--backend nccl needs one GPU per rank, but this machine runs "
                f"{local_world_size} ranks and has {gpu_count} GPU(s). Start torchrun with "
                f"--nproc_per_node={gpu_count} or fewer, or use --backend gloo (or auto)."
            )
    elif not (usable and enough):  # auto, and nccl cannot run here
        if usable:
            return cpu._replace(
                note=f"note: {local_world_size} ranks on this machine but {gpu_count} GPU(s); "
                "nccl needs one GPU per rank, so the ranks use gloo on the CPU."
            )
        return cpu
    return Backend("nccl", torch.device("cuda", local_rank), "")


def detect_backend(requested: str) -> Backend:
    """choose_backend() with this machine's facts and the variables torchrun set."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    return choose_backend(
        requested,
        cuda_available=torch.cuda.is_available(),
        nccl_available=dist.is_available() and dist.is_nccl_available(),
        gpu_count=torch.cuda.device_count(),
        local_world_size=int(os.environ.get("LOCAL_WORLD_SIZE", str(world))),
        local_rank=int(os.environ.get("LOCAL_RANK", "0")),
    )


def main(argv: list[str]) -> int:
    """Train with DDP for --steps updates; rank 0 prints the loss and a final weight check."""
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n")[0],
        epilog=__doc__[__doc__.index("--backend picks") :],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--steps", type=int, default=20, help="optimizer updates")
    parser.add_argument("--batch-per-rank", type=int, default=8, help="samples per rank and update")
    parser.add_argument(
        "--accumulate", type=int, default=1, help="micro-batches per update (no_sync)"
    )
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument(
        "--backend", choices=BACKENDS, default="auto", help="gloo (CPU), nccl (GPUs) or auto"
    )
    args = parser.parse_args(argv)
    if args.batch_per_rank % args.accumulate:
        parser.error("--batch-per-rank must be divisible by --accumulate")

    try:
        backend = detect_backend(args.backend)
    except ValueError as error:  # a plain message, not a traceback; every rank stops
        if os.environ.get("LOCAL_RANK", "0") == "0":  # the same on every rank: say it once
            print(f"train_ddp: {error}", file=sys.stderr, flush=True)
        return 2
    if backend.device.type == "cuda":
        torch.cuda.set_device(backend.device)  # before init: nccl binds this rank to its GPU
    dist.init_process_group(backend.name)  # reads the variables torchrun set
    try:
        if dist.get_rank() == 0:
            if backend.note:
                print(backend.note, flush=True)
            print(
                f"{dist.get_world_size()} ranks, backend {backend.name}, "
                f"rank 0 computes on {backend.device}",
                flush=True,
            )
        same = train(args, dist.get_rank(), dist.get_world_size(), backend.device)
    finally:
        # train() has returned, so nothing refers to its DDP wrapper any more; collect it now,
        # before the process group goes. A DDP object left for Python's shutdown to clean up can
        # abort the process there ("terminate called without an active exception", gloo).
        gc.collect()
        dist.destroy_process_group()
    return 0 if same else 1


def place_problem(
    total_batch: int, device: torch.device
) -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    """make_problem()'s model and data (built on the CPU, the same everywhere), moved to device."""
    model, inputs, targets = make_problem(total_batch, seed=0)
    return model.to(device), inputs.to(device), targets.to(device)


def weights_identical(model: nn.Module, world: int) -> bool:
    """Gather every rank's weights (on the model's device) and say whether they are all equal."""
    flat = torch.cat([p.detach().flatten() for p in model.parameters()])
    copies = [torch.empty_like(flat) for _ in range(world)]
    dist.all_gather(copies, flat)
    return all(torch.equal(copies[0], c) for c in copies)


def train(
    args: argparse.Namespace, rank: int, world: int, device: torch.device | str = "cpu"
) -> bool:
    """Train for args.steps updates on this rank; True when every rank ends with equal weights."""
    device = torch.device(device)
    torch.set_num_threads(1)
    model, inputs, targets = place_problem(world * args.batch_per_rank * args.steps, device)
    ddp = DDP(model, device_ids=[device] if device.type == "cuda" else None)
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
    same = weights_identical(model, world)
    if rank == 0:
        print(f"{world} ranks, weights identical on all ranks: {same}", flush=True)
    return same


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
