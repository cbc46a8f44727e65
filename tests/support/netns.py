"""Machines on a test network: Linux network namespaces joined by one switch (issue 16).

``Network`` makes, for one test, a *switch* namespace holding a bridge and one namespace per
*host*, each joined to the bridge by a veth pair (``eth0`` inside the host), with an address of a
private /24 of 10.213.0.0/16 picked for this network and ``lo`` up. The test process itself is
attached too (a veth in the root namespace, the subnet's ``.1``), so it reaches every host (to
probe services, to run a receiver every host can reach) and nothing else changes in the root
namespace: no forwarding, no route beyond that /24.

Faults: ``cut(host)`` takes the host's link down (nothing in or out), ``cut(host, peer)`` drops
the traffic between two hosts only (blackhole routes on both sides: a partition that leaves the
rest reachable); ``restore`` undoes either.

Processes run inside with ``popen(host, argv)`` (``ip netns exec``), each in a process group of
its own. ``close()`` kills every process in the namespaces, then deletes the namespaces (their
veth pairs go with them). Names carry the creating process's pid (``dtn-<pid>-<id>-<role>``):
``sweep_stale()`` deletes, at session start, the namespaces of test runs that are gone, and never
another live run's.

Where namespaces cannot be made (not root, no ``ip``) ``network()`` skips the test saying why;
with ``CI=true`` that is a failure (as ``tests/support/disk.py`` does for tmpfs).
"""
from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import os
import random
import re
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any, Iterator, Sequence, TypeVar

import pytest

from dashboard.demo import services as devservices

_S = TypeVar("_S", bound=devservices._Service)

PREFIX = "dtn"
NET = ipaddress.ip_network("10.213.0.0/16")
_NAME = re.compile(rf"^{PREFIX}-(\d+)-([0-9a-f]+)-([a-z0-9]+)$")


class NetnsUnavailable(RuntimeError):
    pass


def _ip(*args: str, ns: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    argv = ["ip", *(["-n", ns] if ns else []), *args]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    if check and r.returncode:
        raise NetnsUnavailable(f"{' '.join(argv)}: {r.stderr.strip() or r.returncode}")
    return r


def problem() -> str | None:
    """Why namespaces cannot be made here, or None."""
    if shutil.which("ip") is None:
        return "no `ip` command (Debian package iproute2)"
    if os.geteuid() != 0:
        return "not root (ip netns needs CAP_SYS_ADMIN and CAP_NET_ADMIN)"
    name = f"{PREFIX}-{os.getpid()}-probe-x"
    r = _ip("netns", "add", name, check=False)
    if r.returncode:
        return f"`ip netns add` failed: {r.stderr.strip()}"
    _ip("netns", "del", name, check=False)
    return None


def skip_unless_available() -> None:
    why = problem()
    if why:
        reason = f"cannot make network namespaces for a multi-machine test: {why}"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason=reason)


def _namespaces() -> list[str]:
    r = _ip("netns", "list", check=False)
    return [line.split()[0] for line in r.stdout.splitlines() if line.strip()]


def _kill_inside(ns: str) -> None:
    """SIGKILL every process in ``ns`` (all of them were started there by a test)."""
    for _ in range(20):
        r = _ip("netns", "pids", ns, check=False)
        pids = [int(p) for p in r.stdout.split() if p.isdigit()]
        if not pids:
            return
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.1)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_stale() -> list[str]:
    """Delete namespaces left by test runs whose process is gone (killed mid-test)."""
    gone = []
    for ns in _namespaces():
        m = _NAME.match(ns)
        if m and not _alive(int(m.group(1))):
            _kill_inside(ns)
            _ip("netns", "del", ns, check=False)
            gone.append(ns)
    return gone


@contextlib.contextmanager
def _subnet_lock() -> Iterator[None]:
    """Held from picking a free /24 until its address is on the root namespace's veth: runs in
    parallel (pytest-xdist workers, other checkouts' runs) pick one each, never the same."""
    with open(Path(tempfile.gettempdir()) / f"{PREFIX}-subnet.lock", "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _free_subnet() -> ipaddress.IPv4Network:
    """A /24 of 10.213.0.0/16 that no address of the root namespace is in (another run's)."""
    used = set(re.findall(r"inet (10\.213\.\d+)\.", _ip("-4", "addr", "show", check=False).stdout))
    subnets = list(NET.subnets(new_prefix=24))[1:-1]
    random.shuffle(subnets)
    for s in subnets:
        if ".".join(str(s.network_address).split(".")[:3]) not in used:
            return s
    raise NetnsUnavailable("no free /24 in 10.213.0.0/16")


class Network:
    """One test's machines. ``host(role)`` -> its address; see the module docstring."""

    def __init__(self) -> None:
        self.id = secrets.token_hex(3)
        self.addresses: dict[str, str] = {}
        self.procs: list[subprocess.Popen[bytes]] = []
        self._made: list[str] = []
        self._cuts: list[tuple[str, str]] = []
        self.root_if = f"{PREFIX}{self.id}r"
        try:
            with _subnet_lock():
                self.subnet = _free_subnet()
                self._hosts = list(self.subnet.hosts())
                self.gateway = str(self._hosts[0])        # the test process's own address
                self.switch = self._netns("sw")
                _ip("link", "add", "br0", "type", "bridge", ns=self.switch)
                _ip("link", "set", "br0", "up", ns=self.switch)
                # The test process: a veth in the root namespace, its peer on the bridge.
                self._veth(self.root_if, None, "root")
                _ip("addr", "add", f"{self.gateway}/{self.subnet.prefixlen}", "dev", self.root_if)
            _ip("link", "set", self.root_if, "up")
        except BaseException:
            self.close()          # what was made so far (namespaces, the root veth) goes too
            raise

    def ns(self, role: str) -> str:
        return f"{PREFIX}-{os.getpid()}-{self.id}-{role}"

    def _netns(self, role: str) -> str:
        if not re.fullmatch(r"[a-z0-9]{1,6}", role):
            raise ValueError(f"host role must be 1-6 lowercase letters or digits: {role!r}")
        name = self.ns(role)
        _ip("netns", "add", name)
        self._made.append(name)
        _ip("link", "set", "lo", "up", ns=name)
        return name

    def _veth(self, inside: str, ns: str | None, role: str) -> None:
        """A veth pair: ``inside`` in ``ns`` (None: the root namespace), its peer on the bridge
        (named ``p-<role>`` in the switch)."""
        tmp = f"{PREFIX}{self.id}t"
        _ip("link", "add", tmp, "type", "veth", "peer", "name", inside if ns is None else
            f"{PREFIX}{self.id}i")
        if ns is not None:
            _ip("link", "set", f"{PREFIX}{self.id}i", "netns", ns)
            _ip("link", "set", f"{PREFIX}{self.id}i", "name", inside, ns=ns)
        _ip("link", "set", tmp, "netns", self.switch)
        _ip("link", "set", tmp, "name", f"p-{role}", ns=self.switch)
        _ip("link", "set", f"p-{role}", "master", "br0", "up", ns=self.switch)

    def host(self, role: str) -> str:
        """A new machine ``role`` on the switch; its address."""
        if role in self.addresses:
            return self.addresses[role]
        ns = self._netns(role)
        addr = str(self._hosts[len(self.addresses) + 1])
        self._veth("eth0", ns, role)
        _ip("addr", "add", f"{addr}/{self.subnet.prefixlen}", "dev", "eth0", ns=ns)
        _ip("link", "set", "eth0", "up", ns=ns)
        self.addresses[role] = addr
        return addr

    # --- faults -----------------------------------------------------------------------------------

    def cut(self, role: str, peer: str | None = None) -> None:
        """Cut ``role`` off the network, or from ``peer`` only (both directions)."""
        if peer is None:
            _ip("link", "set", f"p-{role}", "down", ns=self.switch)
            return
        for a, b in ((role, peer), (peer, role)):
            _ip("route", "add", "blackhole", f"{self.addresses[b]}/32", ns=self.ns(a))
        self._cuts.append((role, peer))

    def restore(self, role: str, peer: str | None = None) -> None:
        if peer is None:
            _ip("link", "set", f"p-{role}", "up", ns=self.switch)
            return
        for a, b in ((role, peer), (peer, role)):
            _ip("route", "del", "blackhole", f"{self.addresses[b]}/32", ns=self.ns(a), check=False)
        self._cuts.remove((role, peer))

    # --- processes --------------------------------------------------------------------------------

    def command(self, role: str, argv: Sequence[str]) -> list[str]:
        """``argv`` run inside ``role``'s namespace."""
        return ["ip", "netns", "exec", self.ns(role), *argv]

    def service(self, role: str, kind: type[_S], base_dir: Path, port: int, **kwargs: Any) -> _S:
        """A dev service (``dashboard/demo/services.py``: Redis, MariaDB...) run on ``role``,
        listening on its address only; started (and waited for) by the caller."""
        net = self

        class OnHost(kind):  # type: ignore[valid-type,misc]
            def _argv(self) -> list[str]:
                return net.command(role, super()._argv())

        OnHost.__name__ = kind.__name__
        made: _S = OnHost(name=kind.__name__.lower(), base_dir=Path(base_dir).resolve(), port=port,
                          host=self.host(role), **kwargs)
        return made

    def popen(self, role: str, argv: Sequence[str], log: Path | None = None,
              **kwargs: Any) -> subprocess.Popen[bytes]:
        out = open(log, "ab") if log else subprocess.DEVNULL
        try:
            p = subprocess.Popen(self.command(role, argv), stdin=subprocess.DEVNULL, stdout=out,
                                 stderr=subprocess.STDOUT, start_new_session=True, **kwargs)
        finally:
            if log:
                out.close()  # type: ignore[union-attr]
        self.procs.append(p)
        return p

    def close(self) -> None:
        """Every process, link and namespace of this network, gone (also after a failure)."""
        for p in self.procs:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for p in self.procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                pass
        for ns in reversed(self._made):
            _kill_inside(ns)
            _ip("netns", "del", ns, check=False)
        self._made.clear()
        # Its peer went with the switch; in case the kernel has not dropped it yet:
        _ip("link", "del", self.root_if, check=False)


def network() -> Iterator[Network]:
    """For a fixture: ``yield from network()``. Skips (fails with CI=true) where namespaces
    cannot be made."""
    skip_unless_available()
    net = Network()
    try:
        yield net
    finally:
        net.close()
