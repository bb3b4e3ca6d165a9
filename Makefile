# Two commands matter: `make demo` (set up, backfill, trade in the simulator, serve the dashboard)
# and `make test` (set up, run the whole suite). Everything else is a helper.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# First interpreter >= 3.12: python3.13/python3.12/python3 on PATH, then pyenv's installed versions.
# Override with `make PYTHON=/path/to/python3.12 ...`.
PYTHON ?= $(shell for p in python3.13 python3.12 python3 \
	$$(ls -d $${PYENV_ROOT:-$$HOME/.pyenv}/versions/*/bin/python3 2>/dev/null | sort -rV); do \
	if "$$p" -c 'import sys; sys.exit(sys.version_info < (3, 12))' >/dev/null 2>&1; then \
	command -v "$$p"; break; fi; done)

VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: help venv demo test check lint format bench soak clean chromium

help:
	@echo "make demo   - set up .venv, backfill simulated history, trade BTC/USD + SOL/USD, serve the dashboard"
	@echo "make test   - set up .venv and run the whole suite (lint, pytest, nbval, browser test)"
	@echo "make check  - lint + the fast unit tests (under a minute: the edit loop)"
	@echo "make lint   - ruff check + format check + mypy + the layers contract (import-linter)"
	@echo "make bench  - benchmarks (ratios against a reference measured in the same run)"
	@echo "make soak   - tick back to back for MINUTES (default 10): failures, lock errors, memory and DB growth"

$(STAMP): pyproject.toml
	@if [ -z "$(PYTHON)" ]; then \
		echo "error: no Python >= 3.12 found (PATH or pyenv); run: make PYTHON=/path/to/python3.12 $(MAKECMDGOALS)" >&2; \
		exit 1; fi
	@echo "using $(PYTHON) ($$($(PYTHON) -c 'import sys; print(sys.version.split()[0])'))"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/botlib demo

# pytest-xdist: one worker per core (`make test WORKERS=1` runs serially); a worker steals
# queued tests from a busy one, so the long notebook and browser tests overlap the rest.
WORKERS ?= auto
PYTEST := $(BIN)/python -m pytest -n $(WORKERS) --dist worksteal

test: chromium lint
	$(PYTEST)

# The browser test's Debian chromium: installed when this is root on a Debian-like machine,
# otherwise stop at once with the command to run (`make check` does not need it).
chromium:
	@if ! command -v chromium >/dev/null 2>&1; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
			echo "installing Debian chromium for the browser test (apt-get)"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
		else \
			echo "error: the browser test needs Debian chromium; run: sudo apt-get install chromium" >&2; \
			exit 1; \
		fi; \
	fi

# The edit loop: lint and the fast unit tests (no subprocesses, kernels, servers or browsers).
check: lint
	$(PYTEST) -q -m "not slow and not notebooks and not browser"

lint: $(STAMP)
	$(BIN)/ruff check botlib tests tools
	$(BIN)/ruff format --check botlib tests tools
	$(BIN)/mypy
	$(BIN)/lint-imports

format: $(STAMP)
	$(BIN)/ruff check --fix botlib tests tools
	$(BIN)/ruff format botlib tests tools

# backtesting.py is the backtest benchmark's reference: a bench-only extra.
$(VENV)/.bench-installed: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	touch $@

bench: $(VENV)/.bench-installed
	$(BIN)/python -m tools.bench
	$(BIN)/python -m tools.bench_smc
	$(BIN)/python -m tools.bench_dashboard
	$(BIN)/python -m tools.bench_backtest
	$(BIN)/python -m tools.bench_tick

MINUTES ?= 10

# Not part of `make test`: ticks on a simulated clock in a scratch database (docs/reliability.md).
soak: $(STAMP)
	$(BIN)/python -m tools.soak --minutes $(MINUTES) $(SOAK_ARGS)

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache .ruff_cache .mypy_cache
