#!/usr/bin/env bash
# A failed deployment (rollout, smoke test or alias move), rolled back: to the Deployment revision
# that ran before, or, on a first deployment (no revision recorded), by removing what the overlay
# applied, so that nothing half-working serves. Env: NAMESPACE, DEPLOYMENT, OVERLAY, REVISION (empty
# on a first deployment), TIMEOUT.
set -euo pipefail
if [ -z "$REVISION" ]; then
  kubectl delete -k "$OVERLAY" --ignore-not-found
  echo "first deployment removed: nothing ran before it" >> "$GITHUB_STEP_SUMMARY"
  exit 0
fi
current=$(kubectl -n "$NAMESPACE" get "$DEPLOYMENT" \
  -o jsonpath='{.metadata.annotations.deployment\.kubernetes\.io/revision}')
if [ "$current" != "$REVISION" ]; then
  kubectl -n "$NAMESPACE" rollout undo "$DEPLOYMENT" --to-revision="$REVISION"
  kubectl -n "$NAMESPACE" rollout status "$DEPLOYMENT" --timeout="$TIMEOUT"
fi
echo "rolled back to revision $REVISION" >> "$GITHUB_STEP_SUMMARY"
