# `make run`: a server on the embedded default (SQLite + ./pli-data), ready to use.
# `make test`: ruff, mypy (strict), tsc, the whole pytest suite, the web app's unit tests and the
# dependency audit.
# `make web`: the web app (web/, TypeScript) built into the server's package (Node.js and npm).
# `make fuzz-long`: the API fuzzer with many more examples, on SQLite and PostgreSQL.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DATA ?= pli-data
HOST ?= 127.0.0.1
PORT ?= 8080

.PHONY: run test lint typecheck pytest install dev system-deps clean bench audit fuzz-long web \
	web-test

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[dev]'
	touch $(VENV)/.installed $@

install: $(VENV)/.installed

dev: $(VENV)/.installed-dev

# The web app, built by web/build.mjs into src/pli/server/webapp/dist/ (served by
# pli.server.webapp): rebuilt when a source, the build script or the dependencies change.
WEB_DIST := src/pli/server/webapp/dist/index.html
WEB_SOURCES := web/build.mjs web/package.json $(wildcard web/tsconfig.json) \
	$(shell find web/src -type f 2>/dev/null)

web/node_modules: web/package-lock.json
	npm ci --prefix web --no-audit --no-fund
	touch $@

$(WEB_DIST): web/node_modules $(WEB_SOURCES)
	npm run build --prefix web

web: $(WEB_DIST)

web-test: web/node_modules
	npm test --prefix web

run: install web
	$(BIN)/pli serve --data $(DATA) --host $(HOST) --port $(PORT)

system-deps:
	scripts/system-deps.sh

lint: dev web/node_modules
	$(BIN)/ruff check src tests benchmarks scripts
	$(BIN)/ruff format --check src tests benchmarks scripts
	npm run check --prefix web

typecheck: dev
	$(BIN)/mypy

# The C2SP CCTV age vectors (npm package cctv-age, pinned in tests/vectors/cctv).
CCTV := tests/vectors/cctv/node_modules/cctv-age

$(CCTV): tests/vectors/cctv/package-lock.json
	npm ci --prefix tests/vectors/cctv --no-audit --no-fund
	touch $@

# Four workers on two cores: a test spends much of its time waiting on the servers and
# commands it starts, and the suite ran in about a fifth less time than with two.
PYTEST_WORKERS ?= 4

pytest: dev system-deps $(CCTV) web
	$(BIN)/pytest -n $(PYTEST_WORKERS)

# Known vulnerabilities in the installed dependencies; exceptions in audit-allowlist.toml.
audit: dev
	$(BIN)/python scripts/audit.py

test: lint typecheck pytest web-test audit

fuzz-long: dev system-deps
	FUZZ_EXAMPLES=$${FUZZ_EXAMPLES:-400} $(BIN)/pytest tests/fuzz --timeout 3600
	FUZZ_EXAMPLES=$${FUZZ_EXAMPLES:-400} FUZZ_DATABASE=postgres $(BIN)/pytest tests/fuzz --timeout 3600

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache src/pli/server/webapp/dist

# `make bench`: every benchmark at full size beside its reference, one table, written to
# benchmarks/RESULTS.md with the machine's description (several minutes).
bench: dev system-deps
	$(BIN)/python -m benchmarks --size-mib $${SIZE_MIB:-1024} --output benchmarks/RESULTS.md
