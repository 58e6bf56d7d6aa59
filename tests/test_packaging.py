"""The install files agree: requirements.txt, environment.yml and the helper package."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
import yaml

import helpers

ROOT = Path(__file__).resolve().parents[1]
# conda-forge names for the same packages
CONDA_NAMES = {"pytorch-cpu": "torch", "matplotlib-base": "matplotlib"}


def _names(lines: list[str]) -> set[str]:
    names = set()
    for line in lines:
        line = line.split("#")[0].strip()
        if not line or line.startswith("-"):
            continue
        names.add(re.split(r"[<>=!~\s\[]", line, maxsplit=1)[0].lower())
    return names


def test_requirements_and_environment_name_the_same_packages():
    pip_names = _names((ROOT / "requirements.txt").read_text().splitlines())
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda = [d for d in env["dependencies"] if isinstance(d, str)]
    conda_names = {CONDA_NAMES.get(n, n) for n in _names(conda)} - {"python", "pip"}
    assert pip_names == conda_names
    assert {
        "torch",
        "torchvision",
        "jupyterlab",
        "ipywidgets",
        "matplotlib",
        "scikit-learn",
        "tqdm",
    } <= pip_names


def test_environment_uses_a_cpu_only_pytorch():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    names = _names([d for d in env["dependencies"] if isinstance(d, str)])
    assert "pytorch-cpu" in names and "pytorch" not in names and "torch" not in names


def test_ranges_admit_the_versions_installed_here():
    import torch
    import torchvision

    text = (ROOT / "requirements.txt").read_text()
    for name, version in (("torch", torch.__version__), ("torchvision", torchvision.__version__)):
        major_minor = tuple(int(x) for x in version.split("+")[0].split(".")[:2])
        low = re.search(rf"^{name}>=(\d+)\.(\d+)", text, re.M)
        assert low and major_minor >= (int(low.group(1)), int(low.group(2)))


def test_every_helper_module_declares_all_and_documents_its_public_functions():
    for path in sorted(Path(helpers.__file__).parent.rglob("*.py")):
        tree = ast.parse(path.read_text())
        if path.name.startswith("_") and path.name != "__init__.py":
            continue
        if "exercises" in path.parts:
            continue
        names = [
            t.id
            for node in tree.body
            if isinstance(node, (ast.Assign, ast.AnnAssign))
            for t in (node.targets if isinstance(node, ast.Assign) else [node.target])
            if isinstance(t, ast.Name)
        ]
        assert "__all__" in names, f"{path.name} has no __all__"
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and not node.name.startswith("_"):
                assert ast.get_docstring(node), f"{path.name}: {node.name} has no docstring"


def _lock() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "requirements-lock.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, _, version = line.partition("==")
            assert version, f"requirements-lock.txt: {line!r} is not NAME==VERSION"
            pins[re.sub(r"[-_.]+", "-", name).lower()] = version
    return pins


def _requirements() -> list:
    from packaging.requirements import Requirement

    found = []
    for file in ("requirements.txt", "requirements-dev.txt"):
        for line in (ROOT / file).read_text().splitlines():
            line = line.split("#")[0].strip()
            if line and not line.startswith("-"):
                requirement = Requirement(line)
                if requirement.marker is None or requirement.marker.evaluate():
                    found.append(requirement)
    return found


def test_the_lock_pins_every_requirement_inside_its_range():
    pins = _lock()
    for requirement in _requirements():
        name = re.sub(r"[-_.]+", "-", requirement.name).lower()
        assert name in pins, f"requirements-lock.txt has no pin for {requirement.name}"
        assert requirement.specifier.contains(pins[name], prereleases=True), (
            f"the lock's {name}=={pins[name]} is outside {requirement}: run `make lock`"
        )


def test_this_venv_runs_the_locked_versions():
    from importlib.metadata import version

    pins = _lock()
    for requirement in _requirements():
        name = re.sub(r"[-_.]+", "-", requirement.name).lower()
        installed = version(requirement.name).split("+")[0]
        assert installed == pins[name], (
            f"{name} {installed} is installed but the lock says {pins[name]}: run `make test`, "
            "which installs requirements-lock.txt"
        )


# import name → the distribution that provides it
_DISTRIBUTIONS = {"sklearn": "scikit-learn", "PIL": "pillow", "IPython": "ipython"}


def test_pyproject_declares_every_package_the_helpers_import():
    import sys

    tomllib = pytest.importorskip("tomllib")  # Python 3.11+

    declared = _names(
        tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    )
    imported = set()
    for path in (ROOT / "helpers").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                imported.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                imported.add(node.module.split(".")[0])
    third_party = {
        name for name in imported if name not in sys.stdlib_module_names and name != "helpers"
    }
    missing = sorted(
        _DISTRIBUTIONS.get(n, n)
        for n in third_party
        if _DISTRIBUTIONS.get(n, n).lower() not in declared
    )
    assert not missing, f"helpers import {missing}, which pyproject.toml's dependencies lack"
