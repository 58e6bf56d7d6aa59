"""tools/compat.py's own logic, without building a venv: the newest release from pip's answer,
what each column installs, the first error of a run, the table, the Colab tag-stripping and the
git redirection that lets the Colab cell's `pip install git+https://github.com/...` read this
repository."""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import nbformat
import pytest
import yaml
from nbclient.exceptions import CellExecutionError, CellTimeoutError

from tools import compat
from tools import sync_notebooks as sync

PIP_INDEX = """\
torch (2.15.0)
Available versions: 2.15.0, 2.14.1, 2.14.0, 2.13.0, 2.9.1, 2.10.0, 2.1.2, 1.13.1
"""
REQUIREMENTS = """\
# comment
torch>=2.3.1,<3
torchvision>=0.18.1,<1
numpy>=2.0,<3
jupyterlab>=4.0,<5
ipywidgets>=7.7,<9  # trailing comment
scikit-learn>=1.4.2,<2; python_version < "4"
"""


def test_newest_version_is_the_highest_final_release_whatever_the_order():
    assert compat.newest_version(PIP_INDEX) == "2.15.0"
    shuffled = "Available versions: 2.9.1, 2.10.0, 2.16.0rc1, 2.13.0+cpu, 2.2.0\n"
    assert compat.newest_version(shuffled) == "2.10.0"
    assert compat.version_key("2.10.0") > compat.version_key("2.9.1")
    assert compat.version_key("2.16.0rc1") is None


def test_newest_version_refuses_an_answer_without_versions():
    with pytest.raises(ValueError, match="Available versions"):
        compat.newest_version("ERROR: No matching distribution found for torch")


@pytest.mark.parametrize(
    ("line", "pin"),
    [
        ("numpy>=2.0,<3", "numpy==2.0"),
        ("scikit_learn >= 1.4.2, <2", "scikit-learn==1.4.2"),
        ('tqdm>=4.65,<5; python_version < "4"', 'tqdm==4.65; python_version < "4"'),
        ("something<2", "something<2"),
    ],
)
def test_floor_pin_takes_the_lower_bound(line, pin):
    assert compat.floor_pin(line) == pin


def test_the_floor_column_installs_every_lower_bound_and_no_front_end():
    packages = compat.install_list(compat.FLOOR, REQUIREMENTS, None, None)
    assert packages[:2] == ["torch==2.3.1", "torchvision==0.18.1"]
    tried = compat.install_list(compat.FLOOR, REQUIREMENTS, "2.2.2", "0.17.2")  # --torch floor=
    assert tried[:2] == ["torch==2.2.2", "torchvision==0.17.2"] and "numpy==2.0" in tried
    assert "numpy==2.0" in packages and "ipywidgets==7.7" in packages
    assert 'scikit-learn==1.4.2; python_version < "4"' in packages
    assert not any(p.startswith("jupyterlab") for p in packages)
    assert packages[-2:] == ["nbclient", "ipykernel"]


def test_the_newest_column_lets_pip_pair_torchvision_within_the_range():
    packages = compat.install_list(compat.NEWEST, REQUIREMENTS, "2.15.0", None)
    assert packages[:3] == ["torch==2.15.0", "torchvision>=0.18.1,<1", "numpy>=2.0,<3"]


def test_the_colab_column_installs_colabs_packages_not_the_requirements():
    packages = compat.install_list(compat.COLAB, REQUIREMENTS, "2.9.1", "0.24.1")
    assert packages[:2] == ["torch==2.9.1", "torchvision==0.24.1"]
    assert "ipywidgets==7.7.1" in packages and "numpy>=2.0,<3" not in packages
    assert [p for p in packages if compat.requirement_name(p) == "ipykernel"] == [
        "ipykernel==6.17.1"
    ]


def _floors(lines) -> dict[str, str]:
    floors = {}
    for line in lines:
        found = re.match(r"\s*([\w.-]+)\s*>=\s*([\w.]+)", str(line))
        if found:
            name = compat.requirement_name(found.group(1))
            floors[CONDA_NAMES.get(name, name)] = found.group(2)
    return floors


CONDA_NAMES = {"pytorch-cpu": "torch", "matplotlib-base": "matplotlib"}


def test_every_install_file_declares_the_floor_that_compat_tests():
    requirements = (compat.ROOT / "requirements.txt").read_text()
    declared = _floors(compat._requirement_lines(requirements))
    floor_column = compat.install_list(compat.FLOOR, requirements, None, None)
    for name in ("torch", "torchvision", "numpy", "matplotlib", "scikit-learn", "ipywidgets"):
        assert f"{name}=={declared[name]}" in floor_column
    environment = yaml.safe_load((compat.ROOT / "environment.yml").read_text())
    conda = _floors(d for d in environment["dependencies"] if isinstance(d, str))
    assert conda == declared, "environment.yml and requirements.txt declare different floors"
    pyproject = (compat.ROOT / "pyproject.toml").read_text()
    dependencies = re.search(r"^dependencies = \[(.*?)\]", pyproject, re.M | re.S).group(1)
    package = _floors(part.strip(' "\n') for part in dependencies.split(",") if part.strip())
    shared = {name for name in package if name in declared}  # pyproject also names ipython, pillow
    assert {"torch", "torchvision", "numpy", "scikit-learn", "matplotlib"} <= shared, package
    assert all(declared[name] == package[name] for name in shared), package


def test_a_numpy_2_floor_needs_a_torch_built_for_numpy_2():
    declared = _floors(compat._requirement_lines((compat.ROOT / "requirements.txt").read_text()))
    if compat.version_key(declared["numpy"]) >= (2,):
        # torch 2.1 and 2.2 wheels fail under NumPy 2 with "Numpy is not available"
        assert compat.version_key(declared["torch"]) >= (2, 3)


def test_strip_tags_removes_every_tag_so_raises_exception_is_not_honoured():
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell("1 / 0", metadata={"tags": ["raises-exception"]}),
        nbformat.v4.new_markdown_cell("text", metadata={"tags": ["a", "b"]}),
        nbformat.v4.new_code_cell("x = 1"),
    ]
    assert compat.strip_tags(nb) == 3
    assert all("tags" not in cell.metadata for cell in nb.cells)
    assert compat.strip_tags(nb) == 0


TRACEBACK = [
    "\x1b[0;31m---------------------------------------------------------------------------\x1b[0m",
    "\x1b[0;31mAssertionError\x1b[0m                            Traceback (most recent call last)",
    "Cell \x1b[0;32mIn[7], line 3\x1b[0m\n\x1b[1;32m      1\x1b[0m x = 1\n"
    "\x1b[0;32m----> 3\x1b[0m \x1b[38;5;28;01massert\x1b[39;00m match, \x1b[38;5;124m'order'\x1b[39;00m\n",
    "\x1b[0;31mAssertionError\x1b[0m: masks differ\nsecond line",
]


def _failed_notebook():
    nb = nbformat.v4.new_notebook()
    error = {
        "output_type": "error",
        "ename": "AssertionError",
        "evalue": "masks differ\nsecond line",
    }
    failing = nbformat.v4.new_code_cell("x = 1\n\nassert match, 'order'")
    failing.outputs = [
        nbformat.v4.new_output("stream", name="stdout", text="before\n"),
        nbformat.from_dict({**error, "traceback": TRACEBACK}),
    ]
    nb.cells = [
        nbformat.v4.new_markdown_cell("# title"),
        nbformat.v4.new_code_cell("print('fine')"),
        failing,
        nbformat.v4.new_code_cell("never run"),
    ]
    return nb, failing, error


def test_first_error_names_the_cell_the_exception_and_the_line():
    nb, failing, error = _failed_notebook()
    exc = CellExecutionError.from_cell_and_msg(failing, {**error, "traceback": TRACEBACK})
    found = compat.first_error(nb, exc, started=2)
    assert found == {
        "cell": 2,
        "ename": "AssertionError",
        "message": "masks differ",
        "line": "assert match, 'order'",
    }
    assert compat.describe_failure({"ok": False, **found}) == (
        "cell 2: AssertionError: masks differ (at `assert match, 'order'`)"
    )


def test_first_error_of_a_timeout_uses_the_cell_that_was_running():
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("import time"), nbformat.v4.new_code_cell("sleep")]
    exc = CellTimeoutError("A cell timed out while it was being executed, after 300 seconds.\nmore")
    found = compat.first_error(nb, exc, started=1)
    assert found["cell"] == 1 and found["ename"] == "CellTimeoutError"
    assert found["message"].startswith("A cell timed out") and "more" not in found["message"]


def test_failing_line_reads_plain_and_coloured_tracebacks():
    assert compat.failing_line("----> 12 y = f(x)\n") == "y = f(x)"
    assert compat.failing_line(TRACEBACK) == "assert match, 'order'"
    assert compat.failing_line(["no arrow here"]) == ""


def test_the_table_has_a_row_per_notebook_and_the_pass_counts():
    results = {
        ("floor", "00.ipynb"): {"ok": True},
        ("floor", "06.ipynb"): {"ok": False, "cell": 5, "ename": "AssertionError", "message": ""},
        ("newest", "00.ipynb"): {"ok": True},
        ("newest", "06.ipynb"): {"ok": True},
    }
    table = compat.format_table(["floor", "newest", "colab"], ["00.ipynb", "06.ipynb"], results)
    lines = table.splitlines()
    assert lines[0].split() == ["notebook", "floor", "newest", "colab"]
    assert lines[2].split() == ["00.ipynb", "pass", "pass", "-"]
    assert lines[3].split() == ["06.ipynb", "FAIL", "pass", "-"]
    assert lines[-1].split() == ["passed", "1/2", "2/2", "0/0"]
    assert len({len(line) for line in lines[:2]}) == 1  # the rule is as wide as the header
    failures = compat.failure_lines(["floor", "newest"], ["00.ipynb", "06.ipynb"], results)
    assert failures == ["floor  06.ipynb  cell 5: AssertionError"]


def test_notebooks_are_chosen_by_path_or_by_part_of_the_name():
    every = compat.notebooks([])
    assert every == sync.notebooks()
    chosen = compat.notebooks(["06_"])
    assert [compat.label(p) for p in chosen] == [
        "06_zero_grad_and_accumulation.ipynb",
        "solutions/06_zero_grad_and_accumulation_solutions.ipynb",
    ]
    with pytest.raises(SystemExit):
        compat.notebooks(["no-such-notebook"])


def test_the_repository_is_the_one_the_colab_cell_installs_from():
    owner, name = compat.repository()
    assert (owner, name) == sync.repository()
    assert f"git+https://github.com/{owner}/{name}@main" in sync.colab_cell_source()


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_git_config_sends_the_github_url_to_the_local_repository(tmp_path):
    repo = tmp_path / "some repo"
    repo.mkdir()
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-C", str(repo)]
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
    (repo / "f.txt").write_text("x")
    subprocess.run([*git, "add", "f.txt"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "one"], check=True)
    head = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True, check=True)
    config = tmp_path / "gitconfig"
    config.write_text(compat.git_config(repo, "someone", "project"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(GIT_CONFIG_GLOBAL=str(config), GIT_CONFIG_NOSYSTEM="1", GIT_TERMINAL_PROMPT="0")
    found = subprocess.run(
        ["git", "ls-remote", "https://github.com/someone/project", "main"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert found.returncode == 0, found.stderr
    assert found.stdout.split()[0] == head.stdout.strip()
