"""A local stand-in for healthchecks.io: an HTTP receiver recording each check's pings.

healthchecks takes a ping at ``<ping URL>`` (success) and ``<ping URL>/fail`` (failure), by GET,
HEAD or POST; a POST body is kept as the ping's log. ``PingReceiver.check()`` makes a ping URL
with a fresh uuid path (the check's secret, as on hc-ping.com); ``pings(url)`` lists what that
check received, oldest first, as ``Ping(kind, body, at)`` with kind ``ok`` or ``fail``.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass

from tests.support.receivers import WebhookReceiver
from tests.support.util import wait_until


@dataclass(frozen=True)
class Ping:
    kind: str            # ok | fail
    body: str
    at: float            # when it arrived (receiver's clock)


class PingReceiver(WebhookReceiver):
    what = "pings"

    def check(self) -> str:
        """A new check's ping URL."""
        return self.url_for(str(uuid.uuid4()))

    def pings(self, url: str) -> list[Ping]:
        path = "/" + url.split("/", 3)[3]
        out = []
        for r in self.requests:
            if r.path == path:
                out.append(Ping("ok", r.body.decode(errors="replace"), r.received_at))
            elif r.path == path + "/fail":
                out.append(Ping("fail", r.body.decode(errors="replace"), r.received_at))
        return out

    def wait_for_kind(self, url: str, kind: str, after: int = 0, timeout: float = 30.0) -> Ping:
        """The first ping of ``kind`` among this check's pings from index ``after`` on."""
        def found() -> Ping | None:
            return next((p for p in self.pings(url)[after:] if p.kind == kind), None)
        return wait_until(found, timeout=timeout, interval=0.1,
                          message=lambda: f"no {kind!r} ping; got {self.pings(url)[after:]!r}")
