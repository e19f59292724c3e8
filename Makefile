# The course's commands. `make course` sets up and renders the whole course; `make test` sets up and runs the tests.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# jupyter refuses to run as root (Docker, cloud machines) unless told it may
ROOT_FLAG := $(if $(filter 0,$(shell id -u)),--allow-root)

.PHONY: setup course student lab present test nbval quick lint bench wheel clean

$(VENV)/.installed: requirements.txt constraints.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade --quiet pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

setup: $(VENV)/.installed

course: setup
	$(PY) -m course render --slides

student: setup
	$(PY) -m course render --student

lab: setup
	$(PY) -m jupyter lab notebooks $(ROOT_FLAG) --ServerApp.ip=$${LAB_IP:-127.0.0.1} --ServerApp.port=$${LAB_PORT:-8888}

# live slides with working widgets (jupyterlab-slideshow's deck mode), presented from the presenter edition in
# build/present (no solutions, no hidden tests, speaker notes kept; course/student.py)
present: setup
	$(PY) -m course present --out build/present
	$(PY) -m jupyter lab build/present $(ROOT_FLAG) --ServerApp.ip=$${LAB_IP:-127.0.0.1} --ServerApp.port=$${LAB_PORT:-8888}

# Two pytest workers share the two cores (one torch thread each: two OpenMP teams on two cores wait on each other);
# the notebooks run once, in the background (tests/course_build.py), for every test that reads an executed notebook.
test: setup
	LECTURELIB_FAST=1 OMP_NUM_THREADS=1 $(PY) -m pytest -n 2 --dist loadscope tests

# the notebooks under nbval itself, in fast mode (a second runner; `make test` checks the same on its shared run)
nbval: setup
	LECTURELIB_FAST=1 $(PY) -m pytest --nbval-lax --nbval-current-env notebooks

quick: setup
	LECTURELIB_FAST=1 $(PY) -m pytest -q -m "not slow and not browser" tests

lint: setup
	$(PY) -m ruff check lecturelib course data tests conftest.py
	$(PY) -m ruff format --check lecturelib course data tests conftest.py

bench: setup
	$(PY) -m course bench

# the student package with its data, for a hub image, Colab or an offline classroom (README: Where to run it)
wheel: setup
	$(PY) -m pip wheel --no-deps --no-build-isolation --quiet -w dist .

clean:
	rm -rf build dist checkpoints .pytest_cache
