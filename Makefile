# The two commands: `make run` and `make test`. Both create .venv when needed.
PYTHON ?= python3
VENV   ?= .venv
PORT   ?= 8080
HOST   ?= 127.0.0.1
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
SERVE  := $(VENV)/.installed-serve

.PHONY: run test soak test-under-load lint bench bench-stream bench-router clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Serving needs only the package's own dependencies; the suite adds the test extra.
$(SERVE): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $(SERVE)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP) $(SERVE)

run: $(SERVE)
	$(BIN)/gateway seed
	$(BIN)/gateway serve --host $(HOST) --port $(PORT)

lint: $(STAMP)
	$(BIN)/ruff check gateway config_store billing tests bench
	$(BIN)/ruff format --check gateway config_store billing tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

test: lint
	$(BIN)/python -m tests.browser
	$(BIN)/python -m pytest -q -n 2

# The long runs under load (minutes): kill -9 rounds, the WAL through 20,000 requests,
# a Firestore outage of minutes. Not part of `make test`.
soak: $(STAMP)
	$(BIN)/python -m pytest -q -m soak

# `make test` three times in a row while two CPU-bound processes run beside it: the suite
# must not depend on how fast the machine is.
test-under-load: $(STAMP)
	@pids=""; for i in 1 2; do timeout 1800 $(BIN)/python -c 'while True: pass' & pids="$$pids $$!"; done; \
	trap 'kill $$pids 2>/dev/null' EXIT INT TERM; \
	status=0; for run in 1 2 3; do echo "== make test, run $$run of 3, two CPU-bound processes beside it"; \
	$(MAKE) --no-print-directory test || status=1; done; exit $$status

bench: $(STAMP)
	$(BIN)/python bench/run.py

bench-stream: $(STAMP)
	$(BIN)/python bench/stream.py

bench-router: $(STAMP)
	$(BIN)/python bench/classifier.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
