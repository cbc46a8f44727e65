#!/usr/bin/env bash
# Set up (idempotent, fast when done) and run the test suite.
#   bash scripts/test.sh                    # everything
#   bash scripts/test.sh tests/test_x.py -k name -x
# Tests start their own MariaDB/Redis/memcached/SMTP/webhook servers on free loopback ports.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# Per-test limit; a hung test fails instead of eating CI's time. Override with PYTEST_TIMEOUT.
TIMEOUT=${PYTEST_TIMEOUT:-300}
set +e
.venv/bin/python -m pytest -q -p no:cacheprovider --timeout="$TIMEOUT" -rfEs tests "$@" </dev/null
rc=$?
set -e
if ((rc == 5)); then
    echo "test.sh: pytest collected no tests (exit 5) -- that is an error here" >&2
fi
exit "$rc"
