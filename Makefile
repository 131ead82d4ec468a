# Two commands matter on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
DEMO   := examples/demo

.PHONY: demo test lint typecheck pytest bench bytecode clean

# The venv is rebuilt only when pyproject.toml changes; the stamp files record what is installed.
$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.core: $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install -q -e .
	touch $@

$(VENV)/.dev: $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $@ $(VENV)/.core

$(VENV)/.bench: $(VENV)/.dev
	$(BIN)/python -m pip install -q -e '.[dev,bench]'
	touch $@

# pip compiles what it installs from a wheel, but not an editable install's sources, and
# where PYTHONDONTWRITEBYTECODE is set nothing else will: every ptx process would compile
# its modules afresh (BENCHMARKS.md). compileall only redoes what changed.
bytecode: $(VENV)/.core
	$(BIN)/python -m compileall -q ptx

demo: bytecode
	cd $(DEMO) && ../../$(BIN)/ptx validate
	cd $(DEMO) && ../../$(BIN)/ptx plan -j 4
	cd $(DEMO) && ../../$(BIN)/ptx run -j 4

lint: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(VENV)/.dev
	$(BIN)/mypy

pytest: $(VENV)/.dev bytecode
	$(BIN)/pytest -q -n 2

test: lint typecheck pytest

bench: $(VENV)/.bench bytecode
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis benchmarks/out
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
	rm -rf $(DEMO)/.ptx
