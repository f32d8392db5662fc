"""Durable emulator state in one SQLite file (or in memory).

The emulator keeps its working state in Python objects and writes through to this store, so a restarted
``lytics-emulator serve --db PATH`` comes back with the same profiles, segments, jobs and raw events.
Two shapes cover everything: documents keyed by ``(kind, key)`` and an append-only raw event log per stream.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from typing import Any

_SCHEMA = """
CREATE TABLE IF NOT EXISTS docs (kind TEXT NOT NULL, key TEXT NOT NULL, doc TEXT NOT NULL, PRIMARY KEY (kind, key));
CREATE TABLE IF NOT EXISTS events (seq INTEGER PRIMARY KEY AUTOINCREMENT, stream TEXT NOT NULL, doc TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS events_stream ON events (stream, seq);
"""


def _dump(doc: Any) -> str:
    return json.dumps(doc, separators=(",", ":"), default=str)


class StateDB:
    """Thread-safe write-through store; ``path=None`` keeps everything in memory."""

    def __init__(self, path: str | None = None) -> None:
        self.path = path
        self._lock = threading.RLock()
        self._conn = sqlite3.connect(path or ":memory:", check_same_thread=False, isolation_level=None)
        if path:
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.executescript(_SCHEMA)

    # -- documents -------------------------------------------------------------------------------------
    def put(self, kind: str, key: str, doc: Any) -> None:
        with self._lock:
            self._conn.execute("INSERT OR REPLACE INTO docs (kind, key, doc) VALUES (?, ?, ?)", (kind, key, _dump(doc)))

    def put_many(self, kind: str, items: Iterable[tuple[str, Any]]) -> None:
        rows = [(kind, key, _dump(doc)) for key, doc in items]
        if not rows:
            return
        with self._lock:
            self._conn.execute("BEGIN")
            try:
                self._conn.executemany("INSERT OR REPLACE INTO docs (kind, key, doc) VALUES (?, ?, ?)", rows)
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise

    def delete(self, kind: str, key: str) -> None:
        with self._lock:
            self._conn.execute("DELETE FROM docs WHERE kind = ? AND key = ?", (kind, key))

    def load(self, kind: str) -> dict[str, Any]:
        with self._lock:
            rows = self._conn.execute("SELECT key, doc FROM docs WHERE kind = ?", (kind,)).fetchall()
        return {key: json.loads(doc) for key, doc in rows}

    # -- raw events ------------------------------------------------------------------------------------
    def append_events(self, stream: str, events: Iterable[dict[str, Any]]) -> int:
        rows = [(stream, _dump(e)) for e in events]
        if not rows:
            return 0
        with self._lock:
            self._conn.execute("BEGIN")
            try:
                self._conn.executemany("INSERT INTO events (stream, doc) VALUES (?, ?)", rows)
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
        return len(rows)

    def iter_events(self, stream: str | None = None) -> Iterator[tuple[str, dict[str, Any]]]:
        """Yield ``(stream, event)`` in arrival order, optionally for one stream."""
        query, args = "SELECT stream, doc FROM events ORDER BY seq", ()
        if stream is not None:
            query, args = "SELECT stream, doc FROM events WHERE stream = ? ORDER BY seq", (stream,)
        with self._lock:
            rows = self._conn.execute(query, args).fetchall()
        for name, doc in rows:
            yield name, json.loads(doc)

    def count_events(self, stream: str | None = None) -> int:
        with self._lock:
            if stream is None:
                return self._conn.execute("SELECT COUNT(*) FROM events").fetchone()[0]
            return self._conn.execute("SELECT COUNT(*) FROM events WHERE stream = ?", (stream,)).fetchone()[0]

    def clear(self) -> None:
        with self._lock:
            self._conn.execute("DELETE FROM docs")
            self._conn.execute("DELETE FROM events")

    def close(self) -> None:
        with self._lock:
            self._conn.close()
