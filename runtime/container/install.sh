#!/bin/sh
# Build step of runtime/Dockerfile: the project (not editable) with the dependency pins of its
# pyproject.toml into a virtualenv, bytecode compiled up front because the container's root
# filesystem is read-only (no .pyc written at start) and start-up must stay well under 20 s.
# Usage: install.sh <project source folder> <virtualenv folder>
set -eu
src="${1:?usage: install.sh <source folder> <virtualenv folder>}"
venv="${2:?usage: install.sh <source folder> <virtualenv folder>}"

export PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore
python -m venv "$venv"
# --only-binary: every pinned dependency has a cp311 manylinux wheel; a source build in the image
# would need compilers the slim base does not have, so fail loudly instead.
"$venv/bin/pip" install --compile --only-binary=:all: --no-binary=employee-attrition-serving "$src"
# Fail the build, not the first start, when MLServer cannot import the runtime.
"$venv/bin/python" -c "import attrition_runtime.runtime"
