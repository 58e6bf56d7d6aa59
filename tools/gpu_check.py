"""`make gpu-check`: run every notebook and solution top to bottom and say what ran where.

Each notebook runs in a fresh kernel with nbclient, in its own folder, and stops at its first
error; no output is compared (that is `make test`'s job, on the CPU). After the last cell a probe
cell asks the kernel whether it allocated CUDA memory, so the table shows not only the device a
notebook should use (helpers.environment.notebook_devices: the best device for a "best" lesson,
the CPU for a pinned one and for every solution) but whether it really used the GPU. A run fails
when a cell fails, when a "best" notebook left the GPU unused on a machine that has one, or when
a notebook pinned to the CPU allocated GPU memory. The exit status is 1 if any run failed.

The kernels inherit this environment unchanged: pick_device() in them sees what this process
sees. Without a usable CUDA device the tool says so first, then runs everything on the CPU.

With a GPU it also runs helpers/train_ddp.py under torchrun with nccl, one rank per GPU (at most
two): notebook 12 keeps its ranks on the CPU with gloo, so this is where the script's CUDA path
(LOCAL_RANK -> cuda:LOCAL_RANK, model, data and all_gather there) is proven.

Usage: python tools/gpu_check.py [NOTEBOOK ...]   (default: every notebook and solution)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# The kernel warns that it talks to us over TCP on 127.0.0.1 without encryption; harmless here.
QUIET_KERNEL = ["--IPKernelApp.log_level=ERROR"]
PROBE_MARK = "LOOPLAB_GPU_CHECK"
# max_memory_allocated() is 0 in a kernel that never put a tensor on the GPU; asking it does not
# start CUDA in a kernel that has not.
PROBE_SOURCE = (
    "import json as _json, torch as _torch\n"
    "_cuda = _torch.cuda.is_available() and _torch.cuda.is_initialized()\n"
    "_bytes = int(_torch.cuda.max_memory_allocated()) if _cuda else 0\n"
    f"print({PROBE_MARK!r}, _json.dumps({{'cuda_bytes': _bytes}}))"
)

__all__ = [
    "Result",
    "cuda_note",
    "expected_device",
    "first_error",
    "format_table",
    "judge",
    "main",
    "notebook_paths",
    "probe_reading",
    "run_notebook",
    "run_train_ddp",
]


@dataclass
class Result:
    """One notebook's run: did it pass, which device it should use, did it use the GPU, why not."""

    path: str
    passed: bool
    device: str | None  # what notebook_devices() says; None for a notebook not in the table
    gpu_used: bool | None  # None when the probe did not run (the notebook failed before it)
    error: str = ""
    seconds: float = 0.0


def notebook_paths(root: Path = ROOT) -> list[Path]:
    """Every lesson notebook, then every solution, in reading order."""
    lessons = sorted((root / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    solutions = sorted((root / "notebooks" / "solutions").glob("[0-9][0-9]_*.ipynb"))
    return lessons + solutions


def expected_device(path: Path, devices: dict[str, str]) -> str | None:
    """The device a notebook should compute on: its table entry; 'cpu' for a solution."""
    if path.stem.endswith("_solutions"):
        return "cpu"  # exercise answers run on the CPU, as the checkers do
    return devices.get(path.name[:2])


def cuda_note(
    cuda_available: bool, built_for: str | None, gpu_names: list[str], hidden_by: str | None
) -> str:
    """One line on the GPU this machine offers the notebooks, or why there is none."""
    if cuda_available and gpu_names:
        return f"CUDA device: {', '.join(gpu_names)} (PyTorch built for CUDA {built_for})."
    if built_for is None:
        why = "this PyTorch is a CPU-only build"
    elif hidden_by is not None:
        why = f"PyTorch sees no GPU with CUDA_VISIBLE_DEVICES={hidden_by!r}"
    else:
        why = (
            f"PyTorch (built for CUDA {built_for}) finds no usable GPU; no NVIDIA GPU, "
            "or a driver too old for that CUDA (nvidia-smi shows the driver)"
        )
    return (
        f"no CUDA device here: {why}. Every notebook runs on the CPU; the device column says cpu."
    )


def probe_reading(nb: Any) -> bool | None:
    """Whether the probe cell (the last cell) saw CUDA memory allocated; None if it did not run."""
    if not nb.cells:
        return None
    for output in nb.cells[-1].get("outputs", []):
        text = output.get("text", "")
        text = "".join(text) if isinstance(text, list) else text
        for line in text.splitlines():
            if line.startswith(PROBE_MARK + " "):
                return json.loads(line[len(PROBE_MARK) + 1 :])["cuda_bytes"] > 0
    return None


def first_error(nb: Any, raised: BaseException | None) -> str:
    """The first failing cell (counting every cell from 1) and its exception, or what stopped the run."""
    for index, cell in enumerate(nb.cells):
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                value = str(output.get("evalue", "")).strip().splitlines()
                name = output.get("ename", "Error")
                return f"cell {index + 1}: {name}: {value[0] if value else ''}".rstrip(": ")
    if raised is None:
        return ""
    lines = [line for line in str(raised).strip().splitlines() if line.strip()]
    return f"{type(raised).__name__}: {lines[0] if lines else ''}".rstrip(": ")


def judge(device: str | None, gpu_used: bool | None, cuda_here: bool) -> str:
    """'' when what the notebook used matches its device; else why the run counts as failed."""
    if device is None or gpu_used is None or not cuda_here:
        return ""
    if device.startswith("cuda") and not gpu_used:
        return "should use the GPU (pick_device), but allocated no CUDA memory"
    if device == "cpu" and gpu_used:
        return "pinned to the CPU, but allocated CUDA memory"
    return ""


def run_notebook(path: Path, device: str | None, cuda_here: bool, timeout: int = 600) -> Result:
    """Execute a copy of the notebook in a fresh kernel, in its folder, and judge the run."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(PROBE_SOURCE))
    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
        extra_arguments=QUIET_KERNEL,
    )
    start = time.perf_counter()
    raised: BaseException | None = None
    try:
        client.execute()
    except Exception as error:  # a failing cell, a timeout, a kernel that died
        raised = error
    seconds = time.perf_counter() - start
    gpu_used = probe_reading(nb) if raised is None else None
    error = first_error(nb, raised) if raised is not None else judge(device, gpu_used, cuda_here)
    return Result(str(path), not error, device, gpu_used, error, seconds)


def run_train_ddp(gpus: int, timeout: int = 300) -> Result:
    """helpers.train_ddp under torchrun with nccl, one rank per GPU (at most two): its CUDA path."""
    ranks = max(1, min(gpus, 2))
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    command += [f"--nproc_per_node={ranks}", "-m", "helpers.train_ddp", "--steps", "3"]
    command += ["--backend", "nccl"]
    name = f"train_ddp, {ranks} rank(s), nccl"
    start = time.perf_counter()
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=ROOT)
    except subprocess.TimeoutExpired:
        return Result(name, False, "cuda", None, f"no result within {timeout} s", timeout)
    seconds = time.perf_counter() - start
    on_gpu = "backend nccl, rank 0 computes on cuda:0" in done.stdout
    same = "weights identical on all ranks: True" in done.stdout
    if done.returncode == 0 and on_gpu and same:
        return Result(name, True, "cuda", True, "", seconds)
    said = [line for line in (done.stderr + done.stdout).splitlines() if line.strip()]
    own = [line for line in said if line.startswith("train_ddp:")]  # the script's own message
    why = (own or [line for line in said if "Error" in line] or [""])[0]
    error = f"exit code {done.returncode}" + (f": {why.strip()}" if why else "")
    return Result(name, False, "cuda", on_gpu, error, seconds)


def format_table(results: list[Result]) -> str:
    """The results as a plain-text table: notebook, result, device, CUDA used, seconds, first error."""
    rows = [("notebook", "result", "device", "CUDA used", "s", "first error")]
    for r in results:
        used = "?" if r.gpu_used is None else "yes" if r.gpu_used else "no"
        name = Path(r.path).name
        rows.append(
            (
                name,
                "pass" if r.passed else "FAIL",
                r.device or "-",
                used,
                f"{r.seconds:.0f}",
                r.error,
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row[:5], widths, strict=True))
        + "  "
        + row[5]
        for row in rows
    ]
    failed = sum(not r.passed for r in results)
    lines.append(f"{len(results) - failed} of {len(results)} passed")
    return "\n".join(line.rstrip() for line in lines)


def main(argv: list[str]) -> int:
    """Run the notebooks named (default: all), print the table; 1 if any failed."""
    import torch

    from helpers.environment import notebook_devices, pick_device

    paths = [Path(a) for a in argv] if argv else notebook_paths()
    missing = [str(p) for p in paths if not p.is_file() or p.suffix != ".ipynb"]
    if missing:
        print(f"not a notebook: {', '.join(missing)}", file=sys.stderr)
        return 2
    cuda_here = torch.cuda.is_available()
    count = torch.cuda.device_count() if cuda_here else 0
    names = [torch.cuda.get_device_name(i) for i in range(count)]
    hidden = os.environ.get("CUDA_VISIBLE_DEVICES")
    print(f"torch {torch.__version__}")
    print(cuda_note(cuda_here, torch.version.cuda, names, hidden), flush=True)
    devices = notebook_devices(pick_device())
    results = []
    for path in paths:
        shown = path.resolve().relative_to(ROOT) if path.resolve().is_relative_to(ROOT) else path
        print(f"running {shown} ...", end=" ", flush=True)
        result = run_notebook(path.resolve(), expected_device(path, devices), cuda_here)
        result.path = str(path)
        results.append(result)
        print("pass" if result.passed else f"FAIL: {result.error}", flush=True)
    if cuda_here:  # notebook 12 keeps its ranks on the CPU; here the script's GPU path runs
        print("running helpers.train_ddp with nccl ...", end=" ", flush=True)
        results.append(run_train_ddp(count))
        print("pass" if results[-1].passed else f"FAIL: {results[-1].error}", flush=True)
    else:
        print("helpers.train_ddp with nccl: not run (no CUDA device here)")
    print()
    print(format_table(results))
    return 0 if all(r.passed for r in results) else 1


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))  # `python tools/gpu_check.py` from anywhere finds helpers
    sys.exit(main(sys.argv[1:]))
