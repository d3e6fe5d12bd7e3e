# servicegroup: `make run` (the agent on the embedded default) and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test lint typecheck unit deps venv bench drill clean install install-venv install-units mutate mutate-fast

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

## Lint, type-check, run every test against real servers, and the fast mutation subset.
test: deps $(STAMP) lint typecheck unit mutate-fast

## Mutation testing (mutmut) of the liveness and naming modules; fails below the goals
## (docs/testing.md). mutate-fast: the verdict rules and ZooKeeper names, unit tier only.
mutate: $(STAMP)
	$(BIN)/python tests/mutation/mutate.py

mutate-fast: $(STAMP)
	$(BIN)/python tests/mutation/mutate.py --fast

## Benchmarks (not part of the tests): every figure of issue 12 beside its peer in the
## same run; writes docs/benchmarks.md, docs/benchmarks.json and docs/img/benchmarks/*.png
## (about 9 minutes on the shared 2-core machine). BENCH_ARGS="--only listing --sizes 1000,10000"
## runs a part, BENCH_ARGS=--report-only redraws the page from the JSON.
bench: deps $(STAMP)
	$(BIN)/pip install -q -e '.[dev,bench]'
	$(BIN)/python -m bench $(BENCH_ARGS)

## The fleet drill (issue 11, not part of the tests): fleet-wide events under load, scored
## into docs/drill.md and docs/drill.png. DRILL_ARGS=--quick: 200 heartbeats, ~3 minutes.
drill: deps $(STAMP)
	$(BIN)/pip install -q matplotlib
	$(BIN)/python -m bench.drill $(DRILL_ARGS)

## Install on a host: a venv in $(INSTALL_VENV), scripts linked into $(PREFIX)/bin,
## the systemd units and the example config (kept if one exists). Run as root.
PREFIX       ?= /usr/local
INSTALL_VENV ?= /opt/servicegroup/venv
UNITDIR      ?= /etc/systemd/system
CONFDIR      ?= /etc/servicegroup
DOCDIR       ?= $(PREFIX)/share/doc/servicegroup
EXTRAS       ?= postgres,zookeeper,memcached,api

install: install-venv install-units
	@if [ -z "$(DESTDIR)" ] && [ -d /run/systemd/system ]; then systemctl daemon-reload; fi
	@echo "installed; edit $(CONFDIR)/servicegroup.toml, then: systemctl enable --now sg-agent"

install-venv:
	$(PYTHON) -m venv $(DESTDIR)$(INSTALL_VENV)
	$(DESTDIR)$(INSTALL_VENV)/bin/pip install -q --upgrade pip
	$(DESTDIR)$(INSTALL_VENV)/bin/pip install -q '.[$(EXTRAS)]'
	install -d $(DESTDIR)$(PREFIX)/bin
	for s in sg-agent sg-api sgctl; do \
	  if [ -e $(DESTDIR)$(INSTALL_VENV)/bin/$$s ]; then ln -sf $(INSTALL_VENV)/bin/$$s $(DESTDIR)$(PREFIX)/bin/$$s; fi; \
	done

## Units and config only (DESTDIR-aware, used by the tests). The units name
## /usr/local/bin and /etc/servicegroup; another PREFIX or CONFDIR is written into the
## installed copies.
install-units:
	install -d $(DESTDIR)$(UNITDIR) $(DESTDIR)$(CONFDIR) $(DESTDIR)$(DOCDIR)
	for u in sg-agent.service sg-api.service; do \
	  sed -e 's#/usr/local/#$(PREFIX)/#g' -e 's#/etc/servicegroup/#$(CONFDIR)/#g' systemd/$$u > $(DESTDIR)$(UNITDIR)/$$u && chmod 0644 $(DESTDIR)$(UNITDIR)/$$u; \
	done
	install -m 0644 systemd/servicegroup.toml $(DESTDIR)$(CONFDIR)/servicegroup.toml.example
	[ -e $(DESTDIR)$(CONFDIR)/servicegroup.toml ] || \
	  install -m 0644 systemd/servicegroup.toml $(DESTDIR)$(CONFDIR)/servicegroup.toml
	install -m 0644 docs/daemon.md $(DESTDIR)$(DOCDIR)/daemon.md

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
