"""The order in which make check and make test hand test files to their two workers
(tests/conftest.py's longest_first)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from tests.conftest import longest_first


@dataclass
class Item:
    """What longest_first reads of a collected test: its id and whether it is marked slow."""

    nodeid: str
    slow: bool = False

    def get_closest_marker(self, name: str) -> object | None:
        return pytest.mark.slow if name == "slow" and self.slow else None


def test_files_with_a_slow_test_go_first_then_notebooks_then_the_rest():
    items = [
        Item("tests/test_a.py::one"),
        Item("tests/test_a.py::two"),
        Item("notebooks/01_x.ipynb::Cell 0"),
        Item("tests/test_b.py::quick"),
        Item("tests/test_b.py::launchers", slow=True),
        Item("notebooks/02_y.ipynb::Cell 0"),
        Item("notebooks/02_y.ipynb::Cell 1"),
        Item("tests/test_c.py::only", slow=True),
    ]
    order = [item.nodeid for item in longest_first(items)]
    assert order == [
        "tests/test_b.py::quick",  # a slow file, two tests: before the one-test slow file
        "tests/test_b.py::launchers",
        "tests/test_c.py::only",
        "notebooks/02_y.ipynb::Cell 0",  # the notebook with more cells first
        "notebooks/02_y.ipynb::Cell 1",
        "notebooks/01_x.ipynb::Cell 0",
        "tests/test_a.py::one",  # each file's tests stay together and in their own order
        "tests/test_a.py::two",
    ]


def test_the_two_worker_runs_use_this_order(pytestconfig):
    """The Makefile's runs turn xdist's own order off, which is what turns this one on."""
    makefile = (pytestconfig.rootpath / "Makefile").read_text()
    line = next(line for line in makefile.splitlines() if line.startswith("PYTEST :="))
    assert "--dist loadscope" in line and "--no-loadscope-reorder" in line
