# The two commands of the README: `make run` (the system) and `make test` (the tests).
# Both create .venv and install requirements-dev.lock (the runtime and the dev tools, every file's
# sha256 pinned: pip refuses anything else), then the project itself without dependencies.
# `make lock` regenerates both locks from pyproject.toml (docs/DEPENDENCIES.md).
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run run-fresh test soak lint bench venv down clean lock check-pins

$(STAMP): pyproject.toml requirements-dev.lock
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) || { \
	  echo "python3.11 -m venv failed: on Debian/Ubuntu run 'sudo apt-get install python3.11-venv'"; exit 1; }
	$(BIN)/python -m pip install -q --require-hashes -r requirements-dev.lock
	@# the project: nothing downloaded (its dependencies are above, setuptools from the lock too)
	$(BIN)/python -m pip install -q --no-deps --no-build-isolation -e .
	@# compile the project's own modules now: a service that compiles them at every start (when
	@# bytecode cannot be written) holds the compiler's memory for good (docs/BENCHMARKS.md).
	@# -o 2 as well, and the packages': `automata run` then runs the services without docstrings
	@# (PYTHONOPTIMIZE=2, cli/lean.py).
	$(BIN)/python -m compileall -q -j 0 -o 0 -o 2 shared services strategies backtest cli examples >/dev/null
	$(BIN)/python -m compileall -q -j 0 -o 2 $$($(BIN)/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])') >/dev/null
	@touch $(STAMP)

venv: $(STAMP)

run: $(STAMP)
	$(BIN)/automata run

# A clean demo: the previous run's Redis data and paper venue state forgotten (`make run` carries on).
run-fresh: $(STAMP)
	$(BIN)/automata run --fresh

down: $(STAMP)
	$(BIN)/automata down

# Three workers (pytest-xdist), a test module each at a time (--dist loadfile: a module's fixtures
# stay in one worker). Most of a test waits on a real subprocess: two workers kept the 2-core
# machine 60 % busy, a third fills the waits (8:39 on two, 6:43 on three, 2026-12-07; the slow
# modules first made no difference). TEST_WORKERS=1 runs them in this process, one after another.
TEST_WORKERS ?= 3
test: $(STAMP)
	$(BIN)/python -m pytest -q $(if $(filter 1,$(TEST_WORKERS)),,-n $(TEST_WORKERS) --dist loadfile) $(PYTEST_ARGS)

# The chaos and soak runs, then the fuzz suite with many more random inputs (tests/fuzz/budget.py).
soak: $(STAMP)
	$(BIN)/python -m pytest -q -m soak -p no:cacheprovider $(PYTEST_ARGS)
	AUTOMATA_FUZZ=long $(BIN)/python -m pytest -q -p no:cacheprovider --timeout 3600 tests/fuzz $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: $(STAMP)
	@for b in bench/[!_]*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

# Both locks from pyproject.toml, same versions unless pyproject.toml changed: sha256 of every
# file PyPI has for each pinned version (x86_64, aarch64, sdists). Needs pypi.org; pip-tools goes
# in a venv of its own (.venv/lock-tools), never into the project's.
LOCK_TOOLS := $(VENV)/lock-tools
PIP_COMPILE := CUSTOM_COMPILE_COMMAND="make lock" $(LOCK_TOOLS)/bin/pip-compile -q --generate-hashes \
	--allow-unsafe --all-build-deps --strip-extras --no-emit-index-url --no-emit-find-links
lock:
	@test -x $(LOCK_TOOLS)/bin/pip-compile || { $(PYTHON) -m venv $(LOCK_TOOLS) && \
	  $(LOCK_TOOLS)/bin/python -m pip install -q pip-tools==7.7.0; }
	$(PIP_COMPILE) -o requirements.lock pyproject.toml
	$(PIP_COMPILE) --all-extras -o requirements-dev.lock pyproject.toml

# Fails while a base image (Dockerfile FROM, compose image:) is not pinned by digest;
# `python3 deploy/pin_images.py` pins them (needs Docker Hub).
check-pins:
	$(PYTHON) deploy/pin_images.py --check

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache
