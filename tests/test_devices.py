"""Every notebook computes where helpers.environment.NOTEBOOK_DEVICES says, and says so."""

from __future__ import annotations

import io
import json
import re
import tokenize
from pathlib import Path

import pytest
import torch

from helpers.environment import NOTEBOOK_DEVICES, notebook_devices, pick_device

ROOT = Path(__file__).resolve().parents[1]
LESSONS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
SOLUTIONS = sorted((ROOT / "notebooks" / "solutions").glob("[0-9][0-9]_*_solutions.ipynb"))
TABLED = [p for p in LESSONS if p.name[:2] != "00"]  # 00 trains nothing
CALLS_PICK_DEVICE = re.compile(r"\bpick_device\(")
# A GPU named as a device: "cuda", 'mps', "cuda:1", or .cuda() / .mps() on a tensor or model.
NAMES_A_GPU = re.compile(r"""["'](cuda|mps)(:\d+)?["']|\.(cuda|mps)\(""")
SAYS_CPU = "runs on the CPU"


def _cells(path: Path, kind: str) -> list[str]:
    nb = json.loads(path.read_text(encoding="utf-8"))
    sources = [c["source"] for c in nb["cells"] if c["cell_type"] == kind]
    return ["".join(s) if isinstance(s, list) else s for s in sources]


def _without_comments(source: str) -> str:
    """The code without its comments, so that a comment may talk about cuda."""
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    except (tokenize.TokenError, IndentationError, SyntaxError):
        return source  # not plain Python (a magic, say): check it as it is
    lines = source.splitlines(keepends=True)
    for token in tokens:
        if token.type == tokenize.COMMENT:  # at most one per line: cut it out of its line
            row, column = token.start
            lines[row - 1] = lines[row - 1][:column] + lines[row - 1][column + len(token.string) :]
    return "".join(lines)


def _code(path: Path) -> str:
    return "\n".join(_without_comments(source) for source in _cells(path, "code"))


def _ids(paths: list[Path]) -> list[str]:
    return [p.name for p in paths]


def test_the_table_covers_every_lesson_notebook_and_nothing_else():
    assert sorted(NOTEBOOK_DEVICES) == [p.name[:2] for p in TABLED]
    for number, (choice, reason) in NOTEBOOK_DEVICES.items():
        assert choice in ("best", "cpu"), number
        assert reason.strip(), f"{number}: give the reason"


@pytest.mark.parametrize("path", TABLED, ids=_ids(TABLED))
def test_each_lesson_computes_where_the_table_says(path):
    choice, reason = NOTEBOOK_DEVICES[path.name[:2]]
    code, prose = _code(path), "\n".join(_cells(path, "markdown"))
    if choice == "best":
        assert CALLS_PICK_DEVICE.search(code), f"{path.name} should use pick_device() ({reason})"
        assert SAYS_CPU not in prose, f"{path.name} uses pick_device() but says it {SAYS_CPU}"
    else:
        assert not CALLS_PICK_DEVICE.search(code), f"{path.name} is pinned to the CPU ({reason})"
        found = NAMES_A_GPU.search(code)
        assert found is None, f"{path.name} is pinned to the CPU but names {found.group(0)}"
        assert SAYS_CPU in prose, (
            f"{path.name} is pinned to the CPU ({reason}): say in a sentence that it "
            f"{SAYS_CPU}, and why"
        )


@pytest.mark.parametrize("path", SOLUTIONS, ids=_ids(SOLUTIONS))
def test_solutions_run_their_answers_on_the_cpu(path):
    code = _code(path)
    assert not CALLS_PICK_DEVICE.search(code), "solutions run on the CPU, as the checkers do"
    found = NAMES_A_GPU.search(code)
    assert found is None, f"a solution names {found.group(0)}"


@pytest.mark.parametrize(
    ("source", "names_a_gpu"),
    [
        ('x = torch.ones(3, device="cuda")', True),
        ("model.to('mps')", True),
        ('torch.device("cuda:1")', True),
        ("model.cuda()", True),
        ('device = torch.device("cpu")  # not "cuda": the lesson compares bits', False),
        ("torch.cuda.is_available()", False),
        ("print('the CPU')", False),
    ],
)
def test_the_gpu_pattern_sees_devices_not_comments(source, names_a_gpu):
    assert bool(NAMES_A_GPU.search(_without_comments(source))) is names_a_gpu


def test_notebook_devices_follows_the_table():
    on_gpu = notebook_devices(torch.device("cuda"))
    assert on_gpu.keys() == NOTEBOOK_DEVICES.keys()
    for number, (choice, _) in NOTEBOOK_DEVICES.items():
        assert on_gpu[number] == ("cuda" if choice == "best" else "cpu")
    assert set(notebook_devices(torch.device("cpu")).values()) == {"cpu"}
    assert notebook_devices(torch.device("mps"))["07"] == "mps"
    here = str(pick_device())
    assert notebook_devices() == {
        n: here if choice == "best" else "cpu" for n, (choice, _) in NOTEBOOK_DEVICES.items()
    }
