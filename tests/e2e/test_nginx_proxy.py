"""deploy/nginx/dashboard.conf in front of a real `python -m dashboard serve`: nginx accepts the
site, Socket.IO upgrades to a WebSocket through it and samples flow, pre-gzipped vendor files
pass untouched, /metrics answers a Bearer token.

nginx runs privately: its own prefix, pid and logs in the test's directory, listening on a free
loopback port (never port 80), with the site file as shipped apart from the listen address and
the upstream servers.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import requests
import socketio
from prometheus_client.parser import text_string_to_metric_families

from dashboard.demo.services import free_port
from tests.support.auth_helpers import add_token
from tests.support.server import DashboardServer
from tests.support.util import wait_until

ROOT = Path(__file__).resolve().parents[2]
SITE = ROOT / "deploy" / "nginx" / "dashboard.conf"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


def site_for_test(port: int, upstream_port: int) -> str:
    text = SITE.read_text()
    text, n_listen = re.subn(r"^(\s*)listen 80;$", rf"\1listen 127.0.0.1:{port};", text, flags=re.M)
    text, n_v6 = re.subn(r"^\s*listen \[::\]:80;\n", "", text, flags=re.M)
    text, n_up = re.subn(r"^(\s*)server 127\.0\.0\.1:\d+;\n", "", text, flags=re.M)
    text, n_hash = re.subn(r"^(\s*)ip_hash;$", rf"\1ip_hash;\n\1server 127.0.0.1:{upstream_port};",
                           text, flags=re.M)
    assert (n_listen, n_v6, n_hash) == (1, 1, 1) and n_up >= 2, "the site file changed shape"
    return text


def main_conf(d: Path, site: Path) -> str:
    user = "user root;\n" if os.geteuid() == 0 else ""    # workers must read the temp files
    temp = "".join(f"    {k}_temp_path {d}/{k};\n" for k in ("client_body", "proxy", "fastcgi",
                                                               "uwsgi", "scgi"))
    return (f"{user}worker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log info;\n"
            "events { worker_connections 256; }\n"
            f"http {{\n    access_log {d}/access.log;\n{temp}    include {site};\n}}\n")


@pytest.fixture(scope="module")
def proxied(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("proxied")
    nginx_port = free_port()
    nginx_url = f"http://127.0.0.1:{nginx_port}"
    # public_url is the proxy's address, as in production: Socket.IO checks the Origin with it.
    server = DashboardServer(tmp_path / "data", env={"DASHBOARD_PUBLIC_URL": nginx_url,
                                                     "DASHBOARD_TRUSTED_PROXIES": "1"})
    server.start()
    d = tmp_path / "nginx"
    d.mkdir()
    (d / "dashboard.conf").write_text(site_for_test(nginx_port, server.port))
    (d / "nginx.conf").write_text(main_conf(d, d / "dashboard.conf"))
    argv = [NGINX, "-p", str(d), "-e", str(d / "error.log"), "-c", str(d / "nginx.conf")]
    check = subprocess.run(argv + ["-t"], capture_output=True, text=True, timeout=30)
    assert check.returncode == 0 and "syntax is ok" in check.stderr, check.stderr
    proc = subprocess.Popen(argv + ["-g", "daemon off;"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, start_new_session=True)
    try:
        def answers():
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            try:
                return requests.get(nginx_url + "/healthz", timeout=2).status_code == 200
            except requests.ConnectionError:
                return False
        wait_until(answers, timeout=15, message="nginx does not answer")
        yield nginx_url, server
    finally:
        proc.terminate()
        proc.wait(10)
        server.stop()


def test_nginx_accepts_the_site_file_and_the_dashboard_answers_through_it(proxied):
    url, _ = proxied
    r = requests.get(url + "/healthz", timeout=5)
    assert r.json()["status"] == "ok"
    assert requests.get(url + "/", allow_redirects=False, timeout=5).status_code == 302   # login


def test_socketio_upgrades_to_a_websocket_through_nginx_and_samples_arrive(proxied):
    url, server = proxied
    token = add_token(server.data_dir, "viewer")
    batches: list = []
    sio = socketio.Client(reconnection=False)
    sio.on("samples", lambda data: batches.append((sio.transport(), data)), namespace="/live")
    # Polling first, then the upgrade, as a browser does: both must reach the same instance.
    # The WebSocket handshake carries Origin: <nginx's address> (websocket-client sends it, as a
    # browser would), which the dashboard accepts because public_url is that address.
    sio.connect(url, namespaces=["/live"], auth={"token": token}, wait_timeout=10)
    try:
        wait_until(lambda: sio.transport() == "websocket", timeout=10,
                   message=lambda: f"still on {sio.transport()}")
        wait_until(lambda: sum(t == "websocket" for t, _ in batches) >= 2, timeout=10,
                   message=lambda: f"{len(batches)} batches; log:\n{server.log()[-2000:]}")
        sample = next(s for t, data in batches if t == "websocket" for s in data
                      if s["source"] == "host")
        assert "host.cpu_percent" in sample["values"]
    finally:
        sio.disconnect()


def test_pre_gzipped_vendor_files_pass_through_nginx_unchanged(proxied):
    url, server = proxied
    token = add_token(server.data_dir, "viewer")
    r = requests.get(url + "/vendor/socket.io.min.js", stream=True, timeout=10,
                     headers={"Authorization": f"Bearer {token}", "Accept-Encoding": "gzip"})
    assert r.status_code == 200 and r.headers["Content-Encoding"] == "gzip"
    body = r.raw.read(decode_content=False)
    assert body == (ROOT / "dashboard" / "static" / "vendor" / "socket.io.min.js.gz").read_bytes()


def test_prometheus_scrapes_metrics_through_nginx_with_a_bearer_token(proxied):
    url, server = proxied
    assert requests.get(url + "/metrics", timeout=5).status_code == 401
    token = add_token(server.data_dir, "viewer")

    def scrape():
        r = requests.get(url + "/metrics", headers={"Authorization": f"Bearer {token}"}, timeout=5)
        assert r.status_code == 200
        names = {f.name for f in text_string_to_metric_families(r.text)}
        return names if "dashboard_host_cpu_percent" in names else None
    names = wait_until(scrape, timeout=10)
    assert "dashboard_collector_up" in names
