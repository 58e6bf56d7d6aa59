"""Notebook 00's setup check: a learner missing a package sees what is missing and the command
that installs it on their platform, never a traceback; and its device table tells the truth."""

from __future__ import annotations

import ast
import contextlib
import importlib.metadata
import importlib.util
import io
import re
import sys
import time
import types
from pathlib import Path

import nbformat
import pytest
from jupyter_client.manager import start_new_kernel
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from helpers.environment import NOTEBOOK_DEVICES

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "00_setup_check.ipynb"
PACKAGES = ("torch", "torchvision", "ipywidgets", "matplotlib", "helpers")
PLATFORMS = ("pip", "conda", "colab", "binder")
BINDER_VARIABLES = ("BINDER_LAUNCH_HOST", "BINDER_REPO_URL", "BINDER_SERVICE_HOST")
ALL_PRESENT = "Setup check: everything Loop Lab needs is installed.\n"

# What the learner must be told to run, per platform and missing package.
COMMANDS = {
    "pip": {
        name: ["pip install -r requirements.txt -e .", "%pip install -r ../requirements.txt -e .."]
        for name in PACKAGES
    },
    "conda": {
        "torch": [
            "%conda install -y -c conda-forge pytorch-cpu",
            "conda env create -f environment.yml",
        ],
        "torchvision": ["%conda install -y -c conda-forge torchvision"],
        "ipywidgets": ["%conda install -y -c conda-forge ipywidgets"],
        "matplotlib": ["%conda install -y -c conda-forge matplotlib-base"],
        "helpers": ["%pip install --no-deps -e ..", "pip install --no-deps -e ."],
    },
    "colab": {
        "torch": ["%pip install torch", "Runtime → Disconnect and delete runtime"],
        "torchvision": ["%pip install torchvision", "Runtime → Restart session"],
        "ipywidgets": ["%pip install ipywidgets", "Runtime → Restart session"],
        "matplotlib": ["%pip install matplotlib", "Runtime → Restart session"],
        "helpers": ["Run the first code cell of this notebook"],
    },
    "binder": {
        "torch": ["Open the Binder link again", "%conda install -y -c conda-forge pytorch-cpu"],
        "torchvision": [
            "Open the Binder link again",
            "%conda install -y -c conda-forge torchvision",
        ],
        "ipywidgets": ["Open the Binder link again", "%conda install -y -c conda-forge ipywidgets"],
        "matplotlib": ["Open the Binder link again", "matplotlib-base"],
        "helpers": ["Open the Binder link again", "%pip install --no-deps -e .."],
    },
}
# Advice that belongs to another platform and must not show up on this one.
FOREIGN = {
    "pip": ["%conda", "Colab", "Binder"],
    "conda": ["requirements.txt", "Colab", "Binder"],
    "colab": ["%conda", "requirements.txt", "Binder", "Kernel →"],
    "binder": ["requirements.txt", "Colab", "conda env create"],
}


def _notebook() -> nbformat.NotebookNode:
    return nbformat.read(NOTEBOOK, as_version=4)


def _check_cell() -> nbformat.NotebookNode:
    code = [cell for cell in _notebook().cells if cell.cell_type == "code"]
    return code[1]  # right after the Colab cell


CHECK = _check_cell().source


def _on(monkeypatch, tmp_path: Path, where: str) -> None:
    """Make this process look like a kernel on `where` (pip, conda, colab or binder)."""
    for name in BINDER_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    prefix = tmp_path / where
    prefix.mkdir()
    if where in ("conda", "binder"):  # Binder's environment is a conda one too
        (prefix / "conda-meta").mkdir()
    if where == "binder":
        monkeypatch.setenv("BINDER_REPO_URL", "https://github.com/loop-lab/loop-lab")
    if where == "colab":
        monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    monkeypatch.setattr(sys, "prefix", str(prefix))
    monkeypatch.chdir(ROOT / "notebooks")  # where Jupyter starts a notebook's kernel


SLEPT: list = []


def _run(monkeypatch, missing=(), torch_version: str | None = "2.14.1"):
    """Run the check cell with `missing` hidden; return (what it printed, what it raised)."""
    real_find_spec = importlib.util.find_spec
    real_version = importlib.metadata.version

    def find_spec(name, *args):
        if name in PACKAGES:
            return None if name in missing else object()
        return real_find_spec(name, *args)

    def version(package):
        if package == "torch":
            if torch_version is None:
                raise importlib.metadata.PackageNotFoundError(package)
            return torch_version
        return real_version(package)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    monkeypatch.setattr(importlib.metadata, "version", version)
    SLEPT.clear()
    monkeypatch.setattr(time, "sleep", SLEPT.append)
    printed, raised = io.StringIO(), None
    with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(printed):
        try:
            exec(CHECK, {"__name__": "__main__"})
        except Exception as error:  # the cell's own SetupIncomplete, checked by the callers
            raised = error
    return printed.getvalue(), raised


def _assert_kind_stop(printed: str, raised: Exception | None, missing) -> str:
    """The cell stopped with SetupIncomplete, showing a message and nothing that looks like a traceback."""
    assert raised is not None, "the check must stop Run All when something is missing"
    assert SLEPT == [1], "it waits a moment for the rest of Run All's cells, then stops"
    assert type(raised).__name__ == "SetupIncomplete"
    message = str(raised)
    assert raised._render_traceback_() == message.splitlines(), "IPython shows exactly the message"
    assert printed == ""
    assert "Traceback" not in message and 'File "' not in message
    assert message.startswith("Loop Lab cannot start yet. This kernel is missing:")
    listed = [
        line.split()[0]
        for line in message.splitlines()[1:]
        if line.startswith("    ") and "(" in line
    ]
    assert listed == list(missing)
    return message


def test_the_check_is_the_cell_after_the_colab_cell_and_imports_nothing_of_ours():
    code = [cell.source for cell in _notebook().cells if cell.cell_type == "code"]
    assert code[0].startswith("# Colab only:")
    assert CHECK.startswith("# Setup check:")
    imported = {
        alias.name.split(".")[0]
        for node in ast.walk(ast.parse(CHECK))
        if isinstance(node, (ast.Import, ast.ImportFrom))
        for alias in (node.names if isinstance(node, ast.Import) else [ast.alias(node.module)])
    }
    assert imported == {"importlib", "os", "re", "sys", "time"}
    later = "\n".join(code[2:])
    assert "import torch" in later and "from helpers" in later, (
        "torch and helpers come after the check"
    )


@pytest.mark.parametrize("where", PLATFORMS)
@pytest.mark.parametrize("package", PACKAGES)
def test_a_missing_package_is_named_with_the_command_for_this_platform(
    monkeypatch, tmp_path, where, package
):
    _on(monkeypatch, tmp_path, where)
    printed, raised = _run(monkeypatch, missing=(package,))
    message = _assert_kind_stop(printed, raised, [package])
    for command in COMMANDS[where][package]:
        assert command in message, f"{where}, {package} missing: {command!r} not in\n{message}"
    for other in FOREIGN[where]:
        assert other not in message, f"{where}: advice for elsewhere ({other!r}) in\n{message}"


EVERYTHING = {
    "pip": ["pip install -r requirements.txt -e .", "%pip install -r ../requirements.txt -e .."],
    "conda": [
        "%conda install -y -c conda-forge pytorch-cpu torchvision ipywidgets matplotlib-base",
        "%pip install --no-deps -e ..",
    ],
    "colab": [
        "Run the first code cell of this notebook",
        "%pip install torch torchvision ipywidgets matplotlib",
    ],
    "binder": [
        "%conda install -y -c conda-forge pytorch-cpu torchvision ipywidgets matplotlib-base",
        "%pip install --no-deps -e ..",
    ],
}


@pytest.mark.parametrize("where", PLATFORMS)
def test_everything_missing_names_everything_in_one_command(monkeypatch, tmp_path, where):
    _on(monkeypatch, tmp_path, where)
    printed, raised = _run(monkeypatch, missing=PACKAGES)
    message = _assert_kind_stop(printed, raised, PACKAGES)
    for command in EVERYTHING[where]:
        assert command in message, f"{where}: {command!r} not in\n{message}"


@pytest.mark.parametrize("where", PLATFORMS)
def test_with_everything_installed_it_prints_one_line_and_raises_nothing(
    monkeypatch, tmp_path, where
):
    _on(monkeypatch, tmp_path, where)
    printed, raised = _run(monkeypatch)
    assert raised is None and SLEPT == []
    assert printed == ALL_PRESENT


def test_the_stored_output_is_the_one_line():
    outputs = _check_cell().outputs
    assert [(o.output_type, o.get("text")) for o in outputs] == [("stream", ALL_PRESENT)]


def test_conda_prefix_of_the_shell_does_not_make_a_venv_kernel_conda(monkeypatch, tmp_path):
    """CONDA_PREFIX says which environment the shell activated, not which Python the kernel runs."""
    _on(monkeypatch, tmp_path, "pip")
    monkeypatch.setenv("CONDA_PREFIX", str(tmp_path))
    printed, raised = _run(monkeypatch, missing=("ipywidgets",))
    message = _assert_kind_stop(printed, raised, ["ipywidgets"])
    assert "pip install -r requirements.txt -e ." in message and "%conda" not in message


UPGRADES = {
    "pip": '%pip install --upgrade "torch>={}" torchvision',
    "conda": '%conda install -y -c conda-forge "pytorch-cpu>={}" torchvision',
    "binder": '%conda install -y -c conda-forge "pytorch-cpu>={}" torchvision',
    "colab": "%pip install --upgrade torch torchvision",
}


def _oldest_torch() -> tuple[int, ...]:
    namespace: dict = {}
    exec(CHECK.split("\nNEEDED")[0], namespace)  # the constants at the top
    return namespace["OLDEST_TORCH"]


def _just_below(floor: tuple[int, ...]) -> tuple[int, int, int]:
    """The newest release older than `floor` (a made-up one is fine)."""
    major, minor, patch = (*floor, 0)[:3]
    return (major, minor, patch - 1) if patch else (major, minor - 1, 9)


@pytest.mark.parametrize("where", PLATFORMS)
def test_a_too_old_torch_gets_the_upgrade_command_but_does_not_stop(monkeypatch, tmp_path, where):
    _on(monkeypatch, tmp_path, where)
    floor = _oldest_torch()
    old = ".".join(map(str, _just_below(floor)))
    printed, raised = _run(monkeypatch, torch_version=f"{old}+cpu")
    assert raised is None, "an old torch is a warning: most lessons still run"
    need = ".".join(map(str, floor))
    assert f"torch {old}, and Loop Lab needs torch {need} or newer" in printed
    assert UPGRADES[where].format(need) in printed
    assert "Traceback" not in printed and ALL_PRESENT not in printed


def test_the_floor_itself_passes(monkeypatch, tmp_path):
    _on(monkeypatch, tmp_path, "pip")
    floor = ".".join(map(str, _oldest_torch()))
    assert _run(monkeypatch, torch_version=floor) == (ALL_PRESENT, None)


@pytest.mark.parametrize("version", ["2.14.1", "2.14.1+cu130", "2.15.0a0+git1234", "3.0.0"])
def test_new_enough_torch_releases_pass(monkeypatch, tmp_path, version):
    _on(monkeypatch, tmp_path, "pip")
    assert _run(monkeypatch, torch_version=version) == (ALL_PRESENT, None)


def test_a_torch_without_version_metadata_is_not_judged(monkeypatch, tmp_path):
    _on(monkeypatch, tmp_path, "conda")
    assert _run(monkeypatch, torch_version=None) == (ALL_PRESENT, None)


def test_oldest_torch_is_the_floor_requirements_declare():
    floor = re.search(r"^torch\s*>=\s*([\d.]+)", (ROOT / "requirements.txt").read_text(), re.M)
    assert floor, "requirements.txt must give torch a floor (torch>=X.Y.Z)"
    declared = tuple(int(part) for part in floor[1].split("."))
    assert (*declared, 0, 0)[:3] == (*_oldest_torch(), 0, 0)[:3], (
        "OLDEST_TORCH in notebook 00's check cell and the torch floor in requirements.txt differ"
    )


def test_the_names_it_recommends_are_the_ones_the_project_installs():
    namespace: dict = {}
    exec(CHECK.split("\nROOT")[0], namespace)
    requirements = (ROOT / "requirements.txt").read_text()
    environment = (ROOT / "environment.yml").read_text()
    for module, (_, pip_name, conda_name) in namespace["NEEDED"].items():
        if module == "helpers":
            continue
        assert re.search(rf"^{pip_name}\b", requirements, re.M), pip_name
        assert re.search(rf"^\s*-\s*{conda_name}\b", environment, re.M), conda_name
    assert set(namespace["NEEDED"]) == set(PACKAGES)


SITECUSTOMIZE = '''\
"""Hide Loop Lab's helper package from this Python, as if loop-lab had never been installed."""
import os
import sys

sys.meta_path[:] = [f for f in sys.meta_path if "__editable__" not in getattr(f, "__module__", "")]
sys.path[:] = [p for p in sys.path if not os.path.isfile(os.path.join(p or ".", "helpers", "__init__.py"))]
'''


def _hide_helpers_from_kernels(monkeypatch, tmp_path: Path) -> None:
    """Kernels started from now on cannot import helpers, and run on plain pip (not Binder)."""
    (tmp_path / "sitecustomize.py").write_text(SITECUSTOMIZE)
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    for name in BINDER_VARIABLES:
        monkeypatch.delenv(name, raising=False)


def test_a_real_kernel_without_the_helper_package_stops_at_the_check_with_the_message(
    monkeypatch, tmp_path
):
    """Run All of notebook 00 in a real kernel that cannot import helpers."""
    _hide_helpers_from_kernels(monkeypatch, tmp_path)
    nb = _notebook()
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    client = NotebookClient(
        nb,
        timeout=120,
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOK.parent)}},
    )
    with pytest.raises(CellExecutionError):
        client.execute()
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    errors = [o for o in code[1].outputs if o.output_type == "error"]
    assert len(errors) == 1 and errors[0].ename == "SetupIncomplete"
    shown = errors[0].traceback
    assert shown[0] == "Loop Lab cannot start yet. This kernel is missing:"
    assert "    helpers (Loop Lab's helper package, loop-lab)" in shown
    assert "    pip install -r requirements.txt -e ." in shown
    assert not any("Traceback" in line or "File " in line or "\x1b[" in line for line in shown)
    assert all(cell.execution_count is None for cell in code[2:]), "Run All stopped at the check"


def test_the_device_table_names_each_notebook_by_its_title():
    source = next(c.source for c in _notebook().cells if "TITLES = {" in c.source)
    titles = ast.literal_eval(source.split("TITLES = ", 1)[1].split("\n}\n", 1)[0] + "\n}")
    headers = {
        path.name[:2]: nbformat.read(path, as_version=4).cells[0].source.split("\n")[0]
        for path in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
        if path.name[:2] != "00"
    }
    assert set(titles) == set(headers) == set(NOTEBOOK_DEVICES)
    for number, title in titles.items():
        assert headers[number] == f"# {number} — {title}"


def test_cells_that_reach_the_kernel_a_moment_late_are_cancelled_too(monkeypatch, tmp_path):
    """Run All in JupyterLab sends every cell at once; one that arrives after the check has
    failed would run (and fail with a NameError) unless the check waits for it."""
    _hide_helpers_from_kernels(monkeypatch, tmp_path)
    manager, client = start_new_kernel(kernel_name="python3", cwd=str(NOTEBOOK.parent))
    try:
        check = client.execute(CHECK)
        while True:  # send the next cell once the check is running: it arrives late, as in Run All
            message = client.get_iopub_msg(timeout=60)
            if (
                message["parent_header"].get("msg_id") == check
                and message["msg_type"] == "status"
                and message["content"]["execution_state"] == "busy"
            ):
                break
        later = client.execute("print('this cell ran')")
        status = {}
        while len(status) < 2:
            reply = client.get_shell_msg(timeout=60)
            if reply["parent_header"].get("msg_id") in (check, later):
                status[reply["parent_header"]["msg_id"]] = reply["content"]["status"]
        assert status == {check: "error", later: "aborted"}
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)


def test_a_too_old_python_is_named_but_does_not_stop(monkeypatch, tmp_path):
    _on(monkeypatch, tmp_path, "pip")
    monkeypatch.setattr(sys, "version_info", (3, 9, 18, "final", 0))
    printed, raised = _run(monkeypatch)
    assert raised is None
    assert "This kernel runs Python 3.9, and Loop Lab needs Python 3.10 or newer" in printed
