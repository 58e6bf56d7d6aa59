"""helpers.distributed and helpers/train_ddp.py (run by torchrun): DDP on two CPU processes equals one process."""

from __future__ import annotations

import inspect
import multiprocessing
import re
import subprocess
import sys
import time
from multiprocessing import resource_tracker
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
    """One start-up of two ranks (batch 8 each) for every case of notebook 12."""
    return ddp_compare(world_size=2, batch_per_rank=8, micro_batches=4)


def _close(a, b):
    return a.keys() == b.keys() and all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)


def test_two_ranks_equal_one_process_with_the_combined_batch(runs):
    assert _close(runs.plain.gradients, single_process_gradients(16))
    assert runs.plain.same_on_every_rank and runs.plain.allreduce_calls is None


def test_two_ranks_equal_two_step_accumulation(runs):
    assert _close(runs.plain.gradients, accumulated_gradients(16, micro_batches=2))


def test_ddps_own_allreduce_averages_and_does_not_sum(runs):
    """The plain run registers no hook: this is DDP's built-in all-reduce."""
    g0 = single_process_gradients(16, rows=slice(0, 8))
    g1 = single_process_gradients(16, rows=slice(8, 16))
    assert _close(runs.plain.gradients, {k: (g0[k] + g1[k]) / 2 for k in g0})
    assert not _close(runs.plain.gradients, {k: g0[k] + g1[k] for k in g0})


def test_the_counting_hook_is_torchs_allreduce_unchanged(runs):
    assert runs.counted.allreduce_calls == 1
    assert _close(runs.counted.gradients, runs.plain.gradients)


def test_no_sync_accumulation_communicates_once_and_still_matches(runs):
    assert runs.with_no_sync.allreduce_calls == 1
    assert runs.without_no_sync.allreduce_calls == 4
    reference = single_process_gradients(16)
    assert _close(runs.with_no_sync.gradients, reference)
    assert _close(runs.without_no_sync.gradients, reference)


def test_a_forward_outside_no_sync_still_all_reduces(runs):
    assert runs.forward_outside_no_sync.allreduce_calls == 1


def test_unequal_shards_average_the_shards_not_the_samples(runs):
    assert runs.uneven_sizes == [10, 6]
    h0 = single_process_gradients(16, rows=slice(0, 10))
    h1 = single_process_gradients(16, rows=slice(10, 16))
    assert _close(runs.uneven.gradients, {k: (h0[k] + h1[k]) / 2 for k in h0})
    assert not _close(runs.uneven.gradients, single_process_gradients(16))


def test_batchnorm_statistics_are_per_rank_and_rank_0s_are_broadcast(runs):
    bn = runs.batchnorm
    model, inputs, targets = make_problem(32, batchnorm=True)
    features = model[0](inputs[:16]).detach()
    assert torch.allclose(bn.running_means[0], 0.1 * features[:8].mean(0), atol=1e-6)
    assert torch.allclose(bn.running_means[1], 0.1 * features[8:].mean(0), atol=1e-6)
    assert torch.equal(bn.entering_second_forward[0], bn.running_means[0])
    assert torch.equal(bn.entering_second_forward[1], bn.running_means[0])
    assert torch.allclose(bn.all_reduced_mean, features.mean(0), atol=1e-5)
    torch.nn.functional.mse_loss(model(inputs[:16]), targets[:16]).backward()
    one = {name: p.grad for name, p in model.named_parameters()}
    assert not _close(bn.gradients, one)
    assert "expected input tensor to be on GPU" in bn.sync_batchnorm_error


def test_the_ddp_state_dict_has_the_module_prefix(runs):
    assert list(runs.state_dict) == ["module." + k for k in make_problem(4)[0].state_dict()]


def test_each_rank_reports_its_losses(runs):
    assert len(runs.plain.losses) == 2 and len(runs.with_no_sync.losses) == 2
    model, inputs, targets = make_problem(16)
    expected = torch.nn.functional.mse_loss(model(inputs[:8]), targets[:8]).item()
    assert runs.plain.losses[0] == pytest.approx(expected, rel=1e-5)
    assert runs.with_no_sync.losses[0] == pytest.approx(expected, rel=1e-5)


def test_the_public_api_has_no_test_hooks_and_no_unused_names():
    import helpers.distributed as distributed

    assert "ddp_gradients" not in distributed.__all__ and "fail_rank" not in distributed.__all__
    assert not hasattr(distributed, "ddp_gradients")
    assert "fail_rank" not in inspect.signature(ddp_compare).parameters


def test_the_no_sync_loop_is_written_once_in_helpers():
    sources = [p.read_text(encoding="utf-8") for p in (ROOT / "helpers").rglob("*.py")]
    assert sum(s.count("ddp.no_sync() ") + s.count("ddp.no_sync():") for s in sources) <= 2
    assert sum(s.count("for k in range(accumulate)") for s in sources) == 1


def test_a_failing_rank_raises_a_clear_error_and_leaves_no_process(monkeypatch):
    """Through spawn, as on macOS and Windows: a fresh interpreter loads the worker by its path,
    joins the group and reports; the forked ranks (every other test here, on Linux) run the
    same _worker."""
    import helpers.distributed as distributed
    from helpers.distributed import _spawn_ranks

    monkeypatch.setattr(distributed, "_start_method", lambda: "spawn")
    resource_tracker.ensure_running()  # spawn starts it once per process, to stay: not a rank
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    options = {"batch_per_rank": 8, "micro_batches": 4, "seed": 0, "timeout": 120.0}
    with pytest.raises(
        RuntimeError, match=r"DDP rank 1 failed: RuntimeError: rank 1 failed on purpose"
    ):
        _spawn_ranks(2, {**options, "fail_rank": 1})
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
    assert time.monotonic() - start < 30  # well short of the whole 60 s timeout, even when loaded


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
        ({"micro_batches": 3}, "must divide batch_per_rank"),
        ({"world_size": 0}, "world_size must be"),
        ({"world_size": 1}, "at least 2"),
        ({"batch_per_rank": 2.5}, "batch_per_rank must be"),
        ({"batch_per_rank": 2, "micro_batches": 1}, "at least 3"),
        ({"world_size": 10_000}, "more processes"),
    ],
)
def test_bad_arguments_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ddp_compare(**kwargs)


def test_ddp_compare_takes_named_arguments_only():
    with pytest.raises(TypeError):
        ddp_compare([(1, False)])  # the old list of (micro_batches, use_no_sync) pairs


def test_slice_for_rank_checks_even_split():
    assert torch.equal(slice_for_rank(torch.arange(6), 1, 3), torch.tensor([2, 3]))
    with pytest.raises(ValueError, match="does not split evenly"):
        slice_for_rank(torch.arange(5), 0, 2)
    with pytest.raises(ValueError, match="total_batch"):
        make_problem(0)


# torchrun on the CPU is proven elsewhere, once each: two ranks of the script under one launcher
# by notebook 12's own cell (strict nbval: exit 0, identical weights, rank 0 alone prints, the
# saved file loads), two launchers by tests/test_multinode.py, the module form
# (`-m helpers.train_ddp`) and the script's own message by tests/test_gpu_check.py, and what
# `--backend auto` picks from torchrun's variables by the detect_backend tests below.
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_the_torchrun_script_trains_on_a_gpu_with_nccl():
    """Wherever pytest finds a GPU: the real nccl path, one rank on cuda:0."""
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    command += [
        "--nproc_per_node=1",
        "-m",
        "helpers.train_ddp",
        "--steps",
        "2",
        "--backend",
        "nccl",
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=240, cwd=ROOT)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "1 ranks, backend nccl, rank 0 computes on cuda:0" in done.stdout
    assert "1 ranks, weights identical on all ranks: True" in done.stdout


def test_no_ddp_wrapper_outlives_train():
    """A DDP object left for interpreter shutdown aborted about 1 run in 5 (gloo, SIGABRT)."""
    import argparse
    import gc

    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    from helpers.distributed import _free_port
    from helpers.train_ddp import choose_backend, run

    dist.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{_free_port()}", rank=0, world_size=1
    )
    threads = torch.get_num_threads()
    try:
        args = argparse.Namespace(steps=2, batch_per_rank=4, accumulate=2, lr=0.1, save="")
        assert run(args, choose_backend("gloo", False, False, 0, 1, 0)) is True
        gc.collect()
        assert not [o for o in gc.get_objects() if type(o) is DistributedDataParallel]
    finally:
        dist.destroy_process_group()
        torch.set_num_threads(threads)


def test_torchrun_args_for_one_machine_and_for_several():
    from helpers.train_ddp import torchrun_args

    one = torchrun_args(["--steps", 3], nproc_per_node=2)
    assert one == ["--standalone", "--nproc_per_node=2", "-m", "helpers.train_ddp", "--steps", "3"]
    two = torchrun_args([], nnodes=2, nproc_per_node=4, endpoint="10.0.0.1:29500", run_id="job")
    assert "--rdzv-backend=c10d" in two and "--rdzv-endpoint=10.0.0.1:29500" in two
    assert "--rdzv-id=job" in two and "--standalone" not in two
    assert torchrun_args([], script="/x/train_ddp.py")[-1] == "/x/train_ddp.py"
    with pytest.raises(ValueError, match="endpoint='ADDRESS:PORT'"):
        torchrun_args([], nnodes=2, endpoint="10.0.0.1")
    with pytest.raises(ValueError, match="nnodes must be"):
        torchrun_args([], nnodes=0)


def test_the_script_imports_nothing_but_pytorch():
    """So a learner can copy helpers/train_ddp.py out, and torchrun's ranks start sooner."""
    source = (ROOT / "helpers" / "train_ddp.py").read_text(encoding="utf-8")
    assert "import helpers" not in source and "from helpers" not in source


# The CUDA decisions of helpers/train_ddp.py, driven with made-up machines: no GPU is needed.

GLOO_CPU = ("gloo", torch.device("cpu"))


@pytest.mark.parametrize(
    ("requested", "cuda", "nccl", "gpus", "ranks", "local_rank", "expected", "note"),
    [
        # auto: nccl only when CUDA, nccl and a GPU for every rank on this machine are there
        ("auto", False, False, 0, 2, 0, GLOO_CPU, ""),
        ("auto", False, True, 0, 2, 1, GLOO_CPU, ""),
        ("auto", True, False, 2, 2, 1, GLOO_CPU, ""),  # CUDA but no nccl (Windows, say)
        ("auto", True, True, 2, 2, 0, ("nccl", torch.device("cuda", 0)), ""),
        ("auto", True, True, 2, 2, 1, ("nccl", torch.device("cuda", 1)), ""),
        ("auto", True, True, 8, 4, 3, ("nccl", torch.device("cuda", 3)), ""),
        # fewer GPUs than ranks (a 1-GPU Colab runtime, 2 ranks): the CPU, with a note
        ("auto", True, True, 1, 2, 0, GLOO_CPU, "2 ranks on this machine but 1 GPU(s)"),
        ("auto", True, True, 1, 2, 1, GLOO_CPU, "2 ranks on this machine but 1 GPU(s)"),
        ("auto", True, True, 3, 4, 2, GLOO_CPU, "4 ranks on this machine but 3 GPU(s)"),
        # gloo asked for: the CPU, whatever the machine has
        ("gloo", True, True, 8, 2, 1, GLOO_CPU, ""),
        ("gloo", False, False, 0, 1, 0, GLOO_CPU, ""),
        # nccl asked for, and possible: rank LOCAL_RANK on cuda:LOCAL_RANK
        ("nccl", True, True, 2, 2, 1, ("nccl", torch.device("cuda", 1)), ""),
        ("nccl", True, True, 4, 1, 0, ("nccl", torch.device("cuda", 0)), ""),
    ],
)
def test_the_backend_and_device_each_rank_chooses(
    requested, cuda, nccl, gpus, ranks, local_rank, expected, note
):
    from helpers.train_ddp import choose_backend

    chosen = choose_backend(requested, cuda, nccl, gpus, ranks, local_rank)
    assert (chosen.name, chosen.device) == expected
    assert (note in chosen.note) if note else chosen.note == ""
    assert "nccl needs one GPU per rank" in chosen.note or not note


@pytest.mark.parametrize(
    ("requested", "cuda", "nccl", "gpus", "ranks", "local_rank", "message"),
    [
        ("nccl", False, False, 0, 2, 0, "needs CUDA GPUs, and PyTorch sees none"),
        ("nccl", True, False, 2, 2, 0, "this PyTorch build has no nccl"),
        ("nccl", True, True, 1, 2, 0, "runs 2 ranks and has 1 GPU(s)"),
        ("nccl", True, True, 1, 2, 0, "--nproc_per_node=1 or fewer, or use --backend gloo"),
        ("nccl", True, True, 0, 1, 0, "runs 1 ranks and has 0 GPU(s)"),
        ("mpi", False, False, 0, 1, 0, "--backend must be one of auto, gloo, nccl"),
        ("auto", False, False, 0, 2, 2, "LOCAL_RANK=2 is outside 0..1"),
    ],
)
def test_an_impossible_choice_is_a_plain_message(
    requested, cuda, nccl, gpus, ranks, local_rank, message
):
    from helpers.train_ddp import choose_backend

    with pytest.raises(ValueError, match=re.escape(message)):
        choose_backend(requested, cuda, nccl, gpus, ranks, local_rank)


def test_every_rank_on_a_machine_makes_the_same_choice():
    from helpers.train_ddp import choose_backend

    for machine in [(True, True, 1), (True, True, 2), (False, False, 0), (True, False, 2)]:
        names = {choose_backend("auto", *machine, 2, rank).name for rank in range(2)}
        assert len(names) == 1, machine


def test_the_machine_facts_come_from_torch_and_torchrun(monkeypatch):
    from helpers import train_ddp

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.distributed, "is_nccl_available", lambda: True)
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_RANK", "1")
    colab = train_ddp.detect_backend("auto")  # one GPU, two ranks on this machine
    assert (colab.name, colab.device) == ("gloo", torch.device("cpu")) and colab.note
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert train_ddp.detect_backend("auto").device == torch.device("cuda", 1)
    monkeypatch.delenv("LOCAL_WORLD_SIZE")  # without it, every rank counts as local
    with pytest.raises(ValueError, match="runs 4 ranks and has 2 GPU"):
        train_ddp.detect_backend("nccl")


def test_asking_for_nccl_without_a_gpu_stops_with_a_message(monkeypatch, capsys):
    from helpers import train_ddp

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setenv("LOCAL_RANK", "0")
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    assert train_ddp.main(["--steps", "1", "--backend", "nccl"]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("train_ddp: --backend nccl needs CUDA GPUs")
    assert "Traceback" not in captured.err and captured.out == ""
    monkeypatch.setenv("LOCAL_RANK", "1")  # the other ranks stop too, without repeating it
    assert train_ddp.main(["--steps", "1", "--backend", "nccl"]) == 2
    assert capsys.readouterr().err == ""


def test_the_model_and_the_data_go_to_the_chosen_device():
    from helpers.train_ddp import place_problem

    meta = torch.device("meta")  # a device without storage: proves the move, needs no GPU
    model, inputs, targets = place_problem(8, meta)
    assert inputs.device == targets.device == meta
    assert all(p.device == meta for p in model.parameters())
    model, inputs, _ = place_problem(8, torch.device("cpu"))
    assert torch.equal(inputs, make_problem(8)[1])  # the same numbers as everywhere else


def test_make_problem_stays_on_the_cpu_whatever_the_default_device():
    torch.set_default_device("meta")
    try:
        model, inputs, targets = make_problem(4)
    finally:
        torch.set_default_device(None)
    assert inputs.device.type == targets.device.type == "cpu"
    assert all(p.device.type == "cpu" for p in model.parameters())


class _Gathered(Exception):
    """Raised by a stand-in all_gather once it has seen its tensors."""


def test_all_gather_gets_tensors_on_the_models_device(monkeypatch):
    from helpers.train_ddp import place_problem, weights_identical

    seen = []

    def fake_all_gather(copies, tensor):
        seen.extend([tensor.device] + [c.device for c in copies])
        raise _Gathered

    monkeypatch.setattr(torch.distributed, "all_gather", fake_all_gather)
    model, _, _ = place_problem(4, torch.device("meta"))
    with pytest.raises(_Gathered):
        weights_identical(model, world=3)
    assert seen == [torch.device("meta")] * 4


@pytest.mark.parametrize(("differs", "expected"), [(False, True), (True, False)])
def test_weights_identical_compares_every_rank(monkeypatch, differs, expected):
    from helpers.train_ddp import weights_identical

    def fake_all_gather(copies, tensor):
        for rank, copy in enumerate(copies):
            copy.copy_(tensor + (1.0 if differs and rank == 2 else 0.0))

    monkeypatch.setattr(torch.distributed, "all_gather", fake_all_gather)
    assert weights_identical(make_problem(4)[0], world=3) is expected


def test_run_puts_everything_on_the_device_it_is_given(monkeypatch, tmp_path):
    """run() on cpu in a one-rank gloo group: the problem and the gathered weights go there."""
    import argparse

    import torch.distributed as dist

    from helpers import train_ddp
    from helpers.distributed import _free_port

    placed, gathered = [], []
    real_place, real_gather = train_ddp.place_problem, dist.all_gather

    def spy_place(total_batch, device):
        placed.append(device)
        return real_place(total_batch, device)

    def spy_gather(copies, tensor):
        gathered.extend([tensor.device] + [c.device for c in copies])
        return real_gather(copies, tensor)

    monkeypatch.setattr(train_ddp, "place_problem", spy_place)
    monkeypatch.setattr(dist, "all_gather", spy_gather)
    dist.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{_free_port()}", rank=0, world_size=1
    )
    threads = torch.get_num_threads()
    saved = tmp_path / "model.pt"
    try:
        args = argparse.Namespace(steps=1, batch_per_rank=4, accumulate=2, lr=0.1, save=saved)
        assert train_ddp.run(args, train_ddp.choose_backend("gloo", False, False, 0, 1, 0))
    finally:
        dist.destroy_process_group()
        torch.set_num_threads(threads)
    assert placed == [torch.device("cpu")]
    assert gathered == [torch.device("cpu")] * 2
    state = torch.load(saved, weights_only=True)  # rank 0 saved the plain model: no prefix
    assert list(state) == list(make_problem(4)[0].state_dict())
