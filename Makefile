# Two commands do all the set-up on a fresh machine (Python 3.11, pip):
#   make demo   creates .venv, installs twbert, runs the main job on the embedded sample
#   make test   creates .venv, installs twbert with its test extras, runs the test suite
PY ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
DEMO ?= runs/demo

.PHONY: demo test install clean

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

clean:
	rm -rf $(DEMO) .pytest_cache
