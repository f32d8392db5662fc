"""The event ledger of an incremental raw event export: which events were already written, and the next state.

An SQLite database in the run's private folder with ``events(id, ts)``: every event this run read (its
``<stream>:<_event_id>`` and event time in epoch ms). The previous run's state is attached read-only as ``prev``.
A page of events is classified as ``new`` (write it), ``exported`` (an earlier run wrote it: an overlapping range,
a rerun of the same interval, or late events looked for again) or ``None`` (read twice in this run, after a cursor
restart). At the end, the events of ``prev`` that a later run could read again (event time at or after the next
range start) are carried over and older ones are dropped, so the state stays as small as the look-back window.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from airflow_provider_lytics.exports.errors import ExportStateError

STATE_FORMAT = "lytics-event-export-state/1"
_CACHE_KIB = 8 * 1024


class EventLedger:
    """Dedupe events within a run and against the previous runs; see the module docstring."""

    def __init__(self, workdir: str | Path, previous_db: str | Path | None = None) -> None:
        self.path = Path(workdir) / "events.sqlite"
        self._conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        c = self._conn
        c.execute("PRAGMA journal_mode=OFF")
        c.execute("PRAGMA synchronous=OFF")
        c.execute(f"PRAGMA cache_size=-{_CACHE_KIB}")
        c.execute("CREATE TABLE events (id TEXT PRIMARY KEY, ts INTEGER NOT NULL) WITHOUT ROWID")
        c.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        c.execute("BEGIN")
        self.has_previous = False
        self.previous_meta: dict[str, str] = {}
        if previous_db is not None:
            self._attach_previous(previous_db)

    def _attach_previous(self, previous_db: str | Path) -> None:
        try:
            self._conn.execute("ATTACH DATABASE ? AS prev", (Path(previous_db).resolve().as_uri() + "?mode=ro",))
            meta = dict(self._conn.execute("SELECT key, value FROM prev.meta"))
            self._conn.execute("SELECT id, ts FROM prev.events LIMIT 1").fetchall()
        except sqlite3.DatabaseError as exc:
            raise ExportStateError(
                f"the event export state is not valid ({exc}): pass reset_state=True to start again"
            ) from None
        if meta.get("format") != STATE_FORMAT:
            raise ExportStateError(
                f"the event export state has format {meta.get('format')!r}, expected {STATE_FORMAT!r} (is it an "
                "audience export's state?): pass reset_state=True or use another export_name"
            )
        self.has_previous = True
        self.previous_meta = meta

    def classify(self, entries: Sequence[tuple[str, int]]) -> list[str | None]:
        """For each ``(id, event time ms)``: ``new``, ``exported`` (in the previous state) or ``None`` (a repeat)."""
        if not entries:
            return []
        ids = [e[0] for e in entries]
        marks = ",".join("?" * len(ids))
        seen = {r[0] for r in self._conn.execute(f"SELECT id FROM events WHERE id IN ({marks})", ids)}
        before = set()
        if self.has_previous:
            before = {r[0] for r in self._conn.execute(f"SELECT id FROM prev.events WHERE id IN ({marks})", ids)}
        out: list[str | None] = []
        fresh: list[tuple[str, int]] = []
        for event_id, ts in entries:
            if event_id in seen:
                out.append(None)
                continue
            seen.add(event_id)
            fresh.append((event_id, ts))
            out.append("exported" if event_id in before else "new")
        self._conn.executemany("INSERT INTO events (id, ts) VALUES (?, ?)", fresh)
        return out

    def finish(self, meta: Mapping[str, Any], keep_from_ms: int) -> Path:
        """Carry over what a later run may read again (``ts >= keep_from_ms``), write ``meta``; returns the path."""
        c = self._conn
        if self.has_previous:
            c.execute("INSERT OR IGNORE INTO events (id, ts) SELECT id, ts FROM prev.events WHERE ts >= ?",
                      (keep_from_ms,))  # fmt: skip
        c.execute("DELETE FROM events WHERE ts < ?", (keep_from_ms,))
        kept = c.execute("SELECT count(*) FROM events").fetchone()[0]
        rows = [("format", STATE_FORMAT), ("events_kept", str(kept)), *((k, str(v)) for k, v in meta.items())]
        c.executemany("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", rows)
        c.execute("COMMIT")
        if self.has_previous:
            c.execute("DETACH DATABASE prev")
        c.close()
        return self.path

    def close(self) -> None:
        try:
            self._conn.close()
        except sqlite3.Error:
            pass
