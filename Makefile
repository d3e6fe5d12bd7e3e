# servicegroup: `make run` (the agent on the embedded default) and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test lint typecheck unit deps venv bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# Reinstall when the package metadata changes.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

venv: $(STAMP)

## Debian packages the tests need (PostgreSQL, memcached, ZooKeeper), where missing.
deps:
	bash .ci/install-debs

## Run sg-agent in the foreground on SQLite + the db driver (./servicegroup.toml).
run: $(STAMP)
	$(BIN)/sg-agent --config servicegroup.toml

lint: $(STAMP)
	$(BIN)/ruff check sg agent tests bench
	$(BIN)/ruff format --check sg agent tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest $(PYTEST_ARGS)

## Lint, type-check and run every test against real servers.
test: deps $(STAMP) lint typecheck unit

## Benchmarks (not part of the tests); compare against tooz in the same run.
bench: deps $(STAMP)
	$(BIN)/pip install -q -e '.[dev,bench]'
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
