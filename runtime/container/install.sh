#!/bin/sh
# Build step of runtime/Dockerfile (tests/test_open_backend.py runs it too): the project, not editable,
# into a virtualenv with exactly the versions of uv.lock (hashes checked), bytecode compiled up front
# because the container's root filesystem is read-only and start-up must stay short.
# Usage: install.sh <project source folder> <virtualenv folder> [extras, comma-separated; default alibi]
#                   [step: deps | project | all (default)]
#   extras "" installs the open trust stack only: no alibi or alibi-detect (BSL 1.1) in the image.
#   The Dockerfile runs "deps" (needs only pyproject.toml and uv.lock) and "project" as two layers, so
#   that a change to the code or the README reinstalls the project alone, not the locked dependencies.
set -eu
usage="usage: install.sh <source folder> <virtualenv folder> [extras] [deps|project|all]"
src="${1:?$usage}"
venv="${2:?$usage}"
extras="${3-alibi}"
step="${4:-all}"

# A CA bundle lent to the build (runtime/Dockerfile's secret ca-bundle): the machine's registry is
# reached only through it. Named, never copied: it stays out of the virtualenv and the image.
ca_bundle="${ATTRITION_CA_BUNDLE:-/run/secrets/ca-bundle}"
if [ -s "$ca_bundle" ]; then
    export PIP_CERT="$ca_bundle" SSL_CERT_FILE="$ca_bundle"
fi
export PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore
export UV_PYTHON_DOWNLOADS=never UV_COMPILE_BYTECODE=1 UV_NO_CACHE=1
tools="$(mktemp -d)"
trap 'rm -rf "$tools"' EXIT
# The uv that pyproject.toml requires ([tool.uv] required-version), in a throw-away virtualenv.
uv_version="$(sed -n 's/^required-version = "==\(.*\)"/\1/p' "$src/pyproject.toml")"
python3 -m venv "$tools/uv"
"$tools/uv/bin/pip" install --quiet "uv==$uv_version"
uv="$tools/uv/bin/uv"

if [ "$step" = deps ] || [ "$step" = all ]; then
    extra_args=""
    for extra in $(echo "$extras" | tr ',' ' '); do extra_args="$extra_args --extra $extra"; done
    # Only what serves: no dev group (the tools), no workspace members (the project comes last, alone).
    # shellcheck disable=SC2086
    "$uv" export --project "$src" --frozen --no-dev --no-emit-workspace --format requirements-txt \
        $extra_args --output-file "$tools/requirements.txt" --quiet
    python3 -m venv "$venv"
    # --only-binary: every locked dependency has a cp311 manylinux wheel; a source build in the image
    # would need compilers the slim base does not have, so fail loudly instead.
    "$uv" pip install --python "$venv/bin/python" --require-hashes --no-deps --only-binary :all: \
        --requirement "$tools/requirements.txt"
    # The packages' own test suites (about 160 MB: pandas, scipy, pyarrow, scikit-learn, ...): serving
    # never imports them. The container test checks that the image still serves.
    find "$venv" -path '*/site-packages/*' -type d -name tests -prune -exec rm -rf {} +
fi
if [ "$step" = project ] || [ "$step" = all ]; then
    "$uv" pip install --python "$venv/bin/python" --no-deps "$src"
    # Fail the build, not the first start, when MLServer cannot import the runtime.
    "$venv/bin/python" -c "import attrition_runtime.runtime, attrition_runtime.start"
fi
