"""A real alerting process for the kill -9 tests:
``python -m tests.support.alert_child DATA_DIR URL VALUE [NOTIFY_JSON]``.

It builds the alert service on DATA_DIR with one webhook channel to URL, starts the outbox's
sender thread and feeds a ``db.pool_utilization`` sample of VALUE every 0.2 s (standing in for
the collector). It prints ``ready`` once the first sample was processed and ``idle`` whenever
nothing waits in the outbox, then runs until killed.
"""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from tests.support.alert_helpers import make_service, pool


def main() -> None:
    data_dir, url, value = Path(sys.argv[1]), sys.argv[2], float(sys.argv[3])
    # An optional 4th argument: the [[notify]] table as JSON (a vendor's channel) instead.
    notify = json.loads(sys.argv[4]) if len(sys.argv) > 4 else {"kind": "webhook", "url": url,
                                                                "name": "hook"}
    # DASHBOARD_STORE_URL: the store_backend fixture's PostgreSQL database, as a real process
    # would take it from its environment.
    store_url = os.environ.get("DASHBOARD_STORE_URL")
    svc, _ = make_service(data_dir, [notify],
                          {"db_pool_utilization": {"for_s": 0, "keep_firing_for_s": 0}},
                          **({"store_url": store_url} if store_url else {}))
    svc.outbox.start()
    svc.process([pool(value)])
    print("ready", flush=True)
    was_idle = False
    while True:
        time.sleep(0.2)          # the collector's interval in this stand-in process
        svc.process([pool(value)])
        ch = svc.overview()["channels"][0]
        idle = ch["waiting"] == 0
        if idle and not was_idle:
            print("idle", flush=True)
        was_idle = idle


if __name__ == "__main__":
    main()
