"""tests/outputs.py: a run's outputs against the stored ones, as strict nbval compares them.

make test leaves the widget notebooks' nbval runs to the browser tests, which compare with
`output_differences`; these tests show that it sees what nbval would see, and no more.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from tests.outputs import as_notebook, output_differences

ROOT = Path(__file__).resolve().parents[1]


def _cell(source: str, *outputs, count: int | None = 1, tags: list[str] | None = None):
    cell = new_code_cell(source, execution_count=count, outputs=list(outputs))
    if tags:
        cell.metadata["tags"] = tags
    return cell


def _stdout(text: str):
    return new_output("stream", name="stdout", text=text)


def _result(text: str, **more):
    return new_output("execute_result", data={"text/plain": text, **more}, execution_count=1)


def _pair(stored_cell, run_cell):
    stored = new_notebook(cells=[new_markdown_cell("# t"), stored_cell])
    run = new_notebook(cells=[new_markdown_cell("# t"), run_cell])
    return output_differences(stored, run)


def test_the_same_outputs_show_no_difference():
    cell = _cell("print(1)\n1", _stdout("1\n"), _result("1"))
    assert _pair(cell, copy.deepcopy(cell)) == []


def test_different_text_is_a_difference_named_by_cell_and_key():
    (difference,) = _pair(_cell("print(x)", _stdout("1\n")), _cell("print(x)", _stdout("2\n")))
    assert difference.startswith("code cell 0 ('print(x)'), stdout:")
    assert "'1\\n'" in difference and "'2\\n'" in difference


def test_a_missing_or_extra_output_is_a_difference():
    assert _pair(_cell("f()", _stdout("a\n")), _cell("f()", _stdout("a\n"), _result("3")))
    assert _pair(_cell("f()", _stdout("a\n"), _result("3")), _cell("f()", _stdout("a\n")))
    stderr = new_output("stream", name="stderr", text="warning\n")
    assert _pair(_cell("f()", _stdout("a\n")), _cell("f()", _stdout("a\n"), stderr))


def test_html_and_markdown_outputs_are_compared_and_pictures_are_not():
    table = new_output("display_data", data={"text/markdown": "| a |", "image/png": "AAAA"})
    other = new_output("display_data", data={"text/markdown": "| b |", "image/png": "AAAA"})
    assert _pair(_cell("show()", table), _cell("show()", other))
    new_picture = new_output("display_data", data={"text/markdown": "| a |", "image/png": "BBBB"})
    assert _pair(_cell("show()", table), _cell("show()", new_picture)) == []


def test_what_nbval_forgives_is_forgiven():
    """Stream chunks merged, carriage returns applied, addresses and kernel paths sanitized,
    widget model ids and execution counts ignored."""
    stored = _cell(
        "run()",
        _stdout("<object at 0x7f00> done\n"),
        _result("W", **{"application/vnd.jupyter.widget-view+json": {"model_id": "aa"}}),
    )
    run = _cell(
        "run()",
        _stdout("<object at 0x5512>"),
        _stdout(" 50%\r<object at 0x1> done\n"),
        _result("W", **{"application/vnd.jupyter.widget-view+json": {"model_id": "bb"}}),
        count=7,
    )
    assert _pair(stored, run) == []


def test_cells_nbval_would_not_compare_are_not_compared():
    ignored = _cell("show()", _stdout("a\n"), tags=["nbval-ignore-output"])
    assert _pair(ignored, _cell("show()", _stdout("b\n"))) == []
    unrun = _cell("show()", count=None)
    assert _pair(unrun, _cell("show()", _stdout("b\n"))) == []


def test_other_code_is_refused_rather_than_compared():
    assert _pair(_cell("a()"), _cell("b()")) == [
        "the run's code cells are not the stored notebook's"
    ]


def test_a_front_end_model_compares_like_the_file_it_came_from():
    """JupyterLab's toJSON keeps lines as lists and empty attachments as null; a stored
    notebook, read back as such a model, shows no difference from itself, and a changed
    output in it is found."""
    path = ROOT / "notebooks" / "07_training_loop.ipynb"
    stored = nbformat.read(path, as_version=4)
    model = json.loads(path.read_text(encoding="utf-8"))
    for cell in model["cells"]:
        if cell["cell_type"] == "markdown":
            cell["attachments"] = None
    assert output_differences(stored, as_notebook(model)) == []
    code = [c for c in model["cells"] if c["cell_type"] == "code"]
    printed = next(c for c in code if any(o.get("name") == "stdout" for o in c["outputs"]))
    stream = next(o for o in printed["outputs"] if o.get("name") == "stdout")
    stream["text"] = ["something else\n"]
    assert len(output_differences(stored, as_notebook(model))) == 1
