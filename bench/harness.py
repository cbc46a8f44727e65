"""What every bench script shares: a private dashboard (gunicorn) on a free loopback port with a
temporary data dir, optional auth material, process-tree CPU/RSS accounting, percentiles.

Bench scripts print figures; they never assert timings. Everything they start is stopped by
``with DashboardServer(...)`` (process group SIGTERM, then SIGKILL), also on Ctrl-C or SIGTERM,
and the server is started under ``setpriv --pdeathsig KILL`` so it dies with a bench killed -9.
"""
from __future__ import annotations

import json
import os
import platform
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Mapping, Sequence

import psutil

ROOT = Path(__file__).resolve().parent.parent
VENV_PY = ROOT / ".venv" / "bin" / "python"
PY = str(VENV_PY) if VENV_PY.exists() else sys.executable
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


# Client-only bench packages live outside the venv's site-packages, so the server under test
# imports exactly what the project's set-up installs (see requirements-bench.txt).
BENCH_SITE = ROOT / ".venv" / "bench-site"
BENCH_REQUIREMENTS = ROOT / "requirements-bench.txt"


def use_bench_packages() -> None:
    """Put .venv/bench-site on sys.path (after the venv), installing it on first use."""
    stamp = BENCH_SITE / ".requirements"
    wanted = BENCH_REQUIREMENTS.read_text()
    if not stamp.exists() or stamp.read_text() != wanted:
        print(f"bench: installing {BENCH_REQUIREMENTS.name} into {BENCH_SITE} (first use)",
              flush=True)
        subprocess.run([PY, "-m", "pip", "install", "-q", "--no-input", "--upgrade",
                        "--target", str(BENCH_SITE), "-r", str(BENCH_REQUIREMENTS)], check=True)
        stamp.write_text(wanted)
    if str(BENCH_SITE) not in sys.path:
        sys.path.append(str(BENCH_SITE))


def free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def sigterm_as_exit() -> None:
    """Let ``finally`` blocks (which stop the server) run when the bench itself is terminated."""
    def handler(signum, _frame):
        raise SystemExit(128 + signum)
    signal.signal(signal.SIGTERM, handler)


def raise_nofile(wanted: int) -> int:
    """Raise the soft open-file limit to ``wanted`` (capped by the hard limit); return it.

    Children (the server) inherit it, so call this before starting the server."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    return soft


def machine_line() -> str:
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (f"machine: {platform.node()} {psutil.cpu_count()} cores "
            f"{psutil.virtual_memory().total / 2**30:.0f} GiB, Python {platform.python_version()}, "
            f"load average {load}")


def percentile(values: Sequence[float], p: float) -> float:
    """Linear interpolation between closest ranks (numpy's default); NaN for no values."""
    if not values:
        return float("nan")
    xs = sorted(values)
    k = (len(xs) - 1) * p / 100.0
    lo = int(k)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


# --- auth ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Auth:
    """How a bench client proves who it is. ``token`` is None while the app has no auth."""

    token: str | None = None
    note: str = "none"

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def socketio_auth(self) -> dict | None:
        return {"token": self.token} if self.token else None


def prepare_auth(env: Mapping[str, str], role: str = "viewer", root: Path = ROOT) -> Auth:
    """Create an API token against the bench's data dir, if the app knows ``create-token``.

    Before issue 7 lands the command does not exist and the benches run without auth."""
    proc = subprocess.run([PY, "-m", "dashboard", "create-token", "--role", role], cwd=root,
                          env=dict(env), capture_output=True, text=True, timeout=60)
    if proc.returncode != 0:
        if "invalid choice" in proc.stderr:
            return Auth(None, "none (this version has no create-token)")
        last = (proc.stderr.strip().splitlines() or ["?"])[-1]
        return Auth(None, f"none (create-token failed: {last[:120]})")
    lines = [ln.strip() for ln in proc.stdout.splitlines() if ln.strip()]
    # The token is printed alone on a line (possibly after an explanatory line): take the last word.
    token = lines[-1].split()[-1] if lines else None
    return Auth(token, f"API token, role {role}") if token else Auth(None, "none (no token printed)")


# --- process-tree accounting -------------------------------------------------------------------

@dataclass
class TreeSample:
    t: float
    cpu_s: float                         # user + system seconds of every process, cumulative
    rss: dict[int, int]                  # pid -> bytes
    names: dict[int, str]
    runq_s: float = 0.0                  # time its threads waited for a CPU, cumulative
    cpu_by_pid: dict[int, float] = field(default_factory=dict)
    oncpu_s: float = 0.0                 # schedstat on-CPU time of live threads (ns resolution)
    runs: int = 0                        # schedstat: times its live threads were put on a CPU


class ProcessTree:
    """CPU and RSS of a root process and all its descendants, sampled on demand.

    psutil.Process objects are kept across samples (children() returns new ones each call), and
    a process that exits keeps its last CPU time, so the cumulative total never goes backwards.
    """

    def __init__(self, root_pid: int, label: str) -> None:
        self.label = label
        self.root = psutil.Process(root_pid)
        self._procs: dict[int, psutil.Process] = {root_pid: self.root}
        self._last_cpu: dict[int, float] = {}
        self._last_runq: dict[int, float] = {}
        self._last_oncpu: dict[int, float] = {}
        self._last_runs: dict[int, int] = {}

    def processes(self) -> list[psutil.Process]:
        try:
            for child in self.root.children(recursive=True):
                self._procs.setdefault(child.pid, child)
        except psutil.NoSuchProcess:
            pass
        return list(self._procs.values())

    def sample(self) -> TreeSample:
        rss, names = {}, {}
        t = time.monotonic()
        for p in self.processes():
            try:
                with p.oneshot():
                    ct = p.cpu_times()
                    self._last_cpu[p.pid] = ct.user + ct.system
                    rss[p.pid] = p.memory_info().rss
                    names[p.pid] = _proc_label(p, p.pid == self.root.pid)
                (self._last_oncpu[p.pid], self._last_runq[p.pid],
                 self._last_runs[p.pid]) = schedstat(p.pid)
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
        return TreeSample(t, sum(self._last_cpu.values()), rss, names,
                          sum(self._last_runq.values()), dict(self._last_cpu),
                          sum(self._last_oncpu.values()), sum(self._last_runs.values()))


def schedstat(pid: int) -> tuple[float, float, int]:
    """(on-CPU seconds, seconds runnable but waiting for a CPU, times put on a CPU) of the
    process's live threads.

    /proc/<pid>/task/*/schedstat has nanosecond resolution (cpu_times has 10 ms ticks) but
    forgets threads that have exited, so it is exact only for long-lived threads (eventlet:
    one). The run-queue wait says how much of a latency is someone else's load on a shared
    machine. The times put on a CPU are, for a process that is mostly idle, its wake-ups (each
    costs ~0.1 ms of CPU on a VM before any work: ``bench/wakeups.py``)."""
    on_cpu = waited = runs = 0
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return 0.0, 0.0
    for task in tasks:
        try:
            with open(f"/proc/{pid}/task/{task}/schedstat") as f:
                fields = f.read().split()
            on_cpu += int(fields[0])
            waited += int(fields[1])
            runs += int(fields[2])
        except (OSError, IndexError, ValueError):
            continue
    return on_cpu / 1e9, waited / 1e9, runs


def cpu_pressure_s() -> float | None:
    """Machine-wide PSI 'some' CPU stall time, cumulative seconds (None where unsupported)."""
    try:
        with open("/proc/pressure/cpu") as f:
            for line in f:
                if line.startswith("some"):
                    return int(line.rsplit("total=", 1)[1]) / 1e6
    except (OSError, ValueError, IndexError):
        pass
    return None


def _proc_label(p: psutil.Process, is_root: bool) -> str:
    try:
        text = " ".join(p.cmdline())
    except (psutil.Error, OSError):
        text = p.name()
    if "gunicorn" in text:
        return "gunicorn master" if is_root else "gunicorn worker"
    return p.name()


def cpu_percent_between(a: TreeSample, b: TreeSample) -> float:
    """CPU used between two samples as % of one core (cpu_times: every thread, 10 ms ticks)."""
    return 100.0 * (b.cpu_s - a.cpu_s) / max(b.t - a.t, 1e-9)


def oncpu_percent_between(a: TreeSample, b: TreeSample) -> float:
    """The same from schedstat: ns resolution, live threads only (see ``schedstat``)."""
    return 100.0 * (b.oncpu_s - a.oncpu_s) / max(b.t - a.t, 1e-9)


def runs_per_s_between(a: TreeSample, b: TreeSample) -> float:
    """Times per second the tree's live threads were put on a CPU: its wake-ups, for a
    process that is mostly idle (see ``schedstat``)."""
    return (b.runs - a.runs) / max(b.t - a.t, 1e-9)


# --- the dashboard under test -------------------------------------------------------------------

@dataclass
class DashboardServer:
    """``python -m dashboard serve`` (gunicorn, eventlet worker) on a free loopback port.

    ``data_dir`` None: a temporary one, removed on exit. ``env`` adds/overrides variables such as
    DASHBOARD_MYSQL_URL. ``before_start(data_dir, env)`` runs after the data dir exists and before
    gunicorn starts (pre-filling the store, creating a token).
    """

    data_dir: Path | None = None
    env: dict[str, str] = field(default_factory=dict)
    before_start: Callable[[Path, dict[str, str]], None] | None = None
    ready_timeout_s: float = 60.0
    port: int = 0
    proc: subprocess.Popen | None = None
    _tmp: Path | None = None
    auth: Auth = field(default_factory=Auth)
    root: Path = ROOT                    # the checkout whose dashboard runs (bench --vs DIR)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def full_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("DASHBOARD_")}
        env.update({"DASHBOARD_DATA_DIR": str(self.data_dir),
                    "DASHBOARD_BIND": f"127.0.0.1:{self.port}",
                    "DASHBOARD_PUBLIC_URL": f"http://127.0.0.1:{self.port}",
                    "DASHBOARD_LOG_LEVEL": "warning"})
        env.update(self.env)
        return env

    def __enter__(self) -> "DashboardServer":
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        if self.data_dir is None:
            self._tmp = Path(tempfile.mkdtemp(prefix="dash-bench-"))
            self.data_dir = self._tmp / "data"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.port = self.port or free_port()
        env = self.full_env()
        self.auth = prepare_auth(env, root=self.root)
        if self.before_start is not None:
            self.before_start(self.data_dir, env)
        argv = self.argv()
        if shutil.which("setpriv"):
            argv = ["setpriv", "--pdeathsig", "KILL", "--", *argv]
        log = open(self.log_path, "ab")
        try:
            self.proc = subprocess.Popen(argv, cwd=self.root, env=env, stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        finally:
            log.close()
        self._wait_ready()

    def argv(self) -> list[str]:
        """The server's command line (a profiling experiment may substitute its own entry)."""
        return [PY, "-m", "dashboard", "serve"]

    @property
    def log_path(self) -> Path:
        assert self.data_dir is not None
        return self.data_dir.parent / f"gunicorn-{self.port}.log"

    def _wait_ready(self) -> None:
        """Until /healthz answers and every collector has delivered a sample."""
        deadline = time.monotonic() + self.ready_timeout_s
        last = ""
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"dashboard exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(self.url + "/healthz", timeout=2) as r:
                    body = json.loads(r.read())
                if body.get("collectors") and all(
                        c.get("age_s") is not None for c in body["collectors"].values()):
                    return
                last = json.dumps(body)[:300]
            except OSError as e:
                last = str(e)
            time.sleep(0.2)
        raise RuntimeError(f"dashboard not ready in {self.ready_timeout_s:g} s ({last}):\n"
                           f"{self.log_tail()}")

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def tree(self) -> ProcessTree:
        assert self.proc is not None
        return ProcessTree(self.proc.pid, "dashboard")

    def get(self, path: str, timeout: float = 10.0) -> bytes:
        req = urllib.request.Request(self.url + path, headers=self.auth.headers())
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.read()

    def stop(self) -> None:
        """SIGTERM to the process group (gunicorn stops its worker), SIGKILL what is left."""
        if self.proc is not None:
            pids = []
            try:
                pids = [p.pid for p in self.tree().processes()]
            except psutil.Error:
                pass
            if self.proc.poll() is None:
                _signal_group(self.proc.pid, signal.SIGTERM)
                try:
                    self.proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    _signal_group(self.proc.pid, signal.SIGKILL)
                    self.proc.wait(timeout=10)
            # The worker may outlive the master by a moment; never leave one behind.
            _, alive = psutil.wait_procs(_existing(pids), timeout=10)
            for p in alive:
                try:
                    p.kill()
                except psutil.Error:
                    pass
            self.proc = None
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass


def _existing(pids: Iterable[int]) -> list[psutil.Process]:
    out = []
    for pid in pids:
        try:
            out.append(psutil.Process(pid))
        except psutil.Error:
            pass
    return out


def fmt_mb(n_bytes: float) -> str:
    return f"{n_bytes / 2**20:.1f} MB"
