"""tools/bench.py: the figures it measures are real, and the report marks them against budgets."""

from __future__ import annotations

from pathlib import Path

from tools import bench


def test_budgets_follow_the_notebook_number():
    assert bench.time_budget(Path("05_x.ipynb")) == 8
    assert bench.time_budget(Path("08_x.ipynb")) == 10
    assert bench.time_budget(Path("12_x_solutions.ipynb")) == 15


def test_a_real_run_reports_time_and_kernel_memory():
    seconds, peak_mb = bench.run_once(bench.floor_notebook(), bench.ROOT / "notebooks")
    assert 0 < seconds < 120
    assert 100 < peak_mb < 5000  # importing torch alone takes a few hundred MB


def test_every_widget_action_runs():
    actions = bench.widget_actions(repeats=3)
    names = [name for name, _ in actions]
    assert any("TrainingStepExplorer: backward" in n for n in names)
    assert any("learning-rate slider" in n for n in names)
    assert any("micro-batches" in n for n in names)
    for _, action in actions:
        action()


def test_report_marks_figures_over_budget():
    rows = [
        {
            "notebook": "notebooks/01_a.ipynb",
            "median_s": 5.0,
            "ratio": 1.5,
            "peak_mb": 700,
            "budget_s": 8,
        },
        {
            "notebook": "notebooks/02_b.ipynb",
            "median_s": 9.0,
            "ratio": 2.7,
            "peak_mb": 1300,
            "budget_s": 8,
        },
    ]
    widgets = [{"action": "x", "median_ms": 150.0, "p95_ms": 200.0}]
    text = bench.report(rows, 3.3, widgets, runs=3, repeats=20)
    lines = text.splitlines()
    first = next(line for line in lines if "01_a" in line)
    second = next(line for line in lines if "02_b" in line)
    assert first.count("✅") == 2 and second.count("❌") == 2
    assert "The learner's notebooks (notebooks/NN_*.ipynb), one after another: 14.0 s" in text
    assert "solutions included, one after another: 14.0 s" in text
    assert "| x | 150.0 | 200.0 | ❌ over budget |" in text


def test_solutions_count_in_the_total_but_not_in_the_learners_collection():
    row = {"median_s": 50.0, "ratio": 15.0, "peak_mb": 700, "budget_s": 8}
    rows = [
        {**row, "notebook": "notebooks/01_a.ipynb"},
        {**row, "notebook": "notebooks/solutions/01_a_solutions.ipynb"},
    ]
    text = bench.report(rows, 3.3, [], runs=3, repeats=20)
    assert "one after another: 50.0 s (budget 90 s) ✅" in text
    assert "solutions included, one after another: 100.0 s" in text


def test_readme_memory_table_is_rewritten_for_every_learner_notebook(tmp_path, monkeypatch):
    readme = tmp_path / "README.md"
    readme.write_text(f"before\n{bench.MEMORY_START}\nold\n{bench.MEMORY_END}\nafter\n")
    monkeypatch.setattr(bench, "README", readme)
    monkeypatch.setattr(bench, "FLOOR_PEAK_MB", 512.0)
    row = {"median_s": 5.0, "ratio": 1.5, "budget_s": 8}
    bench.update_readme(
        [
            {**row, "notebook": "notebooks/01_a.ipynb", "peak_mb": 640.4},
            {**row, "notebook": "notebooks/solutions/01_a_solutions.ipynb", "peak_mb": 900},
        ]
    )
    text = readme.read_text()
    assert text.startswith("before\n") and text.endswith("after\n") and "old" not in text
    assert "| 01_a.ipynb | 640 |" in text and "solutions" not in text
    assert "only ran `import torch` peaked at 512 MB" in text


def test_the_readme_lists_the_peak_memory_of_every_notebook():
    readme = bench.README.read_text()
    block = readme[readme.index(bench.MEMORY_START) : readme.index(bench.MEMORY_END)]
    for notebook in sorted((bench.ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        assert f"| {notebook.name} | " in block, f"README has no peak memory for {notebook.name}"
