"""The morning e-mail: yesterday's summary to ``report.recipients`` at ``report.send_at``.

Sending reuses the alerts' SMTP notifier (``alerts.notifiers.EmailNotifier``): one SMTP path,
one set of settings (``[smtp]``), the same error classification.

Delivery is recorded in the store (``ReportsRepo``'s deliveries), so:
* a restart after 07:00, or an SMTP server that was down at 07:00, still gets the report out:
  a catch-up job every 10 minutes sends it if it is past ``send_at`` and not sent yet (the same
  day only; a permanent SMTP refusal is not retried);
* two processes with the scheduler (or a cron run twice) send it once: the day is claimed with
  an INSERT before sending, and the Message-ID is the same for the same day.
"""
from __future__ import annotations

import logging
import time
from contextlib import closing
from datetime import datetime, timedelta
from typing import Any, Callable

from alerts.notifiers import EmailNotifier
from dashboard.config.settings import NotifySettings, Settings
from dashboard.runtime import Parts
from dashboard.store import Store
from dashboard.store.reports import ReportsRepo

# The report's builder and renderer are imported when a report is made (once a morning), not in
# every worker at start (issue 9: ~2 MB that a steady-state worker never uses).

log = logging.getLogger(__name__)

CATCH_UP_EVERY_S = 600
CLAIM_STALE_S = 300                   # a claim this old without a result was a crashed sender


def message(settings: Settings, doc: dict[str, Any], sent_at: float) -> dict[str, Any]:
    # lazy: rendering loads when a summary is sent, not in every web worker (footprint)
    from dashboard.report import render
    """The notifier's body: subject, text and HTML (the verdict table and the page link)."""
    return {"subject": render.subject(doc), "text": render.text(doc),
            "html": render.email_html(doc), "date": sent_at}


def send(settings: Settings, doc: dict[str, Any], key: str, now: float | None = None) -> None:
    """Send ``doc`` to the configured recipients; raises ``alerts.notifiers.DeliveryError``."""

    channel = NotifySettings(kind="email", to=tuple(settings.report.recipients),
                             name="daily-report")
    notifier = EmailNotifier(channel, settings.smtp, settings.timezone)
    notifier.send(message(settings, doc, time.time() if now is None else now), key)


def send_at_today(settings: Settings, now: float) -> float:
    hh, mm = (int(x) for x in settings.report.send_at.split(":"))
    local = datetime.fromtimestamp(now, settings.tz)
    return local.replace(hour=hh, minute=mm, second=0, microsecond=0).timestamp()


class DailyMailer:
    """``run()`` is the cron job; ``catch_up()`` the retry job. Both send yesterday's summary."""

    def __init__(self, settings: Settings, store: Store,
                 clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.store = store
        self._clock = clock

    def run(self, now: float | None = None, skip_empty: bool = False) -> str:
        """Send yesterday's summary unless already sent. Returns what happened (for logs, tests)."""
        # lazy: as above
        from dashboard.report.build import build_report
        now = self._clock() if now is None else now
        if not self.settings.report.recipients:
            return "no recipients"
        day = (datetime.fromtimestamp(now, self.settings.tz).date() - timedelta(days=1)).isoformat()
        if skip_empty and not self._sent_or_tried(day):
            doc = build_report(self.store, self.settings, day, now=now)
            if doc["coverage"]["status"] == "no data":
                return "no data"
        with closing(ReportsRepo(self.store.connect, self.store.history_connect)) as repo:
            refused = repo.claim_delivery(day, now, ",".join(self.settings.report.recipients),
                                          CLAIM_STALE_S)
            if refused:
                return refused
            try:
                doc = build_report(self.store, self.settings, day, now=now)
                send(self.settings, doc, f"daily-report-{day}-{self.settings.host_name}", now)
            except Exception as e:  # noqa: BLE001 - recorded and retried by catch_up
                permanent = bool(getattr(e, "permanent", False))
                repo.delivery_failed(day, f"{type(e).__name__}: {e}"[:300], permanent, now)
                log.warning("daily summary for %s not sent: %s", day, e)
                return "failed"
            repo.delivery_sent(day, self._clock())
            log.info("daily summary for %s sent to %d recipients", day,
                     len(self.settings.report.recipients))
            return "sent"

    def catch_up(self, now: float | None = None) -> str:
        """After ``send_at``, send today's morning e-mail if the cron run did not get it out.
        A day without any data is left to the cron run: a dashboard installed in the evening
        does not mail an empty summary of the day before it existed."""
        now = self._clock() if now is None else now
        if now < send_at_today(self.settings, now):
            return "not yet"
        return self.run(now, skip_empty=True)

    def _sent_or_tried(self, day: str) -> bool:
        with closing(ReportsRepo(self.store.connect, self.store.history_connect)) as repo:
            return repo.delivery_tried(day)

    def deliveries(self) -> list[dict[str, Any]]:
        with closing(ReportsRepo(self.store.connect, self.store.history_connect)) as repo:
            return repo.deliveries(30)


def parts(mailer: DailyMailer) -> Parts:
    """The cron job (and its catch-up) on the runtime's scheduler; nothing starts here."""
    return Parts(jobs=[(mailer.run, cron_trigger(mailer.settings)),
                       (mailer.catch_up, {"trigger": "interval", "seconds": CATCH_UP_EVERY_S})])


def cron_trigger(settings: Settings) -> dict[str, Any]:
    """APScheduler arguments: every day at ``report.send_at`` in ``settings.timezone``."""
    hh, mm = (int(x) for x in settings.report.send_at.split(":"))
    return {"trigger": "cron", "hour": hh, "minute": mm, "timezone": settings.timezone,
            "misfire_grace_time": 3600}
