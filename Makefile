# The two commands of the README. Each sets up its own virtual environment (.venv) first.
# `pip install torch==2.13.0` takes a local CPU build on machines that have one and a CUDA
# build from PyPI elsewhere; a plain `torch` requirement would pull a 5 GB CUDA build.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
TORCH ?= torch==2.13.0
TRITON ?= triton==3.6.0

# Real data sets of this workplace, when present beside the checkout (else ~/.cache/rramk, downloaded).
export RRAMK_DATA ?= $(if $(wildcard ../shared/datasets/mnist),$(abspath ../shared/datasets),)

.PHONY: demo test setup print-data

$(BIN)/rramk-installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q "$(TORCH)" "$(TRITON)"
	$(BIN)/python -m pip install -q -e ".[dev]"
	touch $@

setup: $(BIN)/rramk-installed

demo: setup
	$(BIN)/python -m rramk.demo

test: setup
	$(BIN)/python -m pytest

print-data:
	@echo $(RRAMK_DATA)
