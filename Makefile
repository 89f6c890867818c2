# oneapi: `make run` starts everything on the embedded defaults; `make test` runs the suite.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Parallel test workers; 2 cores here, more where there are more.
TEST_WORKERS ?= auto
PYTEST_ARGS ?=

.PHONY: run test ui lint format bench lock clean help

help:
	@echo "make run     install if needed, migrate, start target 'all' on :3000 (SQLite, embedded NATS)"
	@echo "make test    install dev dependencies and run the whole suite (lint first)"
	@echo "make ui      build the web UI (services/admin/web, Node.js 20.19+) when missing or stale"
	@echo "make lint    ruff and mypy"
	@echo "make bench   relay throughput and latency against a minimal proxy (needs wrk)"
	@echo "make lock    re-pin requirements/*.lock from pyproject.toml"

$(BIN)/uv:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check uv==0.13.9

# Installs are stamped with the lock they came from, so a changed lock reinstalls.
$(VENV)/.run-installed: requirements/run.lock pyproject.toml | $(BIN)/uv
	$(BIN)/uv pip install --quiet --python $(BIN)/python -r requirements/run.lock
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps -e .
	@touch $@

$(VENV)/.dev-installed: requirements/dev.lock pyproject.toml | $(BIN)/uv
	$(BIN)/uv pip install --quiet --python $(BIN)/python -r requirements/dev.lock
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps -e .
	@touch $@ $(VENV)/.run-installed

# The web UI (issue 7): `npm ci` when the lock changed, `npm run build` when dist/ is missing or
# older than any source. The admin serves services/admin/web/dist at "/".
WEB := services/admin/web
WEB_SOURCES := $(shell find $(WEB)/src $(WEB)/public -type f 2>/dev/null) \
	$(WEB)/index.html $(WEB)/package.json $(WEB)/vite.config.ts $(WEB)/tsconfig.json \
	$(WEB)/tsconfig.node.json

$(WEB)/node_modules/.package-lock.json: $(WEB)/package-lock.json
	@command -v npm >/dev/null || { echo "make ui: npm not found; install Node.js 20.19+" >&2; exit 1; }
	cd $(WEB) && npm ci --no-audit --no-fund
	@touch $@

$(WEB)/dist/index.html: $(WEB_SOURCES) $(WEB)/node_modules/.package-lock.json
	cd $(WEB) && npm run build
	@touch $@

ui: $(WEB)/dist/index.html

# Target "all" includes admin, which migrates the schema at start.
run: $(VENV)/.run-installed ui
	exec $(BIN)/oneapi run

test: $(VENV)/.dev-installed lint ui
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadgroup $(PYTEST_ARGS)

# Relay vs a minimal aiohttp proxy, billing vs INSERT-per-event: ratios measured in one invocation.
bench: $(VENV)/.dev-installed
	@command -v wrk >/dev/null || apt-get install -y -q wrk >/dev/null
	$(BIN)/python -m bench.relay_bench
	$(BIN)/python -m bench.billing_bench

lint: $(VENV)/.dev-installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy .

format: $(VENV)/.dev-installed
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

lock: | $(BIN)/uv
	$(BIN)/uv pip compile --quiet --python-version 3.11 pyproject.toml -o requirements/run.lock
	$(BIN)/uv pip compile --quiet --python-version 3.11 --extra dev pyproject.toml -o requirements/dev.lock

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache $(WEB)/node_modules $(WEB)/dist
