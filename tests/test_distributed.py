"""helpers.distributed and helpers/train_ddp.py (run by torchrun): DDP on two CPU processes equals one process."""

from __future__ import annotations

import multiprocessing
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import torch

from helpers.distributed import (
    accumulated_gradients,
    ddp_compare,
    make_problem,
    single_process_gradients,
    slice_for_rank,
)

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def runs():
    """One start-up of two ranks (batch 8 each) for three settings."""
    return ddp_compare([(1, False), (4, True), (4, False)], world_size=2, batch_per_rank=8)


def _close(a, b):
    return a.keys() == b.keys() and all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)


def test_two_ranks_equal_one_process_with_the_combined_batch(runs):
    assert _close(runs[0].gradients, single_process_gradients(16))


def test_two_ranks_equal_two_step_accumulation(runs):
    assert _close(runs[0].gradients, accumulated_gradients(16, micro_batches=2))


def test_no_sync_accumulation_communicates_once_and_still_matches(runs):
    plain, no_sync, every = runs
    assert plain.allreduce_calls == 1
    assert no_sync.allreduce_calls == 1
    assert every.allreduce_calls == 4
    reference = single_process_gradients(16)
    assert _close(no_sync.gradients, reference) and _close(every.gradients, reference)


def test_each_rank_reports_its_losses(runs):
    assert len(runs[0].losses) == 2 and len(runs[1].losses) == 8
    model, inputs, targets = make_problem(16)
    expected = torch.nn.functional.mse_loss(model(inputs[:8]), targets[:8]).item()
    assert runs[0].losses[0] == pytest.approx(expected, rel=1e-5)


def test_a_failing_rank_raises_a_clear_error_and_leaves_no_process():
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    with pytest.raises(
        RuntimeError, match=r"DDP rank 1 failed: RuntimeError: rank 1 failed on purpose"
    ):
        ddp_compare([(1, False)], fail_rank=1)
    assert multiprocessing.active_children() == []
    after = {p.pid for p in psutil.Process().children(recursive=True) if p.is_running()}
    assert after - before == set()


class _Gone:
    """Stands in for a process that has already ended with `exitcode`."""

    def __init__(self, exitcode):
        self.exitcode = exitcode


def test_a_rank_that_dies_without_a_report_is_named_at_once():
    from helpers.distributed import _first_report

    results = multiprocessing.get_context("spawn").Queue()
    start = time.monotonic()
    with pytest.raises(
        RuntimeError, match=r"DDP rank 1 exited with code -9 before it could report"
    ):
        _first_report(results, [_Gone(None), _Gone(-9)], timeout=60)
    assert time.monotonic() - start < 5  # not the whole 60 s timeout


def test_a_report_sent_just_before_dying_is_still_read():
    from helpers.distributed import _first_report

    results = multiprocessing.get_context("spawn").Queue()
    results.put(("error", 1, "RuntimeError: boom"))
    time.sleep(0.2)  # let the queue's feeder thread write it
    assert _first_report(results, [_Gone(None), _Gone(1)], timeout=60)[2] == "RuntimeError: boom"


def test_no_report_at_all_times_out_with_a_message():
    from helpers.distributed import _first_report

    results = multiprocessing.get_context("spawn").Queue()
    with pytest.raises(RuntimeError, match="gave no result within 1 s"):
        _first_report(results, [_Gone(None), _Gone(None)], timeout=1)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"settings": []}, "non-empty list"),
        ({"settings": [(3, False)]}, "divides batch_per_rank"),
        ({"settings": [(1, False)], "world_size": 0}, "world_size must be"),
        ({"settings": [(1, False)], "batch_per_rank": 2.5}, "batch_per_rank must be"),
        ({"settings": [(1, False)], "world_size": 10_000}, "more processes"),
    ],
)
def test_bad_arguments_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ddp_compare(**kwargs)


def test_slice_for_rank_checks_even_split():
    assert torch.equal(slice_for_rank(torch.arange(6), 1, 3), torch.tensor([2, 3]))
    with pytest.raises(ValueError, match="does not split evenly"):
        slice_for_rank(torch.arange(5), 0, 2)
    with pytest.raises(ValueError, match="total_batch"):
        make_problem(0)


def test_the_torchrun_script_trains_two_ranks():
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        "-m",
        "helpers.train_ddp",
        "--steps",
        "2",
        "--accumulate",
        "2",
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=240, cwd=ROOT)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "step   2" in done.stdout
    assert "2 ranks, weights identical on all ranks: True" in done.stdout


def test_no_ddp_wrapper_outlives_train():
    """A DDP object left for interpreter shutdown aborted about 1 run in 5 (gloo, SIGABRT)."""
    import argparse
    import gc

    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    from helpers.distributed import _free_port
    from helpers.train_ddp import train

    dist.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{_free_port()}", rank=0, world_size=1
    )
    threads = torch.get_num_threads()
    try:
        args = argparse.Namespace(steps=2, batch_per_rank=4, accumulate=2, lr=0.1)
        assert train(args, rank=0, world=1) is True
        gc.collect()
        assert not [o for o in gc.get_objects() if type(o) is DistributedDataParallel]
    finally:
        dist.destroy_process_group()
        torch.set_num_threads(threads)
