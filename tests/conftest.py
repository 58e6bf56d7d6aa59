"""Shared test set-up: a fixed seed, no widget left over from the previous test, the `slow`
marker on the tests that take more than 10 s on 2 cores (make check leaves them to make test),
and --widget-notebooks-in-browser, with which make test's nbval run leaves the widget notebooks
to the browser tests."""

from __future__ import annotations

import gc

import pytest

# Slow tests in modules that do not mark their own: (module, test function, or a fixture every
# test that uses it is slow with). Measured with `pytest --durations=40` on 2 cores. A test
# module may instead mark its tests with @pytest.mark.slow; tests/test_bench.py and
# tests/test_new_notebook.py do.
SLOW_TESTS = {
    ("tests/test_distributed.py", "test_a_failing_rank_raises_a_clear_error_and_leaves_no_process"),
    ("tests/test_multinode.py", "test_two_launchers_with_the_notebooks_command_train_as_one_job"),
    ("tests/test_gpu_check.py", "test_the_nccl_run_of_train_ddp_reports_the_scripts_own_message"),
    ("tests/test_ipywidgets7.py", "test_every_explorer_works_on_ipywidgets_7_7"),
    ("tests/test_widget_learning_rate.py", "test_any_sequence_of_settings_gives_a_run_or_a_divergence"),
    ("tests/test_plots_graph.py", "test_fuzz_draw_graph_contains_exactly_the_leaves_the_output_depends_on"),
}  # fmt: skip
SLOW_FIXTURES = {("tests/test_distributed.py", "runs")}  # two DDP processes, started once


def pytest_addoption(parser: pytest.Parser) -> None:
    """--widget-notebooks-in-browser (make test's nbval run)."""
    parser.addoption(
        "--widget-notebooks-in-browser",
        action="store_true",
        help="leave out the nbval runs of the notebooks whose stored outputs hold a widget: the "
        "browser tests, run beside, Run All each of them in JupyterLab and compare its outputs "
        "as strict nbval does (tests/browser/test_run_all.py)",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark the slow tests listed above; with --widget-notebooks-in-browser, leave out the
    widget notebooks' nbval cells; put the longest files first (`longest_first`)."""
    if config.getoption("widget_notebooks_in_browser"):
        from tests.browser.jupyter import widget_notebooks

        in_browser = {path.resolve() for path in widget_notebooks()}
        left = [item for item in items if item.path.resolve() in in_browser]
        if left:
            config.hook.pytest_deselected(items=left)
            items[:] = [item for item in items if item.path.resolve() not in in_browser]
    for item in items:
        module = item.nodeid.split("::")[0]
        name = getattr(item, "originalname", item.name)
        fixtures = getattr(item, "fixturenames", ())
        if (module, name) in SLOW_TESTS or any(
            (module, fixture) in SLOW_FIXTURES for fixture in fixtures
        ):
            item.add_marker(pytest.mark.slow)
    if config.getoption("loadscopereorder", True) is False:  # the Makefile's two-worker runs
        items[:] = longest_first(items)


def longest_first(items: list[pytest.Item]) -> list[pytest.Item]:
    """The test files in the order the two workers should start them: files with a slow test,
    then the notebooks, then the rest; within each group, files with more tests first.

    Used where the Makefile turns off pytest-xdist's own order (files with more tests first,
    whatever they hold) with --no-loadscope-reorder: xdist then hands out whole files in this
    order. xdist's order left the slowest single tests (two torchrun launchers, the ipywidgets
    7.7 run) to the end of make test, each alone on one worker while the other had finished (15 s
    of one idle core). The many short files at the end now even out the two workers' finishing
    times.
    """
    files: dict[str, list[pytest.Item]] = {}
    for item in items:
        files.setdefault(item.nodeid.split("::")[0], []).append(item)

    def group(name: str) -> tuple[int, int]:
        tests = files[name]
        if any(item.get_closest_marker("slow") for item in tests):
            return 0, -len(tests)
        return (1 if name.endswith(".ipynb") else 2), -len(tests)

    return [item for name in sorted(files, key=group) for item in files[name]]


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    """Freeze the garbage collector as the run ends, so that Python's exit skips it.

    A process that has imported torch, torch._dynamo and matplotlib spends 1-2 s of CPU when it
    exits, mostly in the collector's passes over every object those modules made; pytest's own
    last collections (its unraisable-exception check) add more. Nothing is left to collect that
    matters: the tests have run, their reports are written, and the process is ending. Measured
    on these 2 cores, from a test's end to pytest's exit: 2.5-3.1 s without, 0.8-1.0 s with,
    with and without xdist. Every pytest process of make check and make test pays it once.
    """
    gc.freeze()


@pytest.fixture(autouse=True)
def _fresh_state():
    """Seed every generator before each test and close every widget after it."""
    from helpers.environment import seed_everything

    seed_everything(0)
    yield
    try:
        from ipywidgets import Widget

        Widget.close_all()
    except ImportError:
        pass


@pytest.fixture
def two_threads():
    """Two intra-op threads for one test, put back after it. make check and make test run with
    OMP_NUM_THREADS=1, so a test that code restores the thread count starts from two: a missing
    restore after a switch to one thread then shows."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    yield 2
    torch.set_num_threads(threads)
