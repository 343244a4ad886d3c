# The two commands: `make run` and `make test`. Both create .venv when needed.
PYTHON ?= python3
VENV   ?= .venv
PORT   ?= 8080
HOST   ?= 127.0.0.1
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test lint bench bench-router clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/gateway seed
	$(BIN)/gateway serve --host $(HOST) --port $(PORT)

lint: $(STAMP)
	$(BIN)/ruff check gateway config_store billing tests bench
	$(BIN)/ruff format --check gateway config_store billing tests bench
	$(BIN)/mypy

test: lint
	$(BIN)/python -m pytest -q -n 2

bench: $(STAMP)
	$(BIN)/python bench/run.py

bench-router: $(STAMP)
	$(BIN)/python bench/classifier.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
