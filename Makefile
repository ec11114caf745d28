# The README's two commands are `make serve` and `make test`; each creates .venv and installs the
# project on first use (a stamp file makes later runs skip the install).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
# Shared read-only data beside the checkout (CI, developers); users get the download instead.
SHARED_DATA := $(abspath ../shared/data)
ifneq ($(wildcard $(SHARED_DATA)/SHA256SUMS),)
export ATTRITION_DATA_DIR ?= $(SHARED_DATA)
endif
# One BLAS/OpenMP thread per process: oversubscription tripled scoring latency on 2 cores.
export OMP_NUM_THREADS ?= 1
export MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR ?= false

.PHONY: install serve train test lint format book bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,book,spark]'
	@touch $(STAMP)

serve: install  ## train and register a bundle if there is none, then start the V2 server
	$(BIN)/python -m attrition_runtime.serve

train: install  ## search, train, bundle and register a new version (alias staging)
	$(BIN)/attrition train

test: install  ## lint, unit and server tests, manifests, workflows, notebooks
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# The book trains, registers and promotes: it does so in a store of its own, not in mlflow/.
BOOK_STORE := $(CURDIR)/book/_build/mlflow

book: install  ## build the Jupyter Book (executes every chapter; warnings are errors)
	@mkdir -p $(BOOK_STORE)
	MLFLOW_TRACKING_URI=$${MLFLOW_TRACKING_URI:-sqlite:///$(BOOK_STORE)/mlflow.db} \
		$(BIN)/jupyter-book build -W --keep-going book

bench: install  ## latency, throughput, start-up and memory vs bare MLServer
	$(BIN)/python -m attrition_runtime.bench

clean:
	rm -rf book/_build .pytest_cache .ruff_cache
