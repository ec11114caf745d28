# The README's two commands are `make serve` and `make test`. Each creates .venv on first use and
# installs exactly the versions in uv.lock (uv, itself pinned, is bootstrapped into .uv with pip);
# stamp files make later runs skip the install until the lock changes.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
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

.PHONY: azurite install install-serve install-clients chromium promtool lock serve train test test-fast lint format book bench soak clean image image-engine

# uv is one binary: pip puts it in .uv/bin without a virtualenv of its own, from a hashed requirements
# file (the version is pyproject.toml's required-version; tests/test_workflows_locked.py checks it).
$(UV): tools/uv-requirements.txt
	$(PYTHON) -m pip install --quiet --disable-pip-version-check --require-hashes --no-deps --upgrade \
		--target .uv -r tools/uv-requirements.txt

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
	$(UV) pip install --no-config --python $(SECURITY_VENV)/bin/python --require-hashes --no-deps --compile-bytecode \
		-r tools/security-requirements.txt
	@touch $@

# The V2 clients' SDKs (kserve, tritonclient) as client developers install them, for tests/test_v2_clients.py:
# kserve's pins clash with the project's, and its gRPC stubs with tritonclient's in one process.
CLIENTS_VENV := .venv-clients
export ATTRITION_CLIENTS_VENV := $(abspath $(CLIENTS_VENV))

$(CLIENTS_VENV)/.stamp: tools/clients-requirements.txt | $(UV)
	$(UV) venv --allow-existing --python $(PYTHON) $(CLIENTS_VENV)
	$(UV) pip install --no-config --python $(CLIENTS_VENV)/bin/python --require-hashes --no-deps --compile-bytecode \
		-r tools/clients-requirements.txt
	@touch $@

# The book's browser test (tests/test_book_pages.py, attrition_tools.book_check) drives Debian's
# Chromium through the playwright wheel's driver; Playwright's own browser download is never used.
# CHROMIUM names another Chromium or Chrome already installed (a CI runner's), and then nothing installs.
CHROMIUM ?= /usr/bin/chromium
export ATTRITION_CHROMIUM := $(CHROMIUM)

chromium:  ## Debian's Chromium (and a font) for the browser test, through apt-get as root
	@test -x $(CHROMIUM) || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
		apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core; }

# Prometheus's own promtool checks and unit-tests the PrometheusRule's alerts (tests/test_alert_rules.py).
# It comes in Debian's (and Ubuntu's) prometheus package, with the Prometheus server, which the package
# starts where an init system runs (in a container without one, or with Docker's policy-rc.d, nothing
# starts): it is stopped and disabled again, only promtool is wanted. Not the recommended node exporter.
promtool:  ## Prometheus's promtool (Debian's prometheus package) for the alert rules' tests, through apt-get
	@command -v promtool >/dev/null || { \
		as=$$([ "$$(id -u)" = 0 ] || echo sudo -n); \
		$$as apt-get update -qq && $$as env DEBIAN_FRONTEND=noninteractive \
			apt-get install -y -qq --no-install-recommends prometheus && \
		if [ -d /run/systemd/system ]; then $$as systemctl disable --now --quiet prometheus; \
		else $$as /etc/init.d/prometheus stop >/dev/null; $$as update-rc.d prometheus disable >/dev/null; fi; }

# NannyML (tests/test_outcomes_cbpe.py: our CBPE equals NannyML's) pins versions and pulls libraries
# the project does not want: a virtualenv of its own too, from a hashed requirements file.
NANNYML_VENV := .venv-nannyml
export ATTRITION_NANNYML_VENV := $(abspath $(NANNYML_VENV))

$(NANNYML_VENV)/.stamp: tools/nannyml-requirements.txt | $(UV)
	$(UV) venv --allow-existing --python $(PYTHON) $(NANNYML_VENV)
	$(UV) pip install --no-config --python $(NANNYML_VENV)/bin/python --require-hashes --no-deps \
		-r tools/nannyml-requirements.txt
	@touch $@

# Azurite (the Azure Storage emulator, npm) for the inference log's tests, soak and benchmark, in a
# project-local folder; Debian's node and npm if the machine has no npm. 3.35.0: the last release
# that runs on Debian 12's Node 18 (3.36 needs Node 21, 3.37 Node 22).
AZURITE_VERSION := 3.35.0
# A stamp named by the version: changing the pin reinstalls (the binary is .azurite/node_modules/.bin).
AZURITE := .azurite/.installed-$(AZURITE_VERSION)

$(AZURITE):
	command -v npm >/dev/null || (apt-get update && apt-get install -y --no-install-recommends nodejs npm)
	npm install --prefix .azurite --no-audit --no-fund --ignore-scripts azurite@$(AZURITE_VERSION)
	@touch $@

azurite: $(AZURITE)  ## install the Azure Storage emulator for the inference log's tests

# The schemas of the released CRDs the overlays use (Gateway API, cert-manager, Istio, Prometheus
# Operator), for tests/test_crd_schemas.py: npm packages at the versions and integrity hashes of
# tests/crd-schemas/package-lock.json. Node.js and npm from Debian when the machine has none.
CRD_SCHEMAS := tests/crd-schemas
$(CRD_SCHEMAS)/node_modules/.package-lock.json: $(CRD_SCHEMAS)/package-lock.json
	@command -v npm >/dev/null || (apt-get update -qq && apt-get install -y -qq nodejs npm)
	npm ci --prefix $(CRD_SCHEMAS) --ignore-scripts --no-audit --no-fund


# cyclonedx-bom (the images' SBOMs) in a virtualenv of its own, from a hashed requirements file.
SBOM_VENV := .venv-sbom

$(SBOM_VENV)/.stamp: tools/sbom-requirements.txt | $(UV)
	$(UV) venv --allow-existing --python $(PYTHON) $(SBOM_VENV)
	$(UV) pip install --no-config --python $(SBOM_VENV)/bin/python --require-hashes --no-deps \
		-r tools/sbom-requirements.txt
	@touch $@

install-serve: $(VENV)/.serve-stamp
install-clients: $(CLIENTS_VENV)/.stamp
install: $(VENV)/.dev-stamp $(SECURITY_VENV)/.stamp $(CLIENTS_VENV)/.stamp $(NANNYML_VENV)/.stamp \
	$(CRD_SCHEMAS)/node_modules/.package-lock.json

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
# IMAGE_BASE=local (the default where debootstrap is, after image-engine has installed it: decided when
# the recipe runs, not when make reads this file) builds on Debian's packages, public on the
# Dockerfile's pinned base.
IMAGE_BASE ?=
# CONTAINER_TESTS=0 leaves the images and their tests out of make test (GitHub's test job: its image
# job builds the images with BuildKit and runs the same tests on them).
CONTAINER_TESTS ?= 1
TEST_IMAGE := $(if $(filter 0,$(CONTAINER_TESTS)),,image)
TEST_MARKERS := $(if $(filter 0,$(CONTAINER_TESTS)),-m "not container",)

image: install-serve $(SBOM_VENV)/.stamp image-engine  ## build both serving images, their SBOMs and figures
	@if command -v podman >/dev/null; then \
		base=$(IMAGE_BASE); base=$${base:-$$(command -v debootstrap >/dev/null && echo local || echo public)}; \
		$(BIN)/python -m attrition_tools.image --base $$base; \
	else echo "make image: skipped, podman is not installed"; fi

test: install chromium promtool $(AZURITE) $(TEST_IMAGE)  ## lint, unit and server tests, images and container, manifests, workflows, security scans, notebooks, book pages
	$(BIN)/ruff check .
	@# tests/test_repository_guard.py runs a server in a network namespace: iproute2's ip (Debian).
	@command -v ip >/dev/null || (apt-get update -qq && apt-get install -y -qq iproute2)
	$(BIN)/python -m pytest runtime/tests
	$(BIN)/python -m pytest $(TEST_MARKERS)

# The loop while editing: lint and the unit level (pytest markers, pyproject.toml): no server, Spark,
# container, training run or notebook; under a minute on 2 cores once installed. Two pytest processes,
# as in make test.
FAST := -m "not (train or server or spark or container or deploy or book)"
test-fast: install  ## lint and the unit tests (no server, Spark, container, training or notebook)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest runtime/tests $(FAST)
	$(BIN)/python -m pytest tests $(FAST)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# The book trains, registers and promotes: it does so in a store of its own, not in mlflow/.
BOOK_STORE := $(CURDIR)/book/_build/mlflow

# Then every page in the browser, as the test does, with screenshots in book/_build/screenshots; a
# machine without the browser (a learner's laptop) gets the book unchecked, and is told so.
book: install  ## build the Jupyter Book (executes every chapter; warnings are errors), check its pages
	@mkdir -p $(BOOK_STORE)
	MLFLOW_TRACKING_URI=$${MLFLOW_TRACKING_URI:-sqlite:///$(BOOK_STORE)/mlflow.db} \
		$(BIN)/jupyter-book build -W --keep-going book
	@if [ -x "$(CHROMIUM)" ]; then $(BIN)/python -m attrition_tools.book_check; \
	else echo "pages not checked: no browser at $(CHROMIUM) (make chromium, or CHROMIUM=/path/to/chrome)"; fi

bench: install $(AZURITE)  ## latency, throughput, start-up and memory vs bare MLServer; the images' figures
	$(BIN)/python -m attrition_tools.bench
	@if command -v podman >/dev/null; then $(BIN)/python -m attrition_tools.bench.image; \
	else echo "make bench: no image figures, podman is not installed"; fi

soak: install $(AZURITE)  ## mixed traffic at concurrency 16 for SOAK_SECONDS (default 600): errors, latency and RSS over time
	$(BIN)/python -m attrition_tools.soak

clean:
	rm -rf book/_build .pytest_cache .ruff_cache
