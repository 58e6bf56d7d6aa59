"""Re-run notebooks headlessly, top to bottom, and store their outputs (`make execute`).

This is the only way outputs get into the repository. It is nbconvert's `--execute --inplace`
(its ClearOutput and Execute preprocessors: a clean kernel per notebook, run in the notebook's
own folder, execution counts 1..n, no timing metadata, no stored widget state), with its
CoalesceStreams preprocessor (a cell's printed text stored as one stream, not split wherever the
kernel happened to flush, so that a re-run changes no line it need not), plus what is ours: the
kernelspec every notebook names, a quiet kernel log, and this machine's folders scrubbed from
the tracebacks of stored errors.

Usage: python tools/execute.py NOTEBOOK.ipynb [...]
"""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path

import nbformat
from nbconvert.preprocessors import (
    ClearOutputPreprocessor,
    CoalesceStreamsPreprocessor,
    ExecutePreprocessor,
    Preprocessor,
)

# Tracebacks of deliberate errors name files inside the installed packages; keep the part a
# reader needs ("site-packages/torch/nn/modules/module.py") and drop this machine's prefix.
MACHINE_PREFIX = re.compile(r"(?:/[\w.+-]+)+/(site-packages|dist-packages)/")
REPO_PREFIX = re.compile(re.escape(str(Path(__file__).resolve().parents[1])) + "/")
KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
# The kernel warns that it talks to us over TCP on 127.0.0.1 without encryption; harmless here.
QUIET_KERNEL = ["--IPKernelApp.log_level=ERROR"]
# Seconds a new kernel gets to answer (the Makefile's NBVAL says why not nbval's 60).
KERNEL_STARTUP_S = 300


def without_machine_paths(text: str) -> str:
    """Drop this machine's folders from a traceback line."""
    return REPO_PREFIX.sub("", MACHINE_PREFIX.sub(r"\1/", text))


class ScrubMachinePaths(Preprocessor):
    """An nbconvert preprocessor: this machine's folders out of every stored traceback."""

    def preprocess_cell(
        self, cell: nbformat.NotebookNode, resources: dict, index: int
    ) -> tuple[nbformat.NotebookNode, dict]:
        """Rewrite the traceback lines of each error output of `cell`."""
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                output["traceback"] = [without_machine_paths(line) for line in output["traceback"]]
        return cell, resources


def execute(path: Path) -> float:
    """Execute one notebook in place; return the seconds it took."""
    nb = nbformat.read(path, as_version=4)
    resources = {"metadata": {"path": str(path.parent)}}
    ClearOutputPreprocessor(remove_metadata_fields={"execution"}).preprocess(nb, resources)
    nb.metadata["kernelspec"] = KERNELSPEC
    nb.metadata.pop("widgets", None)
    start = time.perf_counter()
    ExecutePreprocessor(
        timeout=300,
        startup_timeout=KERNEL_STARTUP_S,  # timed by the wall clock: it jumps when a VM is paused
        kernel_name="python3",
        record_timing=False,
        store_widget_state=False,
        extra_arguments=QUIET_KERNEL,
        # The kernel is stopped, not asked to exit: its Python would spend 1-2 s of CPU tearing
        # PyTorch down, after the last output is in and while make execute waits for nothing.
        shutdown_kernel="immediate",
    ).preprocess(nb, resources)
    seconds = time.perf_counter() - start
    CoalesceStreamsPreprocessor().preprocess(nb, resources)
    ScrubMachinePaths().preprocess(nb, resources)
    nbformat.validate(nb)
    nbformat.write(nb, path)
    return seconds


def main(paths: list[str]) -> int:
    """Execute every notebook named on the command line; stop at the first that fails."""
    notebooks = [Path(p) for p in paths if p.endswith(".ipynb") and Path(p).exists()]
    if not notebooks:
        print("No notebooks to execute (give paths ending in .ipynb).", file=sys.stderr)
        return 1
    for path in notebooks:
        print(f"executing {path} ...", end=" ", flush=True)
        try:
            seconds = execute(path)
        except Exception as error:  # show which notebook and cell failed, then stop
            print("FAILED")
            print(f"{path}: {error}", file=sys.stderr)
            return 1
        print(f"{seconds:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
