# Two commands matter on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
DEMO   := examples/demo
ISOLATE_DEMO := build/demo-isolate

.PHONY: demo demo-isolate test lint typecheck pytest bench bytecode clean

# The venv is rebuilt only when pyproject.toml changes; the stamp files record what is installed.
$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.core: $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install -q -e .
	touch $@

$(VENV)/.dev: $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $@ $(VENV)/.core $(VENV)/.dashboard

$(VENV)/.bench: $(VENV)/.dev
	$(BIN)/python -m pip install -q -e '.[dev,bench]'
	touch $@

# pip compiles what it installs from a wheel, but not an editable install's sources, and
# where PYTHONDONTWRITEBYTECODE is set nothing else will: every ptx process would compile
# its modules afresh (BENCHMARKS.md). compileall only redoes what changed.
bytecode: $(VENV)/.core
	$(BIN)/python -m compileall -q ptx

$(VENV)/.dashboard: $(VENV)/.core
	$(BIN)/python -m pip install -q -e '.[dashboard]'
	touch $@

# The demo ends with the dashboard of its runs, so it installs that extra (Bokeh) too.
demo: bytecode $(VENV)/.dashboard
	cd $(DEMO) && ../../$(BIN)/ptx validate
	cd $(DEMO) && ../../$(BIN)/ptx plan -j 4
	cd $(DEMO) && ../../$(BIN)/ptx run -j 4
	cd $(DEMO) && ../../$(BIN)/ptx dashboard

# A fresh git repository made from examples/isolate each time; the run ends 1 because of
# the conflict it is built to show, which is what this target checks.
demo-isolate: bytecode
	rm -rf $(ISOLATE_DEMO) && mkdir -p $(ISOLATE_DEMO)
	cp -R examples/isolate/. $(ISOLATE_DEMO)/
	cd $(ISOLATE_DEMO) && git init -q && git add -A && \
		git -c user.name=ptx-demo -c user.email=demo@example.com commit -q -m "demo: start"
	cd $(ISOLATE_DEMO) && ../../$(BIN)/ptx plan -j 4
	cd $(ISOLATE_DEMO) && { ../../$(BIN)/ptx run -j 4; status=$$?; \
		test $$status -eq 1 && echo "demo-isolate: ptx exited 1 because of the conflict above, as intended"; }
	cd $(ISOLATE_DEMO) && git log --graph --oneline --all

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
	rm -rf $(DEMO)/.ptx $(ISOLATE_DEMO)
