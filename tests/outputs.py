"""Stored outputs against a new run's, compared as strict nbval compares them.

Two tests compare outputs without nbval running the notebook: tests/test_answer_key.py (the
solutions, run in one process) and the browser tests (the notebooks Run All runs in JupyterLab,
which make test then leaves out of its nbval run: a notebook's cells run once there). Both use
this module, so that "the same as nbval" means one thing: nbval's own stream merging
(`coalesce_streams`, which also applies carriage returns and backspaces), the substitutions of
tests/nbval_sanitize.cfg, the keys nbval skips, and nbval's cell tags.
"""

from __future__ import annotations

import configparser
import copy
import re
from collections import defaultdict
from pathlib import Path

import nbformat
from nbval.plugin import coalesce_streams

ROOT = Path(__file__).resolve().parents[1]
# What strict nbval leaves out of a comparison (nbval.plugin.IPyNbFile.skip_compare, and the
# pictures, which it skips unless nbdime is asked for): every other key of every output counts.
SKIPPED = {
    "metadata",
    "traceback",
    "prompt_number",
    "output_type",
    "execution_count",
    "application/vnd.jupyter.widget-view+json",  # a widget's model id is new in every run
    "image/png",
    "image/jpeg",
}
NOT_COMPARED_TAGS = {"nbval-ignore-output", "nbval-skip"}


def _sanitizers() -> list[tuple[re.Pattern, str]]:
    """The substitutions strict nbval applies before comparing (tests/nbval_sanitize.cfg)."""
    config = configparser.ConfigParser()
    config.read(ROOT / "tests" / "nbval_sanitize.cfg")
    return [(re.compile(config[s]["regex"]), config[s]["replace"]) for s in config.sections()]


SANITIZERS = _sanitizers()


def sanitized(text: str) -> str:
    """`text` with nbval's substitutions applied."""
    for pattern, replacement in SANITIZERS:
        text = pattern.sub(replacement, text)
    return text


def comparable(outputs: list) -> dict[str, list]:
    """A cell's outputs as nbval compares them: each key (a stream's name, a MIME type) with the
    list of its sanitized values, in order."""
    table: dict[str, list] = defaultdict(list)
    merged = coalesce_streams([nbformat.from_dict(o) for o in outputs])  # new nodes: a copy
    for output in merged:
        if output.output_type == "stream":
            table[output.name].append(sanitized(output.text))
            continue
        for key, value in output.items():
            if key == "data":
                for mime, shown in value.items():
                    if mime not in SKIPPED:
                        table[mime].append(sanitized(shown) if isinstance(shown, str) else shown)
            elif key not in SKIPPED:
                table[key].append(sanitized(value) if isinstance(value, str) else value)
    return dict(table)


def _joined(value: object) -> object:
    """A multiline string stored as a list of lines, joined (as nbformat does on reading)."""
    if isinstance(value, list) and all(isinstance(line, str) for line in value):
        return "".join(value)
    return value


def as_notebook(model: dict) -> nbformat.NotebookNode:
    """A notebook model (JupyterLab's toJSON) as nbformat reads a file: lines joined."""
    model = copy.deepcopy(model)
    for cell in model["cells"]:
        cell["source"] = _joined(cell["source"])
        for output in cell.get("outputs", []):
            if "text" in output:
                output["text"] = _joined(output["text"])
            for mime, value in output.get("data", {}).items():
                output["data"][mime] = _joined(value)
    return nbformat.from_dict(model)


def output_differences(stored: nbformat.NotebookNode, run: nbformat.NotebookNode) -> list[str]:
    """Where `run`'s outputs differ from `stored`'s, cell by cell, as strict nbval would see it.

    Like nbval, a cell stored unrun (no execution count) or tagged nbval-ignore-output or
    nbval-skip is not compared; every other code cell must show the same keys with the same
    sanitized values.
    """
    stored_code = [c for c in stored.cells if c.cell_type == "code"]
    run_code = [c for c in run.cells if c.cell_type == "code"]
    if [c.source for c in stored_code] != [c.source for c in run_code]:
        return ["the run's code cells are not the stored notebook's"]
    differences = []
    for index, (before, after) in enumerate(zip(stored_code, run_code, strict=True)):
        if before.execution_count is None or NOT_COMPARED_TAGS & set(
            before.metadata.get("tags", [])
        ):
            continue
        expected, shown = comparable(before.outputs), comparable(after.outputs)
        for key in sorted(expected.keys() | shown.keys()):
            if expected.get(key) != shown.get(key):
                differences.append(
                    f"code cell {index} ({before.source.strip().splitlines()[0][:60]!r}), {key}:\n"
                    f"  stored: {expected.get(key, [])!r:.600}\n"
                    f"  now:    {shown.get(key, [])!r:.600}"
                )
    return differences
