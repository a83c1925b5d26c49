# Two commands do all the set-up on a fresh machine (Python 3.11, pip):
#   make demo   creates .venv, installs twbert, runs the main job on the embedded sample
#   make test   creates .venv, installs twbert with its test extras, runs the test suite
#   make lint   ruff over the whole tree (CI runs it before the tests)
PY ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
DEMO ?= runs/demo

.PHONY: demo test lint install clean

$(BIN)/twbert: pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[dev]"
	touch $@

install: $(BIN)/twbert

demo: install
	PATH="$(abspath $(BIN)):$$PATH" bash scripts/demo.sh $(DEMO)

test: install
	$(BIN)/python -m pytest -q

lint: install
	$(BIN)/ruff check .

clean:
	rm -rf $(DEMO) .pytest_cache
