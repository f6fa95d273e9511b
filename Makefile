# flowad: set-up, demo, tests, benchmarks. Every target installs what it needs into .venv.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: install demo test bench lint clean

$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	# PyTorch first, pinned: on these machines this is the local CPU build (no CUDA wheels).
	$(PY) -m pip install torch==2.13.0
	$(PY) -m pip install -e ".[dev,bench]"
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(VENV)/bin/flowad demo --output runs/demo

test: install
	$(PY) -m pytest -q

lint: install
	$(VENV)/bin/ruff check src tests

clean:
	rm -rf $(VENV) runs build src/*.egg-info .pytest_cache
