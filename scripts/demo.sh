#!/usr/bin/env bash
# The demo on a fresh machine: SQLite, jobs in-process, no Twilio account.
# Extra arguments pass through (bash scripts/demo.sh --port 5077).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/venv.sh
exec .venv/bin/buurtlijn demo "$@"
