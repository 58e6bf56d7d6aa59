"""Notebook 12's multi-machine torchrun command, run as two "machines" on 127.0.0.1.

Two torchrun launchers, one process each, started with the arguments the notebook prints
(helpers.train_ddp.torchrun_args with nnodes=2), meet at one c10d rendezvous and train as one
job of two ranks: both launchers finish, the ranks agree on the weights, rank 0 saves once.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import torch

from helpers.distributed import _free_port, make_problem
from helpers.train_ddp import torchrun_args

ROOT = Path(__file__).resolve().parents[1]


def test_two_launchers_with_the_notebooks_command_train_as_one_job(tmp_path):
    saved = tmp_path / "model.pt"
    script = ["--steps", "2", "--accumulate", "2", "--backend", "gloo", "--save", saved]
    args = torchrun_args(
        script,
        nnodes=2,
        nproc_per_node=1,
        endpoint=f"127.0.0.1:{_free_port()}",
        run_id=f"test-{tmp_path.name}",
    )
    command = [sys.executable, "-m", "torch.distributed.run", *args]
    launchers = [
        subprocess.Popen(
            command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    outputs = []
    try:
        for launcher in launchers:
            out, err = launcher.communicate(timeout=300)
            outputs.append((launcher.returncode, out, err))
    finally:
        for launcher in launchers:
            if launcher.poll() is None:
                launcher.kill()
                launcher.communicate()
    for code, out, err in outputs:
        assert code == 0, out[-2000:] + err[-2000:]
    both = "".join(out for _, out, _ in outputs)
    # Rank 0 (on whichever launcher the rendezvous made node 0) reports for the whole job:
    # two ranks, one on each launcher, whose weights all_gather found identical.
    assert both.count("2 ranks, backend gloo, rank 0 computes on cpu") == 1, both
    assert both.count("2 ranks, weights identical on all ranks: True") == 1, both
    state = torch.load(saved, weights_only=True)
    model = make_problem(4)[0]
    model.load_state_dict(state)  # the plain model's names: saved without "module."
