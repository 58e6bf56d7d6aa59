"""tools/bench.py: the figures it measures are real, and the report marks them against budgets."""

from __future__ import annotations

from pathlib import Path

import pytest

from tools import bench


def test_budgets_follow_the_notebook_number():
    assert bench.time_budget(Path("05_x.ipynb")) == 8
    assert bench.time_budget(Path("08_x.ipynb")) == 10
    assert bench.time_budget(Path("12_x_solutions.ipynb")) == 15


@pytest.mark.slow
def test_a_real_run_reports_time_and_kernel_memory():
    seconds, peak_mb, teardown = bench.run_once(bench.floor_notebook(), bench.ROOT / "notebooks")
    assert 0 < seconds < 600  # seconds, not ms; generous: a loaded 2-core machine is slow
    assert 0 < teardown < 600  # the kernel's shutdown, timed apart from the run
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
            "teardown_s": 1.0,
            "budget_s": 8,
        },
        {
            "notebook": "notebooks/02_b.ipynb",
            "median_s": 9.0,
            "ratio": 2.7,
            "peak_mb": 1300,
            "teardown_s": 1.0,
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
    row = {"median_s": 50.0, "ratio": 15.0, "peak_mb": 700, "budget_s": 8, "teardown_s": 1.0}
    rows = [
        {**row, "notebook": "notebooks/01_a.ipynb"},
        {**row, "notebook": "notebooks/solutions/01_a_solutions.ipynb"},
    ]
    text = bench.report(rows, 3.3, [], runs=3, repeats=20, lesson_floor=6.0)
    assert "one after another: 50.0 s (budget 85 s) ✅" in text
    assert "Lesson floor (a notebook that imports torch" in text and "): 6.00 s" in text
    assert "1 × the lesson floor is 6.0 s" in text
    assert "solutions included, one after another: 100.0 s" in text


def test_readme_memory_table_is_rewritten_for_every_learner_notebook(tmp_path, monkeypatch):
    readme = tmp_path / "README.md"
    readme.write_text(f"before\n{bench.MEMORY_START}\nold\n{bench.MEMORY_END}\nafter\n")
    monkeypatch.setattr(bench, "README", readme)
    monkeypatch.setattr(bench, "FLOOR_PEAK_MB", 512.0)
    row = {"median_s": 5.0, "ratio": 1.5, "budget_s": 8, "teardown_s": 1.0}
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


def test_a_one_notebook_bench_updates_only_its_own_readme_row(tmp_path, monkeypatch):
    readme = tmp_path / "README.md"
    old_rows = "| 01_a.ipynb | 600 |\n| 02_b.ipynb | 700 |"
    readme.write_text(
        f"before\n{bench.MEMORY_START}\nMeasured...\n\n{old_rows}\n{bench.MEMORY_END}\n"
    )
    monkeypatch.setattr(bench, "README", readme)
    row = {"median_s": 5.0, "ratio": 1.5, "budget_s": 8, "teardown_s": 1.0}
    bench.update_readme(
        [{**row, "notebook": "notebooks/14_new.ipynb", "peak_mb": 650.2}], keep_other_rows=True
    )
    text = readme.read_text()
    assert "| 01_a.ipynb | 600 |\n| 02_b.ipynb | 700 |\n| 14_new.ipynb | 650 |" in text
    bench.update_readme(
        [{**row, "notebook": "notebooks/02_b.ipynb", "peak_mb": 710}], keep_other_rows=True
    )
    assert "| 02_b.ipynb | 710 |" in readme.read_text() and "| 02_b.ipynb | 700 |" not in (
        readme.read_text()
    )


def test_the_targets_section_reports_time_budget_status_and_load(tmp_path, monkeypatch):
    rows = [
        {
            "target": "make check",
            "seconds": 140.4,
            "cpu_s": 250.2,
            "budget_s": 150,
            "status": 0,
            "summary": "1500 passed in 130.00s",
            "load": "5.00, 4.00, 3.00 before, 6.00, 5.00, 4.00 after",
        },
        {
            "target": "make test, pytest phase (make test-pytest)",
            "seconds": 250.0,
            "budget_s": 240,
            "status": 2,
            "summary": "1 failed, 1600 passed in 200.00s",
            "load": "x",
        },
    ]
    block = bench.targets_block(rows)
    assert "| make check | 140 | 250 | 150 | ✅ | 0 | 1500 passed in 130.00s | 5.00" in block
    assert "| 250 | 0 | 240 | ❌ over budget | 2 | 1 failed" in block
    monkeypatch.setattr(bench, "RESULTS", tmp_path / "results.md")
    first = bench.with_targets("# Benchmark results\n\nnotebooks\n", block)
    assert first.endswith(bench.TARGETS_END + "\n") and "notebooks" in first
    bench.RESULTS.write_text(first)
    # A bench without --targets keeps the last measured section.
    assert bench.TARGETS_START in bench.with_targets("# new notebook figures\n", None)


def test_pytest_summaries_are_read_from_the_output():
    output = (
        "...\n==== 3 passed, 1 skipped in 2.00s ====\nmore\n==== 1 failed, 4 passed in 9.10s ====\n"
    )
    assert bench._summary(output) == "3 passed, 1 skipped in 2.00s; 1 failed, 4 passed in 9.10s"
    assert bench._summary("make: *** Error") == "no pytest summary (see the output)"
