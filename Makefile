# The two set-up commands of the README are `make run` and `make test`; both work on a fresh
# machine with only Python 3.11 and make. DATABASE_URL selects PostgreSQL for either.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
RUN_STAMP := $(VENV)/.installed-run
DEV_STAMP := $(VENV)/.installed-dev

.PHONY: run test lint fix install install-dev worker demo bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(RUN_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(DEV_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@ $(RUN_STAMP)

install: $(RUN_STAMP)
install-dev: $(DEV_STAMP)

## Start the application: migrate, load the demo library once, serve on 127.0.0.1:8000 with the worker.
run: install
	$(BIN)/patronage migrate --no-input
	$(BIN)/patronage demo --once
	$(BIN)/patronage collectstatic --no-input --verbosity 0
	@echo "Patronage on http://127.0.0.1:8000/ (demo sign-ins: see README). Ctrl-C stops it."
	@trap 'kill $$worker 2>/dev/null' EXIT; \
	$(BIN)/patronage worker & worker=$$!; \
	$(BIN)/patronage serve --bind 127.0.0.1:8000

## Run the whole test suite (SQLite unless DATABASE_URL says otherwise).
test: install-dev
	$(BIN)/pytest $(PYTEST_ARGS)

## Run only the real-browser tests (axe accessibility and keyboard; needs Debian's chromium).
.PHONY: test-browser
test-browser: install-dev
	$(BIN)/pytest -m browser tests/browser $(PYTEST_ARGS)

lint: install-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports
	PATRONAGE_VAR_DIR=$$(mktemp -d) $(BIN)/python manage.py makemigrations --check --dry-run

fix: install-dev
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

worker: install
	$(BIN)/patronage worker

bench: install-dev
	$(BIN)/python -m bench.run $(BENCH_ARGS)

.PHONY: bench-lending
bench-lending: install-dev
	$(BIN)/python -m bench.lending $(BENCH_ARGS)

clean:
	rm -rf $(VENV) var build *.egg-info src/*.egg-info
