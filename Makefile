# sweep's entry points. `make demo` and `make test` are the README's first two commands.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
SUDO   := $(shell [ "$$(id -u)" -eq 0 ] || echo sudo)
# torch is pinned to the CPU wheel for the course machines; on a GPU cluster install your CUDA torch first.
TORCH  ?= torch==2.13.0

.PHONY: setup demo test test-fast slurm-up slurm-down bench clean

$(BIN)/sweep: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q "$(TORCH)" -e '.[test]'
	touch $@

setup: $(BIN)/sweep

demo: setup                      ## train the default run (digits MLP) and show where its results are
	$(BIN)/sweep run

slurm-up:                        ## start (or check) the one-node SLURM cluster used by the launcher tests
	$(SUDO) env SLURM_CPUS=4 SLURM_MAX_ARRAY=8 slurm/dev-cluster-up

slurm-down:
	$(SUDO) slurm/dev-cluster-down

test: setup slurm-up             ## everything, including the tests that talk to the real SLURM cluster
	$(BIN)/python -m pytest

test-fast: setup                 ## everything but the SLURM tests
	$(BIN)/python -m pytest -m "not slurm"

bench: setup                     ## speed benchmarks: ratios measured in one run each
	$(BIN)/python benchmarks/bench_train.py
	$(BIN)/python benchmarks/bench_pack.py

clean:
	rm -rf runs outputs .pytest_cache
