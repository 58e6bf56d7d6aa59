# Loop Lab. Every target creates .venv on first use; a second run reuses it and re-installs
# only when a requirements file (or pyproject.toml) has changed.
#   make lab       start JupyterLab on notebooks/ (127.0.0.1, with a token; PORT=8888)
#   make test      lint, unit tests, every notebook under strict nbval, browser tests
#   make execute   re-run every notebook headlessly and store its outputs (NB=path for one)
#   make bench     time and measure the notebooks and widgets; writes benchmarks/results.md
#   make gpu-check run every notebook on this machine's GPU; pass/fail and the device used (NB=path)
#   make lock      renew requirements-lock.txt, the exact versions make test/execute install
#   make compat    every notebook on the supported torch releases and in a Colab-shaped venv

PYTHON ?= python3
VENV   ?= .venv
PORT   ?= 8888
NB     ?=
PY     := $(VENV)/bin/python
# Each notebook kernel imports torch; two workers fit two cores.
WORKERS ?= 2

.PHONY: lab test execute bench lint format venv dev-venv lock clean help
.DEFAULT_GOAL := help

help:
	@echo "make lab      start JupyterLab on notebooks/ (PORT=$(PORT))"
	@echo "make test     lint + unit tests + every notebook (strict nbval) + browser tests"
	@echo "make execute  re-run notebooks and store outputs (NB=notebooks/NN_name.ipynb for one)"
	@echo "make bench    measure notebook run times, memory and widget speed"
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

test: $(VENV)/.dev-installed $(IW7)/.installed
	@bash tools/ensure_chromium.sh
	$(MAKE) --no-print-directory lint
	$(VENV)/bin/pytest -n $(WORKERS) --dist loadscope \
	  --nbval --nbval-current-env --nbval-sanitize-with tests/nbval_sanitize.cfg \
	  tests notebooks

execute: $(VENV)/.dev-installed
	$(PY) tools/execute.py $(if $(NB),$(NB),notebooks/*.ipynb notebooks/solutions/*.ipynb)

bench: $(VENV)/.dev-installed
	$(PY) tools/bench.py

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
