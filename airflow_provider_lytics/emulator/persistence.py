"""Durable emulator state in one SQLite file (or in memory).

The emulator keeps its working state in Python objects and writes through to this store, so a restarted
``lytics-emulator serve --db PATH`` comes back with the same profiles, segments, jobs and raw events.
Two shapes cover everything: documents keyed by ``(kind, key)`` and an append-only raw event log per stream.

Documents and events are stored as compact JSON. The raw event log keeps one row per ingest batch (a JSON array
of the batch's events) rather than one row per event: the log is written at the rate data arrives, and one
encode plus one insert per batch is what keeps bulk ingest fast. Readers still see one event at a time.
Components that write lazily (the profile store) register a flush callback with :meth:`StateDB.on_close`, so a
clean close never loses state.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

_SCHEMA = """
CREATE TABLE IF NOT EXISTS docs (kind TEXT NOT NULL, key TEXT NOT NULL, doc TEXT NOT NULL, PRIMARY KEY (kind, key));
CREATE TABLE IF NOT EXISTS events (seq INTEGER PRIMARY KEY AUTOINCREMENT, stream TEXT NOT NULL, doc TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS events_stream ON events (stream, seq);
CREATE TABLE IF NOT EXISTS event_batches (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, stream TEXT NOT NULL, count INTEGER NOT NULL, body BLOB NOT NULL,
    arrival INTEGER, ts_field TEXT, min_ts INTEGER, max_ts INTEGER
);
CREATE INDEX IF NOT EXISTS event_batches_stream ON event_batches (stream, seq);
"""
# ``events`` (one row per event) is what earlier versions wrote; it is still read, so old state files reopen.
# ``event_batches``' arrival (epoch ms), ts_field and event-time span (min_ts/max_ts, epoch ms) serve raw event
# reads by time range; rows written before those columns existed have them NULL (added by _migrate).
_BATCH_TIME_COLUMNS = (("arrival", "INTEGER"), ("ts_field", "TEXT"), ("min_ts", "INTEGER"), ("max_ts", "INTEGER"))

#: Raw events per stored row; larger appends are split so one row never holds an unbounded batch.
EVENT_ROW_MAX = 10_000
#: Rows fetched per query when reading back (keeps reads of a large log flat in memory).
_READ_CHUNK = 64
_DOC_CHUNK = 5000


try:  # msgspec ships with Airflow and encodes/decodes JSON several times faster than the json module
    import msgspec

    _ENCODER: Any = msgspec.json.Encoder(enc_hook=str)
    _DECODER: Any = msgspec.json.Decoder()
    _DECODE_ERROR: Any = msgspec.DecodeError
except ImportError:  # pragma: no cover - the emulator extra normally has it
    _ENCODER = _DECODER = None
    _DECODE_ERROR = ValueError


def _json_bytes(doc: Any) -> bytes:
    return json.dumps(doc, separators=(",", ":"), default=str).encode()


def encode(doc: Any) -> bytes:
    """Compact JSON bytes of ``doc``; values JSON cannot hold natively are stored as their ``str()``.

    Falls back to the json module for what msgspec refuses (integers beyond 64 bits, non-string keys).
    """
    if _ENCODER is not None:
        try:
            return _ENCODER.encode(doc)
        except (TypeError, OverflowError, ValueError):
            pass
    return _json_bytes(doc)


def decode(data: bytes | str) -> Any:
    """Parse JSON written by :func:`encode` (or by earlier versions, which used the json module)."""
    if _DECODER is not None:
        try:
            return _DECODER.decode(data)
        except _DECODE_ERROR:
            pass  # e.g. NaN written by the json module
    return json.loads(data)


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
        self._migrate()
        self._on_close: list[Callable[[], None]] = []
        self.closed = False

    def _migrate(self) -> None:
        """Add the event-time columns to an ``event_batches`` table written by an earlier version."""
        have = {row[1] for row in self._conn.execute("PRAGMA table_info(event_batches)")}
        for name, kind in _BATCH_TIME_COLUMNS:
            if name not in have:
                self._conn.execute(f"ALTER TABLE event_batches ADD COLUMN {name} {kind}")

    @property
    def durable(self) -> bool:
        """Whether the state outlives this object (a file), so a reopened StateDB can read it back."""
        return self.path is not None

    # -- documents -------------------------------------------------------------------------------------
    def put(self, kind: str, key: str, doc: Any) -> None:
        text = encode(doc)
        with self._lock:
            self._conn.execute("INSERT OR REPLACE INTO docs (kind, key, doc) VALUES (?, ?, ?)", (kind, key, text))

    def put_many(self, kind: str, items: Iterable[tuple[str, Any]]) -> None:
        self.put_encoded(kind, [(key, encode(doc)) for key, doc in items])

    def put_encoded(self, kind: str, rows: Iterable[tuple[str, bytes | str]]) -> None:
        """Store documents already encoded as JSON (``(key, json)`` pairs) in one transaction."""
        params = [(kind, key, doc) for key, doc in rows]
        if params:
            self._transaction("INSERT OR REPLACE INTO docs (kind, key, doc) VALUES (?, ?, ?)", params)

    def delete(self, kind: str, key: str) -> None:
        with self._lock:
            self._conn.execute("DELETE FROM docs WHERE kind = ? AND key = ?", (kind, key))

    def delete_kind(self, kind: str) -> None:
        """Delete every document of ``kind``."""
        with self._lock:
            self._conn.execute("DELETE FROM docs WHERE kind = ?", (kind,))

    def load(self, kind: str) -> dict[str, Any]:
        with self._lock:
            rows = self._conn.execute("SELECT key, doc FROM docs WHERE kind = ?", (kind,)).fetchall()
        return {key: decode(doc) for key, doc in rows}

    def iter_docs(self, kind: str) -> Iterator[tuple[str, Any]]:
        """Yield ``(key, doc)`` of ``kind`` in key order, reading a chunk of rows at a time (flat memory)."""
        last, op = "", ">="  # the first chunk includes a key that is the empty string
        while True:
            with self._lock:
                rows = self._conn.execute(
                    f"SELECT key, doc FROM docs WHERE kind = ? AND key {op} ? ORDER BY key LIMIT ?",
                    (kind, last, _DOC_CHUNK),
                ).fetchall()
            op = ">"
            if not rows:
                return
            for key, doc in rows:
                yield key, decode(doc)
            last = rows[-1][0]

    # -- raw events ------------------------------------------------------------------------------------
    def append_events(
        self,
        stream: str,
        events: Iterable[Mapping[str, Any]],
        *,
        arrival: int | None = None,
        ts_field: str | None = None,
        span: tuple[int, int] | None = None,
    ) -> int:
        """Append ``events`` to ``stream``'s raw log (one row per :data:`EVENT_ROW_MAX` events).

        ``arrival`` (epoch ms), ``ts_field`` (the field holding each event's time) and ``span`` (earliest and
        latest event time of the batch, epoch ms) let :meth:`event_batches` find the rows of a time range.
        """
        batch = events if isinstance(events, list) else list(events)
        if not batch:
            return 0
        low, high = span if span is not None else (None, None)
        rows = [
            (stream, len(part), encode(part), arrival, ts_field, low, high)
            for part in (batch[i : i + EVENT_ROW_MAX] for i in range(0, len(batch), EVENT_ROW_MAX))
        ]
        self._transaction(
            "INSERT INTO event_batches (stream, count, body, arrival, ts_field, min_ts, max_ts) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
        return len(batch)

    def last_event_seq(self, stream: str) -> int:
        """The ``seq`` of ``stream``'s newest raw event row (0 when it has none)."""
        with self._lock:
            row = self._conn.execute("SELECT MAX(seq) FROM event_batches WHERE stream = ?", (stream,)).fetchone()
        return int(row[0] or 0)

    def event_batches(
        self, stream: str, after_seq: int, upto_seq: int, start_ms: int, end_ms: int, *, decode_body: bool = True
    ) -> Iterator[tuple[int, int, int | None, str | None, int | None, int | None, Any]]:
        """Rows of ``stream`` with ``after_seq < seq <= upto_seq`` whose events may fall in ``[start_ms, end_ms)``.

        Yields ``(seq, count, arrival, ts_field, min_ts, max_ts, events)`` in ``seq`` order, a chunk of rows per
        query; ``events`` is the decoded list, or the raw JSON bytes with ``decode_body=False``. Rows without a
        recorded span (written by earlier versions) are always yielded.
        """
        query = (
            "SELECT seq, count, arrival, ts_field, min_ts, max_ts, body FROM event_batches WHERE stream = ? "
            "AND seq > ? AND seq <= ? AND (min_ts IS NULL OR (max_ts >= ? AND min_ts < ?)) ORDER BY seq LIMIT ?"
        )
        last = after_seq
        while True:
            with self._lock:
                rows = self._conn.execute(query, (stream, last, upto_seq, start_ms, end_ms, _READ_CHUNK)).fetchall()
            if not rows:
                return
            for seq, count, arrival, ts_field, low, high, body in rows:
                last = seq
                yield seq, count, arrival, ts_field, low, high, decode(body) if decode_body else body

    def iter_events(self, stream: str | None = None) -> Iterator[tuple[str, dict[str, Any]]]:
        """Yield ``(stream, event)`` in arrival order, optionally for one stream (read in small chunks)."""
        where, args = ("", ()) if stream is None else ("stream = ? AND ", (stream,))
        for name, doc in self._chunks(f"SELECT seq, stream, doc FROM events WHERE {where}seq > ? ORDER BY seq", args):
            yield name, json.loads(doc)
        query = f"SELECT seq, stream, body FROM event_batches WHERE {where}seq > ? ORDER BY seq"
        for name, body in self._chunks(query, args):
            for event in decode(body):
                yield name, event

    def _chunks(self, query: str, args: tuple[Any, ...]) -> Iterator[tuple[str, Any]]:
        last = 0
        while True:
            with self._lock:
                rows = self._conn.execute(f"{query} LIMIT {_READ_CHUNK}", (*args, last)).fetchall()
            if not rows:
                return
            for seq, name, payload in rows:
                last = seq
                yield name, payload

    def count_events(self, stream: str | None = None) -> int:
        where, args = ("", ()) if stream is None else (" WHERE stream = ?", (stream,))
        with self._lock:
            legacy = self._conn.execute(f"SELECT COUNT(*) FROM events{where}", args).fetchone()[0]
            batched = self._conn.execute(f"SELECT COALESCE(SUM(count), 0) FROM event_batches{where}", args).fetchone()
        return legacy + batched[0]

    def clear_events(self) -> None:
        """Forget the whole raw event log."""
        with self._lock:
            self._conn.execute("DELETE FROM events")
            self._conn.execute("DELETE FROM event_batches")

    def clear(self) -> None:
        with self._lock:
            self._conn.execute("DELETE FROM docs")
            self._conn.execute("DELETE FROM events")
            self._conn.execute("DELETE FROM event_batches")

    # -- lifecycle -------------------------------------------------------------------------------------
    def on_close(self, flush: Callable[[], None]) -> None:
        """Call ``flush`` (once, before the connection closes) when :meth:`close` runs."""
        with self._lock:
            self._on_close.append(flush)

    def close(self) -> None:
        """Run the registered flushes, then close the connection (a second call does nothing)."""
        with self._lock:
            if self.closed:
                return
            flushes, self._on_close = self._on_close, []
        try:
            for flush in flushes:
                flush()
        finally:
            with self._lock:
                self.closed = True
                self._conn.close()

    def _transaction(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        with self._lock:
            self._conn.execute("BEGIN")
            try:
                self._conn.executemany(sql, rows)
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
