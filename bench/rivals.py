"""The comparison tools of bench/overhead.py, each run as a private process on loopback.

Netdata (Debian's package, ``apt-get install netdata netdata-plugins-python python3-pymysql``):
its own netdata.conf, config, cache, lib and log dirs in the bench's temporary dir, web API on a
free loopback port, everything at ``update every = 1``; anonymous statistics and the cloud link
off. Debian's Netdata 1.37 has no MySQL or Redis collector (they moved to go.d.plugin, which
Debian does not ship; python.d's mysql and redis modules were removed), so the bench gives its
python.d.plugin two jobs written on Netdata's own bases -- ``MySQLService`` running
``SHOW GLOBAL STATUS`` on one persistent connection and ``SocketService`` sending ``INFO`` --
the shape of the python.d modules Netdata shipped until 1.36. The whole process tree is
measured (netdata, its spawn helper, apps.plugin, python.d.plugin, bash plugins ...).

Glances (PyPI, in its own venv: ``.venv-bench``, never ``.venv``): ``glances -w`` (its web
server, REST API on a loopback port) refreshed at 1 s, the API polled once a second like an open
web UI. Host statistics only: Glances 4 has no MySQL or Redis monitoring plugin (they exist only
as export targets). Its cloud, public-IP, ports (gateway ping) plugins and the PyPI update check
are off: they would leave loopback.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from bench import harness

NETDATA = "/usr/sbin/netdata"
NETDATA_STOCK = Path("/usr/lib/netdata")
GLANCES_VENV = harness.ROOT / ".venv-bench"
GLANCES_VERSION = "4.5.8"

NETDATA_MYSQL = '''
from bases.FrameworkServices.MySQLService import MySQLService

ORDER = ["queries", "threads"]
CHARTS = {
    "queries": {"options": [None, "queries", "queries/s", "mysql", "mysql.queries", "line"],
                "lines": [["Queries", "queries", "incremental"],
                          ["Slow_queries", "slow", "incremental"]]},
    "threads": {"options": [None, "threads", "threads", "mysql", "mysql.threads", "line"],
                "lines": [["Threads_connected", "connected", "absolute"],
                          ["Threads_running", "running", "absolute"]]},
}


class Service(MySQLService):
    def __init__(self, configuration=None, name=None):
        MySQLService.__init__(self, configuration=configuration, name=name)
        self.order = ORDER
        self.definitions = CHARTS
        self.queries = {"global_status": "SHOW GLOBAL STATUS"}

    def _get_data(self):
        raw = self._get_raw_data()
        if not raw:
            return None
        data = {}
        for key, value in raw["global_status"]:
            try:
                data[key] = int(value)
            except (TypeError, ValueError):
                pass
        return data
'''

NETDATA_REDIS = '''
from bases.FrameworkServices.SocketService import SocketService

ORDER = ["operations", "memory"]
CHARTS = {
    "operations": {"options": [None, "operations", "ops/s", "redis", "redis.ops", "line"],
                   "lines": [["keyspace_hits", "hits", "incremental"],
                             ["keyspace_misses", "misses", "incremental"]]},
    "memory": {"options": [None, "memory", "bytes", "redis", "redis.memory", "line"],
               "lines": [["used_memory", "used", "absolute"]]},
}


class Service(SocketService):
    def __init__(self, configuration=None, name=None):
        SocketService.__init__(self, configuration=configuration, name=name)
        self.order = ORDER
        self.definitions = CHARTS
        self._keep_alive = True
        self.host = self.configuration.get("host", "127.0.0.1")
        self.port = self.configuration.get("port", 6379)
        self.request = "INFO\\r\\n"

    def _check_raw_data(self, data):
        # The bulk reply is "$<length>\\r\\n<body>\\r\\n": complete once the body is in.
        head, _, body = data.partition("\\r\\n")
        try:
            return len(body.encode()) >= int(head[1:])
        except ValueError:
            return True

    def _get_data(self):
        raw = self._get_raw_data()
        if not raw:
            return None
        data = {}
        for line in raw.splitlines():
            key, sep, value = line.partition(":")
            if sep:
                try:
                    data[key] = int(value)
                except ValueError:
                    pass
        return data
'''


@dataclass
class Rival:
    name: str
    proc: subprocess.Popen
    url: str
    poll_path: str
    note: str

    def poll(self) -> bool:
        try:
            with urllib.request.urlopen(self.url + self.poll_path, timeout=5) as r:
                r.read()
            return True
        except OSError:
            return False

    def tree(self) -> harness.ProcessTree:
        return harness.ProcessTree(self.proc.pid, self.name)

    def stop(self) -> None:
        """SIGTERM to its process group, SIGKILL what is left (plugins included)."""
        pids = [p.pid for p in self.tree().processes()] if self.proc.poll() is None else []
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(timeout=10)
        import psutil
        for pid in pids:                         # a plugin that left the group
            try:
                psutil.Process(pid).kill()
            except psutil.Error:
                pass
        reap(pids)


def become_subreaper() -> None:
    """Orphans of the tools (Netdata's spawn server outlives its parent by a moment) are
    re-parented to this process instead of PID 1, which on some machines never reaps them:
    ``reap`` then collects them, so no zombie is left behind."""
    import ctypes
    try:
        ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)    # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        pass


def reap(pids: list[int], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    left = set(pids)
    while left and time.monotonic() < deadline:
        for pid in list(left):
            try:
                done, _ = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:              # not ours (or already reaped)
                done = pid
            if done:
                left.discard(pid)
        if left:
            time.sleep(0.1)


def _wait_http(url: str, proc: subprocess.Popen, timeout: float, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"exited with {proc.returncode}: {log.read_text(errors='replace')[-800:]}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"{url} did not answer in {timeout:g} s")


def netdata_available() -> str | None:
    """None when usable, else why not."""
    if not Path(NETDATA).exists():
        return "not installed (apt-get install netdata netdata-plugins-python python3-pymysql)"
    if not (NETDATA_STOCK / "plugins.d" / "python.d.plugin").exists():
        return "python.d.plugin missing (apt-get install netdata-plugins-python python3-pymysql)"
    return None


def start_netdata(tmp: Path, mysql: dict, redis: dict) -> Rival:
    """``mysql``: host, port, user, password; ``redis``: host, port."""
    base = tmp / "netdata"
    conf, custom = base / "etc", base / "custom"
    for d in (conf / "python.d", custom / "python.d", base / "cache", base / "lib", base / "log",
              base / "lock"):
        d.mkdir(parents=True, exist_ok=True)
    (conf / ".opt-out-from-anonymous-statistics").write_text("")
    (conf / "cloud.conf").write_text("[global]\n    enabled = no\n")
    (custom / "python.d" / "dashbench_mysql.chart.py").write_text(NETDATA_MYSQL)
    (custom / "python.d" / "dashbench_redis.chart.py").write_text(NETDATA_REDIS)
    (conf / "python.d.conf").write_text("enabled: yes\ndefault_run: no\n"
                                        "dashbench_mysql: yes\ndashbench_redis: yes\n")
    (conf / "python.d" / "dashbench_mysql.conf").write_text(
        f"update_every: 1\nlocal:\n  host: '127.0.0.1'\n  port: {mysql['port']}\n"
        f"  user: '{mysql['user']}'\n  pass: '{mysql['password']}'\n")
    (conf / "python.d" / "dashbench_redis.conf").write_text(
        f"update_every: 1\nlocal:\n  host: '127.0.0.1'\n  port: {redis['port']}\n")
    port = harness.free_port()
    (base / "netdata.conf").write_text(f"""[global]
    run as user = root
    update every = 1
    hostname = dashbench
[directories]
    config = {conf}
    stock config = {NETDATA_STOCK / 'conf.d'}
    log = {base / 'log'}
    web = /usr/share/netdata/web
    cache = {base / 'cache'}
    lib = {base / 'lib'}
    home = {base / 'lib'}
    lock = {base / 'lock'}
    plugins = "{NETDATA_STOCK / 'plugins.d'}" "{custom}"
[logs]
    debug log = none
    error log = {base / 'log' / 'error.log'}
    access log = none
[web]
    bind to = 127.0.0.1:{port}
[plugins]
    python.d = yes
""")
    env = {**os.environ, "DO_NOT_TRACK": "1"}
    log = base / "log" / "stdout.log"
    with open(log, "ab") as out:
        proc = subprocess.Popen(["setpriv", "--pdeathsig", "KILL", "--", NETDATA, "-D", "-c",
                                 str(base / "netdata.conf")], env=env, stdin=subprocess.DEVNULL,
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    rival = Rival("Netdata 1.37 (Debian)", proc, url, "/api/v1/allmetrics?format=json",
                  "host + MySQL + Redis (python.d jobs on Netdata's MySQLService/SocketService)")
    try:
        _wait_http(url + "/api/v1/info", proc, 60, log)
        _wait_chart(url, ("dashbench_mysql_local.queries", "dashbench_redis_local.operations"), 60)
    except BaseException:
        rival.stop()
        raise
    return rival


def _wait_chart(url: str, charts: tuple[str, ...], timeout: float) -> None:
    """Until python.d.plugin has created the MySQL and Redis charts (its jobs connected)."""
    import json
    deadline = time.monotonic() + timeout
    missing = list(charts)
    while time.monotonic() < deadline:
        with urllib.request.urlopen(url + "/api/v1/charts", timeout=5) as r:
            have = json.loads(r.read()).get("charts", {})
        missing = [c for c in charts if c not in have]
        if not missing:
            return
        time.sleep(1)
    raise RuntimeError(f"Netdata never made the charts {missing}: its MySQL/Redis jobs failed")


def glances_available() -> str | None:
    exe = GLANCES_VENV / "bin" / "glances"
    if not exe.exists():
        return (f"not installed (python3 -m venv {GLANCES_VENV} && "
                f"{GLANCES_VENV}/bin/pip install 'glances[web]=={GLANCES_VERSION}')")
    return None


def start_glances(tmp: Path) -> Rival:
    base = tmp / "glances"
    base.mkdir(parents=True, exist_ok=True)
    conf = base / "glances.conf"
    conf.write_text("[global]\ncheck_update=false\n[cloud]\ndisable=True\n[ip]\ndisable=False\n"
                    "public_disabled=True\n[ports]\ndisable=True\nport_default_gateway=False\n")
    port = harness.free_port()
    log = base / "glances.log"
    env = {**os.environ, "HOME": str(base)}
    argv = [str(GLANCES_VENV / "bin" / "glances"), "-C", str(conf), "-w", "--disable-webui",
            "--bind", "127.0.0.1", "--port", str(port), "-t", "1", "--disable-check-update",
            "--disable-plugin", "cloud,ports"]
    if shutil.which("setpriv"):
        argv = ["setpriv", "--pdeathsig", "KILL", "--", *argv]
    with open(log, "ab") as out:
        proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    rival = Rival(f"Glances {GLANCES_VERSION} (PyPI, web server)", proc, url, "/api/4/all",
                  "host only (no MySQL/Redis monitoring plugin in Glances 4)")
    try:
        _wait_http(url + "/api/4/status", proc, 90, log)
    except BaseException:
        rival.stop()
        raise
    return rival
