# sweep's entry points. `make demo` and `make test` are the README's first two commands.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
SUDO   := $(shell [ "$$(id -u)" -eq 0 ] || echo sudo)
# torch is pinned to the CPU wheel for the course machines; on a GPU cluster install your CUDA torch first.
TORCH  ?= torch==2.13.0

.PHONY: setup demo lint format test test-fast slurm-up slurm-down bench gpu-wheels gpu-check clean

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

lint: setup                      ## ruff (lint, format) and the import contract (tests/test_layers.py)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest -q -p no:cacheprovider tests/test_layers.py

format: setup                    ## ruff: apply the fixable lint rules and the format
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

test: setup lint slurm-up        ## lint, then everything, including the tests that talk to the real SLURM cluster
	$(BIN)/python -m pytest

test-fast: setup                 ## everything but the SLURM tests
	$(BIN)/python -m pytest -m "not slurm"

bench: setup                     ## speed benchmarks: ratios measured in one run each
	$(BIN)/python benchmarks/bench_train.py
	$(BIN)/python benchmarks/bench_pack.py
	$(BIN)/python benchmarks/bench_search.py --out benchmarks/results/bench_search.txt
	$(BIN)/python benchmarks/bench_store.py --out benchmarks/results/bench_store.txt

# The GPU machine (Python 3.12, CUDA torch, no network) lacks these: their py3.12 wheels travel in .whl/ (ignored),
# with sweep's own wheel. `make gpu-wheels` here, then on the GPU machine, in one call:
#   python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl && PYTHONPATH=/tmp/site make gpu-check PYTHON=python3 VENV=/usr OUT=$$OUT
GPU_WHEELS = hydra-core==1.3.8 omegaconf==2.3.1 antlr4-python3-runtime==4.9.3 submitit==1.5.4
gpu-wheels: setup                ## pure-Python wheels (any Python 3) of what the GPU machine lacks, and sweep's own
	rm -rf .whl && mkdir -p .whl
	$(BIN)/pip wheel -q --no-deps -w .whl $(GPU_WHEELS) .

# All GPU verification in one command (gpu tests, benchmarks) -> $(OUT)/gpu_check.json + gpu_check.txt.
# DEVICE=cpu runs the same script here with smaller sizes (CI runs it too, so it cannot rot).
DEVICE ?= cuda
OUT ?= gpu-check-out
gpu-check:
	$(BIN)/python benchmarks/gpu_check.py --device $(DEVICE) --out $(OUT)

clean:
	rm -rf runs outputs .pytest_cache
