"""Keep configured secrets out of logs and error texts.

The settings know every secret (``Settings.secrets()``: DSN passwords, including queues' own
URLs, credentials in probe and PHP-FPM URLs, the SMTP password, webhook secrets and hook URLs).
Messages are built in many places (driver exceptions, tracebacks, third-party loggers), so
instead of trusting each call site, every log record is scrubbed when it is made (a log-record
factory, which also pre-formats the traceback so the scrubbed text is what any handler
prints), and error texts of samples are scrubbed before they are stored, shown on the
page or in ``/healthz``.
"""
from __future__ import annotations

import logging
import threading
from typing import Any, Iterable
from urllib.parse import quote

MASK = "***"
MIN_LEN = 4           # shorter "secrets" would mask ordinary words and numbers

_lock = threading.Lock()
_secrets: set[str] = set()
_installed = False


def _variants(secret: str) -> set[str]:
    # A password may appear as typed or URL-encoded (inside a DSN).
    return {secret, quote(secret, safe=""), quote(secret)}


def register(secrets: Iterable[str]) -> None:
    """Add secrets to mask in every later log record; installs the record factory once."""
    global _installed
    new = {v for s in secrets if s and len(s) >= MIN_LEN for v in _variants(s)}
    with _lock:
        _secrets.update(new)
        if not _installed:
            previous = logging.getLogRecordFactory()

            def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
                record = previous(*args, **kwargs)
                if _secrets:
                    _scrub_record(record)
                return record

            logging.setLogRecordFactory(factory)
            _installed = True


def scrub(text: str | None, secrets: Iterable[str] | None = None) -> str | None:
    """``text`` with every known (or given) secret replaced by ``***``."""
    if not text:
        return text
    pool = _secrets if secrets is None else {v for s in secrets if s and len(s) >= MIN_LEN
                                             for v in _variants(s)}
    for s in sorted(pool, key=len, reverse=True):
        if s in text:
            text = text.replace(s, MASK)
    return text


def _scrub_record(record: logging.LogRecord) -> None:
    try:
        message = record.getMessage()
    except Exception:  # noqa: BLE001 - a broken format string is the caller's bug, not ours
        return
    clean = scrub(message)
    if clean != message:
        record.msg, record.args = clean, None
    if record.exc_info and not record.exc_text:
        text = logging.Formatter().formatException(record.exc_info)
        clean_text = scrub(text)
        if clean_text != text:
            record.exc_text = clean_text
