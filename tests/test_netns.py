"""The test network of tests/support/netns.py: hosts reach each other, a cut separates them,
a restore joins them again, and nothing is left behind."""
from __future__ import annotations

import os
import subprocess
import sys

from tests.support import netns
from tests.support.util import wait_until

SERVE = ("import http.server, sys; http.server.HTTPServer((sys.argv[1], 8000),"
         " http.server.SimpleHTTPRequestHandler).serve_forever()")
FETCH = ("import sys, urllib.request; urllib.request.urlopen(f'http://{sys.argv[1]}:8000/',"
         " timeout=float(sys.argv[2])); print('ok')")


def fetch(net: netns.Network, role: str, addr: str, timeout: float = 2.0) -> bool:
    r = subprocess.run(net.command(role, [sys.executable, "-c", FETCH, addr, str(timeout)]),
                       capture_output=True, text=True, timeout=30)
    return r.stdout.strip() == "ok"


def test_hosts_reach_each_other_until_cut_and_again_once_restored(test_network, tmp_path):
    net = test_network
    a, b = net.host("a"), net.host("b")
    assert a != b and a.startswith("10.213.") and b.startswith("10.213.")
    server = net.popen("a", [sys.executable, "-c", SERVE, a], cwd=tmp_path)
    wait_until(lambda: fetch(net, "b", a), timeout=20, message="b never reached a's server")
    # Only a's own address is bound in a: nothing listens on b.
    assert not fetch(net, "a", b, timeout=1)

    net.cut("a", "b")                      # a partition between two hosts
    assert not fetch(net, "b", a)
    net.restore("a", "b")
    wait_until(lambda: fetch(net, "b", a), timeout=20)

    net.cut("b")                           # b's link down: off the network
    assert not fetch(net, "b", a)
    net.restore("b")
    wait_until(lambda: fetch(net, "b", a), timeout=20)
    assert server.poll() is None


def test_the_test_process_reaches_the_hosts_and_a_partition_leaves_it_reachable(test_network,
                                                                                  tmp_path):
    import urllib.request
    net = test_network
    a, _ = net.host("a"), net.host("b")
    net.popen("a", [sys.executable, "-c", SERVE, a], cwd=tmp_path)
    wait_until(lambda: urllib.request.urlopen(f"http://{a}:8000/", timeout=2).status == 200,
               timeout=20, ignore=(OSError,))
    net.cut("a", "b")
    assert urllib.request.urlopen(f"http://{a}:8000/", timeout=2).status == 200


def test_close_leaves_no_namespace_link_or_process(tmp_path):
    netns.skip_unless_available()
    net = netns.Network()
    net.host("a")
    proc = net.popen("a", [sys.executable, "-c", "import time; time.sleep(600)"])
    names = [net.ns("a"), net.switch]
    net.close()
    assert proc.poll() is not None
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert not any(n in listed for n in names)
    links = subprocess.run(["ip", "link", "show"], capture_output=True, text=True).stdout
    assert net.root_if not in links


def test_the_sweep_removes_namespaces_of_runs_that_are_gone_and_keeps_live_ones():
    netns.skip_unless_available()
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = f"{netns.PREFIX}-{dead.pid}-abc123-a"
    live = f"{netns.PREFIX}-{os.getpid()}-abc123-a"
    for name in (stale, live):
        subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        gone = netns.sweep_stale()
        assert stale in gone and live not in gone
        listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
        assert stale not in listed and live in listed
    finally:
        for name in (stale, live):
            subprocess.run(["ip", "netns", "del", name], capture_output=True)


def test_without_namespaces_the_test_skips_saying_why_and_fails_under_ci(tmp_path):
    empty = tmp_path / "bin"           # a PATH without `ip`
    empty.mkdir()
    out = {}
    for ci in ("false", "true"):
        r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs",
                            __file__, "-k", "reach_each_other"],
                           env={**os.environ, "PATH": str(empty), "CI": ci},
                           capture_output=True, text=True, timeout=120,
                           cwd=os.path.dirname(os.path.dirname(__file__)))
        out[ci] = (r.returncode, r.stdout)
    assert out["false"][0] == 0 and "no `ip` command" in out["false"][1], out["false"]
    assert out["true"][0] != 0 and "no `ip` command" in out["true"][1], out["true"]
