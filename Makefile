# The course's commands. `make course` sets up and renders the whole course; `make test` sets up and runs the tests.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: setup course lab test bench data clean

$(VENV)/.installed: requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade --quiet pip
	$(PY) -m pip install --quiet -r requirements.txt -e .
	touch $@

setup: $(VENV)/.installed

course: setup
	$(PY) -m lecturelib render --slides

lab: setup
	$(PY) -m jupyter lab notebooks

test: setup
	LECTURELIB_FAST=1 LECTURELIB_OFFLINE=1 $(PY) -m pytest --nbval-lax --nbval-current-env tests notebooks

bench: setup
	$(PY) -m lecturelib.bench

data: setup
	$(PY) -m lecturelib.data download

clean:
	rm -rf build checkpoints .pytest_cache
