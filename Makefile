# The two commands of the README: `make reproduce` and `make test`.
# Both create .venv on first use (python3 -m venv + pip); later calls reuse it.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
CORES  ?= all  # snakemake --cores all: every core of this machine
WORKERS ?= 2   # make test: pytest workers (pytest-xdist), each a test file at a time on a core

.PHONY: reproduce figures test test-slurm lint clean-venv

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# torch is pinned to the CPU build that pip finds on local disk (see README).
	$(BIN)/python -m pip install --quiet -e '.[test,tensorboard]'
	touch $(STAMP)

venv: $(STAMP)

## Run the whole default grid (budget `mini`): trains what is missing, then figures and tables.
reproduce: $(STAMP)
	$(BIN)/snakemake --cores $(CORES)

## Rebuild figures and tables from the logs in results/ only; never trains.
figures: $(STAMP)
	$(BIN)/snakemake --cores $(CORES) figures

## Tests (a real end-to-end workflow on the smoke budget included), lint.
test: $(STAMP)
	$(BIN)/ruff check fmer tests workflow
	$(BIN)/snakemake --lint --snakefile workflow/Snakefile
	$(BIN)/python -m pytest -x -q -n $(WORKERS) --dist loadfile

## The workflow under a live one-node SLURM scheduler (installs slurm-wlm; needs root).
test-slurm: $(STAMP)
	PATH=$(abspath $(BIN)):$$PATH $(BIN)/python -m pytest -q -m slurm -o addopts='' tests/test_slurm.py

clean-venv:
	rm -rf $(VENV)
