# ExpertConnect: `make run` and `make test` each do every set-up step on a fresh machine.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

DEV_STAMP := $(VENV)/.installed-dev

.PHONY: install install-dev run stop test lint migrate postgres chromium clean bench bench-tools dist

# Runtime dependencies only (what `make run` needs).
install: $(STAMP)

$(STAMP): requirements.txt
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "Python 3.11 or newer is required (found $$($(PYTHON) --version))"; exit 1; }
	@echo "Installing the runtime dependencies into $(VENV) ..."
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet --require-hashes -r requirements.txt
	touch $(STAMP)

# Test and lint tools on top (what `make test` needs).
install-dev: $(DEV_STAMP)

$(DEV_STAMP): $(STAMP) requirements.txt requirements-dev.txt
	@echo "Installing the test and lint tools into $(VENV) ..."
	$(PY) -m pip install --quiet --require-hashes -r requirements.txt -r requirements-dev.txt
	touch $(DEV_STAMP)

# The server binaries, for the private cluster used when database.dsn is empty.
postgres:
	@bash scripts/ensure-postgres.sh

# The browser for tests/test_browser.py (Debian's chromium, never a Playwright download).
chromium:
	@bash scripts/ensure-chromium.sh

run: install postgres
	$(PY) server.py

migrate: install postgres
	$(PY) server.py migrate

# Stop the private PostgreSQL cluster that `make run` left running (see `expertconnect db`).
stop: install
	$(PY) server.py db stop

# The shape of the code: lint and format (ruff), the types (mypy) and the layer rule
# (lint-imports, the contracts in pyproject.toml). Part of `make test`, so CI fails on a
# violation.
lint: install-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

test: install-dev postgres chromium lint
	$(PY) -m pytest

# The benchmark (docs/performance.md): never part of `make test`. Bench-only Python packages go
# into bench/.venv; wrk comes from Debian. Settings: see bench/run.py (BENCH_SECONDS, ...).
BENCH_VENV  := bench/.venv
BENCH_STAMP := $(BENCH_VENV)/.installed
BENCH_SCALE ?= 1

$(BENCH_STAMP): bench/requirements.txt
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(BENCH_VENV)/bin/python -m pip install --quiet -r bench/requirements.txt
	touch $(BENCH_STAMP)

bench-tools:
	@command -v wrk >/dev/null 2>&1 || { \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
			apt-get update -qq && apt-get install -y -qq wrk; \
		else \
			echo "wrk is required: install it (Debian: sudo apt-get install wrk)"; exit 1; \
		fi; }

bench: install postgres $(BENCH_STAMP) bench-tools
	BENCH_SCALE=$(BENCH_SCALE) $(PY) bench/run.py

# A wheel and dist/expertconnect: one file holding the program and every runtime dependency
# (a shiv zipapp; it unpacks itself once under ~/.shiv or $$SHIV_ROOT). Runs with python3.11+.
DIST_SITE := build/dist-site

dist: install-dev
	rm -rf dist $(DIST_SITE)
	$(PY) -m pip wheel --quiet --no-deps --wheel-dir dist .
	$(PY) -m pip install --quiet --target $(DIST_SITE) -r requirements.txt
	$(PY) -m pip install --quiet --no-deps --target $(DIST_SITE) dist/expertconnect-*.whl
	$(VENV)/bin/shiv --site-packages $(DIST_SITE) --console-script expertconnect \
		--python '/usr/bin/env python3' --reproducible --compressed --output-file dist/expertconnect
	@echo "Built dist/expertconnect ($$(du -h dist/expertconnect | cut -f1)) and $$(ls dist/*.whl)"

clean:
	rm -rf $(VENV) $(BENCH_VENV) build dist
