"""The gunicorn worker keeps the client libraries (and the test, debugger and process-pool code the
libraries import, serverimports.py) out, and still sends and serves what it must."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import requests
import socketio

from tests.support.auth_helpers import add_token, add_user
from tests.support.server import DashboardServer
from tests.support.util import wait_until

ROOT = Path(__file__).resolve().parent.parent

# What only tests, the debugger, the reloader or a process pool use (issue 19): never in the worker.
KEPT_OUT = ("pdb", "click.testing", "flask.testing", "werkzeug.debug.tbtools", "multiprocessing.queues",
            "multiprocessing.connection", "limits.aio.storage", "limits.aio.strategies")

WORKER = textwrap.dedent("""
    import json, sys
    KEPT_OUT = %r
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
                      "socketio_server": type(wsgi.app.extensions["socketio"].server).__name__,
                      "loaded": sorted(m for m in KEPT_OUT if m in sys.modules)}))
""" % (KEPT_OUT,))


def test_the_worker_builds_the_app_and_delivers_a_webhook_without_the_client_libraries(
        webhook_receiver, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("DASHBOARD_")}
    env.update(DASHBOARD_DATA_DIR=str(tmp_path), PYTHONWARNINGS="ignore")
    out = subprocess.run([sys.executable, "-c", WORKER, webhook_receiver.url], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result == {"requests_importable": False, "socketio_server": "Server", "loaded": []}
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


PW = "correct horse battery"


def test_the_worker_without_them_logs_in_serves_pages_pushes_samples_and_rate_limits(tmp_path):
    data = tmp_path / "data"
    add_user(data, "ops", "admin", password=PW)
    token = add_token(data, "viewer")
    config = tmp_path / "dashboard.toml"
    config.write_text('[auth]\napi_rate_limit = "5 per minute"\n')
    with DashboardServer(data, config=config, env={"DASHBOARD_INTERVAL_S": "0.5"}) as server:
        s = requests.Session()
        page = s.get(server.url + "/login", timeout=10).text
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
        r = s.post(server.url + "/login", data={"name": "ops", "password": PW, "csrf_token": csrf},
                   allow_redirects=False, timeout=10)
        assert r.status_code in (302, 303), r.text[:500]
        home = s.get(server.url + "/", timeout=10)
        assert home.status_code == 200 and "/login" not in home.url
        # The live channel: a Socket.IO client over WebSocket gets the collectors' samples.
        arrivals: list[object] = []
        client = socketio.Client(reconnection=False)
        client.on("samples", arrivals.append, namespace="/live")
        client.connect(server.url, namespaces=["/live"], transports=["websocket"], wait_timeout=10,
                       auth={"token": token})
        try:
            wait_until(lambda: len(arrivals) >= 2, timeout=30, message="no samples over Socket.IO")
        finally:
            client.disconnect()
        # flask-limiter (limits) still counts: the sixth API call within the minute is refused.
        codes = [s.get(server.url + "/api/latest", timeout=10).status_code for _ in range(6)]
        assert codes[:5] == [200] * 5 and codes[5] == 429, codes


MASTER = textwrap.dedent("""
    import json, sys
    from dashboard.process import master
    master.defer()
    # What gunicorn's master imports: the app runner, its arbiter and config, the worker class.
    import gunicorn.app.wsgiapp, gunicorn.arbiter, gunicorn.config, gworker  # noqa: F401
    import gunicorn.util
    from gunicorn.config import Config
    Config().set("bind", ["127.0.0.1:1"])       # a setting parsed and validated, as at start-up
    before = {n: type(sys.modules[n]).__name__ for n in master.DEFERRED}
    # And at the first use, in whichever process: the real modules, for early and late importers.
    date = gunicorn.util.http_date(0)
    import importlib.metadata
    from email.utils import parsedate_to_datetime
    print(json.dumps({"before": before, "date": date, "version": importlib.metadata.version("gunicorn"),
                      "parsed": parsedate_to_datetime(date).year,
                      "after": {n: type(sys.modules[n]).__name__ for n in master.DEFERRED}}))
""")


def test_the_gunicorn_master_defers_what_it_never_uses_and_the_real_modules_load_at_first_use():
    """The master (python -m dashboard.process.master) holds no importlib.metadata or email
    parser after gunicorn's own imports (3.6 MB it never runs, copied into the worker as it runs);
    a use of either, in the master or the worker that inherits the stand-ins, gets the real one."""
    out = subprocess.run([sys.executable, "-c", MASTER], cwd=ROOT, capture_output=True, text=True,
                         timeout=60, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["before"] == {"importlib.metadata": "Deferred", "email.utils": "Deferred"}
    assert got["date"] == "Thu, 01 Jan 1970 00:00:00 GMT"
    assert re.fullmatch(r"\d+\.\d+\.\d+", got["version"]) and got["parsed"] == 1970
    assert got["after"] == {"importlib.metadata": "module", "email.utils": "module"}


def test_the_dashboard_serves_through_the_deferring_master(tmp_path):
    """``python -m dashboard serve`` runs gunicorn through dashboard.process.master under -OO
    (issue 19: docstrings are 3.4 MB of the worker): its master process is that module, and the
    worker it forks answers (the HTTP Date header needs the real email.utils, loaded in the worker
    at its first response)."""
    with DashboardServer(tmp_path / "data") as server:
        r = requests.get(server.url + "/healthz", timeout=10)
        assert r.status_code == 200 and r.headers["Date"].endswith(" GMT")
        # `serve` execs the master: the process started is it, under -OO (no docstrings), and
        # the worker is its fork.
        cmdline = _cmdline(server.proc.pid).replace(sys.executable, "python")
        assert cmdline.startswith("python -OO -m dashboard.process.master "), cmdline


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""
