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


COLLECTING_WORKER = textwrap.dedent("""
    import json, sys
    import wsgi                                  # the worker's entry: the whole app is built
    from dashboard.collectors import registry
    values = {}
    for c in registry.build(wsgi.app.config["SETTINGS"]):
        if c.source in ("cache", "queue"):
            values[c.source] = {k: v for r in c.collect() if not r.error for k, v in r.values.items()}
            c.close()
    print(json.dumps({"redis_loaded": sys.modules.get("redis") is not None,
                      "pg8000_loaded": "pg8000" in sys.modules,
                      "cache_clients": values["cache"]["cache.clients"],
                      "pending": values["queue"].get("queue.pending")}))
""")


def _run_worker(tmp_path, toml: str) -> dict:
    (tmp_path / "dashboard.toml").write_text(toml)
    env = {k: v for k, v in os.environ.items() if not k.startswith("DASHBOARD_")}
    env.update(DASHBOARD_DATA_DIR=str(tmp_path / "data"), DASHBOARD_CONFIG=str(tmp_path / "dashboard.toml"),
               PYTHONWARNINGS="ignore")
    out = subprocess.run([sys.executable, "-c", COLLECTING_WORKER], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_the_worker_reads_redis_without_redis_py_unless_a_message_queue_needs_it(redis_server, tmp_path):
    config = (f'[redis]\nurl = "{redis_server.url}"\n\n'
              '[[queues]]\nname = "emails"\nkind = "redis-list"\nkey = "queue:emails"\n')
    without = _run_worker(tmp_path, config)
    # The cache and queue collectors read the real Redis, and redis-py was never imported.
    assert without["redis_loaded"] is False
    assert without["pg8000_loaded"] is False      # the store is on SQLite: no PostgreSQL driver
    assert without["cache_clients"] >= 1 and without["pending"] == 0
    # With a message queue, the Socket.IO manager and the leader lock need redis-py: it loads.
    with_mq = _run_worker(tmp_path, f'message_queue = "{redis_server.url}"\n' + config)
    assert with_mq["redis_loaded"] is True
