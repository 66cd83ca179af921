# `make run`: a server on the embedded default (SQLite + ./pli-data), ready to use.
# `make test`: ruff, mypy (strict), the whole pytest suite and the dependency audit.
# `make fuzz-long`: the API fuzzer with many more examples, on SQLite and PostgreSQL.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DATA ?= pli-data
HOST ?= 127.0.0.1
PORT ?= 8080

.PHONY: run test lint typecheck pytest install dev system-deps clean bench audit fuzz-long

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

run: install
	$(BIN)/pli serve --data $(DATA) --host $(HOST) --port $(PORT)

system-deps:
	scripts/system-deps.sh

lint: dev
	$(BIN)/ruff check src tests benchmarks scripts
	$(BIN)/ruff format --check src tests benchmarks scripts

typecheck: dev
	$(BIN)/mypy

# The C2SP CCTV age vectors (npm package cctv-age, pinned in tests/vectors/cctv).
CCTV := tests/vectors/cctv/node_modules/cctv-age

$(CCTV): tests/vectors/cctv/package-lock.json
	npm ci --prefix tests/vectors/cctv --no-audit --no-fund
	touch $@

pytest: dev system-deps $(CCTV)
	$(BIN)/pytest -n 2

# Known vulnerabilities in the installed dependencies; exceptions in audit-allowlist.toml.
audit: dev
	$(BIN)/python scripts/audit.py

test: lint typecheck pytest audit

fuzz-long: dev system-deps
	FUZZ_EXAMPLES=$${FUZZ_EXAMPLES:-400} $(BIN)/pytest tests/fuzz --timeout 3600
	FUZZ_EXAMPLES=$${FUZZ_EXAMPLES:-400} FUZZ_DATABASE=postgres $(BIN)/pytest tests/fuzz --timeout 3600

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache

# `make bench`: every benchmark at full size beside its reference, one table, written to
# benchmarks/RESULTS.md with the machine's description (several minutes).
bench: dev system-deps
	$(BIN)/python -m benchmarks --size-mib $${SIZE_MIB:-1024} --output benchmarks/RESULTS.md
