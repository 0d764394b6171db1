# wadesk: `make run` starts the demo, `make test` runs every check. Both install what they need.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export WADESK_VAR_DIR ?= var

.PHONY: run test install install-dev lint typecheck test-sqlite test-postgresql bench services browser clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	@touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $@ $(VENV)/.installed

install: $(VENV)/.installed

install-dev: $(VENV)/.installed-dev

## Start the demo: migrate, create the admin and a WhatsApp inbox on the simulator, serve.
run: install
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

test-sqlite: install-dev browser
	$(BIN)/pytest -q --db sqlite

test-postgresql: install-dev services browser
	$(BIN)/pytest -q --db postgresql

## Debian's Chromium and fonts for the Playwright tests.
browser:
	@bash scripts/ensure-browser.sh

## Make sure a PostgreSQL server answers on 127.0.0.1:5432 (installs/starts it on Debian).
services:
	@bash scripts/ensure-services.sh

bench: install-dev services
	$(BIN)/python bench/ingest.py

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
