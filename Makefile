# The README's two commands are `make serve` and `make test`. Each creates .venv on first use and
# installs exactly the versions in uv.lock (uv, itself pinned, is bootstrapped into .uv with pip);
# stamp files make later runs skip the install until the lock changes.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
UV_VERSION := $(shell sed -n 's/^required-version = "==\(.*\)"/\1/p' pyproject.toml)
UV := .uv/bin/uv
export UV_PROJECT_ENVIRONMENT := $(VENV)
export UV_PYTHON := $(PYTHON)
export UV_PYTHON_DOWNLOADS := never
# Bytecode: make test compiles all of .venv at install (~15 s): with PYTHONDONTWRITEBYTECODE set, as on
# CI machines, every server start would otherwise compile ~1,600 modules from source, twice (main process
# and worker). make serve and make train instead let Python cache what they import as they import it,
# which is a fraction of it: a first make serve reaches its ready line sooner.
LAZY_BYTECODE := PYTHONDONTWRITEBYTECODE=
# What serving and training need (make serve), and everything for tests, the book and the tools.
SERVE_EXTRAS := --extra alibi --extra train
DEV_EXTRAS := $(SERVE_EXTRAS) --extra dev --extra book --extra spark
# Shared read-only data beside the checkout (CI, developers); users get the download instead.
SHARED_DATA := $(abspath ../shared/data)
ifneq ($(wildcard $(SHARED_DATA)/SHA256SUMS),)
export ATTRITION_DATA_DIR ?= $(SHARED_DATA)
endif
# One BLAS/OpenMP thread per process: oversubscription tripled scoring latency on 2 cores.
export OMP_NUM_THREADS ?= 1
export MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR ?= false

.PHONY: install install-serve lock serve train test lint format book bench soak clean image image-engine

# uv is one binary: pip puts it in .uv/bin without a virtualenv of its own.
$(UV):
	$(PYTHON) -m pip install --quiet --disable-pip-version-check --target .uv uv==$(UV_VERSION)

# serve syncs only what serving and training need, and leaves anything else installed (--inexact).
$(VENV)/.serve-stamp: uv.lock | $(UV)
	$(UV) sync --frozen --inexact $(SERVE_EXTRAS)
	@touch $@

$(VENV)/.dev-stamp: uv.lock | $(UV)
	$(UV) sync --frozen --compile-bytecode $(DEV_EXTRAS)
	@touch $@ $(VENV)/.serve-stamp

# checkov (tests/test_static_security.py) conflicts with the project's pins: a virtualenv of its own,
# installed from a hashed requirements file.
SECURITY_VENV := .venv-security
export ATTRITION_SECURITY_VENV := $(abspath $(SECURITY_VENV))

$(SECURITY_VENV)/.stamp: tools/security-requirements.txt | $(UV)
	$(UV) venv --allow-existing --python $(PYTHON) $(SECURITY_VENV)
	$(UV) pip install --python $(SECURITY_VENV)/bin/python --require-hashes --no-deps --compile-bytecode \
		-r tools/security-requirements.txt
	@touch $@

# cyclonedx-bom (the images' SBOMs) in a virtualenv of its own, from a hashed requirements file.
SBOM_VENV := .venv-sbom

$(SBOM_VENV)/.stamp: tools/sbom-requirements.txt | $(UV)
	$(UV) venv --allow-existing --python $(PYTHON) $(SBOM_VENV)
	$(UV) pip install --python $(SBOM_VENV)/bin/python --require-hashes --no-deps \
		-r tools/sbom-requirements.txt
	@touch $@

install-serve: $(VENV)/.serve-stamp
install: $(VENV)/.dev-stamp $(SECURITY_VENV)/.stamp

lock: | $(UV)  ## re-resolve uv.lock after changing a dependency in pyproject.toml (then commit it)
	$(UV) lock

serve: install-serve  ## train and register a bundle if there is none, then start the V2 server
	$(LAZY_BYTECODE) $(BIN)/python -m attrition_tools.serve

train: install-serve  ## search, train, bundle and register a new version (alias staging)
	$(LAZY_BYTECODE) $(BIN)/attrition train

# Two pytest processes: the runtime's own tests import mlserver, which the main session must not (its
# gRPC stubs clash with tritonclient's, which the server tests use).
# The container engine: podman with runc and debootstrap (the local base) from Debian's packages; other
# systems are told what to install, and the container test then reports itself skipped.
IMAGE_ENGINE := podman buildah runc debootstrap

image-engine:
	@if ! command -v podman >/dev/null || ! command -v debootstrap >/dev/null; then \
		if command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
			apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $(IMAGE_ENGINE); \
		else \
			echo "make image: install podman (Debian/Ubuntu: apt-get install $(IMAGE_ENGINE);" \
				"Fedora: dnf install podman; macOS: brew install podman)"; \
		fi; \
	fi

# Both variants of runtime/Dockerfile (default, open), their SBOMs and figures into build/image/.
# IMAGE_BASE=local (the default where debootstrap is) builds on Debian's packages, public on the
# Dockerfile's pinned base.
IMAGE_BASE ?= $(if $(shell command -v debootstrap),local,public)
# CONTAINER_TESTS=0 leaves the images and their tests out of make test (GitHub's test job: its image
# job builds the images with BuildKit and runs the same tests on them).
CONTAINER_TESTS ?= 1
TEST_IMAGE := $(if $(filter 0,$(CONTAINER_TESTS)),,image)
TEST_MARKERS := $(if $(filter 0,$(CONTAINER_TESTS)),-m "not container",)

image: install-serve $(SBOM_VENV)/.stamp image-engine  ## build both serving images, their SBOMs and figures
	@if command -v podman >/dev/null; then \
		$(BIN)/python -m attrition_tools.image --base $(IMAGE_BASE); \
	else echo "make image: skipped, podman is not installed"; fi

test: install $(TEST_IMAGE)  ## lint, unit and server tests, images and container, manifests, workflows, security scans, notebooks
	$(BIN)/ruff check .
	$(BIN)/python -m pytest runtime/tests
	$(BIN)/python -m pytest $(TEST_MARKERS)

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

bench: install  ## latency, throughput, start-up and memory vs bare MLServer; the images' figures
	$(BIN)/python -m attrition_tools.bench
	@if command -v podman >/dev/null; then $(BIN)/python -m attrition_tools.bench.image; \
	else echo "make bench: no image figures, podman is not installed"; fi

soak: install  ## mixed traffic at concurrency 16 for SOAK_SECONDS (default 600): errors, latency and RSS over time
	$(BIN)/python -m attrition_tools.soak

clean:
	rm -rf book/_build .pytest_cache .ruff_cache
