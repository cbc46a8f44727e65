#!/usr/bin/env bash
# Set up (idempotent, fast when done) and run the test suite.
#   bash scripts/test.sh                               # everything under tests/
#   bash scripts/test.sh tests/test_x.py::test_y -x    # given paths only (pytest options pass through)
# Tests start their own MariaDB/Redis/memcached/SMTP/webhook servers on free loopback ports.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

# Run tests/ unless the arguments name paths of their own.
targets=(tests)
for arg in "$@"; do
    if [[ $arg != -* && -e ${arg%%::*} ]]; then
        targets=()
        break
    fi
done

# Lint, import order and types, on a full run (ruff.toml, mypy.ini), so CI keeps them; the
# tests run either way, and the run fails if any of the three did.
checks=0
if ((${#targets[@]})); then
    .venv/bin/ruff check --quiet . || { echo "test.sh: ruff found problems (above)" >&2; checks=1; }
    .venv/bin/mypy --no-error-summary || { echo "test.sh: mypy found problems (above)" >&2; checks=1; }
    ((checks)) || echo "test.sh: ruff and mypy: clean"
fi

# Per-test limit: a hung test fails instead of eating CI's time. Override with PYTEST_TIMEOUT.
TIMEOUT=${PYTEST_TIMEOUT:-300}

# Workers (pytest-xdist): most tests wait (servers starting, subprocesses, leases, a browser), so
# the whole suite runs on more workers than the 2 cores, each with its own session services
# (MariaDB, Redis, PostgreSQL... on ports and in directories of its own). Tests that share a
# module's fixture stay on one worker (tests/conftest.py marks them; --dist loadgroup). Given
# paths run in this process, as before. PYTEST_WORKERS=N sets the number (0: no workers).
parallel=()
workers=${PYTEST_WORKERS:-}
if [[ -z $workers ]] && ((${#targets[@]})); then
    workers=4
fi
for arg in "$@"; do
    [[ $arg == -n* || $arg == --numprocesses* ]] && workers=""
done
if [[ -n $workers && $workers != 0 ]]; then
    parallel=(-n "$workers" --dist loadgroup)
fi

set +e
.venv/bin/python -m pytest -q -p no:cacheprovider --timeout="$TIMEOUT" -rfEs \
    ${parallel[@]+"${parallel[@]}"} "${targets[@]}" "$@" </dev/null
rc=$?
set -e
if ((rc == 5)); then
    echo "test.sh: pytest collected no tests (exit 5); that is an error here" >&2
fi
if ((rc == 0 && checks)); then
    rc=1
fi
exit "$rc"
