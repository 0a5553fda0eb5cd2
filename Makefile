# Two commands for a fresh machine: `make run` and `make test`.
# Both create .venv and install what they need (re-installing only when pyproject.toml changes).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint bench demo clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e ".[dev]"
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/slackbot run $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check slackbot tests benchmarks
	$(BIN)/ruff format --check slackbot tests benchmarks
	$(BIN)/mypy
	$(BIN)/lint-imports --no-logo

test: lint
	$(BIN)/pytest -n 2 $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/python -m benchmarks $(ARGS)

demo: $(STAMP)
	$(BIN)/slackbot demo

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .import_linter_cache .grimp_cache
