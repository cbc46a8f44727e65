"""Configured secrets never reach logs, error samples, /healthz, pages or `check` (issue 7).
The whole-stack grep (gunicorn log + pages) is in tests/e2e/test_security_browser.py."""
from __future__ import annotations

import html
import logging
import subprocess
import sys
from pathlib import Path

from dashboard.app import create_app
from dashboard.config import redact
from dashboard.config.load import from_dict
from dashboard.model import CollectorError
from dashboard.runtime import Runtime
from tests.support.auth_helpers import logged_in_client
from tests.support.util import wait_until

ROOT = Path(__file__).resolve().parent.parent
MYSQL_PW = "Mysql-Pw-7f3a9"
SMTP_PW = "Smtp-Pw-c41d2"
HOOK_SECRET = "Hook-Secret-e98b"
SLACK_PATH = "/services/T000/B000/Slack-Token-5521"
QUEUE_REDIS_PW = "Queue-Redis-Pw-81c0"      # redis://:pw@ of a queue's own Redis
QUEUE_SQL_PW = "Queue-Sql-Pw-2d9e"          # mysql://app:pw@ of a jobs table elsewhere
PROBE_PW = "Probe-Pw-5b7a"                  # http://user:pw@ basic auth of a health check
PROBE_TOKEN = "Probe-Token-0c4f6a1e"        # ?token= of a health check
FPM_PW = "Fpm-Pw-93aa"                      # the PHP-FPM status page behind basic auth
PD_KEY = "PdRoutingKey0c4f6a1e93aa5b7a2d9e"  # 32 characters, as PagerDuty's
TEAMS_SIG = "Teams-Sig-4e1b7c"                # the signature in a Teams Workflows URL
TG_TOKEN = "123456:Tg-Bot-Token-77d1a0b2c3d4e5"
NTFY_TOPIC = "Ntfy-Topic-3f8e"                # an ntfy topic's name is its password
NTFY_TOKEN = "tk_NtfyToken5c2a9"
SECRETS = (MYSQL_PW, SMTP_PW, HOOK_SECRET, "Slack-Token-5521", QUEUE_REDIS_PW, QUEUE_SQL_PW,
           PROBE_PW, PROBE_TOKEN, FPM_PW, PD_KEY, TEAMS_SIG, TG_TOKEN, NTFY_TOPIC, NTFY_TOKEN)
QUEUES = [{"name": "mails", "kind": "redis-list", "key": "q:mails",
           "url": f"redis://:{QUEUE_REDIS_PW}@127.0.0.1:9/0"},
          {"name": "jobs", "kind": "sql", "key": "jobs",
           "url": f"mysql://app:{QUEUE_SQL_PW}@127.0.0.1:9/shop"}]
PROBES = [{"name": "home", "url": f"http://probe:{PROBE_PW}@127.0.0.1:9/health"},
          {"name": "api", "url": f"http://127.0.0.1:9/health?full=1&token={PROBE_TOKEN}"}]
FPM_URL = f"http://fpm:{FPM_PW}@127.0.0.1:9/status?json"


def secret_settings(data_dir: Path, **extra):
    return {
        "data_dir": str(data_dir), "async_mode": "threading",
        "mysql": {"url": f"mysql://monitor:{MYSQL_PW}@127.0.0.1:9/"},
        "smtp": {"host": "127.0.0.1", "port": 9, "user": "dash", "password": SMTP_PW},
        "notify": [{"kind": "webhook", "url": "http://127.0.0.1:9/hook", "secret": HOOK_SECRET},
                   {"kind": "slack", "url": f"https://hooks.slack.example{SLACK_PATH}"},
                   {"kind": "pagerduty", "routing_key": PD_KEY, "url": "http://127.0.0.1:9/v2/enqueue"},
                   {"kind": "teams", "url": f"http://127.0.0.1:9/workflows/1/invoke?sig={TEAMS_SIG}"},
                   {"kind": "telegram", "bot_token": TG_TOKEN, "chat_id": "-100123",
                    "url": "http://127.0.0.1:9"},
                   {"kind": "ntfy", "url": f"http://127.0.0.1:9/{NTFY_TOPIC}", "token": NTFY_TOKEN}],
        "queues": QUEUES, "probes": PROBES, "phpfpm": {"url": FPM_URL},
        **extra,
    }


def assert_clean(text: str, where: str) -> None:
    for s in SECRETS:
        assert s not in text, f"{s!r} leaked into {where}"


class LeakyCollector:
    """Fault injection: a driver whose error message quotes the whole DSN."""
    source = "db"
    interval_s = 0.1
    timeout_s = 1.0
    metrics = ()

    def collect(self):
        raise CollectorError(f"cannot reach mysql://monitor:{MYSQL_PW}@127.0.0.1:9/")

    def close(self) -> None:
        pass


def test_log_records_are_scrubbed_of_secrets_in_message_args_and_traceback(caplog):
    redact.register([MYSQL_PW, HOOK_SECRET])
    log = logging.getLogger("dashboard.test")
    with caplog.at_level(logging.INFO):
        log.info("connecting with %s", f"mysql://monitor:{MYSQL_PW}@db/")
        log.warning(f"signing with {HOOK_SECRET}")
        try:
            raise RuntimeError(f"refused: {MYSQL_PW}")
        except RuntimeError:
            log.exception("collector failed")
    handler_text = "\n".join(logging.Formatter().format(r) for r in caplog.records)
    assert_clean(handler_text, "the log")
    assert "mysql://monitor:***@db/" in handler_text and "refused: ***" in handler_text


def collected(rt: Runtime, source: str) -> None:
    """Run the runtime's tick loop until ``source``'s first samples are stored, then stop it."""
    rt.runner.start()
    try:
        wait_until(lambda: rt.store.between(0, sources=[source]), timeout=20,
                   message=f"no {source} samples stored")
    finally:
        rt.runner.stop()


def test_error_samples_healthz_and_pages_never_show_a_secret(tmp_path):
    settings = from_dict(secret_settings(tmp_path / "data"))
    rt = Runtime(settings, [LeakyCollector()])
    app = create_app(settings, rt, async_mode="threading")
    collected(rt, "db")
    client = logged_in_client(app, "admin")
    health = client.get("/healthz").get_data(as_text=True)     # error texts need a login
    assert "cannot reach mysql://monitor:***@" in health
    for where, text in [("/healthz", health),
                        ("/api/latest", client.get("/api/latest").get_data(as_text=True)),
                        ("/", client.get("/").get_data(as_text=True)),
                        ("/admin/settings", client.get("/admin/settings").get_data(as_text=True)),
                        ("store", "".join(s.error or "" for s in rt.store.latest()))]:
        assert_clean(where=where, text=text)
    assert '"password": "***"' in html.unescape(client.get("/admin/settings").get_data(as_text=True))


def test_check_prints_settings_and_failures_without_secrets(tmp_path):
    cfg = tmp_path / "dashboard.toml"
    s = secret_settings(tmp_path / "data")
    cfg.write_text(f'''data_dir = "{s["data_dir"]}"
[mysql]
url = "{s["mysql"]["url"]}"
[smtp]
host = "127.0.0.1"
port = 9
user = "dash"
password = "{SMTP_PW}"
[[notify]]
kind = "webhook"
url = "http://127.0.0.1:9/hook"
secret = "{HOOK_SECRET}"
[[notify]]
kind = "slack"
url = "https://hooks.slack.example{SLACK_PATH}"
[[queues]]
name = "mails"
kind = "redis-list"
key = "q:mails"
url = "{QUEUES[0]["url"]}"
[[queues]]
name = "jobs"
kind = "sql"
key = "jobs"
url = "{QUEUES[1]["url"]}"
[[probes]]
name = "home"
url = "{PROBES[0]["url"]}"
[[probes]]
name = "api"
url = "{PROBES[1]["url"]}"
[phpfpm]
url = "{FPM_URL}"
''')
    out = subprocess.run([sys.executable, "-m", "dashboard", "--config", str(cfg), "check"],
                         cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert "FAIL" in out.stdout and "db" in out.stdout, out.stdout + out.stderr
    assert_clean(out.stdout + out.stderr, "check output")


def test_queue_probe_and_php_fpm_urls_are_masked_but_stay_recognisable(tmp_path):
    settings = from_dict(secret_settings(tmp_path / "data"))
    known = settings.secrets()
    assert all(any(s in k for k in known) for s in SECRETS), known
    shown = settings.masked()
    assert [q["options"]["url"] for q in shown["queues"]] == [
        "redis://:***@127.0.0.1:9/0", "mysql://app:***@127.0.0.1:9/shop"]
    assert [p["url"] for p in shown["probes"]] == [
        "http://probe:***@127.0.0.1:9/health", "http://127.0.0.1:9/health?full=***&token=***"]
    assert shown["phpfpm_url"] == "http://fpm:***@127.0.0.1:9/status?json"
    assert_clean(repr(shown), "masked()")
    # the original settings are untouched: collectors still connect with the real URLs
    assert settings.queues[0].options["url"] == QUEUES[0]["url"]


def test_the_log_scrubber_learns_queue_probe_and_php_fpm_secrets(tmp_path, caplog):
    settings = from_dict(secret_settings(tmp_path / "data"))
    Runtime(settings, [])                      # registers the settings' secrets, as at start
    log = logging.getLogger("dashboard.test")
    with caplog.at_level(logging.INFO):
        for q in QUEUES:
            log.warning("queue unreachable: %s", q["url"])
        for p in PROBES:
            log.warning("probe failed: GET %s", p["url"])
        log.warning("status page %s", FPM_URL)
    text = "\n".join(logging.Formatter().format(r) for r in caplog.records)
    assert_clean(text, "the log")
    assert "probe failed: GET http://probe:***@127.0.0.1:9/health" in text


class WordyCollector:
    """A collector that works but reports one label set's failure quoting a secret (a driver
    error message with the queue's DSN in it)."""
    source = "queue"
    interval_s = 0.1
    timeout_s = 1.0
    metrics = ()

    def collect(self):
        from dashboard.model import Reading
        return [Reading({"queue.up": 0.0}, {"queue": "mails"},
                        error=f"cannot read redis://:{QUEUE_REDIS_PW}@127.0.0.1:9/0: refused")]

    def close(self) -> None:
        pass


def test_a_reading_error_with_a_configured_secret_is_scrubbed_before_it_is_stored(tmp_path):
    settings = from_dict(secret_settings(tmp_path / "data"))
    rt = Runtime(settings, [WordyCollector()])
    app = create_app(settings, rt, async_mode="threading")
    collected(rt, "queue")
    stored = [s.error for s in rt.store.latest() if s.error]
    assert stored == ["cannot read redis://:***@127.0.0.1:9/0: refused"]
    latest = logged_in_client(app, "viewer").get("/api/latest").get_data(as_text=True)
    assert_clean(latest, "/api/latest")
