#!/usr/bin/env bash
# Set up (idempotent, fast when done) and run the dashboard: `python -m dashboard serve`, or
# `python -m dashboard demo` when nothing is configured to monitor (see README, "Demo").
# Arguments are passed to `serve` (or `demo`); configuration comes from DASHBOARD_CONFIG / DASHBOARD_* .
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if ! .venv/bin/python -m dashboard.demo.cli; then   # exit 1: nothing configured to monitor
    echo "run.sh: no monitoring targets configured (DASHBOARD_CONFIG, DASHBOARD_MYSQL_URL, DASHBOARD_REDIS_URL): starting the demo (python -m dashboard demo); Ctrl-C stops it"
    exec .venv/bin/python -m dashboard demo "$@"
fi
exec .venv/bin/python -m dashboard serve "$@"
