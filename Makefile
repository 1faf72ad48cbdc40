# Two commands do all the set-up on a fresh Debian machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HERON := $(BIN)/heron
PYTEST_ARGS ?=

.PHONY: install test-deps run test lint unit clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e .
	touch $@

test-deps: install $(VENV)/.test-installed

$(VENV)/.test-installed: pyproject.toml
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

run: install
	$(HERON) cert --if-missing
	$(HERON) serve

lint: test-deps
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests
	$(BIN)/mypy --strict src

unit: test-deps
	$(BIN)/pytest -n 2 $(PYTEST_ARGS)

test: lint unit

clean:
	rm -rf $(VENV) var .mypy_cache .pytest_cache .ruff_cache
