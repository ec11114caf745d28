#!/usr/bin/env bash
# GitHub OIDC federation to Databricks, no stored token: this job's GitHub ID token (the job needs
# `id-token: write`), with the workspace's token endpoint as its audience as the Databricks SDK asks
# for it, exchanged for a short-lived OAuth token of the service principal DATABRICKS_CLIENT_ID, whose
# federation policy trusts this repository's environment. Writes the token (masked) to the step's
# outputs as `token`. Env: DATABRICKS_HOST, DATABRICKS_CLIENT_ID.
set -euo pipefail
endpoint="$DATABRICKS_HOST/oidc/v1/token"
id_token=$(curl --silent --show-error --fail -H "Authorization: Bearer $ACTIONS_ID_TOKEN_REQUEST_TOKEN" \
  --get --data-urlencode "audience=$endpoint" "$ACTIONS_ID_TOKEN_REQUEST_URL" | jq -er '.value')
echo "::add-mask::$id_token"
token=$(curl --silent --show-error --fail "$endpoint" \
  --data-urlencode grant_type=urn:ietf:params:oauth:grant-type:token-exchange \
  --data-urlencode subject_token_type=urn:ietf:params:oauth:token-type:jwt \
  --data-urlencode "subject_token=$id_token" \
  --data-urlencode "client_id=$DATABRICKS_CLIENT_ID" \
  --data-urlencode scope=all-apis | jq -er '.access_token')
echo "::add-mask::$token"
echo "token=$token" >> "$GITHUB_OUTPUT"
