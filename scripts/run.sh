#!/usr/bin/env bash
# Set up (idempotent, fast when done) and run the dashboard: `python -m dashboard serve`.
# Arguments are passed to `serve`; configuration comes from DASHBOARD_CONFIG / DASHBOARD_* .
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m dashboard serve "$@"
