"""A watchdog for the watcher: ping an outside service (healthchecks.io or compatible) while the
pipeline works, and say ``/fail`` with the reason when it does not.

If the dashboard's host dies or its pipeline sticks, the dashboard cannot page anyone about it;
an outside service that expects a ping every ``every_s`` can. Every ``[watchdog] every_s`` the
process that collects (the leader; in a single process, that process: the job runs on the
runner, which only a leader starts) checks three things and sends

* ``POST <url>`` (body ``ok``) when all hold, or
* ``POST <url>/fail`` with the reasons in the body (healthchecks keeps it as the ping's log:
  short, secret-free) when one does not:

1. **collection is ticking**: every configured collector interval produced a tick recently,
   a tick being a collection that answered (returned or raised within its timeout) and was
   published. A hung collector makes no tick: its "still not answering" samples do not count.
   One hung collector among others of its interval is its target's problem (``<source>_down``
   pages for it); when none of an interval's collectors answers for two intervals plus their
   timeout, the collection itself is stuck (threads, scheduler, a frozen host) and that is
   the watchdog's business.
2. **the store accepts writes** (``Spool.up``: the last write succeeded).
3. **the outbox is moving**: no message has waited longer than twice its retry schedule; an
   empty outbox is moving (``alerts.outbox.Outbox.stuck``).

And when the process stops pinging at all (killed, host down, the scheduler dead), the outside
service notices the missing ping after its own grace time.

The ping runs on a runner job (max one at a time, skipped while one still runs), never on a
collector's thread, with a timeout shorter than the interval: a ping endpoint that hangs costs
one job thread, never a tick. The URL's path is the check's secret: logs show it masked.
"""
from __future__ import annotations

import logging
import math
import time
import urllib.error
import urllib.request
from typing import TYPE_CHECKING, Any, Callable, Sequence

from dashboard.config import redact
from dashboard.config.secrets import mask_ping_url
from dashboard.config.settings import WatchdogSettings
from dashboard.runtime import Parts

if TYPE_CHECKING:
    from dashboard.runtime import Runtime
    from dashboard.store.txn import Connection

log = logging.getLogger(__name__)

USER_AGENT = "dashboard-watchdog/1"
MAX_BODY = 1000              # healthchecks keeps the first 100 kB; a reason is a few lines
LOG_EVERY_S = 300.0

Answers = Callable[[], Sequence[tuple[str, float, float, float]]]


def collection_problems(answers: Sequence[tuple[str, float, float, float]], now: float) -> list[str]:
    """Intervals none of whose collectors answered for two intervals plus their timeout."""
    by_interval: dict[float, list[tuple[str, float, float]]] = {}
    for source, interval, timeout, last in answers:
        by_interval.setdefault(interval, []).append((source, timeout, last))
    out = []
    for interval, group in sorted(by_interval.items()):
        allowed = 2 * interval + max(t for _, t, _ in group)
        newest = max(last for _, _, last in group)
        if now - newest > allowed:
            names = ", ".join(sorted(s for s, _, _ in group))
            out.append(f"collection stuck: no collector of the {interval:g} s interval ({names}) "
                       f"answered for {now - newest:.0f} s")
    return out


class Watchdog:
    def __init__(self, settings: WatchdogSettings, answers: Answers,
                 store_status: Callable[[], dict[str, Any]],
                 outbox_stuck: Callable[[], list[str]] | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.url, self.every_s = settings.url, settings.every_s
        self._answers, self._store_status, self._outbox_stuck = answers, store_status, outbox_stuck
        self._clock = clock
        # Bounded well within the interval: a hanging endpoint never holds more than one job.
        self.timeout_s = min(10.0, max(1.0, self.every_s / 2))
        self.last: tuple[str, str] | None = None      # (ok | fail, body) of the last ping sent
        self._logged_at = -math.inf

    def problems(self) -> list[str]:
        """What stops the pipeline now; empty when it works."""
        now = self._clock()
        out = collection_problems(self._answers(), now)
        st = self._store_status()
        if st.get("status") != "ok":
            since = st.get("since")
            held = f" for {now - since:.0f} s" if since else ""
            out.append(f"store cannot write{held}: {st.get('error') or 'unknown error'}")
        if self._outbox_stuck is not None:
            try:
                out.extend(self._outbox_stuck())
            except Exception as e:  # noqa: BLE001 - the outbox unreadable is not moving
                out.append(f"outbox unreadable: {type(e).__name__}: {e}")
        return out

    def check(self) -> None:
        """One round: judge, then ping or fail (the runner's job, every ``every_s``)."""
        try:
            problems = self.problems()
        except Exception as e:  # noqa: BLE001 - a check that breaks is itself a failure
            log.exception("watchdog check failed")
            problems = [f"watchdog check failed: {type(e).__name__}"]
        if problems:
            body = "\n".join(problems)
            body = (redact.scrub(body) or body)[:MAX_BODY]
            self._send("fail", body)
        else:
            self._send("ok", "ok")

    def _send(self, kind: str, body: str) -> None:
        url = self.url + ("/fail" if kind == "fail" else "")
        req = urllib.request.Request(url, data=body.encode(), method="POST",
                                     headers={"Content-Type": "text/plain; charset=utf-8",
                                              "User-Agent": USER_AGENT})
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as r:
                r.read(256)
        except (urllib.error.URLError, OSError, ValueError) as e:
            # Said every few minutes, not each interval; the outside service pages on the gap.
            now = time.monotonic()
            if now - self._logged_at >= LOG_EVERY_S:
                self._logged_at = now
                why = getattr(e, "code", None) or type(getattr(e, "reason", e)).__name__
                log.warning("watchdog ping to %s failed: %s", mask_ping_url(self.url), why)
            return
        if self.last is None or self.last[0] != kind:
            if kind == "fail":
                log.warning("watchdog: told %s the pipeline fails: %s", mask_ping_url(self.url),
                            body.replace("\n", "; "))
            else:
                log.info("watchdog: pinging %s every %g s", mask_ping_url(self.url), self.every_s)
        self.last = (kind, body)


def parts(runtime: Runtime) -> Parts:
    """The watchdog's job on ``runtime``'s runner (started only where the collectors run: the
    leader), judging its collectors, its store and its alert outbox."""
    settings = runtime.settings.watchdog
    assert settings is not None
    conns: list[Connection] = []

    def outbox_stuck() -> list[str]:
        if runtime.alerting is None:
            return []
        if not conns:                 # its own connection: the job runs in the runner's threads
            conns.append(runtime.store.connect())
        return runtime.alerting.outbox.stuck(conns[0])

    def close() -> None:
        while conns:
            conns.pop().close()

    dog = Watchdog(settings, runtime.runner.last_answers, runtime.spool.status, outbox_stuck)
    return Parts(jobs=[(dog.check, {"trigger": "interval", "seconds": settings.every_s})],
                 on_stop=[close])
