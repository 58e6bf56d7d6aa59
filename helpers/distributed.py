"""Data parallelism on one machine: DistributedDataParallel with the gloo backend, on the CPU.

Processes started with "spawn" cannot import code defined in a notebook, so the model, the data
and the worker live here. `ddp_gradients` starts the processes, collects what rank 0 saw, and
always stops every process it started, even when a rank fails.

Everything here runs on the CPU, on purpose and on every machine, GPUs or not. Notebook 12
compares what two ranks compute with what one process computes, and that comparison must run
wherever a learner is: two processes on one machine need two GPUs under nccl, and a laptop or a
Colab runtime has none or one, while gloo runs any number of ranks on the CPU. So the worker
names "gloo" itself, `make_problem` builds its model and data on the CPU even when a default
device has been set, and gradients come back as CPU tensors. helpers/train_ddp.py is the
script that moves the same problem to GPUs, when there is one per rank.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import queue
import socket
import sys
import time
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

__all__ = [
    "make_problem",
    "slice_for_rank",
    "single_process_gradients",
    "accumulated_gradients",
    "ddp_gradients",
    "ddp_compare",
    "DDPResult",
]


def make_problem(total_batch: int, seed: int = 0) -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    """A small regression model and `total_batch` samples, on the CPU and the same for every caller."""
    if isinstance(total_batch, bool) or not isinstance(total_batch, int) or total_batch < 1:
        raise ValueError(f"total_batch must be a whole number >= 1, not {total_batch!r}.")
    with torch.device("cpu"):  # the CPU even if torch.set_default_device() chose a GPU
        generator = torch.Generator().manual_seed(seed)
        inputs = torch.randn(total_batch, 5, generator=generator)
        targets = inputs @ torch.randn(5, 1, generator=generator) + 0.1 * torch.randn(
            total_batch, 1, generator=generator
        )
        torch.manual_seed(seed)
        model = nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 1))
    return model, inputs, targets


def slice_for_rank(tensor: torch.Tensor, rank: int, world_size: int) -> torch.Tensor:
    """The rank's equal share of a batch: rows rank*n .. (rank+1)*n."""
    if tensor.shape[0] % world_size:
        raise ValueError(
            f"a batch of {tensor.shape[0]} does not split evenly over {world_size} ranks."
        )
    share = tensor.shape[0] // world_size
    return tensor[rank * share : (rank + 1) * share]


def _grads(model: nn.Module) -> dict[str, torch.Tensor]:
    return {name: p.grad.detach().clone() for name, p in model.named_parameters()}


def single_process_gradients(total_batch: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """Gradients of the mean-squared error over the whole batch, in one process."""
    model, inputs, targets = make_problem(total_batch, seed)
    nn.functional.mse_loss(model(inputs), targets).backward()
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
    """What rank 0 reports: its gradients, how many all-reduces ran, and each rank's loss."""

    gradients: dict[str, torch.Tensor]
    allreduce_calls: int
    losses: list[float]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _worker(rank: int, world_size: int, port: int, options: dict[str, Any], results: Any) -> None:
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel as DDP

    try:
        torch.set_num_threads(1)
        dist.init_process_group(
            "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world_size
        )
        if options.get("fail_rank") == rank:
            raise RuntimeError(f"rank {rank} failed on purpose (fail_rank={rank})")
        reports = []
        for micro, use_no_sync in options["settings"]:
            model, inputs, targets = make_problem(options["total_batch"], options["seed"])
            ddp = DDP(model)  # broadcasts rank 0's weights, then averages gradients in backward
            calls = [0]

            def counting_allreduce(state, bucket, calls=calls):  # DDP checks annotations: none here
                calls[0] += 1
                tensor = bucket.buffer().div_(world_size)
                return (
                    dist.all_reduce(tensor, async_op=True).get_future().then(lambda f: f.value()[0])
                )

            ddp.register_comm_hook(None, counting_allreduce)
            x_rank = slice_for_rank(inputs, rank, world_size)
            y_rank = slice_for_rank(targets, rank, world_size)
            losses = []
            for k in range(micro):
                x, y = slice_for_rank(x_rank, k, micro), slice_for_rank(y_rank, k, micro)
                skip_sync = use_no_sync and k < micro - 1
                with ddp.no_sync() if skip_sync else contextlib.nullcontext():
                    loss = nn.functional.mse_loss(ddp(x), y) / micro
                    loss.backward()
                losses.append(loss.item() * micro)
            gathered: list[Any] = [None] * world_size
            dist.all_gather_object(gathered, losses)
            grads = {k: v.cpu().numpy() for k, v in _grads(model).items()}
            reports.append((grads, calls[0], [loss for part in gathered for loss in part]))
        if rank == 0:
            results.put(("ok", rank, reports))
        exit_code = 0
    except BaseException as error:  # report every failure to the parent, which stops the rest
        results.put(("error", rank, f"{type(error).__name__}: {error}"))
        exit_code = 1
    # Everything the parent needs has been sent. Shutting gloo down can print C++ noise
    # ("terminate called ...") straight to file descriptor 2, which a notebook would show:
    # silence it for the last few lines of the process.
    os.dup2(os.open(os.devnull, os.O_WRONLY), 2)
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
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


def ddp_gradients(
    world_size: int = 2,
    batch_per_rank: int = 8,
    micro_batches: int = 1,
    use_no_sync: bool = False,
    seed: int = 0,
    timeout: float = 120.0,
) -> DDPResult:
    """Run one DDP backward on `world_size` CPU processes (gloo, 127.0.0.1); return rank 0's view.

    Each rank takes its share of the batch and, with `micro_batches` > 1, accumulates over that
    many micro-batches (inside `no_sync()` for all but the last when `use_no_sync`).
    """
    return ddp_compare([(micro_batches, use_no_sync)], world_size, batch_per_rank, seed, timeout)[0]


def ddp_compare(
    settings: list[tuple[int, bool]],
    world_size: int = 2,
    batch_per_rank: int = 8,
    seed: int = 0,
    timeout: float = 120.0,
    fail_rank: int | None = None,
) -> list[DDPResult]:
    """Like ddp_gradients, for several (micro_batches, use_no_sync) settings in one start-up."""
    for name, value in (("world_size", world_size), ("batch_per_rank", batch_per_rank)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a whole number >= 1, not {value!r}.")
    if not isinstance(settings, (list, tuple)) or not settings:
        raise ValueError("settings must be a non-empty list of (micro_batches, use_no_sync) pairs.")
    for micro, _ in settings:
        if (
            isinstance(micro, bool)
            or not isinstance(micro, int)
            or micro < 1
            or batch_per_rank % micro
        ):
            raise ValueError(
                f"micro_batches={micro!r} must be a whole number >= 1 that divides batch_per_rank ({batch_per_rank})."
            )
    if world_size > (os.cpu_count() or 1) * 4:
        raise ValueError(
            f"world_size={world_size} is far more processes than this machine has cores."
        )
    options = {
        "total_batch": world_size * batch_per_rank,
        "settings": list(settings),
        "seed": seed,
        "fail_rank": fail_rank,
    }
    context = mp.get_context("spawn")
    results = context.Queue()
    port = _free_port()
    processes = [
        context.Process(
            target=_worker, args=(rank, world_size, port, options, results), daemon=True
        )
        for rank in range(world_size)
    ]
    try:
        for process in processes:
            process.start()
        status, rank, payload = _first_report(results, processes, timeout)
        if status == "error":
            raise RuntimeError(f"DDP rank {rank} failed: {payload}. Every process was stopped.")
        return [
            DDPResult({k: torch.from_numpy(v) for k, v in grads.items()}, calls, losses)
            for grads, calls, losses in payload
        ]
    finally:
        started = [process for process in processes if process.pid is not None]
        for process in started:
            process.join(timeout=5)
        for process in started:
            if process.is_alive():
                process.kill()
                process.join(timeout=5)
        results.close()
