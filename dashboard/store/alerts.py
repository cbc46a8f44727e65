"""The alerts' own tables: engine state, history, acknowledgements, who was told, silences.

* ``alert_state``: the engine's non-ok states (pending and firing alerts), so a restart neither
  pages again nor forgets a firing alert.
* ``alert_episodes``: one row per alert (from first breach to resolved): severity, value, peak,
  when it fired and resolved, who acknowledged it, when and why. The alerts page's history.
* ``alert_events``: every transition and acknowledgement, with the silence that held it back.
* ``alert_told``: what each channel was last told about each alert; "resolved" and releases
  after a silence go to the channels that heard about the alert, whatever their severity filter.
* ``alert_silences``: maintenance windows by rule and labels, with author and reason.

``AlertStateRepo`` is built on the caller's connection, so the alert service groups its writes
(and the outbox's, on the same connection) in one ``transaction()``. With ``fence`` set (the
collector leader's token, ``dashboard/store/fence.py``), engine state and transitions are written
only while no newer leader exists: ``StaleFence`` otherwise, inside the same transaction.
"""
from __future__ import annotations

import json
import sqlite3
from contextlib import AbstractContextManager, closing, contextmanager
from typing import Any, Callable, Iterable, Iterator, Mapping, Protocol, cast

from dashboard.store import fence as fencing
from dashboard.store.txn import Connection, immediate

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
    kind TEXT NOT NULL,                  -- firing | escalated | deescalated | repeat | resolved
                                         -- | acknowledged
    severity TEXT,
    value REAL,
    at REAL NOT NULL,
    seq INTEGER,
    detail TEXT,
    silenced_by INTEGER,
    fence INTEGER                        -- the leader's fencing token (store/fence.py)
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
EVENT_COLS = ("kind", "severity", "value", "at", "seq", "detail", "silenced_by")


class Change(Protocol):
    """What the history keeps of an engine transition (``alerts.engine.Transition``)."""

    @property
    def kind(self) -> str: ...
    @property
    def alert_id(self) -> str: ...
    @property
    def rule(self) -> str: ...
    @property
    def labels(self) -> Mapping[str, str]: ...
    @property
    def severity(self) -> str: ...
    @property
    def value(self) -> float: ...
    @property
    def threshold(self) -> float: ...
    @property
    def since(self) -> float: ...
    @property
    def at(self) -> float: ...
    @property
    def seq(self) -> int: ...


def _labels(labels: Mapping[str, str]) -> str:
    return json.dumps(dict(sorted(labels.items())), separators=(",", ":"))


def _episode(row: tuple[Any, ...]) -> dict[str, Any]:
    d = dict(zip(EPISODE_COLS, row))
    d["labels"] = json.loads(d["labels"])
    return d


def _silence(row: tuple[Any, ...]) -> dict[str, Any]:
    d = dict(zip(SILENCE_COLS, row))
    d["labels"] = json.loads(d["labels"])
    d["released"] = bool(d["released"])
    return d


class AlertStateRepo:
    """The alert tables through one connection. Episodes, events and silences come back as
    plain dicts (column name -> value, ``labels`` decoded)."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.fence: int | None = None          # the leader's fencing token; None: not fenced
        self._fencer = fencing.SqliteFence(conn)

    def create(self) -> None:
        self.conn.executescript(SCHEMA)
        fencing.create(self.conn)
        fencing.add_column(self.conn, "alert_events", "fence")

    def check_fence(self) -> None:
        """Inside the transaction: ``StaleFence`` if a newer leader took a token since ours."""
        self._fencer.check(self.fence)

    def count_refused(self) -> None:
        """After a transaction refused by the fence was rolled back."""
        self._fencer.count_refused()

    def exists(self) -> bool:
        """Whether the alert tables are in the file (a report may read one where no engine ran)."""
        return self.conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table'"
                                 " AND name = 'alert_episodes'").fetchone() is not None

    def transaction(self) -> AbstractContextManager[None]:
        """One write transaction for everything done meanwhile on this connection."""
        return immediate(self.conn)

    # --- engine state -----------------------------------------------------------------------------

    def save_states(self, states: Mapping[str, Mapping[str, Any] | None]) -> None:
        """The engine's states by key; None deletes the key (back to ok)."""
        if states:
            self.check_fence()
        for key, body in states.items():
            if body is None:
                self.conn.execute("DELETE FROM alert_state WHERE key = ?", (key,))
            else:
                self.conn.execute("INSERT OR REPLACE INTO alert_state VALUES (?, ?)",
                                  (key, json.dumps(body)))

    def load_states(self) -> dict[str, dict[str, Any]]:
        return {k: json.loads(b) for k, b in self.conn.execute("SELECT key, body FROM alert_state")}

    # --- history ----------------------------------------------------------------------------------

    def record(self, t: Change, peak: float | None, silenced_by: int | None) -> None:
        """One transition into the episode row and the event log (fenced)."""
        self.check_fence()
        if t.kind == "firing":
            self.conn.execute(
                "INSERT OR IGNORE INTO alert_episodes (id, rule, labels, status, severity,"
                " peak_severity, started_at, fired_at, value, threshold, peak)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (t.alert_id, t.rule, _labels(t.labels), "firing", t.severity, t.severity, t.since,
                 t.at, t.value, t.threshold, t.value))
        elif t.kind == "resolved":
            self.conn.execute(
                "UPDATE alert_episodes SET status = 'resolved', resolved_at = ?, value = ?,"
                " peak = COALESCE(?, peak) WHERE id = ?", (t.at, t.value, peak, t.alert_id))
        else:
            self.conn.execute(
                "UPDATE alert_episodes SET severity = ?, value = ?, threshold = ?,"
                " peak = COALESCE(?, peak), peak_severity = CASE WHEN ? = 'critical'"
                " THEN 'critical' ELSE peak_severity END WHERE id = ?",
                (t.severity, t.value, t.threshold, peak, t.severity, t.alert_id))
        self.conn.execute(
            "INSERT INTO alert_events (alert_id, kind, severity, value, at, seq, silenced_by, fence)"
            " VALUES (?,?,?,?,?,?,?,?)",
            (t.alert_id, t.kind, t.severity, t.value, t.at, t.seq, silenced_by, self.fence))

    def record_ack(self, alert_id: str, by: str, comment: str, until: float | None,
                   now: float) -> None:
        self.conn.execute("UPDATE alert_episodes SET acked_at = ?, acked_by = ?, ack_comment = ?,"
                          " ack_until = ? WHERE id = ?", (now, by, comment, until, alert_id))
        self.conn.execute(
            "INSERT INTO alert_events (alert_id, kind, at, detail) VALUES (?, 'acknowledged', ?, ?)",
            (alert_id, now, json.dumps({"by": by, "comment": comment, "until": until})))

    def episode(self, alert_id: str) -> dict[str, Any] | None:
        row = self.conn.execute(f"SELECT {','.join(EPISODE_COLS)} FROM alert_episodes WHERE id = ?",
                                (alert_id,)).fetchone()
        return _episode(row) if row else None

    def firing(self, limit: int = 10_000) -> list[dict[str, Any]]:
        """The firing episodes; none while the alert tables do not exist yet (the engine never
        ran on this file: a web-only instance, a fresh data dir)."""
        try:
            return self.episodes(status="firing", limit=limit)
        except sqlite3.OperationalError:
            return []

    def episodes(self, *, status: str | None = None, since: float | None = None,
                 limit: int = 200) -> list[dict[str, Any]]:
        """Newest fired first; ``since``: still open or resolved at or after it."""
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
        return [_episode(r) for r in self.conn.execute(sql, args)]

    def overlapping(self, start: float, end: float, limit: int = 200) -> list[dict[str, Any]]:
        """Episodes whose span (breach start to resolution, or still open) meets
        ``[start, end]``, newest start first, at most ``limit`` (ask ``limit + 1`` to know
        whether some were left out): in a storm the window a page links to is about the alert
        near its end, which must not be the one cut."""
        return [_episode(r) for r in self.conn.execute(
            f"SELECT {','.join(EPISODE_COLS)} FROM alert_episodes WHERE started_at <= ? AND"
            " (resolved_at IS NULL OR resolved_at >= ?) ORDER BY started_at DESC, rowid DESC"
            " LIMIT ?", (end, start, limit))]

    def fired_between(self, start: float, end: float) -> list[dict[str, Any]]:
        """Episodes that fired in ``[start, end)``, oldest first."""
        return [_episode(r) for r in self.conn.execute(
            f"SELECT {','.join(EPISODE_COLS)} FROM alert_episodes WHERE fired_at >= ? AND"
            " fired_at < ? ORDER BY fired_at", (start, end))]

    def carried_over(self, start: float) -> int:
        """How many alerts fired before ``start`` and were still firing at it."""
        return int(self.conn.execute(
            "SELECT COUNT(*) FROM alert_episodes WHERE fired_at < ? AND (resolved_at IS NULL"
            " OR resolved_at >= ?)", (start, start)).fetchone()[0])

    def firing_by_severity(self) -> dict[str, tuple[int, int]]:
        """Firing alerts: severity -> (how many, how many of them acknowledged)."""
        return {sev: (n, acked) for sev, n, acked in self.conn.execute(
            "SELECT severity, COUNT(*), COUNT(acked_at) FROM alert_episodes"
            " WHERE status = 'firing' GROUP BY severity")}

    def acked_firing(self) -> list[tuple[str, float | None]]:
        """(alert id, acknowledged until) of each firing alert someone acknowledged."""
        return [(alert_id, until) for alert_id, until in self.conn.execute(
            "SELECT id, ack_until FROM alert_episodes WHERE status = 'firing' AND"
            " acked_at IS NOT NULL")]

    def events(self, alert_id: str) -> list[dict[str, Any]]:
        return [dict(zip(EVENT_COLS, r)) for r in self.conn.execute(
            f"SELECT {','.join(EVENT_COLS)} FROM alert_events WHERE alert_id = ? ORDER BY id",
            (alert_id,))]

    # --- who was told what ------------------------------------------------------------------------

    def told(self, alert_id: str, channel: str) -> tuple[str, str] | None:
        """The (event, severity) ``channel`` was last told about the alert."""
        row = self.conn.execute(
            "SELECT event, severity FROM alert_told WHERE alert_id = ? AND channel = ?",
            (alert_id, channel)).fetchone()
        return (row[0], row[1]) if row else None

    def set_told(self, alert_id: str, channel: str, event: str, severity: str, now: float) -> None:
        self.conn.execute("INSERT OR REPLACE INTO alert_told VALUES (?,?,?,?,?)",
                          (alert_id, channel, event, severity, now))

    # --- silences ---------------------------------------------------------------------------------

    def add_silence(self, rule: str | None, labels: Mapping[str, str], starts_at: float,
                    ends_at: float, author: str, reason: str, now: float) -> int:
        cur = self.conn.execute(
            "INSERT INTO alert_silences (rule, labels, starts_at, ends_at, author, reason,"
            " created_at) VALUES (?,?,?,?,?,?,?)",
            (rule, _labels(labels), starts_at, ends_at, author, reason, now))
        return cast(int, cur.lastrowid)

    def end_silence(self, silence_id: int, by: str, now: float) -> bool:
        """End a silence still in force; False if it was unknown, over or already ended."""
        cur = self.conn.execute("UPDATE alert_silences SET ended_at = ?, ended_by = ? WHERE id = ?"
                                " AND ended_at IS NULL AND ends_at > ?", (now, by, silence_id, now))
        return cur.rowcount == 1

    def silences(self, since: float | None = None) -> list[dict[str, Any]]:
        """Newest start first; ``since``: those that ended (or end) at or after it."""
        sql = f"SELECT {','.join(SILENCE_COLS)} FROM alert_silences"
        args: list[Any] = []
        if since is not None:
            sql += " WHERE COALESCE(ended_at, ends_at) >= ?"
            args.append(since)
        return [_silence(r) for r in self.conn.execute(sql + " ORDER BY starts_at DESC", args)]

    def silence(self, silence_id: int) -> dict[str, Any] | None:
        row = self.conn.execute(f"SELECT {','.join(SILENCE_COLS)} FROM alert_silences WHERE id = ?",
                                (silence_id,)).fetchone()
        return _silence(row) if row else None

    def active_silence(self, rule: str, labels: Mapping[str, str], now: float) -> int | None:
        """The id of a silence covering (rule, labels) at ``now``, if any."""
        for sid, srule, slabels in self.conn.execute(
                "SELECT id, rule, labels FROM alert_silences WHERE starts_at <= ? AND ends_at > ?"
                " AND ended_at IS NULL ORDER BY id", (now, now)):
            if srule not in (None, rule):
                continue
            if all(labels.get(k) == v for k, v in json.loads(slabels).items()):
                return int(sid)
        return None

    def ended_unreleased(self, now: float) -> list[int]:
        """Silences over at ``now`` whose held notifications are not reconciled yet."""
        return [r[0] for r in self.conn.execute(
            "SELECT id FROM alert_silences WHERE released = 0 AND (ended_at IS NOT NULL OR"
            " ends_at <= ?)", (now,))]

    def held_alerts(self, silence_id: int) -> list[str]:
        """The alerts with a transition this silence held back."""
        return [r[0] for r in self.conn.execute(
            "SELECT DISTINCT alert_id FROM alert_events WHERE silenced_by = ?", (silence_id,))]

    def hand_over_held(self, alert_id: str, from_silence: int, to_silence: int) -> None:
        """The alert's transitions held by ``from_silence`` are now held by ``to_silence``."""
        self.conn.execute("UPDATE alert_events SET silenced_by = ? WHERE alert_id = ?"
                          " AND silenced_by = ?", (to_silence, alert_id, from_silence))

    def mark_released(self, silence_ids: Iterable[int]) -> None:
        self.conn.executemany("UPDATE alert_silences SET released = 1 WHERE id = ?",
                              [(i,) for i in silence_ids])


@contextmanager
def reading(connect: Callable[[], Connection]) -> Iterator[AlertStateRepo]:
    """An ``AlertStateRepo`` on a connection of its own, closed afterwards: for readers outside
    the alert service (``/metrics``, the daily summary)."""
    with closing(connect()) as conn:
        yield AlertStateRepo(conn)
