#!/usr/bin/env bash
# Deploy AudiaPro to the Prefect server at PREFECT_API_URL: what CI runs on every push to main.
# Idempotent: creates the `audiapro` process work pool if missing, registers the blocks, deploys every
# deployment in prefect.yaml (updating existing ones) and creates/updates the alert automations.
# Run it from the checkout the workers will run (prefect.yaml has no pull step: `prefect deploy`
# stores this directory as the flows' working directory).
set -euo pipefail
cd "$(dirname "$0")/.."
: "${PREFECT_API_URL:?set PREFECT_API_URL to the Prefect API, e.g. http://prefect.internal:4200/api}"
export DO_NOT_TRACK=1
# The project's virtualenv when there is one (make venv), else whatever `python`/`prefect` PATH has.
BIN=${AUDIAPRO_BIN:-}
if [ -z "$BIN" ] && [ -x .venv/bin/prefect ]; then BIN=.venv/bin/; fi
PYTHON=${BIN}python
PREFECT=${BIN}prefect

echo "deploying to $PREFECT_API_URL"
"$PYTHON" -m deployments.bootstrap
"$PREFECT" --no-prompt deploy --all </dev/null
"$PYTHON" -m deployments.automations
