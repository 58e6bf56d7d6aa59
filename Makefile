# Loop Lab. Every target creates .venv on first use; a second run reuses it and re-installs
# only when a requirements file (or pyproject.toml) has changed.
#   make lab       start JupyterLab on notebooks/ (127.0.0.1, with a token; PORT=8888)
#   make check     the inner loop: lint, unit tests, every notebook under strict nbval (no browser)
#   make test      the full proof: make check's steps, the slow tests and the browser tests
#   make execute   re-run every notebook headlessly and store its outputs (NB=path for one)
#   make notebook  scaffold notebook NN (NN=14 NAME=short_name [TITLE="..."]), see docs/authoring-notebooks.md
#   make bench     time and measure the notebooks, widgets and test targets; writes benchmarks/results.md
#   make gpu-check run every notebook on this machine's GPU; pass/fail and the device used (NB=path)
#   make lock      renew requirements-lock.txt, the exact versions make test/execute install
#   make book      the notebooks as a static website (stored outputs, search) in build/book/html
#   make compat    every notebook on the supported torch releases and in a Colab-shaped venv

PYTHON ?= python3
VENV   ?= .venv
PORT   ?= 8888
NB     ?=
PY     := $(VENV)/bin/python
# Each notebook kernel imports torch; two workers fit two cores.
WORKERS ?= 2
# Narrow a test run: make check PYTEST_ARGS="-k accumulation" (or --lf: only what failed last)
PYTEST_ARGS ?=
# A kernel gets 300 s to answer, not nbval's 60: jupyter_client times that wait by the wall clock,
# which jumps forward when a virtual machine is paused and resumed (seen once: a kernel 'did not
# respond in 60 seconds' within 18 s of the run's own time). A kernel that dies still fails at once.
NBVAL  := --nbval --nbval-current-env --nbval-sanitize-with tests/nbval_sanitize.cfg \
          --nbval-kernel-startup-timeout 300
PYTEST := $(VENV)/bin/pytest -n $(WORKERS) --dist loadscope --no-loadscope-reorder

.PHONY: lab check test test-pytest execute notebook bench lint format venv dev-venv lock clean help
.DEFAULT_GOAL := help

help:
	@echo "make lab      start JupyterLab on notebooks/ (PORT=$(PORT))"
	@echo "make check    lint + unit tests + every notebook (strict nbval; solutions in one process); no browser or slow tests"
	@echo "make test     make check's steps + browser tests (the full proof; CI runs it)"
	@echo "make execute  re-run notebooks and store outputs (NB=notebooks/NN_name.ipynb for one)"
	@echo "make notebook scaffold a new notebook: make notebook NN=14 NAME=short_name [TITLE=\"...\"]"
	@echo "make bench    measure notebook run times, memory, widget speed and the test targets' times"
	@echo "              (NB=notebooks/NN_name.ipynb: that notebook only, and its README memory row)"
	@echo "make book     build the book (every notebook as a website) into build/book/html"
	@echo "make compat   every notebook on the floor, middle and newest torch and a Colab-shaped venv"
	@echo "make lock     renew requirements-lock.txt (then make execute and read the diff)"
	@echo "make gpu-check  run every notebook on the GPU (no output comparison); the device each used"

$(VENV)/.python-ok:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)' || \
	  { echo "Loop Lab needs Python 3.10 or newer; '$(PYTHON)' is $$($(PYTHON) --version 2>&1). Run: make PYTHON=python3.11 ..." >&2; exit 1; }
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@touch $@

$(VENV)/.lab-installed: $(VENV)/.python-ok requirements.txt pyproject.toml
	@echo "Installing requirements.txt into $(VENV) (the first time takes a few minutes: PyTorch is large)..."
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt -e .
	@touch $@

# Tests and stored outputs use the exact versions in requirements-lock.txt (strict nbval compares
# outputs as text, so they must come from the same releases); `make lab` keeps the ranges.
LOCK := requirements-lock.txt
$(VENV)/.dev-installed: $(VENV)/.lab-installed requirements-dev.txt $(LOCK)
	$(PY) -m pip install --quiet -c $(LOCK) -r requirements-dev.txt -e .
	@touch $@

# Renew the lock from the ranges: a fresh venv gets the newest releases the ranges allow.
# Then run `make execute` and read the diff of the notebooks before committing both.
lock:
	rm -rf build/lock-venv
	$(PYTHON) -m venv build/lock-venv
	build/lock-venv/bin/python -m pip install --quiet --upgrade pip
	build/lock-venv/bin/python -m pip install --quiet -r requirements-dev.txt -e .
	@{ sed -n '1,3p' $(LOCK); build/lock-venv/bin/python -m pip freeze --exclude-editable \
	  | grep -vi '^loop-lab'; } > $(LOCK).new && mv $(LOCK).new $(LOCK)
	rm -rf build/lock-venv
	@echo "Wrote $(LOCK). Next: make execute, then read git diff notebooks/."

# Colab has lagged on ipywidgets 7.7: a second venv that sees .venv's packages but puts
# ipywidgets 7.7 first, so tests/test_ipywidgets7.py can drive every explorer under 7.7.
# (A requirements file would not make this plainer: the two pins are the whole list, and what is
# particular here, the .pth line that lends it .venv's packages, is no pip feature.)
IW7 := .venv-ipywidgets7
$(IW7)/.installed: $(VENV)/.dev-installed
	@test -x $(IW7)/bin/python || $(PYTHON) -m venv $(IW7)
	$(IW7)/bin/python -m pip install --quiet --no-deps "ipywidgets==7.7.5" "ipython_genutils==0.2.0"
	@$(PY) -c 'import site; print(site.getsitepackages()[0])' > "$$($(IW7)/bin/python -c 'import site; print(site.getsitepackages()[0])')/zz_looplab_main_venv.pth"
	@touch $@

venv: $(VENV)/.lab-installed
dev-venv: $(VENV)/.dev-installed

lab: $(VENV)/.lab-installed
	@TOKEN=$$($(PY) -c 'import secrets; print(secrets.token_hex(16))'); \
	echo ""; \
	echo "  JupyterLab: http://127.0.0.1:$(PORT)/lab?token=$$TOKEN"; \
	echo "  (open that address in your browser; stop the server with Ctrl-C)"; \
	echo ""; \
	exec $(VENV)/bin/jupyter lab --no-browser --ServerApp.ip=127.0.0.1 --port=$(PORT) \
	  --ServerApp.root_dir=notebooks --IdentityProvider.token=$$TOKEN \
	  $$( [ "$$(id -u)" = 0 ] && echo --allow-root )

lint: $(VENV)/.dev-installed
	$(VENV)/bin/ruff check helpers tests tools notebooks
	$(VENV)/bin/ruff format --check helpers tests tools notebooks

format: $(VENV)/.dev-installed
	$(VENV)/bin/ruff check --fix helpers tests tools notebooks
	$(VENV)/bin/ruff format helpers tests tools notebooks

# The inner loop: lint, the unit tests and every learner notebook once under strict nbval; the
# solutions notebooks run in one process (tests/test_answer_key.py: every check passes and every
# stored output is what the cell prints) rather than in a kernel each. Not the browser tests, nor
# the tests marked slow (more than 10 s each: DDP processes, torchrun, the ipywidgets 7.7 venv,
# the scaffold in a copy; tests/conftest.py lists them). make test runs those too. The two
# workers take whole test files, longest first: files with a slow test, then the notebooks, then
# the rest (tests/conftest.py's longest_first; --no-loadscope-reorder turns off xdist's own order,
# which left the slowest single tests to the end, on one worker while the other idled).
# Both test targets keep every test process and kernel to one intra-op thread: two workers and
# the browser run already share the two cores, so a second thread per process only waits and
# spins (measured, make test-pytest on these 2 cores, alternating: 482 and 497 busy CPU-s, 248 and
# 256 s, against 542 and 536 CPU-s, 278 and 274 s with torch's default of two). Every stored
# output still matches, so they do not depend on the thread count. make bench, make execute and
# make lab keep torch's default, which is what a learner gets. Tests that check a thread count is
# put back start from two (the two_threads fixture in tests/conftest.py).
check test-pytest: export OMP_NUM_THREADS := 1
check: $(VENV)/.dev-installed $(IW7)/.installed
	$(MAKE) --no-print-directory lint
	$(PYTEST) -m "not browser and not slow" $(NBVAL) $(PYTEST_ARGS) notebooks/[0-9]*.ipynb tests

# The full proof (.ci/run calls it): make check's steps plus the slow tests and the browser
# tests, which run only the notebooks whose widgets the browser must show
# (tests/browser/test_run_all.py says which and why), on one JupyterLab server per test process.
# They compare those notebooks' outputs as strict nbval does, so the nbval run leaves them out
# (--widget-notebooks-in-browser): each notebook's cells run once.
# The browser tests are a pytest run of their own: Playwright's sync API refuses to start in a
# process where an earlier test (a kernel client) left an asyncio loop running (tried: every
# browser test then errors), and its own loop would stop a later asyncio.run().
test: $(VENV)/.dev-installed $(IW7)/.installed
	@bash tools/ensure_chromium.sh
	$(MAKE) --no-print-directory lint
	$(MAKE) --no-print-directory test-pytest

# make test's pytest phase alone (make bench times it). The browser tests run beside the other
# tests rather than after them: they wait on JupyterLab, kernels and Chromium about half the time,
# and the other run fills those gaps on the two cores. The book they read is built first, on their
# side, so that the other tests start at once (a fresh clone builds the whole book, 10 s and more
# on one core); a failed build fails make test, and its errors head their report. They run in one
# test process (BROWSER_WORKERS): one Chromium, one JupyterLab server and one browser cache for all
# of them. A second process doubled those for about 10 CPU-seconds more (measured on these 2 cores:
# 492-497 against 505-565 CPU-s, 253-256 s against 260-292 s), and the browser run still ends well
# before the other (200 s against 250 s). Their report (build/browser-tests.log, and their own
# pytest cache, so that --lf works for both runs) is printed after the other run's. Every run goes
# to its end even when another failed, so that one make test reports every failure; it fails if any
# did.
BROWSER_LOG := build/browser-tests.log
BROWSER_WORKERS ?= 1
test-pytest: $(VENV)/.dev-installed $(IW7)/.installed
	@status=0; \
	mkdir -p build; rm -f build/book-failed; \
	{ $(MAKE) --no-print-directory book > $(BROWSER_LOG) 2>&1 || touch build/book-failed; \
	  exec $(VENV)/bin/pytest -n $(BROWSER_WORKERS) -m browser -o cache_dir=.pytest_cache/browser \
	  --output=build/playwright $(PYTEST_ARGS) tests/browser tests/book >> $(BROWSER_LOG) 2>&1; } & \
	browser=$$!; \
	trap 'kill $$browser 2>/dev/null' INT TERM; \
	$(PYTEST) -m "not browser" $(NBVAL) --widget-notebooks-in-browser $(PYTEST_ARGS) \
	  notebooks/[0-9]*.ipynb tests || status=1; \
	wait $$browser || status=1; \
	test ! -e build/book-failed || { status=1; echo "make book failed: see below." >&2; }; \
	echo; echo "The browser tests, which ran beside the tests above ($(BROWSER_LOG)):"; \
	cat $(BROWSER_LOG); \
	exit $$status

execute: $(VENV)/.dev-installed
	$(PY) tools/execute.py $(if $(NB),$(NB),notebooks/*.ipynb notebooks/solutions/*.ipynb)

# A new notebook from tools/templates/: the notebook, its solutions, its checker module and its
# test, a README row, an instructor-guide section, its NOTEBOOK_DEVICES entry, its title in 00's
# device table and the previous notebook's Next link; then 00 and both new notebooks are executed.
NN    ?=
NAME  ?=
TITLE ?=
notebook: $(VENV)/.dev-installed
	@test -n "$(NN)" -a -n "$(NAME)" || { echo 'usage: make notebook NN=14 NAME=short_name [TITLE="The title"]' >&2; exit 2; }
	$(PY) tools/new_notebook.py $(NN) $(NAME) $(if $(TITLE),--title "$(TITLE)")
	$(PY) tools/execute.py notebooks/00_*.ipynb notebooks/$(NN)_$(NAME).ipynb \
	  notebooks/solutions/$(NN)_$(NAME)_solutions.ipynb

# Everything: notebooks (3 runs each), widget actions, and the times of make check and of make
# test's pytest phase. NB=notebooks/NN_name.ipynb: that notebook only (and its README memory row).
bench: $(VENV)/.dev-installed
	$(PY) tools/bench.py $(if $(NB),$(NB),--targets)

# The book: every notebook with its stored outputs as a static site in build/book/html
# (tools/book.py; nothing is executed, nothing is downloaded). docs/book.md says more.
.PHONY: book
book: $(VENV)/.dev-installed
	$(PY) tools/book.py

# Every notebook and solution top to bottom in a fresh kernel, outputs not compared; a table of
# pass/fail, the device each should use and whether it really used the GPU. Says so when there
# is no CUDA device (then everything runs on the CPU). Exit status 1 if any notebook failed.
.PHONY: gpu-check
gpu-check: $(VENV)/.dev-installed
	$(PY) tools/gpu_check.py $(NB)

# The supported range, proven: every notebook and solution top to bottom (outputs not compared)
# on the oldest torch the requirements admit, one near Colab's, the newest on the registry, and
# in a venv shaped like Colab (tools/compat.py says how). Throwaway venvs in build/compat/,
# reused while they match; pip's cap on this machine is lifted for these builds only. Runs with
# the system Python, no packages needed. Narrow it: make compat RELEASES=floor,colab NB=06
RELEASES ?=
.PHONY: compat
compat:
	$(PYTHON) tools/compat.py $(if $(RELEASES),--releases $(RELEASES)) $(NB)

clean:
	rm -rf build .pytest_cache .ruff_cache
