"""Data parallelism on one machine: DistributedDataParallel with the gloo backend, on the CPU.

`ddp_compare` starts the rank processes, collects what rank 0 saw, and always stops every
process it started, even when a rank fails. On Linux (Colab, Binder, most servers) it forks
them: each rank is a copy of this process with PyTorch already imported, and starts in a
fraction of a second. Elsewhere fork is unsafe (macOS) or missing (Windows), so it spawns fresh
interpreters, which cannot import code defined in a notebook: that is one reason the problem
and the per-rank training function live in helpers/train_ddp.py (the script torchrun runs). A
spawned rank runs this file by its path (runpy), not as helpers.distributed, and loads
train_ddp.py by its path too: it imports PyTorch and nothing of the helper package, and starts
about half a second sooner.

Everything here runs on the CPU, on purpose and on every machine, GPUs or not. Notebook 12
compares what two ranks compute with what one process computes, and that comparison must run
wherever a learner is: two processes on one machine need two GPUs under nccl, and a laptop or a
Colab runtime has none or one, while gloo runs any number of ranks on the CPU. So the worker
names "gloo" itself, `make_problem` builds its model and data on the CPU even when a default
device has been set, and gradients come back as CPU tensors. helpers/train_ddp.py moves the
same problem to GPUs, when there is one per rank.
"""

from __future__ import annotations

import datetime
import importlib.util
import multiprocessing as mp
import os
import queue
import runpy
import socket
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP

if __name__ == "__ddp_worker__":  # a spawned rank (see _spawn_ranks): PyTorch and the script only
    _spec = importlib.util.spec_from_file_location(
        "_loop_lab_train_ddp", Path(__file__).with_name("train_ddp.py")
    )
    train_ddp = importlib.util.module_from_spec(_spec)
    _spec.loader.exec_module(train_ddp)
else:
    from helpers import train_ddp

make_problem, slice_for_rank, train = (
    train_ddp.make_problem,
    train_ddp.slice_for_rank,
    train_ddp.train,
)

__all__ = [
    "BatchNormReport",
    "DDPResult",
    "DDPRuns",
    "accumulated_gradients",
    "ddp_compare",
    "make_problem",
    "single_process_gradients",
    "slice_for_rank",
]


def _grads(model: nn.Module) -> dict[str, torch.Tensor]:
    return {name: p.grad.detach().clone() for name, p in model.named_parameters()}


def single_process_gradients(
    total_batch: int, seed: int = 0, rows: slice = slice(None)
) -> dict[str, torch.Tensor]:
    """Gradients of the mean-squared error over the batch (or its `rows`), in one process."""
    model, inputs, targets = make_problem(total_batch, seed)
    nn.functional.mse_loss(model(inputs[rows]), targets[rows]).backward()
    return _grads(model)


def accumulated_gradients(
    total_batch: int, micro_batches: int, seed: int = 0
) -> dict[str, torch.Tensor]:
    """Gradients accumulated over `micro_batches` equal micro-batches, each loss divided by their number."""
    model, inputs, targets = make_problem(total_batch, seed)
    for k in range(micro_batches):
        x, y = slice_for_rank(inputs, k, micro_batches), slice_for_rank(targets, k, micro_batches)
        (nn.functional.mse_loss(model(x), y) / micro_batches).backward()
    return _grads(model)


@dataclass
class DDPResult:
    """One DDP run: rank 0's gradients, all-reduces counted (None: not counted), every rank's losses."""

    gradients: dict[str, torch.Tensor]
    allreduce_calls: int | None
    losses: list[float]
    same_on_every_rank: bool


@dataclass
class BatchNormReport:
    """BatchNorm under DDP, two ranks on their own rows: what each rank's buffers held, and when."""

    running_means: list[torch.Tensor]  # each rank's running_mean after its first forward
    entering_second_forward: list[torch.Tensor]  # each rank's running_mean as forward 2 began
    gradients: dict[str, torch.Tensor]  # rank 0's gradients after the first backward
    all_reduced_mean: torch.Tensor  # the batch mean over every rank's rows, by one all-reduce
    sync_batchnorm_error: str  # what nn.SyncBatchNorm says about CPU tensors


@dataclass
class DDPRuns:
    """Every run of one `ddp_compare` start-up, by name."""

    plain: DDPResult  # DDP's own all-reduce, no hook at all
    counted: DDPResult  # the same, through torch's built-in allreduce_hook wrapped to count
    with_no_sync: DDPResult  # micro-batches, all but the last inside no_sync()
    without_no_sync: DDPResult  # micro-batches, every backward synchronised
    forward_outside_no_sync: DDPResult  # one backward() inside no_sync(), its forward outside
    uneven: DDPResult  # the ranks' shards of unequal size (see uneven_sizes)
    uneven_sizes: list[int]
    batchnorm: BatchNormReport
    state_dict: dict[str, torch.Tensor]  # rank 0's ddp.state_dict() after the plain run


WORKER = Path(__file__)  # a spawned rank runs this file by its path, not as helpers.distributed


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _numpy(tensors: dict[str, torch.Tensor]) -> dict[str, Any]:
    return {k: v.detach().cpu().numpy() for k, v in tensors.items()}


def _numpy_grads(model: nn.Module) -> dict[str, Any]:
    return _numpy(_grads(model))


def _counting_hook(calls: list[int]) -> Any:
    from torch.distributed.algorithms.ddp_comm_hooks import default_hooks

    def count_then_allreduce(state, bucket):  # DDP wants these names, and no annotations
        calls[0] += 1
        return default_hooks.allreduce_hook(state, bucket)  # torch's own: divide, all-reduce

    return count_then_allreduce


def _report(world: int, model: nn.Module, losses: list[float], calls: int | None) -> tuple:
    """This rank's gradients (NumPy), the count, every rank's losses, whether all ranks agree."""
    flat = torch.cat([p.grad.flatten() for p in model.parameters()])
    copies = [torch.empty_like(flat) for _ in range(world)]
    dist.all_gather(copies, flat)
    gathered: list[Any] = [None] * world
    dist.all_gather_object(gathered, losses)
    same = all(torch.equal(copies[0], c) for c in copies)
    return _numpy_grads(model), calls, [x for part in gathered for x in part], same


def _training_runs(rank: int, world: int, options: dict[str, Any]) -> dict[str, Any]:
    """The plain, counted and accumulation runs, all through train_ddp.train (learning rate 0)."""
    batch, micro, seed = options["batch_per_rank"], options["micro_batches"], options["seed"]
    runs: dict[str, Any] = {}
    for name, accumulate, use_no_sync, counted in (
        ("plain", 1, True, False),
        ("counted", 1, True, True),
        ("with_no_sync", micro, True, True),
        ("without_no_sync", micro, False, True),
    ):
        model, inputs, targets = make_problem(world * batch, seed)
        calls = [0]
        hook = _counting_hook(calls) if counted else None
        losses = train(model, inputs, targets, rank, world, 1, accumulate, 0.0, use_no_sync, hook)
        runs[name] = _report(world, model, losses, calls[0] if counted else None)
        if name == "plain":  # what a DDP model's state_dict looks like (its keys)
            runs["state_dict"] = _numpy(DDP(model).state_dict())
    return runs


def _caveat_runs(rank: int, world: int, options: dict[str, Any]) -> dict[str, Any]:
    """The mistakes of notebook 12, each on the same small problem."""
    batch, seed = options["batch_per_rank"], options["seed"]
    runs: dict[str, Any] = {}
    # 1. A backward inside no_sync() whose forward pass ran outside it.
    model, inputs, targets = make_problem(world * batch, seed)
    ddp, calls = DDP(model), [0]
    ddp.register_comm_hook(None, _counting_hook(calls))
    x_rank, y_rank = slice_for_rank(inputs, rank, world), slice_for_rank(targets, rank, world)
    loss = nn.functional.mse_loss(ddp(x_rank), y_rank)  # forward outside no_sync()
    with ddp.no_sync():
        loss.backward()
    runs["forward_outside_no_sync"] = _report(world, model, [], calls[0])
    # 2. Shards of unequal size: rank 0 takes 2 rows more than its share, the last rank 2 less.
    sizes = [batch + 2] + [batch] * (world - 2) + [batch - 2]
    start = sum(sizes[:rank])
    model, inputs, targets = make_problem(world * batch, seed)
    ddp, rows = DDP(model), slice(start, start + sizes[rank])
    nn.functional.mse_loss(ddp(inputs[rows]), targets[rows]).backward()
    runs["uneven"], runs["uneven_sizes"] = _report(world, model, [], None), sizes
    # 3. BatchNorm: each rank normalises with, and keeps running statistics of, its own rows.
    model, inputs, targets = make_problem(2 * world * batch, seed, batchnorm=True)
    ddp, seen = DDP(model), []  # broadcast_buffers=True, the default
    model[1].register_forward_pre_hook(lambda module, _: seen.append(module.running_mean.clone()))
    first, second = inputs[: world * batch], inputs[world * batch :]
    y_rank = slice_for_rank(targets[: world * batch], rank, world)
    nn.functional.mse_loss(ddp(slice_for_rank(first, rank, world)), y_rank).backward()
    after_first, gradients = model[1].running_mean.clone(), _numpy_grads(model)
    ddp(slice_for_rank(second, rank, world))
    features = model[0](slice_for_rank(first, rank, world)).detach()
    total = torch.cat([features.sum(0), torch.tensor([float(len(features))])])
    dist.all_reduce(total)  # what SyncBatchNorm does on GPUs: statistics over every rank's rows
    means: list[Any] = [None] * world
    entering: list[Any] = [None] * world
    dist.all_gather_object(means, after_first.numpy())
    dist.all_gather_object(entering, seen[1].numpy())
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            synced = nn.SyncBatchNorm.convert_sync_batchnorm(make_problem(4, batchnorm=True)[0])
            synced(slice_for_rank(first, rank, world))
        error = ""
    except ValueError as caught:
        error = str(caught).splitlines()[0]
    runs["batchnorm"] = (means, entering, gradients, (total[:-1] / total[-1]).numpy(), error)
    return runs


def _worker(rank: int, world_size: int, port: int, options: dict[str, Any], results: Any) -> None:
    """Join the group, run everything, send rank 0's report (or any rank's error), and leave."""
    # A rank reports through `results` only. Some PyTorch releases print gloo's connection lines
    # ("[Gloo] Rank 1 is connected to 1 peer ranks...") to file descriptor 1, which a notebook
    # kernel forwards into the cell's output: the rank's stdout goes nowhere instead.
    os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
    try:
        torch.set_num_threads(1)
        dist.init_process_group(
            "gloo",
            init_method=f"tcp://127.0.0.1:{port}",
            rank=rank,
            world_size=world_size,
            timeout=datetime.timedelta(seconds=options["timeout"]),
        )
        if options.get("fail_rank") == rank:  # tests only: a rank that fails
            raise RuntimeError(f"rank {rank} failed on purpose (fail_rank={rank})")
        report = _training_runs(rank, world_size, options)
        report.update(_caveat_runs(rank, world_size, options))
        dist.barrier()  # every rank is done with the group before any rank takes it down
        if rank == 0:
            results.put(("ok", rank, report))
        exit_code = 0
    except BaseException as error:  # report every failure to the parent, which stops the rest
        results.put(("error", rank, f"{type(error).__name__}: {error}"))
        exit_code = 1
    # Everything the parent needs has been sent. Shutting gloo down can print C++ noise
    # ("terminate called ...") straight to file descriptor 2, which a notebook would show:
    # silence it for the last few lines of the process.
    os.dup2(os.open(os.devnull, os.O_WRONLY), 2)
    if exit_code == 0 and dist.is_initialized():
        dist.destroy_process_group()  # after a failure the parent kills what is left instead
    # Wait until the queue has handed the report to the parent, then leave at once: Python's
    # normal shutdown spends about half a second tearing down torch's modules, for nothing.
    results.close()
    results.join_thread()
    sys.stdout.flush()
    os._exit(exit_code)


def _first_report(results: Any, processes: list[Any], timeout: float) -> tuple[str, int, Any]:
    """The first report on `results`; an error as soon as a rank dies without one, or at timeout."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return results.get(timeout=0.2)
        except queue.Empty:
            pass
        for rank, process in enumerate(processes):
            if process.exitcode not in (None, 0):
                try:  # a report it sent just before it died says more than its exit code
                    return results.get(timeout=1.0)
                except queue.Empty:
                    pass
                raise RuntimeError(
                    f"DDP rank {rank} exited with code {process.exitcode} before it could report "
                    "(its output above says why). Every process was stopped."
                )
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"the {len(processes)} DDP processes gave no result within {timeout:.0f} s; "
                "they were stopped."
            )


def _start_method() -> str:
    """How ddp_compare starts its ranks: "fork" on Linux, "spawn" where fork is unsafe or missing."""
    return "fork" if sys.platform.startswith("linux") else "spawn"


def _spawn_ranks(world_size: int, options: dict[str, Any]) -> dict[str, Any]:
    """Start `world_size` worker processes, return rank 0's report; stop them all, whatever happens."""
    method = _start_method()
    context = mp.get_context(method)
    results = context.Queue()
    port = _free_port()
    if method == "fork":
        # Each rank's first optimizer or DDP call imports torch._dynamo (a second or two). Import
        # it once here, and every forked rank starts with it, instead of each rank paying.
        importlib.import_module("torch._dynamo")
    processes = []
    for rank in range(world_size):
        args = (rank, world_size, port, options, results)
        if method == "fork":  # a copy of this process: _worker is already here
            processes.append(context.Process(target=_worker, args=args, daemon=True))
        else:  # a fresh interpreter runs the worker file by its path, skipping the helper package
            processes.append(
                context.Process(
                    target=runpy.run_path,
                    args=(str(WORKER),),
                    kwargs={"init_globals": {"WORKER_ARGS": args}, "run_name": "__ddp_worker__"},
                    daemon=True,
                )
            )
    try:
        for process in processes:
            process.start()
        status, rank, payload = _first_report(results, processes, options["timeout"])
        if status == "error":
            raise RuntimeError(f"DDP rank {rank} failed: {payload}. Every process was stopped.")
        return payload
    finally:
        started = [process for process in processes if process.pid is not None]
        for process in started:
            process.join(timeout=5)
        for process in started:
            if process.is_alive():
                process.kill()
                process.join(timeout=5)
        results.close()


def _result(run: tuple) -> DDPResult:
    grads, calls, losses, same = run
    return DDPResult({k: torch.from_numpy(v) for k, v in grads.items()}, calls, losses, same)


def ddp_compare(
    *,
    world_size: int = 2,
    batch_per_rank: int = 8,
    micro_batches: int = 4,
    seed: int = 0,
    timeout: float = 120.0,
) -> DDPRuns:
    """Start `world_size` CPU processes (gloo, 127.0.0.1) once and run every DDP case of notebook 12.

    Each rank takes its consecutive share of one batch of world_size * batch_per_rank samples
    and runs helpers.train_ddp.train for one update with learning rate 0 (so .grad is what is
    compared): plainly, through a counting all-reduce hook, and accumulating `micro_batches`
    micro-batches with and without no_sync(); then the caveats (see DDPRuns).
    """
    for name, value in (
        ("world_size", world_size),
        ("batch_per_rank", batch_per_rank),
        ("micro_batches", micro_batches),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a whole number >= 1, not {value!r}.")
    if world_size < 2:
        raise ValueError("world_size must be at least 2: the comparison needs several ranks.")
    if batch_per_rank % micro_batches or batch_per_rank < 3:
        raise ValueError(
            f"micro_batches={micro_batches} must divide batch_per_rank={batch_per_rank}, "
            "and batch_per_rank must be at least 3 (the uneven shards take 2 rows off one rank)."
        )
    if world_size > (os.cpu_count() or 1) * 4:
        raise ValueError(
            f"world_size={world_size} is far more processes than this machine has cores."
        )
    options = {
        "batch_per_rank": batch_per_rank,
        "micro_batches": micro_batches,
        "seed": seed,
        "timeout": timeout,
    }
    report = _spawn_ranks(world_size, options)
    means, entering, gradients, reduced, error = report["batchnorm"]
    return DDPRuns(
        plain=_result(report["plain"]),
        counted=_result(report["counted"]),
        with_no_sync=_result(report["with_no_sync"]),
        without_no_sync=_result(report["without_no_sync"]),
        forward_outside_no_sync=_result(report["forward_outside_no_sync"]),
        uneven=_result(report["uneven"]),
        uneven_sizes=report["uneven_sizes"],
        batchnorm=BatchNormReport(
            [torch.from_numpy(m) for m in means],
            [torch.from_numpy(m) for m in entering],
            {k: torch.from_numpy(v) for k, v in gradients.items()},
            torch.from_numpy(reduced),
            error,
        ),
        state_dict={k: torch.from_numpy(v) for k, v in report["state_dict"].items()},
    )


if __name__ == "__ddp_worker__":  # started by _spawn_ranks through runpy.run_path
    _worker(*globals()["WORKER_ARGS"])
