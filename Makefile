# The two commands of the README: `make run` (the system) and `make test` (the tests).
# Both create .venv and install everything pinned in pyproject.toml + requirements.lock.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test soak lint bench venv down clean

$(STAMP): pyproject.toml requirements.lock
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) || { \
	  echo "python3.11 -m venv failed: on Debian/Ubuntu run 'sudo apt-get install python3.11-venv'"; exit 1; }
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c requirements.lock -e '.[dev]'
	@# compile the project's own modules now: a service that compiles them at every start (when
	@# bytecode cannot be written) holds the compiler's memory for good (docs/BENCHMARKS.md).
	$(BIN)/python -m compileall -q shared services strategies backtest cli examples >/dev/null
	@touch $(STAMP)

venv: $(STAMP)

run: $(STAMP)
	$(BIN)/automata run

down: $(STAMP)
	$(BIN)/automata down

test: $(STAMP)
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

# The chaos and soak runs, then the fuzz suite with many more random inputs (tests/fuzz/budget.py).
soak: $(STAMP)
	$(BIN)/python -m pytest -q -m soak -p no:cacheprovider $(PYTEST_ARGS)
	AUTOMATA_FUZZ=long $(BIN)/python -m pytest -q -p no:cacheprovider --timeout 3600 tests/fuzz $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: $(STAMP)
	@for b in bench/[!_]*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache
