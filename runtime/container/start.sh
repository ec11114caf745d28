#!/bin/sh
# Entry point of the serving image (runtime/Dockerfile); tests/test_container.py runs this same file.
# Sets defaults that suit a read-only container, picks the model, then replaces itself with MLServer.
#
# Model, first match wins:
#   ATTRITION_MODEL_URI    any MLflow URI or folder (e.g. /opt/model, models:/employee_attrition/3)
#   ATTRITION_MODEL_ALIAS  models:/$ATTRITION_MODEL_NAME@<alias> from the registry
#                          (MLFLOW_TRACKING_URI=databricks with DATABRICKS_HOST/DATABRICKS_TOKEN or workload identity)
#   a model baked into the image at $ATTRITION_BAKED_MODEL (build arg MODEL_DIR)
#   otherwise the runtime's default alias (production)
set -eu

# Everything MLServer writes goes under one writable folder (an emptyDir in Kubernetes).
ATTRITION_RUNTIME_TMP="${ATTRITION_RUNTIME_TMP:-${TMPDIR:-/tmp}/attrition-runtime}"
if [ -z "${MLSERVER_METRICS_DIR:-}" ]; then
    # Fresh on every start: a restarted container keeps its emptyDir, and stale multiprocess metric
    # files (same PIDs in a new container) would leak old values into /metrics.
    MLSERVER_METRICS_DIR="$ATTRITION_RUNTIME_TMP/metrics"
    rm -rf "$MLSERVER_METRICS_DIR"
fi
MLSERVER_ENVIRONMENTS_DIR="${MLSERVER_ENVIRONMENTS_DIR:-$ATTRITION_RUNTIME_TMP/envs}"
mkdir -p "$MLSERVER_METRICS_DIR" "$MLSERVER_ENVIRONMENTS_DIR"
export MLSERVER_METRICS_DIR MLSERVER_ENVIRONMENTS_DIR

# Listen on all interfaces inside a container; the ports are MLServer's (8080 REST, 8081 gRPC,
# 8082 metrics) unless MLSERVER_HTTP_PORT / MLSERVER_GRPC_PORT / MLSERVER_METRICS_PORT say otherwise.
export MLSERVER_HOST="${MLSERVER_HOST:-0.0.0.0}"
# One BLAS/OpenMP thread per process: oversubscription tripled scoring latency on 2 cores.
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
export PYTHONUNBUFFERED=1
# The folder with settings.json and model-settings.json (the image sets it; a checkout uses runtime/).
export ATTRITION_SERVER_DIR="${ATTRITION_SERVER_DIR:-/opt/attrition/server}"

baked="${ATTRITION_BAKED_MODEL:-/opt/model}"
if [ -z "${ATTRITION_MODEL_URI:-}" ] && [ -z "${ATTRITION_MODEL_ALIAS:-}" ] && [ -f "$baked/MLmodel" ]; then
    export ATTRITION_MODEL_URI="$baked"
fi

# `mlserver start`, but a model that fails to load exits non-zero and SIGTERM drains in-flight requests.
exec python -m attrition_runtime.start "$ATTRITION_SERVER_DIR"
