# OpenVisit: `make run` to try it, `make test` to check it.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)

.PHONY: run test lint bench install install-test clean-db

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test,dev]'
	rm -f $(VENV)/.installed-* && touch $(STAMP)

install: $(STAMP)

# Serve the demo on http://127.0.0.1:8000 (SQLite under ./var, embedded media).
# Running it again reuses the data.
run: install
	OPENVISIT_STAFF_TOTP_REQUIRED=$${OPENVISIT_STAFF_TOTP_REQUIRED:-false} $(BIN)/openvisit demo
	OPENVISIT_STAFF_TOTP_REQUIRED=$${OPENVISIT_STAFF_TOTP_REQUIRED:-false} $(BIN)/openvisit serve

# Every suite. PostgreSQL and Chromium suites are skipped, with the reason,
# where they can't run; with CI=true nothing may be skipped.
PYTEST_ARGS ?= -n 2
test: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy src/openvisit
	$(BIN)/lint-imports

bench: install
	@for script in benchmarks/*.py; do [ -e "$$script" ] || continue; echo "== $$script"; $(BIN)/python $$script || exit 1; done

clean-db:
	rm -rf var
