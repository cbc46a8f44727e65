"""The collector's MySQL sessions and TLS (dashboard/collectors/mysql/conn.py, issue 19).

Without TLS options PyMySQL is in "preferred" mode: TLS when the server offers it, its certificate
not verified. It also loaded the system's CA store into a new context for every connection
(~0.75 MB of OpenSSL objects each, never consulted): the worker's two sessions kept 1.5 MB for
nothing. These tests pin both halves: still encrypted where the server offers TLS, plain where it
does not, and no CA certificates held, one context for every session.
"""
from __future__ import annotations

import secrets
import subprocess
from pathlib import Path

from dashboard.collectors.mysql.collector import MySQLCollector
from dashboard.config import load as config

GRANTS = ["PROCESS", "BINLOG MONITOR", "SELECT ON performance_schema.*"]


def _collector(db) -> MySQLCollector:
    url = db.create_monitor_user("tlsmon", secrets.token_urlsafe(12), GRANTS)
    return MySQLCollector(config.parse_mysql({"url": url}), backoff_max_s=0.5, min_hour_span_s=1)


def _cipher(c: MySQLCollector) -> str:
    rows = c.conn.query("SHOW SESSION STATUS LIKE 'Ssl_cipher'")
    return rows[0][1] if rows else ""


def _contexts(c: MySQLCollector) -> list:
    return [conn._conn.ctx for conn in (c.conn, c.reader_conn) if conn.connected]


def test_sessions_hold_no_ca_store_and_stay_plain_when_the_server_offers_no_tls(make_mariadb):
    # --skip-ssl: MariaDB 11.4 and later offer TLS by default, with a certificate of their own.
    c = _collector(make_mariadb(extra_args=["--skip-ssl"]))
    try:
        c.collect()
        c.reader_conn.query("SELECT 1")
        ctxs = _contexts(c)
        assert len(ctxs) == 2 and ctxs[0] is ctxs[1]
        assert ctxs[0].cert_store_stats()["x509_ca"] == 0
        assert _cipher(c) == ""
    finally:
        c.close()


def test_sessions_are_encrypted_when_the_server_offers_tls(make_mariadb, tmp_path: Path):
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, timeout=60)
    db = make_mariadb(extra_args=[f"--ssl-cert={cert}", f"--ssl-key={key}"])
    c = _collector(db)
    try:
        c.collect()
        assert _cipher(c) != ""                    # TLS as before: the server offered it
        assert _contexts(c)[0].cert_store_stats()["x509_ca"] == 0
    finally:
        c.close()
