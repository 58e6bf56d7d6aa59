"""The training loop of notebook 12, as a script for torchrun: one process per rank.

    torchrun --standalone --nproc_per_node=2 -m helpers.train_ddp --steps 20 --accumulate 2

(or give the file's path, helpers/train_ddp.py, instead of -m helpers.train_ddp: the file
imports nothing but PyTorch, so it can be copied out of Loop Lab as it is).

On several machines, run the same command on each, with a c10d rendezvous that every machine
can reach (`torchrun_args` builds it; the first machine's address as HOST):

    torchrun --nnodes=2 --nproc_per_node=4 --rdzv-backend=c10d --rdzv-endpoint=HOST:29500
             --rdzv-id=loop-lab -m helpers.train_ddp

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
from collections.abc import Callable
from typing import Any, NamedTuple

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP

__all__ = [
    "Backend",
    "choose_backend",
    "detect_backend",
    "main",
    "make_problem",
    "place_problem",
    "slice_for_rank",
    "torchrun_args",
    "train",
    "weights_identical",
]

BACKENDS = ("auto", "gloo", "nccl")


def make_problem(
    total_batch: int, seed: int = 0, batchnorm: bool = False
) -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    """A small regression model and `total_batch` samples, on the CPU and the same for every caller.

    With batchnorm=True the model has a BatchNorm1d after its first layer (notebook 12's caveat).
    """
    if isinstance(total_batch, bool) or not isinstance(total_batch, int) or total_batch < 1:
        raise ValueError(f"total_batch must be a whole number >= 1, not {total_batch!r}.")
    with torch.device("cpu"):  # the CPU even if torch.set_default_device() chose a GPU
        generator = torch.Generator().manual_seed(seed)
        inputs = torch.randn(total_batch, 5, generator=generator)
        targets = inputs @ torch.randn(5, 1, generator=generator) + 0.1 * torch.randn(
            total_batch, 1, generator=generator
        )
        torch.manual_seed(seed)
        norm = [nn.BatchNorm1d(8)] if batchnorm else []
        model = nn.Sequential(nn.Linear(5, 8), *norm, nn.Tanh(), nn.Linear(8, 1))
    return model, inputs, targets


def slice_for_rank(tensor: torch.Tensor, rank: int, world_size: int) -> torch.Tensor:
    """The rank's equal, consecutive share of a batch: rows rank*n .. (rank+1)*n."""
    if tensor.shape[0] % world_size:
        raise ValueError(
            f"a batch of {tensor.shape[0]} does not split evenly over {world_size} ranks."
        )
    share = tensor.shape[0] // world_size
    return tensor[rank * share : (rank + 1) * share]


def train(
    model: nn.Module,
    inputs: torch.Tensor,
    targets: torch.Tensor,
    rank: int,
    world_size: int,
    steps: int = 1,
    accumulate: int = 1,
    lr: float = 0.1,
    use_no_sync: bool = True,
    comm_hook: Callable[..., Any] | None = None,
) -> list[float]:
    """Train this rank's copy of `model` with DDP for `steps` updates; return its loss per step."""
    ddp = DDP(model)  # copies rank 0's weights to every rank
    if comm_hook is not None:  # replaces DDP's own all-reduce (notebook 12: to count its calls)
        ddp.register_comm_hook(None, comm_hook)
    optimizer = torch.optim.SGD(ddp.parameters(), lr=lr)
    losses = []
    for step in range(steps):
        x_rank = slice_for_rank(slice_for_rank(inputs, step, steps), rank, world_size)
        y_rank = slice_for_rank(slice_for_rank(targets, step, steps), rank, world_size)
        optimizer.zero_grad()
        step_loss = 0.0
        for k in range(accumulate):
            x, y = slice_for_rank(x_rank, k, accumulate), slice_for_rank(y_rank, k, accumulate)
            sync = k == accumulate - 1 or not use_no_sync  # the last micro-batch always syncs
            with contextlib.nullcontext() if sync else ddp.no_sync():
                loss = nn.functional.mse_loss(ddp(x), y) / accumulate  # forward inside, too
                loss.backward()  # if sync: all-reduce, and every rank's .grad is the mean
            step_loss += loss.item()
        optimizer.step()  # the same gradient on every rank: the same step
        losses.append(step_loss)
    return losses


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


def torchrun_args(
    script_args: list[str],
    nproc_per_node: int = 2,
    nnodes: int = 1,
    endpoint: str = "HOST:29500",
    run_id: str = "loop-lab",
    script: str = "helpers.train_ddp",
) -> list[str]:
    """torchrun's arguments to run this script: --standalone on one machine, c10d on several.

    On several machines every one runs the same arguments; the c10d rendezvous at `endpoint`
    (an address and port that all of them reach) hands out the node ranks, and `run_id` keeps
    apart two jobs that use the same endpoint. `script` is a module name, or a file's path (.py).
    """
    for name, value in (("nproc_per_node", nproc_per_node), ("nnodes", nnodes)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a whole number >= 1, not {value!r}.")
    if nnodes == 1:
        launch = ["--standalone", f"--nproc_per_node={nproc_per_node}"]
    else:
        if ":" not in endpoint or not run_id:
            raise ValueError(
                f"with nnodes={nnodes}, give endpoint='ADDRESS:PORT' of the first machine "
                f"(not {endpoint!r}) and a run_id."
            )
        launch = [f"--nnodes={nnodes}", f"--nproc_per_node={nproc_per_node}"]
        launch += ["--rdzv-backend=c10d", f"--rdzv-endpoint={endpoint}", f"--rdzv-id={run_id}"]
    program = [script] if script.endswith(".py") else ["-m", script]
    return [*launch, *program, *[str(a) for a in script_args]]


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


def run(args: argparse.Namespace, backend: Backend) -> bool:
    """This rank's whole job: train, check the ranks agree, save on rank 0. True if they agree."""
    rank, world = dist.get_rank(), dist.get_world_size()
    torch.set_num_threads(1)
    total = world * args.batch_per_rank * args.steps
    model, inputs, targets = place_problem(total, backend.device)
    if rank == 0:  # print on rank 0 only: every rank would print the same lines
        if backend.note:
            print(backend.note, flush=True)
        print(f"{world} ranks, backend {backend.name}, rank 0 computes on {backend.device}")
    losses = train(model, inputs, targets, rank, world, args.steps, args.accumulate, args.lr)
    same = weights_identical(model, world)
    if rank == 0:
        for step, loss in enumerate(losses, start=1):
            print(f"step {step:>3}  loss on rank 0: {loss:.4f}")
        print(f"{world} ranks, weights identical on all ranks: {same}", flush=True)
        if args.save:  # save on rank 0 only: the weights are the same everywhere
            torch.save(model.state_dict(), args.save)  # the plain model: no "module." prefix
    return same


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
    parser.add_argument("--save", default="", help="rank 0 saves the trained weights here")
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
    same = False
    try:
        same = run(args, backend)
        # Every rank waits here for the others before the group goes: a rank that tore its
        # connections down while another still used them has hung gloo's shutdown.
        dist.barrier()
    finally:
        # run() has returned, so nothing refers to its DDP wrapper any more; collect it now,
        # before the process group goes. A DDP object left for Python's shutdown to clean up can
        # abort the process there ("terminate called without an active exception", gloo).
        gc.collect()
        dist.destroy_process_group()
    return 0 if same else 1


if __name__ == "__main__":
    status = main(sys.argv[1:])
    # The group is gone and every file is written: leave now. Python's own shutdown would spend
    # about half a second tearing down torch's modules, and is where gloo has aborted before.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)
