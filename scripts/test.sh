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

# Per-test limit: a hung test fails instead of eating CI's time. Override with PYTEST_TIMEOUT.
TIMEOUT=${PYTEST_TIMEOUT:-300}
set +e
.venv/bin/python -m pytest -q -p no:cacheprovider --timeout="$TIMEOUT" -rfEs \
    "${targets[@]}" "$@" </dev/null
rc=$?
set -e
if ((rc == 5)); then
    echo "test.sh: pytest collected no tests (exit 5); that is an error here" >&2
fi
exit "$rc"
