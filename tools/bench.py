"""`make bench`: how fast the notebooks run, how much memory their kernels take, how fast the
widgets answer, and (with --targets) how long `make check` and `make test`'s pytest phase take.
Prints the tables, writes them to benchmarks/results.md and the README's memory table, and exits
0 either way: it reports against the budgets, it does not gate.

Usage: python tools/bench.py [--runs N] [--actions N] [--targets | --targets-only] [NOTEBOOK ...]

With NOTEBOOK paths it times only those notebooks and updates only their rows of the README's
memory table (`make bench NB=notebooks/NN_name.ipynb` after adding notebook NN).
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import nbformat
from nbclient import NotebookClient

# The kernel warns that it talks to us over TCP on 127.0.0.1 without encryption; harmless here.
QUIET_KERNEL = ["--IPKernelApp.log_level=ERROR"]
ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results.md"
PEAK_CELL = (
    "import resource as _r, sys as _s\n"
    "_peak = _r.getrusage(_r.RUSAGE_SELF).ru_maxrss\n"
    "print('LOOPLAB_PEAK_KB', _peak // 1024 if _s.platform == 'darwin' else _peak)"
)
FLOOR_SOURCE = "import torch"
# What nearly every notebook pays before its own lesson: torch, pyplot (every notebook plots) and
# one optimizer, whose construction imports torch._dynamo (torch/_compile.py), as importing
# torchvision does. The collection's budget cannot go below N times this.
LESSON_FLOOR_SOURCE = (
    "import matplotlib.pyplot as plt\nimport torch\n"
    "torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1).zero_grad()"
)
MEMORY_BUDGET_MB = 1200
COLLECTION_BUDGET_S = 85
WIDGET_BUDGET_MS = 100
# The test targets: what `make bench --targets` times, and their budgets on 2 cores.
TARGETS = {
    "make check": (["make", "--no-print-directory", "check"], 150),
    "make test, pytest phase (make test-pytest)": (
        ["make", "--no-print-directory", "test-pytest"],
        240,
    ),
}
TARGETS_START, TARGETS_END = "<!-- targets:start -->", "<!-- targets:end -->"
FLOOR_PEAK_MB = 0.0  # set by bench_notebooks: the kernel peak of the floor notebook
README = ROOT / "README.md"
MEMORY_START, MEMORY_END = "<!-- memory:start -->", "<!-- memory:end -->"


def time_budget(notebook: Path) -> float:
    """The run-time budget of a notebook, in seconds, by its number."""
    number = int(notebook.name[:2])
    return 15.0 if number >= 10 else 10.0 if number >= 7 else 8.0


def run_once(nb: nbformat.NotebookNode, cwd: Path) -> tuple[float, float, float]:
    """Execute a copy of `nb` in a fresh kernel: (seconds, kernel peak in MB, teardown seconds).

    The seconds run from the kernel's start to the last cell's reply: what a learner waits for
    after Run All in a fresh kernel. The kernel's shutdown afterwards (Python tearing down
    PyTorch's modules, 0.5-2 s, which no learner waits for) is timed apart, as teardown.
    """
    copy = nbformat.from_dict(nb)
    copy.cells.append(nbformat.v4.new_code_cell(PEAK_CELL))
    replies: list[float] = []
    client = NotebookClient(
        copy,
        timeout=600,
        kernel_name="python3",
        resources={"metadata": {"path": str(cwd)}},
        record_timing=False,
        extra_arguments=QUIET_KERNEL,
        on_cell_executed=lambda **_: replies.append(time.perf_counter()),
    )
    start = time.perf_counter()
    client.execute()
    end = time.perf_counter()
    text = "".join(o.get("text", "") for o in copy.cells[-1].outputs if o.output_type == "stream")
    peak_kb = int(text.split("LOOPLAB_PEAK_KB")[1].split()[0])
    return replies[-1] - start, peak_kb / 1024, end - replies[-1]


def floor_notebook(source: str = FLOOR_SOURCE) -> nbformat.NotebookNode:
    """A notebook of one cell (by default only `import torch`): the floor every notebook stands on."""
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source)])
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    return nb


def bench_notebooks(paths: list[Path], runs: int) -> tuple[list[dict], float, float]:
    """Median time and peak memory of each notebook over `runs` runs, the floor, the lesson floor."""
    floor_runs = [run_once(floor_notebook(), ROOT / "notebooks") for _ in range(runs)]
    floor = statistics.median(r[0] for r in floor_runs)
    lesson_floor = statistics.median(
        run_once(floor_notebook(LESSON_FLOOR_SOURCE), ROOT / "notebooks")[0] for _ in range(runs)
    )
    global FLOOR_PEAK_MB
    FLOOR_PEAK_MB = max(r[1] for r in floor_runs)
    rows = []
    for path in paths:
        nb = nbformat.read(path, as_version=4)
        results = [run_once(nb, path.parent) for _ in range(runs)]
        median = statistics.median(r[0] for r in results)
        peak = max(r[1] for r in results)
        teardown = statistics.median(r[2] for r in results)
        rows.append(
            {
                "notebook": path.relative_to(ROOT).as_posix(),
                "median_s": median,
                "ratio": median / floor,
                "peak_mb": peak,
                "teardown_s": teardown,
                "budget_s": time_budget(path),
            }
        )
        print(
            f"  {rows[-1]['notebook']}: {median:.1f} s (+ {teardown:.1f} s teardown), {peak:.0f} MB",
            flush=True,
        )
    return rows, floor, lesson_floor


def _timed(action: Callable[[], object], repeats: int) -> tuple[float, float]:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        action()
        times.append((time.perf_counter() - start) * 1000)
    times.sort()
    p95 = times[min(len(times) - 1, int(round(0.95 * (len(times) - 1))))]
    return statistics.median(times), p95


def widget_actions(repeats: int) -> list[tuple[str, Callable[[], object]]]:
    """Every widget action the bench times, as (name, a function that performs it once)."""
    from helpers.widgets import AccumulationExplorer, LearningRateExplorer, TrainingStepExplorer

    actions: list[tuple[str, Callable[[], object]]] = []
    step = TrainingStepExplorer()
    for phase in ("zero_grad", "forward", "loss", "backward", "step", "reset"):
        actions.append((f"TrainingStepExplorer: {phase}", lambda p=phase: step.click(p)))
    lr = LearningRateExplorer()
    lr_values = [10 ** (-3 + 3 * i / (repeats - 1)) for i in range(repeats)]
    lr_iter = iter(lr_values * 10)
    actions.append(
        (
            "LearningRateExplorer: learning-rate slider",
            lambda: setattr(lr.lr_slider, "value", next(lr_iter)),
        )
    )
    steps_iter = iter(list(range(10, 10 + repeats)) * 10)
    actions.append(
        (
            "LearningRateExplorer: steps slider",
            lambda: setattr(lr.steps_slider, "value", next(steps_iter)),
        )
    )
    choices = list(lr.optimizer_choice.options)
    choice_iter = iter(choices * repeats * 10)
    actions.append(
        (
            "LearningRateExplorer: optimizer choice",
            lambda: setattr(lr.optimizer_choice, "value", next(choice_iter)),
        )
    )
    acc = AccumulationExplorer()
    k_iter = iter([1 + i % 16 for i in range(repeats * 10)])
    actions.append(
        (
            "AccumulationExplorer: micro-batches slider",
            lambda: setattr(acc.micro_batches_slider, "value", next(k_iter)),
        )
    )
    scales = iter(["off", "share", "1/K"] * repeats * 10)
    actions.append(
        (
            "AccumulationExplorer: scale choice",
            lambda: setattr(acc.scale_toggle, "value", next(scales)),
        )
    )
    for name in ("uneven_toggle", "batchnorm_toggle"):
        control = getattr(acc, name)
        actions.append(
            (
                f"AccumulationExplorer: {name.replace('_', ' ')}",
                lambda c=control: setattr(c, "value", not c.value),
            )
        )
    return actions


def bench_widgets(repeats: int) -> list[dict]:
    """Median and 95th-percentile milliseconds of each widget action."""
    rows = []
    for name, action in widget_actions(repeats):
        action()  # warm up: first figure, caches
        median, p95 = _timed(action, repeats)
        rows.append({"action": name, "median_ms": median, "p95_ms": p95})
        print(f"  {name}: median {median:.1f} ms, p95 {p95:.1f} ms", flush=True)
    return rows


def machine() -> str:
    """Cores, memory, CPU model and versions, in one line."""
    import torch

    model = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (
        f"{os.cpu_count()} cores, {memory:.0f} GiB, {model}; Python {platform.python_version()}, "
        f"torch {torch.__version__}, threads {torch.get_num_threads()}"
    )


def mark(ok: bool) -> str:
    """A check mark or a cross."""
    return "✅" if ok else "❌ over budget"


def report(
    nb_rows: list[dict],
    floor: float,
    widget_rows: list[dict],
    runs: int,
    repeats: int,
    lesson_floor: float | None = None,
) -> str:
    """Both tables as markdown."""
    total = sum(r["median_s"] for r in nb_rows)
    lines = [
        "# Benchmark results",
        "",
        f"- Date: {datetime.date.today().isoformat()}",
        f"- Machine: {machine()}",
        f"- Notebook runs: median of {runs} headless top-to-bottom runs, each in a fresh kernel, "
        "timed from the kernel's start to the last cell's reply (what a learner waits for after "
        "Run All); the kernel's shutdown after that is the teardown column, which no learner "
        "waits for but a test run pays. Peak memory is the kernel's maximum resident set size.",
        f"- Floor (a notebook that only runs `{FLOOR_SOURCE}`): {floor:.2f} s",
        *(
            [
                "- Lesson floor (a notebook that imports torch and matplotlib.pyplot and builds one "
                "optimizer, which imports torch._dynamo: what nearly every notebook pays before "
                f"its own lesson): {lesson_floor:.2f} s"
            ]
            if lesson_floor is not None
            else []
        ),
        "",
        "## Notebooks",
        "",
        "| notebook | median (s) | × floor | budget (s) | time | teardown (s) | kernel peak (MB) "
        "| memory |",
        "|---|---:|---:|---:|---|---:|---:|---|",
    ]
    for r in nb_rows:
        lines.append(
            f"| {r['notebook']} | {r['median_s']:.1f} | {r['ratio']:.1f} | {r['budget_s']:.0f} "
            f"| {mark(r['median_s'] < r['budget_s'])} | {r['teardown_s']:.1f} | {r['peak_mb']:.0f} "
            f"| {mark(r['peak_mb'] < MEMORY_BUDGET_MB)} |"
        )
    learner = sum(r["median_s"] for r in nb_rows if "/solutions/" not in r["notebook"])
    learner_count = sum(1 for r in nb_rows if "/solutions/" not in r["notebook"])
    learner_with_teardown = learner + sum(
        r["teardown_s"] for r in nb_rows if "/solutions/" not in r["notebook"]
    )
    lines += [
        "",
        f"The learner's notebooks (notebooks/NN_*.ipynb), one after another: {learner:.1f} s "
        f"(budget {COLLECTION_BUDGET_S} s) {mark(learner < COLLECTION_BUDGET_S)}; of that, "
        f"{learner_count * floor:.1f} s is {learner_count} × the floor (a kernel starting and "
        "importing torch), the rest is the notebooks' own work. With each kernel's teardown "
        f"added: {learner_with_teardown:.1f} s."
        + (
            f" {learner_count} × the lesson floor is {learner_count * lesson_floor:.1f} s: what "
            "the collection costs on this machine before any notebook teaches anything."
            if lesson_floor is not None
            else ""
        ),
        "",
        f"Every notebook above, solutions included, one after another: {total:.1f} s "
        f"(the solutions are the answer key; each pays the {floor:.1f} s floor again)",
    ]
    if not widget_rows:  # a bench of some notebooks only
        return "\n".join(lines) + "\n"
    lines += [
        "",
        "## Widget actions",
        "",
        f"Time from the action (a click, or setting a control's value exactly as a slider move "
        f"does) to the finished update, redraw included, over {repeats} actions.",
        "",
        "| action | median (ms) | p95 (ms) | budget |",
        "|---|---:|---:|---|",
    ]
    for r in widget_rows:
        lines.append(
            f"| {r['action']} | {r['median_ms']:.1f} | {r['p95_ms']:.1f} "
            f"| {mark(r['median_ms'] < WIDGET_BUDGET_MS)} |"
        )
    return "\n".join(lines) + "\n"


def memory_block(nb_rows: list[dict], old_block: str = "") -> str:
    """The README's table of each learner notebook's kernel peak memory.

    Rows of `old_block` for notebooks not in `nb_rows` are kept (a one-notebook bench updates
    its own row only); the header line says when the last full bench ran.
    """
    peaks = dict(re.findall(r"^\| (\d\d_\w+\.ipynb) \| (\d+) \|$", old_block, re.M))
    for r in nb_rows:
        if "/solutions/" not in r["notebook"]:
            peaks[Path(r["notebook"]).name] = f"{r['peak_mb']:.0f}"
    lines = [
        MEMORY_START,
        f"Measured by `make bench` on {datetime.date.today().isoformat()} ({machine()}). "
        f"A kernel that only ran `{FLOOR_SOURCE}` peaked at {FLOOR_PEAK_MB:.0f} MB.",
        "",
        "| notebook | kernel peak (MB) |",
        "|---|---:|",
    ]
    lines += [f"| {name} | {peak} |" for name, peak in sorted(peaks.items())]
    return "\n".join(lines + [MEMORY_END])


def update_readme(nb_rows: list[dict], keep_other_rows: bool = False) -> None:
    """Replace the README's memory table with this run's figures (only their rows if asked)."""
    text = README.read_text()
    start, end = text.index(MEMORY_START), text.index(MEMORY_END) + len(MEMORY_END)
    old = text[start:end] if keep_other_rows else ""
    README.write_text(text[:start] + memory_block(nb_rows, old) + text[end:])


def _load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f}, {five:.2f}, {fifteen:.2f}"


def _children_cpu() -> float:
    """CPU seconds (user + system) of every finished child process: kernels, workers, all."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _summary(output: str) -> str:
    """pytest's last summary lines ("N passed, M failed in S s"), one per pytest run."""
    found = re.findall(r"^=+ (.*(?:passed|failed|error).*) =+$", output, re.M)
    return "; ".join(found) if found else "no pytest summary (see the output)"


def bench_targets() -> list[dict]:
    """Run each test target once; its wall time, exit status, pytest summary and load."""
    rows = []
    for name, (command, budget) in TARGETS.items():
        print(f"  {name}: running `{' '.join(command)}` ...", flush=True)
        load_before = _load()
        cpu_before = _children_cpu()
        start = time.perf_counter()
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
        seconds = time.perf_counter() - start
        cpu = _children_cpu() - cpu_before
        log = ROOT / "build" / f"bench-{command[-1]}.log"  # the whole output, to read failures
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text(done.stdout + done.stderr)
        rows.append(
            {
                "target": name,
                "seconds": seconds,
                "cpu_s": cpu,
                "budget_s": budget,
                "status": done.returncode,
                "summary": _summary(done.stdout + done.stderr),
                "load": f"{load_before} before, {_load()} after",
            }
        )
        print(f"  {name}: {seconds:.0f} s, exit {done.returncode} (output: {log})", flush=True)
    return rows


def targets_block(rows: list[dict]) -> str:
    """The test-targets section of benchmarks/results.md."""
    lines = [
        TARGETS_START,
        "## Test targets",
        "",
        f"Measured by `make bench` on {datetime.date.today().isoformat()}, one run each, with the "
        "venv in place. Failures are listed as they were (the time is what this table is for); "
        "the load average (1, 5, 15 min) says how busy the machine was. CPU is the user + system "
        "time of every process the target ran; on an otherwise idle machine with 2 cores the "
        "wall time would be about CPU / 2.",
        "",
        "| target | wall (s) | CPU (s) | budget (s) | time | exit | pytest | load average |",
        "|---|---:|---:|---:|---|---:|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['target']} | {r['seconds']:.0f} | {r.get('cpu_s', 0):.0f} | {r['budget_s']} "
            f"| {mark(r['seconds'] < r['budget_s'])} | {r['status']} | {r['summary']} "
            f"| {r['load']} |"
        )
    return "\n".join(lines + [TARGETS_END])


def with_targets(text: str, block: str | None) -> str:
    """`text` (results.md) with its test-targets section replaced by `block`, or kept."""
    old = ""
    if TARGETS_START in (previous := RESULTS.read_text() if RESULTS.exists() else ""):
        old = previous[previous.index(TARGETS_START) : previous.index(TARGETS_END)]
        old += TARGETS_END
    block = block or old
    if TARGETS_START in text:
        start, end = text.index(TARGETS_START), text.index(TARGETS_END) + len(TARGETS_END)
        return text[:start] + block + text[end:]
    return text.rstrip("\n") + ("\n\n" + block + "\n" if block else "\n")


def main(argv: list[str]) -> int:
    """Run the benchmark and write benchmarks/results.md."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="runs per notebook (at least 3)")
    parser.add_argument(
        "--actions", type=int, default=20, help="actions per widget control (at least 20)"
    )
    parser.add_argument(
        "--targets", action="store_true", help="also time make check and make test's pytest phase"
    )
    parser.add_argument("--targets-only", action="store_true", help="only time the test targets")
    parser.add_argument("notebooks", nargs="*", help="notebooks to time (default: all)")
    args = parser.parse_args(argv)
    if args.targets_only:
        print("Timing the test targets...", flush=True)
        block = targets_block(bench_targets())
        print(block)
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        text = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n"
        RESULTS.write_text(with_targets(text, block))
        print(f"Written to {RESULTS.relative_to(ROOT)}")
        return 0
    paths = [Path(p).resolve() for p in args.notebooks] or (
        sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
        + sorted((ROOT / "notebooks" / "solutions").glob("[0-9][0-9]_*.ipynb"))
    )
    print(f"Timing {len(paths)} notebooks, {args.runs} runs each...", flush=True)
    nb_rows, floor, lesson_floor = bench_notebooks(paths, max(1, args.runs))
    if args.notebooks:  # these notebooks only: print them, update their README rows
        print()
        print(report(nb_rows, floor, [], args.runs, args.actions, lesson_floor))
        update_readme(nb_rows, keep_other_rows=True)
        print("README's memory table: rows of these notebooks updated")
        return 0
    print(f"Timing widget actions, {args.actions} each...", flush=True)
    widget_rows = bench_widgets(max(2, args.actions))
    text = report(nb_rows, floor, widget_rows, args.runs, args.actions, lesson_floor)
    block = None
    if args.targets:
        print("Timing the test targets...", flush=True)
        block = targets_block(bench_targets())
    text = with_targets(text, block)
    print()
    print(text)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(text)
    update_readme(nb_rows)
    print(f"Written to {RESULTS.relative_to(ROOT)}; README's memory table updated")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
