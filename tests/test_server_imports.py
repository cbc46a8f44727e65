"""The gunicorn worker keeps the client libraries out, and still sends what it must send."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

WORKER = textwrap.dedent("""
    import json, sys
    import wsgi                                  # the worker's entry: the whole app is built
    from alerts.notifiers import WebhookNotifier
    from dashboard.config.settings import NotifySettings
    hook = NotifySettings(kind="webhook", url=sys.argv[1], secret="s3cret", name="ops")
    WebhookNotifier(hook).send({"json": json.dumps({"hello": "from the worker"})}, "key-1")
    try:
        import requests  # noqa: F401
        loaded = True
    except ImportError:
        loaded = False
    print(json.dumps({"requests_importable": loaded,
                      "socketio_server": type(wsgi.app.extensions["socketio"].server).__name__}))
""")


def test_the_worker_builds_the_app_and_delivers_a_webhook_without_the_client_libraries(
        webhook_receiver, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("DASHBOARD_")}
    env.update(DASHBOARD_DATA_DIR=str(tmp_path), PYTHONWARNINGS="ignore")
    out = subprocess.run([sys.executable, "-c", WORKER, webhook_receiver.url], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result == {"requests_importable": False, "socketio_server": "Server"}
    webhook_receiver.wait_for(1, timeout=10)
    got = webhook_receiver.requests[0]
    assert json.loads(got.body) == {"hello": "from the worker"}
    assert got.header("Idempotency-Key") == "key-1"
    assert got.header("X-Dashboard-Signature").startswith("sha256=")
