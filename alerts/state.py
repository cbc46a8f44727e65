"""The alerts' own tables in the store's SQLite file: engine state, history, acks, silences.

* ``alert_state``: the engine's non-ok states (pending and firing alerts), so a restart neither
  pages again nor forgets a firing alert.
* ``alert_episodes``: one row per alert (from first breach to resolved): severity, value, peak,
  when it fired and resolved, who acknowledged it, when and why. The alerts page's history.
* ``alert_events``: every transition and acknowledgement, with the silence that held it back.
* ``alert_told``: what each channel was last told about each alert; "resolved" and releases
  after a silence go to the channels that heard about the alert, whatever their severity filter.
* ``alert_silences``: maintenance windows by rule and labels, with author and reason.

Every function takes the caller's connection, so the service can group them in one transaction.
"""
from __future__ import annotations

import json
import sqlite3
from typing import Any, Iterable, Mapping

from alerts.engine import Transition

SCHEMA = """
CREATE TABLE IF NOT EXISTS alert_state (key TEXT PRIMARY KEY, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS alert_episodes (
    id TEXT PRIMARY KEY,
    rule TEXT NOT NULL,
    labels TEXT NOT NULL,
    status TEXT NOT NULL,                -- firing | resolved
    severity TEXT NOT NULL,              -- current (or last) severity
    peak_severity TEXT NOT NULL,
    started_at REAL NOT NULL,            -- breach began
    fired_at REAL NOT NULL,
    resolved_at REAL,
    value REAL,
    threshold REAL,
    peak REAL,
    acked_at REAL,
    acked_by TEXT,
    ack_comment TEXT,
    ack_until REAL
);
CREATE INDEX IF NOT EXISTS alert_episodes_fired ON alert_episodes(fired_at);
CREATE INDEX IF NOT EXISTS alert_episodes_status ON alert_episodes(status);
CREATE TABLE IF NOT EXISTS alert_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    alert_id TEXT NOT NULL,
    kind TEXT NOT NULL,                  -- firing | escalated | deescalated | repeat | resolved | acknowledged
    severity TEXT,
    value REAL,
    at REAL NOT NULL,
    seq INTEGER,
    detail TEXT,
    silenced_by INTEGER
);
CREATE INDEX IF NOT EXISTS alert_events_alert ON alert_events(alert_id);
CREATE INDEX IF NOT EXISTS alert_events_silence ON alert_events(silenced_by);
CREATE TABLE IF NOT EXISTS alert_told (
    alert_id TEXT NOT NULL,
    channel TEXT NOT NULL,
    event TEXT NOT NULL,
    severity TEXT NOT NULL,
    at REAL NOT NULL,
    PRIMARY KEY (alert_id, channel)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS alert_silences (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    rule TEXT,                           -- NULL: every rule
    labels TEXT NOT NULL,                -- JSON object; every pair must match
    starts_at REAL NOT NULL,
    ends_at REAL NOT NULL,
    author TEXT NOT NULL,
    reason TEXT NOT NULL,
    created_at REAL NOT NULL,
    ended_at REAL,                       -- set when deleted early
    ended_by TEXT,
    released INTEGER NOT NULL DEFAULT 0  -- held notifications reconciled after the end
);
"""

EPISODE_COLS = ("id", "rule", "labels", "status", "severity", "peak_severity", "started_at",
                "fired_at", "resolved_at", "value", "threshold", "peak", "acked_at", "acked_by",
                "ack_comment", "ack_until")
SILENCE_COLS = ("id", "rule", "labels", "starts_at", "ends_at", "author", "reason", "created_at",
                "ended_at", "ended_by", "released")


def create(conn: sqlite3.Connection) -> None:
    conn.executescript(SCHEMA)


def _labels(labels: Mapping[str, str]) -> str:
    return json.dumps(dict(sorted(labels.items())), separators=(",", ":"))


# --- engine state ---------------------------------------------------------------------------------

def save_states(conn: sqlite3.Connection, states: Mapping[str, Mapping[str, Any] | None]) -> None:
    for key, body in states.items():
        if body is None:
            conn.execute("DELETE FROM alert_state WHERE key = ?", (key,))
        else:
            conn.execute("INSERT OR REPLACE INTO alert_state VALUES (?, ?)", (key, json.dumps(body)))


def load_states(conn: sqlite3.Connection) -> dict[str, dict[str, Any]]:
    return {k: json.loads(b) for k, b in conn.execute("SELECT key, body FROM alert_state")}


# --- history --------------------------------------------------------------------------------------

def record(conn: sqlite3.Connection, t: Transition, peak: float | None,
           silenced_by: int | None) -> None:
    """One transition into the episode row and the event log."""
    if t.kind == "firing":
        conn.execute(
            "INSERT OR IGNORE INTO alert_episodes (id, rule, labels, status, severity, peak_severity,"
            " started_at, fired_at, value, threshold, peak) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            (t.alert_id, t.rule, _labels(t.labels), "firing", t.severity, t.severity, t.since,
             t.at, t.value, t.threshold, t.value))
    elif t.kind == "resolved":
        conn.execute("UPDATE alert_episodes SET status = 'resolved', resolved_at = ?, value = ?,"
                     " peak = COALESCE(?, peak) WHERE id = ?", (t.at, t.value, peak, t.alert_id))
    else:
        conn.execute(
            "UPDATE alert_episodes SET severity = ?, value = ?, threshold = ?, peak = COALESCE(?, peak),"
            " peak_severity = CASE WHEN ? = 'critical' THEN 'critical' ELSE peak_severity END"
            " WHERE id = ?", (t.severity, t.value, t.threshold, peak, t.severity, t.alert_id))
    conn.execute("INSERT INTO alert_events (alert_id, kind, severity, value, at, seq, silenced_by)"
                 " VALUES (?,?,?,?,?,?,?)",
                 (t.alert_id, t.kind, t.severity, t.value, t.at, t.seq, silenced_by))


def record_ack(conn: sqlite3.Connection, alert_id: str, by: str, comment: str,
               until: float | None, now: float) -> None:
    conn.execute("UPDATE alert_episodes SET acked_at = ?, acked_by = ?, ack_comment = ?,"
                 " ack_until = ? WHERE id = ?", (now, by, comment, until, alert_id))
    conn.execute("INSERT INTO alert_events (alert_id, kind, at, detail) VALUES (?, 'acknowledged', ?, ?)",
                 (alert_id, now, json.dumps({"by": by, "comment": comment, "until": until})))


def _episode(row: tuple) -> dict[str, Any]:
    d = dict(zip(EPISODE_COLS, row))
    d["labels"] = json.loads(d["labels"])
    return d


def episode(conn: sqlite3.Connection, alert_id: str) -> dict[str, Any] | None:
    row = conn.execute(f"SELECT {','.join(EPISODE_COLS)} FROM alert_episodes WHERE id = ?",
                       (alert_id,)).fetchone()
    return _episode(row) if row else None


def episodes(conn: sqlite3.Connection, *, status: str | None = None, since: float | None = None,
             limit: int = 200) -> list[dict[str, Any]]:
    sql = f"SELECT {','.join(EPISODE_COLS)} FROM alert_episodes WHERE 1=1"
    args: list[Any] = []
    if status:
        sql += " AND status = ?"
        args.append(status)
    if since is not None:
        sql += " AND (resolved_at IS NULL OR resolved_at >= ?)"
        args.append(since)
    sql += " ORDER BY fired_at DESC LIMIT ?"
    args.append(limit)
    return [_episode(r) for r in conn.execute(sql, args)]


def events(conn: sqlite3.Connection, alert_id: str) -> list[dict[str, Any]]:
    cols = ("kind", "severity", "value", "at", "seq", "detail", "silenced_by")
    return [dict(zip(cols, r)) for r in conn.execute(
        f"SELECT {','.join(cols)} FROM alert_events WHERE alert_id = ? ORDER BY id", (alert_id,))]


# --- who was told what ------------------------------------------------------------------------------

def told(conn: sqlite3.Connection, alert_id: str, channel: str) -> tuple[str, str] | None:
    row = conn.execute("SELECT event, severity FROM alert_told WHERE alert_id = ? AND channel = ?",
                       (alert_id, channel)).fetchone()
    return (row[0], row[1]) if row else None


def set_told(conn: sqlite3.Connection, alert_id: str, channel: str, event: str, severity: str,
             now: float) -> None:
    conn.execute("INSERT OR REPLACE INTO alert_told VALUES (?,?,?,?,?)",
                 (alert_id, channel, event, severity, now))


# --- silences ----------------------------------------------------------------------------------------

def _silence(row: tuple) -> dict[str, Any]:
    d = dict(zip(SILENCE_COLS, row))
    d["labels"] = json.loads(d["labels"])
    d["released"] = bool(d["released"])
    return d


def add_silence(conn: sqlite3.Connection, rule: str | None, labels: Mapping[str, str],
                starts_at: float, ends_at: float, author: str, reason: str, now: float) -> int:
    cur = conn.execute(
        "INSERT INTO alert_silences (rule, labels, starts_at, ends_at, author, reason, created_at)"
        " VALUES (?,?,?,?,?,?,?)", (rule, _labels(labels), starts_at, ends_at, author, reason, now))
    return int(cur.lastrowid)


def end_silence(conn: sqlite3.Connection, silence_id: int, by: str, now: float) -> bool:
    cur = conn.execute("UPDATE alert_silences SET ended_at = ?, ended_by = ? WHERE id = ? AND"
                       " ended_at IS NULL AND ends_at > ?", (now, by, silence_id, now))
    return cur.rowcount == 1


def silences(conn: sqlite3.Connection, since: float | None = None) -> list[dict[str, Any]]:
    sql = f"SELECT {','.join(SILENCE_COLS)} FROM alert_silences"
    args: list[Any] = []
    if since is not None:
        sql += " WHERE COALESCE(ended_at, ends_at) >= ?"
        args.append(since)
    return [_silence(r) for r in conn.execute(sql + " ORDER BY starts_at DESC", args)]


def silence(conn: sqlite3.Connection, silence_id: int) -> dict[str, Any] | None:
    row = conn.execute(f"SELECT {','.join(SILENCE_COLS)} FROM alert_silences WHERE id = ?",
                       (silence_id,)).fetchone()
    return _silence(row) if row else None


def active_silence(conn: sqlite3.Connection, rule: str, labels: Mapping[str, str],
                   now: float) -> int | None:
    """The id of a silence covering (rule, labels) at ``now``, if any."""
    for sid, srule, slabels in conn.execute(
            "SELECT id, rule, labels FROM alert_silences WHERE starts_at <= ? AND ends_at > ? AND"
            " ended_at IS NULL ORDER BY id", (now, now)):
        if srule not in (None, rule):
            continue
        if all(labels.get(k) == v for k, v in json.loads(slabels).items()):
            return int(sid)
    return None


def ended_unreleased(conn: sqlite3.Connection, now: float) -> list[int]:
    return [r[0] for r in conn.execute(
        "SELECT id FROM alert_silences WHERE released = 0 AND (ended_at IS NOT NULL OR ends_at <= ?)",
        (now,))]


def held_alerts(conn: sqlite3.Connection, silence_id: int) -> list[str]:
    return [r[0] for r in conn.execute(
        "SELECT DISTINCT alert_id FROM alert_events WHERE silenced_by = ?", (silence_id,))]


def mark_released(conn: sqlite3.Connection, silence_ids: Iterable[int]) -> None:
    conn.executemany("UPDATE alert_silences SET released = 1 WHERE id = ?",
                     [(i,) for i in silence_ids])
