# The set-up contract of the README:
#   make demo    virtualenv + dependencies, then the demo shop on http://127.0.0.1:8000
#   make test    the lint gates, then the whole suite on SQLite, then on PostgreSQL when one
#                answers on 127.0.0.1:5432
#   make lint    the gates alone: ruff format --check, ruff check, lint-imports (a few seconds)
#   make bench   the checkout load benchmark against PostgreSQL (see docs/benchmarks.md)
#   make clean   caches, build and test artefacts (make distclean: also .venv and var/)
#
# Dependencies are installed only when pyproject.toml changed since the last install (a stamp
# file inside the virtualenv records that).

PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
BENCH_ARGS ?=

.PHONY: demo test lint bench venv clean distclean

venv: $(STAMP)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --disable-pip-version-check -q -e '.[test]'
	touch $(STAMP)

demo: venv
	$(BIN)/warenhaus demo

test: venv
	scripts/lint.sh
	scripts/test.sh $(PYTEST_ARGS)

lint: venv
	scripts/lint.sh

bench: venv
	$(BIN)/python bench/checkout.py $(BENCH_ARGS)

clean:
	rm -rf build dist src/*.egg-info .pytest_cache .hypothesis test-results var/bench \
		.ruff_cache .import_linter_cache
	find src tests bench scripts -name __pycache__ -type d -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV) var
