"""The morning e-mail reaches a real SMTP server (aiosmtpd) with the verdicts and the link."""
from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest
from apscheduler.triggers.cron import CronTrigger

from dashboard.__main__ import main
from dashboard.app import create_app
from dashboard.config.load import from_dict
from dashboard.report import mailer
from dashboard.runtime import Runtime
from tests.support.report_data import day_bounds, write_day

pytestmark = pytest.mark.usefixtures("store_backend")     # on SQLite and on PostgreSQL

BERLIN = ZoneInfo("Europe/Berlin")
DAY = date(2026, 11, 2)
MORNING = datetime(2026, 11, 3, 7, 0, tzinfo=BERLIN).timestamp()
RECIPIENTS = ["ceo@example.com", "ops-lead@example.com"]


def config(tmp_path, smtp_server) -> dict:
    return {"data_dir": str(tmp_path / "data"), "timezone": "Europe/Berlin", "async_mode": "threading",
            "public_url": "https://dash.example", "host_name": "web-1",
            "smtp": {"host": smtp_server.host, "port": smtp_server.port, "sender": "dash@example.com"},
            "report": {"send_at": "07:00", "recipients": RECIPIENTS}}


@pytest.fixture
def wired(tmp_path, smtp_server):
    """The real wiring: create_app installs the daily job on the runtime (not started)."""
    settings = from_dict(config(tmp_path, smtp_server))
    runtime = Runtime(settings, [])
    app = create_app(settings, runtime, async_mode="threading")
    write_day(runtime.store, DAY, BERLIN, step=60.0)
    runtime.store.rollup(now=day_bounds(DAY, BERLIN)[1] + 120)
    yield app.extensions["dashboard.report_mailer"], runtime
    runtime.stop()


def test_the_job_is_scheduled_daily_at_seven_in_the_configured_zone(wired):
    job, runtime = wired
    args = mailer.cron_trigger(runtime.settings)
    assert (job.run, args) in runtime.runner._extra_jobs
    trigger = CronTrigger(**{k: v for k, v in args.items() if k not in ("trigger", "misfire_grace_time")})
    after = datetime(2026, 11, 2, 23, 0, tzinfo=BERLIN)
    assert trigger.get_next_fire_time(None, after) == datetime(2026, 11, 3, 7, 0, tzinfo=BERLIN)


def test_the_scheduled_email_arrives_with_the_verdicts_and_a_link_to_the_page(wired, smtp_server):
    job, _ = wired
    assert job.run(now=MORNING) == "sent"
    mail = smtp_server.wait_for(1, timeout=10)[0]
    assert sorted(mail.rcpt_tos) == sorted(RECIPIENTS) and mail.mail_from == "dash@example.com"
    assert mail.subject == "Daily capacity summary 2026-11-02 · web-1: 6 checks missed"
    text = mail.text
    for line in ("MISSED   Queue pending below 50 jobs", "MISSED   Connection pool at most 80 %",
                 "MET      Cache hit rate above 60 %", "MET      Checkout success above 99 %",
                 "MISSED   Availability at least 99.9 %"):
        assert line in text
    assert "https://dash.example/reports/daily?date=2026-11-02" in text
    html = mail.message.get_body(preferencelist=("html",)).get_content()
    assert html.count("<tr>") == 15 and ">MISSED<" in html and ">MET<" in html
    assert 'href="https://dash.example/reports/daily?date=2026-11-02"' in html


def test_the_email_goes_out_once_per_day(wired, smtp_server):
    job, _ = wired
    assert job.run(now=MORNING) == "sent"
    smtp_server.wait_for(1, timeout=10)
    assert job.run(now=MORNING + 60) == "already sent"
    assert job.catch_up(now=MORNING + 600) == "already sent"
    assert len(smtp_server.messages) == 1


def test_a_refusing_smtp_server_at_seven_is_retried_by_the_catch_up(wired, smtp_server):
    job, _ = wired
    smtp_server.reject_next(1, "451 4.3.0 Try again later")
    assert job.run(now=MORNING) == "failed"
    assert job.deliveries()[0]["error"].startswith("DeliveryError")
    assert job.catch_up(now=MORNING - 3600) == "not yet"           # before 07:00: nothing
    assert job.catch_up(now=MORNING + 600) == "sent"
    assert len(smtp_server.wait_for(1, timeout=10)) == 1


def test_a_permanent_refusal_is_not_retried(wired, smtp_server):
    job, _ = wired
    smtp_server.reject_next(1, "554 5.7.1 Rejected")
    assert job.run(now=MORNING) == "failed"
    assert job.catch_up(now=MORNING + 600) == "refused permanently"
    assert smtp_server.messages == []


def test_the_command_sends_the_report_on_request(tmp_path, smtp_server, capsys):
    cfg = config(tmp_path, smtp_server)
    settings = from_dict(cfg)
    from dashboard.store import Store
    store = Store(settings.data_dir)
    write_day(store, DAY, BERLIN, step=120.0)
    store.rollup(now=day_bounds(DAY, BERLIN)[1] + 120)
    store.close()
    path = tmp_path / "dashboard.toml"
    path.write_text(
        f'data_dir = "{cfg["data_dir"]}"\ntimezone = "Europe/Berlin"\npublic_url = "https://dash.example"\n'
        f'[smtp]\nhost = "{smtp_server.host}"\nport = {smtp_server.port}\n'
        f'[report]\nrecipients = ["ceo@example.com"]\n')
    assert main(["--config", str(path), "report", "--date", DAY.isoformat(), "--send"]) == 0
    mail = smtp_server.wait_for(1, timeout=10)[0]
    assert mail.rcpt_tos == ["ceo@example.com"] and "Queue pending below 50 jobs" in mail.text
    assert "report: sent to ceo@example.com" in capsys.readouterr().err


def test_a_dashboard_installed_in_the_evening_does_not_mail_an_empty_summary(tmp_path, smtp_server):
    settings = from_dict(config(tmp_path, smtp_server))
    job = mailer.DailyMailer(settings, Runtime(settings, []).store)
    assert job.catch_up(now=MORNING + 12 * 3600) == "no data"
    assert job.run(now=MORNING) == "sent"            # the 07:00 run says "no data" in words
    mail = smtp_server.wait_for(1, timeout=10)[0]
    assert mail.subject.endswith(": no data") and "No data was recorded for this day." in mail.text
