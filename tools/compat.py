"""`make compat`: every notebook, top to bottom, on the PyTorch releases the collection supports.

Four columns, each a throwaway venv under build/compat/ (kept, with a stamp, so a second run
reuses it; the downloaded wheels are kept in ~/.cache/loop-lab/compat-wheels, so a rebuild,
even in a fresh clone, downloads nothing but the registry's index pages):

- floor:  the oldest torch/torchvision the requirements admit, with the floor of every other
          requirement too, on the oldest Python that pyproject.toml admits;
- middle: a release near what Google Colab ships, with requirements.txt's ranges;
- newest: the newest torch on the registry (asked at run time), with requirements.txt's ranges;
- colab:  shaped like a Colab runtime: Colab's Python, torch and ipywidgets 7.7, a stand-in
          `google.colab`, no helper package until the notebook's own first cell installs it,
          every cell tag removed (Colab's Run all is not known to honour `raises-exception`), and
          each notebook run in an empty folder, as Colab runs it in /content.

Each notebook runs in a fresh kernel, in its own folder, stopping at its first error (nbclient's
default, honouring `raises-exception` tags except in the colab column); outputs are not compared.
The table shows release x notebook and every failure's first error. Exit status 1 if any failed.

Only the venv builds use the registry: this machine's pip cap (/etc/xdg/pip) is lifted for this
tool's own pip calls, and nothing downloads while a notebook runs.

Usage: python tools/compat.py [--releases floor,middle,newest,colab] [--jobs N] [NOTEBOOK ...]
(a NOTEBOOK may be a path or part of a name: `06` runs notebook 06 and its solutions).
This file runs under any Python 3.10+ with no packages; `--run-one` runs inside a venv.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import dataclasses
import glob
import json
import os
import queue
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DIR = ROOT / "build" / "compat"
CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
# Seconds a cell may run: above the 300 s that notebook 12 gives torchrun itself, so that a
# hang there is reported by the notebook's own timeout, with its output.
CELL_TIMEOUT = 600
# What runs the notebooks inside each venv (not part of what a learner needs).
RUNNER = ("nbclient", "ipykernel")
# requirements.txt lines a notebook run does not need: the front end.
NOT_FOR_RUNNING = {"jupyterlab"}
VERSIONS_SHOWN = ("torch", "torchvision", "numpy", "ipywidgets", "matplotlib", "scikit-learn")


@dataclasses.dataclass(frozen=True)
class Release:
    """One column of the table: a Python, a torch/torchvision pair and how the rest is chosen."""

    name: str
    python: str  # "3.10": the interpreter the venv is made from
    torch: str | None  # None: requirements.txt's lower bound (floor), else the registry's newest
    torchvision: str | None  # None: the lower bound (floor), else whichever pip pairs with torch
    others: str  # "floor": every requirement at its lower bound; "ranges": requirements.txt's
    # ranges; "colab": COLAB_PACKAGES, and the helper package left to the notebook's first cell
    note: str


# The floor is requirements.txt's lower bounds, every one of them (torch, torchvision, NumPy,
# matplotlib, ...), on the oldest Python that pyproject.toml admits. Why torch 2.3.1: the 2.1
# and 2.2 wheels were built against NumPy 1 and fail under NumPy 2 ("Numpy is not available"),
# and pip cannot tie a NumPy bound to the torch release, so the floor is the first release that
# works with NumPy 2; matplotlib 3.8.4 and scikit-learn 1.4.2 are the first of theirs that pip
# installs beside NumPy 2. Try another pair with `--torch floor=2.2.2/0.17.2`.
FLOOR = Release("floor", "3.10", None, None, "floor", "requirements.txt's lower bounds")
# Colab's runtime moved to torch 2.9 (torchvision 0.24) at the end of 2025, as PyTorch's
# maintainers noted in googlecolab/colabtools#5661: the middle column is that release with
# requirements.txt's ranges, the colab column the same torch in a venv shaped like the runtime.
MIDDLE = Release("middle", "3.11", "2.9.1", "0.24.1", "ranges", "near Colab's torch")
NEWEST = Release("newest", "3.13", None, None, "ranges", "newest torch on the registry")
COLAB = Release("colab", "3.12", "2.9.1", "0.24.1", "colab", "shaped like a Colab runtime")
RELEASES = {release.name: release for release in (FLOOR, MIDDLE, NEWEST, COLAB)}
# What a Colab runtime had besides torch, as its `pip list` read in 2025 (Python 3.12, IPython
# 7.34.0, ipykernel 6.17.1, ipywidgets 7.7.1, NumPy 2.0.2, matplotlib 3.10.0, scikit-learn
# 1.6.1): pinned, so that the column stays the same from run to run. Its jupyter-client 6 is not
# pinned: nbclient, which runs the notebooks here, needs a newer one.
COLAB_PACKAGES = (
    "numpy==2.0.2",
    "ipywidgets==7.7.1",
    "ipython==7.34.0",
    "ipykernel==6.17.1",
    "matplotlib==3.10.0",
    "scikit-learn==1.6.1",
    "tqdm==4.67.1",
)
# A stand-in for Colab's module: what notebook 00's advice and the helpers call.
COLAB_STANDIN = {
    "google/colab/__init__.py": '"""Stand-in for Colab\'s google.colab (make compat)."""\n\n'
    "from google.colab import output\n\n__all__ = ['output']\n",
    "google/colab/output.py": '"""Stand-in for google.colab.output: widget managers are no-ops."""\n\n\n'
    "def enable_custom_widget_manager() -> None:\n"
    '    """Colab turns on third-party widgets here; the stand-in has nothing to do."""\n\n\n'
    "def disable_custom_widget_manager() -> None:\n"
    '    """Colab turns third-party widgets off here; the stand-in has nothing to do."""\n',
}


# ---------------------------------------------------------------------------------------------
# Pure helpers (tests/test_compat.py drives these without building anything)


def version_key(version: str) -> tuple[int, ...] | None:
    """The numeric release of a final version ('2.15.0' -> (2, 15, 0)); None for pre-releases."""
    match = re.fullmatch(r"(\d+(?:\.\d+)*)(\.post\d+)?", version.strip())
    return tuple(int(part) for part in match.group(1).split(".")) if match else None


def newest_version(pip_index_text: str) -> str:
    """The newest final release named in the output of `pip index versions NAME`."""
    found = re.search(r"^Available versions:(.*)$", pip_index_text, re.M)
    if not found:
        raise ValueError(f"no 'Available versions:' line in: {pip_index_text.strip()[:200]!r}")
    versions = [v.strip() for v in found.group(1).split(",") if version_key(v.strip())]
    if not versions:
        raise ValueError("no final release among the available versions")
    return max(versions, key=version_key)


def _requirement_lines(text: str) -> list[str]:
    lines = [line.split("#")[0].strip() for line in text.splitlines()]
    return [line for line in lines if line and not line.startswith("-")]


def requirement_name(line: str) -> str:
    """The normalized project name of a requirement line ('scikit_learn>=1' -> 'scikit-learn')."""
    name = re.split(r"[<>=!~;\s\[@]", line.strip(), maxsplit=1)[0]
    return re.sub(r"[-_.]+", "-", name).lower()


def floor_pin(line: str) -> str:
    """A requirement pinned at its lower bound ('numpy>=1.24,<3; m' -> 'numpy==1.24; m')."""
    spec, _, marker = line.partition(";")
    low = re.search(r">=\s*([\w.]+)", spec)
    if not low:
        return line.strip()
    pinned = f"{requirement_name(spec)}=={low.group(1)}"
    return f"{pinned}; {marker.strip()}" if marker.strip() else pinned


def install_list(
    release: Release, requirements_text: str, torch: str | None, torchvision: str | None
) -> list[str]:
    """What pip installs into the release's venv: torch, torchvision, the rest, the runner."""
    lines = [
        line
        for line in _requirement_lines(requirements_text)
        if requirement_name(line) not in NOT_FOR_RUNNING
    ]
    by_name = {requirement_name(line): line for line in lines}
    floor = release.others == "floor"
    packages = []
    for name, pinned in (("torch", torch), ("torchvision", torchvision)):
        if pinned:
            packages.append(f"{name}=={pinned}")
        elif name in by_name:
            packages.append(floor_pin(by_name[name]) if floor else by_name[name])
    rest = [line for line in lines if requirement_name(line) not in ("torch", "torchvision")]
    if floor:
        packages += [floor_pin(line) for line in rest]
    elif release.others == "ranges":
        packages += rest
    else:
        packages += list(COLAB_PACKAGES)
    names = {requirement_name(p) for p in packages}
    return packages + [p for p in RUNNER if p not in names]


def strip_tags(nb) -> int:
    """Remove every cell's tags from a notebook (as Colab's Run all ignores them); return how many."""
    removed = 0
    for cell in nb["cells"]:
        removed += len(cell.get("metadata", {}).pop("tags", []) or [])
    return removed


def git_config(root: Path, owner: str, name: str) -> str:
    """A gitconfig that makes `git clone https://github.com/OWNER/NAME` read `root` instead."""
    path = root.as_posix().replace("\\", "\\\\").replace('"', '\\"')
    return (
        f'[url "{path}"]\n'
        f"\tinsteadOf = https://github.com/{owner}/{name}\n"
        "[safe]\n"
        f"\tdirectory = {root.as_posix()}\n"
    )


ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
ARROW = re.compile(r"^-*>\s*(\d+)\s(.*)$")


def _first_line(text: str) -> str:
    lines = [line.strip() for line in ANSI.sub("", text or "").splitlines() if line.strip()]
    return lines[0][:200] if lines else ""


def failing_line(traceback: list[str] | str) -> str:
    """The source line an IPython traceback points at first ('----> 3 assert ok' -> 'assert ok')."""
    text = "\n".join(traceback) if isinstance(traceback, list) else traceback
    for line in ANSI.sub("", text).splitlines():
        match = ARROW.match(line.strip())
        if match:
            return match.group(2).strip()[:200]
    return ""


def first_error(nb, error: BaseException, started: int | None = None) -> dict:
    """Where and why a run stopped: cell index, exception name, first line, the failing line."""
    cell_index, line = started, ""
    for index, cell in enumerate(nb["cells"]):
        errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
        if cell.get("cell_type") == "code" and errors:
            cell_index, line = index, failing_line(errors[0].get("traceback", []))
            break
    ename = getattr(error, "ename", None)
    message = getattr(error, "evalue", None) if ename else str(error)
    if not line and isinstance(getattr(error, "traceback", None), str):
        line = failing_line(error.traceback)
    return {
        "cell": cell_index,
        "ename": ename or type(error).__name__,
        "message": _first_line(message or ""),
        "line": line,
    }


def describe_failure(result: dict) -> str:
    """One line for a failure: 'cell 12: AssertionError: text (at `assert match`)'."""
    where = f"cell {result['cell']}" if result.get("cell") is not None else "before any cell"
    text = f"{where}: {result.get('ename', 'Error')}"
    if result.get("message"):
        text += f": {result['message']}"
    if result.get("line"):
        text += f" (at `{result['line']}`)"
    return text


def format_table(columns: list[str], rows: list[str], results: dict) -> str:
    """A plain-text table: one row per notebook, one column per release, 'pass' or 'FAIL'."""
    marks = {True: "pass", False: "FAIL"}
    header = ["notebook", *columns]
    body = [
        [row, *(marks.get(results.get((col, row), {}).get("ok"), "-") for col in columns)]
        for row in rows
    ]
    passed = []
    for col in columns:
        ran = [results[(col, row)] for row in rows if (col, row) in results]
        passed.append(f"{sum(r.get('ok') is True for r in ran)}/{len(ran)}")
    body.append(["passed", *passed])
    widths = [max(len(str(line[i])) for line in [header, *body]) for i in range(len(header))]

    def render(line: list[str]) -> str:
        return "  ".join(
            str(cell).ljust(width) for cell, width in zip(line, widths, strict=True)
        ).rstrip()

    rule = "  ".join("-" * width for width in widths)
    return "\n".join(
        [render(header), rule, *(render(line) for line in body[:-1]), rule] + [render(body[-1])]
    )


def failure_lines(columns: list[str], rows: list[str], results: dict) -> list[str]:
    """Every failure, in table order: 'release  notebook  cell N: Error: first line'."""
    lines = []
    for col in columns:
        for row in rows:
            result = results.get((col, row))
            if result and result.get("ok") is False:
                lines.append(f"{col}  {row}  {describe_failure(result)}")
    return lines


# ---------------------------------------------------------------------------------------------
# Running one notebook (inside a venv: `python tools/compat.py --run-one NOTEBOOK ...`)


def run_one(notebook: Path, cwd: Path, *, strip: bool, timeout: int) -> dict:
    """Run a notebook top to bottom in a fresh kernel of this interpreter; stop at its first error."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(notebook, as_version=4)
    if strip:
        strip_tags(nb)
    # A kernel spec for this very interpreter, found before any other "python3" spec.
    specs = Path(tempfile.mkdtemp(prefix="compat-kernel-"))
    (specs / "kernels" / "python3").mkdir(parents=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    spec = {"argv": argv + ["--IPKernelApp.log_level=ERROR"], "language": "python"}
    spec["display_name"] = "Python 3 (compat)"
    (specs / "kernels" / "python3" / "kernel.json").write_text(json.dumps(spec))
    os.environ["JUPYTER_PATH"] = str(specs)
    started: dict[str, int | None] = {"index": None}

    def on_cell_start(cell=None, cell_index=None, **_):
        started["index"] = cell_index

    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name="python3",
        resources={"metadata": {"path": str(cwd)}},
        record_timing=False,
        store_widget_state=False,
        on_cell_start=on_cell_start,
    )
    start = time.perf_counter()
    try:
        client.execute()
        result = {"ok": True}
    except Exception as error:  # any stop is a result to report, not a crash of the tool
        result = {"ok": False, **first_error(nb, error, started["index"])}
    finally:
        shutil.rmtree(specs, ignore_errors=True)
    result["seconds"] = round(time.perf_counter() - start, 1)
    return result


# ---------------------------------------------------------------------------------------------
# Building the venvs


def find_python(version: str) -> tuple[str, str]:
    """An interpreter for Python `version` ('3.12'): (path, its full version); else this one."""
    candidates = [shutil.which(f"python{version}") or ""]
    pyenv_root = os.environ.get("PYENV_ROOT", str(Path.home() / ".pyenv"))
    candidates += sorted(glob.glob(f"{pyenv_root}/versions/{version}.*/bin/python{version}"))
    candidates += [f"/usr/bin/python{version}", f"/usr/local/bin/python{version}"]
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK):
            probe = subprocess.run(
                [candidate, "-c", "import sys, venv; print('%d.%d.%d' % sys.version_info[:3])"],
                capture_output=True,
                text=True,
            )
            if probe.returncode == 0 and probe.stdout.startswith(version + "."):
                return candidate, probe.stdout.strip()
    return sys.executable, ".".join(str(part) for part in sys.version_info[:3])


def pip_env() -> dict[str, str]:
    """The environment for this tool's pip calls: the registry itself, no local cap or files."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    for key in ("PIP_CONSTRAINT", "PIP_FIND_LINKS", "PIP_NO_INDEX", "PIP_REQUIRE_VIRTUALENV"):
        env.pop(key, None)
    env["PIP_CONFIG_FILE"] = os.devnull  # lifts /etc/xdg/pip's cap, for these calls only
    if "PIP_CERT" not in env and os.path.exists(CA_BUNDLE):
        env["PIP_CERT"] = CA_BUNDLE
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


def default_wheels() -> Path:
    """Where downloaded wheels are kept between runs and clones: $COMPAT_WHEELS, else a cache."""
    if os.environ.get("COMPAT_WHEELS"):
        return Path(os.environ["COMPAT_WHEELS"])
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "loop-lab" / "compat-wheels"


class BuildError(Exception):
    """A venv could not be built; the message says which step and where its log is."""


def _run_logged(command: list[str], log: Path, env: dict[str, str]) -> str:
    with log.open("a") as out:
        out.write(f"\n$ {' '.join(command)}\n")
        out.flush()
        start = time.perf_counter()
        done = subprocess.run(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        text = done.stdout.decode(errors="replace")
        out.write(f"{text}[exit {done.returncode} after {time.perf_counter() - start:.0f} s]\n")
    if done.returncode != 0:
        tail = "\n".join(text.strip().splitlines()[-15:])
        raise BuildError(f"`{' '.join(command[:6])} ...` failed (log: {log}):\n{tail}")
    return text


def site_packages(venv: Path) -> Path:
    """The site-packages folder of a venv."""
    found = sorted(venv.glob("lib/python3.*/site-packages"))
    if not found:
        raise BuildError(f"{venv} has no site-packages")
    return found[0]


def _installed_versions(python: Path) -> dict[str, str]:
    code = (
        "import json, platform\nfrom importlib import metadata\n"
        "out = {'python': platform.python_version()}\n"
        f"for n in {VERSIONS_SHOWN!r}:\n"
        "    try: out[n] = metadata.version(n)\n"
        "    except metadata.PackageNotFoundError: pass\n"
        "print(json.dumps(out))"
    )
    done = subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


def build(release: Release, base: Path, wheels: Path, pins: dict) -> dict:
    """Make (or reuse) the release's venv; return its facts (path, versions, seconds)."""
    start = time.perf_counter()
    venv = base / "venvs" / release.name
    logs = base / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    log = logs / f"{release.name}.log"
    log.write_text("")
    interpreter, full_version = find_python(release.python)
    env = pip_env()
    python = venv / "bin" / "python"
    torch, torchvision = pins.get(release.name, (release.torch, release.torchvision))
    stamp_file = venv / ".compat-stamp.json"
    old = json.loads(stamp_file.read_text()) if stamp_file.exists() else {}
    note = ""
    if torch is None and release.others != "floor":
        try:
            text = _run_logged([interpreter, "-m", "pip", "index", "versions", "torch"], log, env)
            torch = newest_version(text)
        except (BuildError, ValueError) as error:
            if not old.get("versions"):
                raise BuildError(f"cannot find the newest torch: {error}") from error
            torch, note = old["versions"]["torch"], "registry unreachable: reused the last venv"
    requirements = (ROOT / "requirements.txt").read_text()
    packages = install_list(release, requirements, torch, torchvision)
    wanted = {"interpreter": interpreter, "packages": packages}
    reused = all(old.get(key) == value for key, value in wanted.items()) and "versions" in old
    if not reused:
        shutil.rmtree(venv, ignore_errors=True)
        _run_logged([interpreter, "-m", "venv", str(venv)], log, env)
        # Download into a wheelhouse that outlives the venv (pip's own cache is not always
        # kept: behind some registry proxies nothing is stored), then install from it alone.
        wheels.mkdir(parents=True, exist_ok=True)
        pip = [str(python), "-m", "pip"]
        _run_logged([*pip, "download", "-d", str(wheels), *packages], log, env)
        # --no-compile: Python compiles what a kernel imports anyway, and pip's compiling of
        # every module of torch costs minutes
        offline = ["--no-index", "--find-links", str(wheels), "--no-compile"]
        _run_logged([*pip, "install", *offline, *packages], log, env)
        if release.others == "colab":
            _run_logged([*pip, "download", "-d", str(wheels), "setuptools>=61"], log, env)
            _make_colab_parts(venv)
        versions = _installed_versions(python)
        stamp_file.write_text(json.dumps({**wanted, "versions": versions}, indent=1))
    facts = json.loads(stamp_file.read_text())
    if release.others != "colab":
        # the helper package, as an editable install would give it: this working tree
        (site_packages(venv) / "looplab_compat_repo.pth").write_text(str(ROOT) + "\n")
    if not full_version.startswith(release.python + "."):
        note = f"Python {release.python} not found here; used {full_version}"
    return {
        "venv": venv,
        "python": python,
        "versions": facts["versions"],
        "reused": reused,
        "note": note,
        "seconds": time.perf_counter() - start,
    }


def _make_colab_parts(venv: Path) -> None:
    """The stand-in google.colab, imported at kernel start as Colab's runtime does."""
    packages = site_packages(venv)
    for relative, text in COLAB_STANDIN.items():
        (packages / relative).parent.mkdir(parents=True, exist_ok=True)
        (packages / relative).write_text(text)
    startup = venv / "ipython" / "profile_default" / "startup"
    startup.mkdir(parents=True, exist_ok=True)
    (startup / "00-colab.py").write_text("import google.colab  # as in a Colab runtime\n")


def repository() -> tuple[str, str]:
    """(owner, name) from pyproject.toml, as tools/sync_notebooks.py reads it."""
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        import sync_notebooks  # needs nbformat: fall back to reading pyproject.toml
    except ImportError:
        text = (ROOT / "pyproject.toml").read_text()
        found = re.search(
            r'^Repository\s*=\s*"https://github\.com/([\w.-]+)/([\w.-]+?)"', text, re.M
        )
        if not found:
            raise
        return found.group(1), found.group(2)
    finally:
        sys.path.pop(0)
    return sync_notebooks.repository()


# ---------------------------------------------------------------------------------------------
# The table


def notebooks(selected: list[str]) -> list[Path]:
    """Every notebook and solution in reading order, or those matching the given paths/names."""
    every = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")) + sorted(
        (ROOT / "notebooks" / "solutions").glob("[0-9][0-9]_*.ipynb")
    )
    if not selected:
        return every
    chosen = []
    for item in selected:
        path = Path(item)
        matches = [path.resolve()] if path.suffix == ".ipynb" and path.exists() else []
        matches = matches or [nb for nb in every if item in nb.name]
        if not matches:
            raise SystemExit(f"no notebook matches {item!r}")
        chosen += [m for m in matches if m not in chosen]
    return [nb for nb in every if nb in chosen] + [m for m in chosen if m not in every]


def label(notebook: Path) -> str:
    """The notebook's name in the table ('solutions/03_loss_solutions.ipynb' for a solution)."""
    return notebook.relative_to(ROOT / "notebooks").as_posix()


def run_release(
    release: Release,
    facts: dict,
    chosen: list[Path],
    base: Path,
    wheels: Path,
    jobs: int,
    timeout: int,
) -> dict:
    """Run the chosen notebooks in the release's venv, `jobs` at a time; {label: result}."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env["IPYTHONDIR"] = str(facts["venv"] / "ipython")
    env["JUPYTER_CONFIG_DIR"] = str(facts["venv"] / "jupyter-config")
    env["PIP_CONFIG_FILE"] = os.devnull
    env["PIP_NO_INDEX"] = "1"  # nothing downloads while a notebook runs
    env.pop("PIP_FIND_LINKS", None)
    work = base / "runs" / release.name
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    if release.others == "colab":
        owner, name = repository()
        gitconfig = work / "gitconfig"
        # The first cell's `pip install "loop-lab @ git+https://github.com/OWNER/REPO@main"`
        # clones this repository instead: it installs the committed HEAD of main, not the
        # working tree (commit first to test uncommitted helpers here).
        gitconfig.write_text(git_config(ROOT, owner, name))
        env.update(GIT_CONFIG_GLOBAL=str(gitconfig), GIT_CONFIG_NOSYSTEM="1")
        env["PIP_FIND_LINKS"] = str(wheels)  # setuptools, to build the package offline
        env["GIT_TERMINAL_PROMPT"] = "0"

    def attempt(notebook: Path) -> dict:
        result_file = work / f"{notebook.stem}.json"
        result_file.unlink(missing_ok=True)
        python, cwd, strip = facts["python"], notebook.parent, False
        if release.others == "colab":
            python, cwd, strip = _colab_overlay(facts, work / notebook.stem), None, True
        command = [str(python), str(Path(__file__).resolve()), "--run-one", str(notebook)]
        command += ["--result", str(result_file), "--timeout", str(timeout)]
        if strip:
            command.append("--strip-tags")
        if cwd is None:
            cwd = work / notebook.stem / "content"
            cwd.mkdir(parents=True, exist_ok=True)
        command += ["--cwd", str(cwd)]
        done = subprocess.run(command, env=env, capture_output=True, text=True)
        if result_file.exists():
            result = json.loads(result_file.read_text())
            if result["ok"] and release.others == "colab" and not _installed_by_first_cell(python):
                result.update(ok=False, cell=None, ename="NotInstalled", line="")
                result["message"] = "the first cell did not install the helper package"
            return result
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        return {"ok": False, "cell": None, "ename": "RunnerError", "message": tail[0][:200]}

    def one(notebook: Path) -> dict:
        result = attempt(notebook)
        if result["ok"]:
            return result
        # A failure is run once more in a fresh kernel, so that a rare hang (a gloo rank stuck
        # in teardown was seen once in many runs) is told apart from a broken notebook; a pass
        # on the second try is still listed under the table.
        second = attempt(notebook)
        if second["ok"]:
            second["first_try"] = describe_failure(result)
            return second
        return result

    results: dict[str, dict] = {}
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        futures = {pool.submit(one, notebook): notebook for notebook in chosen}
        for future in concurrent.futures.as_completed(futures):
            notebook = futures[future]
            result = future.result()
            results[label(notebook)] = result
            status = "pass" if result["ok"] else "FAIL " + describe_failure(result)
            if result.get("first_try"):
                status += f" (second try; the first: {result['first_try']})"
            print(
                f"  {release.name:7} {label(notebook):58} {result.get('seconds', 0):6.1f} s  "
                f"{status}",
                flush=True,
            )
    return results


def _colab_overlay(facts: dict, folder: Path) -> Path:
    """A fresh venv that sees the colab venv's packages, so that each notebook's first cell
    installs the helper package itself, as in a new Colab session; return its python."""
    overlay = folder / "venv"
    shutil.rmtree(folder, ignore_errors=True)
    subprocess.run([str(facts["python"]), "-m", "venv", "--without-pip", str(overlay)], check=True)
    colab_packages = site_packages(facts["venv"])
    (site_packages(overlay) / "zz_colab_runtime.pth").write_text(
        f"import site; site.addsitedir({str(colab_packages)!r})\n"
    )
    return overlay / "bin" / "python"


def _installed_by_first_cell(python: Path) -> bool:
    """Whether a notebook's own first cell installed loop-lab into its overlay venv."""
    overlay = python.parent.parent
    return any(site_packages(overlay).glob("loop_lab-*.dist-info"))


def _uncommitted_helpers() -> bool:
    done = subprocess.run(
        ["git", "-C", str(ROOT), "status", "--porcelain", "--", "helpers", "pyproject.toml"],
        capture_output=True,
        text=True,
    )
    return bool(done.stdout.strip())


def column_heading(name: str, facts: dict) -> str:
    """'floor: Python 3.10.13, torch 2.3.1, torchvision 0.18.1, numpy 1.24.0, ...'."""
    versions = facts.get("versions", {})
    parts = [f"Python {versions.get('python', '?')}"]
    parts += [f"{key} {versions[key]}" for key in VERSIONS_SHOWN if key in versions]
    text = f"{name}: " + ", ".join(parts)
    return text + (f"  [{facts['note']}]" if facts.get("note") else "")


def main(argv: list[str]) -> int:
    """Build the venvs, run the notebooks, print the table; 1 if anything failed."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("notebooks", nargs="*", help="paths or parts of names (default: all)")
    parser.add_argument("--releases", default=",".join(RELEASES), help="comma-separated columns")
    parser.add_argument("--jobs", type=int, default=2, help="notebooks at a time (default 2)")
    parser.add_argument("--timeout", type=int, default=CELL_TIMEOUT, help="seconds per cell")
    parser.add_argument("--dir", type=Path, default=DEFAULT_DIR, help="where the venvs live")
    parser.add_argument(
        "--wheels", type=Path, default=default_wheels(), help="downloaded wheels, kept for reuse"
    )
    parser.add_argument(
        "--torch",
        action="append",
        default=[],
        metavar="RELEASE=TORCH[/TORCHVISION]",
        help="try another pair in a column, e.g. floor=2.2.2/0.17.2",
    )
    parser.add_argument("--run-one", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--cwd", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--strip-tags", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.run_one:
        result = run_one(args.run_one, args.cwd, strip=args.strip_tags, timeout=args.timeout)
        args.result.write_text(json.dumps(result))
        return 0

    names = [n.strip() for n in re.split(r"[,\s]+", args.releases) if n.strip()]
    unknown = [n for n in names if n not in RELEASES]
    if unknown:
        parser.error(f"unknown release(s) {unknown}; choose from {', '.join(RELEASES)}")
    pins: dict[str, tuple[str, str | None]] = {}
    for item in args.torch:
        name, _, pair = item.partition("=")
        torch, _, vision = pair.partition("/")
        if name not in RELEASES or not torch:
            parser.error(f"--torch {item!r}: use RELEASE=TORCH[/TORCHVISION]")
        pins[name] = (torch, vision or None)
    chosen = notebooks(args.notebooks)
    base, wheels = args.dir.resolve(), args.wheels.resolve()
    if "colab" in names and _uncommitted_helpers():
        print("note: helpers/ has uncommitted changes; the colab column installs main's HEAD.")
    results: dict[tuple[str, str], dict] = {}
    headings, broken, total = [], [], time.perf_counter()
    # Venvs are built one after another in the background (mostly downloads and disk), while
    # the notebooks of the venvs already built run (mostly CPU).
    built: queue.Queue = queue.Queue()

    def builder() -> None:
        for name in names:
            print(f"{name}: building the venv ({RELEASES[name].note}) ...", flush=True)
            try:
                built.put((name, build(RELEASES[name], base, wheels, pins)))
            except BuildError as error:
                built.put((name, error))

    threading.Thread(target=builder, daemon=True).start()
    for _ in names:
        name, facts = built.get()
        if isinstance(facts, BuildError):
            print(f"{name}: the venv could not be built: {facts}", flush=True)
            broken.append(f"{name}: the venv could not be built: {facts}")
            continue
        how = "reused" if facts["reused"] else "built"
        print(f"{name}: venv {how} in {facts['seconds']:.0f} s; running {len(chosen)} notebooks")
        headings.append(column_heading(name, facts))
        start = time.perf_counter()
        ran = run_release(RELEASES[name], facts, chosen, base, wheels, args.jobs, args.timeout)
        results.update({(name, row): result for row, result in ran.items()})
        print(f"{name}: notebooks ran in {time.perf_counter() - start:.0f} s", flush=True)
    rows = [label(notebook) for notebook in chosen]
    columns = [name for name in names if any((name, row) in results for row in rows)]
    failures = failure_lines(columns, rows, results)
    lines = ["", *headings, "", format_table(columns, rows, results), ""]
    lines += ["Failures (release, notebook, first error):", *failures] if failures else []
    retried = [
        f"{col}  {row}  {results[(col, row)]['first_try']}"
        for col in columns
        for row in rows
        if results.get((col, row), {}).get("first_try")
    ]
    lines += (
        ["Passed on a second try (release, notebook, first error):", *retried] if retried else []
    )
    lines += broken
    lines.append(f"compat: {time.perf_counter() - total:.0f} s in all")
    report = "\n".join(lines)
    print(report)
    base.mkdir(parents=True, exist_ok=True)
    (base / "last-table.txt").write_text(report + "\n")
    return 1 if failures or broken else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
