"""The Colab badge and first cell: present and current in every notebook, and doing the right
thing with and without Colab (a stand-in google.colab module, installs intercepted)."""

from __future__ import annotations

import contextlib
import importlib.metadata
import io
import subprocess
import sys
import types

import nbformat
import pytest

from tools import sync_notebooks as sync

NOTEBOOKS = sync.notebooks()


def test_notebooks_and_readme_are_in_sync():
    stale = []
    for notebook in NOTEBOOKS:
        nb = nbformat.read(notebook, as_version=4)
        if sync.synced(notebook, nb):
            stale.append(notebook.name)
    readme = (sync.ROOT / "README.md").read_text()
    assert stale == [], "run `python tools/sync_notebooks.py` and `make execute`"
    assert sync.synced_readme(readme) == readme, (
        "README table is stale: run tools/sync_notebooks.py"
    )


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_badge_points_at_this_notebook_and_first_code_cell_is_the_colab_cell(notebook):
    nb = nbformat.read(notebook, as_version=4)
    relative = notebook.relative_to(sync.ROOT).as_posix()
    assert f"/blob/main/{relative})" in nb.cells[0].source
    first_code = next(c for c in nb.cells if c.cell_type == "code")
    assert first_code.source == sync.colab_cell_source()
    assert first_code.outputs == [], "outside Colab the cell prints nothing"


def _run_cell(monkeypatch, *, in_colab: bool, installed: bool) -> tuple[list, str]:
    calls: list = []
    monkeypatch.setattr(subprocess, "run", lambda *args, **kwargs: calls.append((args, kwargs)))
    real_distribution = importlib.metadata.distribution

    def distribution(name):
        if name != "loop-lab":
            return real_distribution(name)
        if installed:
            return object()
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "distribution", distribution)
    if in_colab:
        monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    else:
        monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        exec(sync.colab_cell_source(), {})
    return calls, out.getvalue()


def test_outside_colab_the_cell_does_nothing(monkeypatch):
    calls, printed = _run_cell(monkeypatch, in_colab=False, installed=False)
    assert calls == [] and printed == ""


def test_in_colab_it_installs_the_helper_package_without_torch(monkeypatch):
    calls, printed = _run_cell(monkeypatch, in_colab=True, installed=False)
    assert len(calls) == 1
    command = calls[0][0][0]
    assert command[:4] == [sys.executable, "-m", "pip", "install"]
    assert "--no-deps" in command, "must not pull in (or upgrade) Colab's torch"
    owner, name = sync.repository()
    assert command[-1] == f"loop-lab @ git+https://github.com/{owner}/{name}@main"
    assert not any("torch" in part for part in command[:-1])
    assert calls[0][1] == {"check": True}
    assert printed == ""


def test_in_colab_running_it_twice_installs_once(monkeypatch):
    first, _ = _run_cell(monkeypatch, in_colab=True, installed=False)
    second, _ = _run_cell(monkeypatch, in_colab=True, installed=True)
    assert len(first) == 1 and second == []


def test_the_repository_url_lives_in_pyproject():
    owner, name = sync.repository()
    text = (sync.ROOT / "pyproject.toml").read_text()
    assert f"https://github.com/{owner}/{name}" in text
    assert sync.colab_url(NOTEBOOKS[0]).startswith(
        f"https://colab.research.google.com/github/{owner}/{name}/"
    )


def test_another_module_called_helpers_does_not_stop_the_install(monkeypatch, tmp_path):
    (tmp_path / "helpers.py").write_text("")  # some other project's helpers, importable
    monkeypatch.syspath_prepend(str(tmp_path))
    calls, _ = _run_cell(monkeypatch, in_colab=True, installed=False)
    assert len(calls) == 1
