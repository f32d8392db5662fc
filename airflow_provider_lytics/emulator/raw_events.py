"""Raw events of a stream by event-time range, paged with ``_next`` cursors: ``GET /v2/stream/{stream}/events``.

Lytics documents ``/v2/stream/{stream}/events`` as a stream's recent raw events but not its parameters, so the
emulator chooses a shape from the conventions Lytics documents elsewhere (see docs/exports.md, "Raw event
export"):

* ``start_date`` / ``end_date`` (epoch ms or ISO 8601, as the metric API takes them) select events whose
  *event time* is in ``[start_date, end_date)``; either may be left out (the whole log / up to now). Event time
  is the event's ``timestamp_field`` at ingest (``_ts`` unless the collect call named another) when that parses
  as a time, else the time the batch arrived; exactly what profile merging uses.
* ``limit`` rows per page: default 100, values above 1000 are clamped (as scans clamp at 100), never a 400.
* ``start``: the ``_next`` of the previous page. The first page fixes the snapshot (the newest stored batch), so
  events arriving while a client pages are not mixed in and ``total`` (events in the range at the first page,
  on every page) stays exact. Cursors carry their own position, so they do not expire and a resent cursor
  returns the same page.
* Response: the v2 envelope plus the scan's paging keys at top level: ``{"status", "data": [events], "total",
  "_next", "request_id", "_meta": {"total", "_next"}}``; ``_next`` is ``""`` on the last page.

Each event is returned as ingested plus ``_event_id`` (``<row>.<index>``: stable for the life of the stored
log, the dedupe key of incremental exports), ``_stream``, ``_event_time`` and ``_received`` (RFC 3339, UTC).
Events are in arrival order (the log's order), not sorted by event time.
"""

from __future__ import annotations

import base64
import binascii
import json
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from airflow_provider_lytics.emulator.envelope import new_request_id, v2_error
from airflow_provider_lytics.emulator.http_params import ParamError, int_param
from airflow_provider_lytics.emulator.values import parse_time_ms, rfc3339

if TYPE_CHECKING:
    from airflow_provider_lytics.emulator.backend import Backend
    from airflow_provider_lytics.emulator.persistence import StateDB

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
_CACHE_ROWS = 8


class EventRangeError(ValueError):
    """A request the events API refuses (bad range, bad or mismatched cursor); the message says what to send."""


@dataclass
class EventPage:
    events: list[dict[str, Any]]
    next: str
    total: int


@dataclass(frozen=True)
class _Cursor:
    stream: str
    start: int
    end: int
    upto: int  # newest row seq of the snapshot
    seq: int  # row of the next event
    index: int  # position of the next event in that row
    total: int

    def encode(self) -> str:
        doc = [self.stream, self.start, self.end, self.upto, self.seq, self.index, self.total]
        return base64.urlsafe_b64encode(json.dumps(doc, separators=(",", ":")).encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str) -> _Cursor:
        try:
            doc = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
            stream, *numbers = doc
            if not isinstance(stream, str) or len(numbers) != 6 or not all(type(n) is int for n in numbers):
                raise ValueError
            return cls(stream, *numbers)
        except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
            raise EventRangeError("the start cursor is malformed: pass the '_next' of the previous page") from None


def parse_bound(raw: str | None, name: str, default: int) -> int:
    """A ``start_date``/``end_date`` parameter (epoch ms or ISO 8601) as epoch ms."""
    if raw is None or raw == "":
        return default
    value = parse_time_ms(raw)
    if value is None:
        raise EventRangeError(f"{name} must be epoch milliseconds or an ISO 8601 time such as 2026-03-08T00:00:00Z")
    return value


class _RowCache:
    """The last few decoded log rows with their event times (a page of 1,000 reads part of a 10,000-event row)."""

    def __init__(self) -> None:
        self._rows: OrderedDict[tuple[int, int, int], tuple[list[dict[str, Any]], list[int]]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, db: StateDB, row: tuple) -> tuple[list[dict[str, Any]], list[int]]:
        seq, _count, arrival, ts_field, _low, _high, body = row
        key = (id(db), seq, hash(body))  # the body too: a new StateDB may reuse a freed id()
        with self._lock:
            hit = self._rows.get(key)
            if hit is not None:
                self._rows.move_to_end(key)
                return hit
        from airflow_provider_lytics.emulator.persistence import decode

        events = decode(body)
        times = event_times(events, ts_field, arrival or 0)
        with self._lock:
            self._rows[key] = (events, times)
            while len(self._rows) > _CACHE_ROWS:
                self._rows.popitem(last=False)
        return events, times


_CACHE = _RowCache()


def event_times(events: list[Mapping[str, Any]], ts_field: str | None, arrival: int) -> list[int]:
    """Each event's time: its ``ts_field`` when that parses as a time, else ``arrival`` (as ingest decides)."""
    field = ts_field or "_ts"
    out = []
    for event in events:
        raw = event.get(field) if isinstance(event, Mapping) else None
        out.append((parse_time_ms(raw) if raw is not None else None) or arrival)
    return out


def count_in_range(db: StateDB, stream: str, upto: int, start: int, end: int) -> int:
    """Events of ``stream`` (rows up to ``upto``) whose time is in ``[start, end)``."""
    total = 0
    for row in db.event_batches(stream, 0, upto, start, end, decode_body=False):
        _seq, count, _arrival, _ts_field, low, high, _body = row
        if low is not None and high is not None and low >= start and high < end:
            total += count  # the whole row is inside: no need to read it
            continue
        _, times = _CACHE.get(db, row)
        total += sum(1 for t in times if start <= t < end)
    return total


def read_page(
    db: StateDB,
    stream: str,
    *,
    start_date: str | None = None,
    end_date: str | None = None,
    limit: int | None = None,
    cursor: str | None = None,
    now_ms: int,
) -> EventPage:
    """One page of ``stream``'s raw events in the requested event-time range (see the module docstring)."""
    limit = DEFAULT_LIMIT if not limit or limit < 1 else min(limit, MAX_LIMIT)
    start = parse_bound(start_date, "start_date", 0)
    if cursor:
        pos = _Cursor.decode(cursor)
        end = parse_bound(end_date, "end_date", pos.end)
        if (pos.stream, pos.start, pos.end) != (stream, start, end):
            raise EventRangeError(
                "the start cursor belongs to another stream or time range: send the same stream, start_date and "
                "end_date as the first page, or leave start out to begin again"
            )
    else:
        end = parse_bound(end_date, "end_date", now_ms + 1)
        if end <= start:
            raise EventRangeError(f"end_date ({end}) must be later than start_date ({start})")
        upto = db.last_event_seq(stream)
        pos = _Cursor(stream, start, end, upto, 0, 0, count_in_range(db, stream, upto, start, end))
    out: list[dict[str, Any]] = []
    for row in db.event_batches(stream, pos.seq - 1, pos.upto, start, end, decode_body=False):
        seq, _count, arrival, _ts_field, _low, _high, _body = row
        events, times = _CACHE.get(db, row)
        first = pos.index if seq == pos.seq else 0
        received = rfc3339(arrival) if arrival is not None else None
        for index in range(first, len(events)):
            t = times[index]
            if not start <= t < end:
                continue
            if len(out) == limit:
                nxt = _Cursor(stream, start, end, pos.upto, seq, index, pos.total).encode()
                return EventPage(out, nxt, pos.total)
            event = events[index]
            out.append({**event, "_event_id": f"{seq}.{index}", "_stream": stream, "_event_time": rfc3339(t),
                        "_received": received})  # fmt: skip
    return EventPage(out, "", pos.total)


def routes(backend: Backend) -> list[BaseRoute]:
    """``GET /v2/stream/{stream}/events`` over ``backend``'s raw event log."""
    from airflow_provider_lytics.emulator.envelope import _json

    async def events(request: Request) -> Response:
        stream = request.path_params["stream"]
        if stream not in backend.store.streams:
            return v2_error(404, "STREAM-NOTFOUND-014", f"stream {stream!r} not found; list streams at /v2/stream")
        q = request.query_params
        try:
            limit = int_param(request, "limit", None)
            page = await run_in_threadpool(
                read_page, backend.db, stream, start_date=q.get("start_date"), end_date=q.get("end_date"),
                limit=limit, cursor=q.get("start") or q.get("next") or None, now_ms=int(backend.clock.time() * 1000),
            )  # fmt: skip
        except (EventRangeError, ParamError) as exc:
            return v2_error(400, "BADREQ-001", str(exc))
        rid = new_request_id()
        body = {"status": 200, "data": page.events, "total": page.total, "_next": page.next, "request_id": rid,
                "_meta": {"total": page.total, "_next": page.next}}  # fmt: skip
        return _json(body, 200, rid)

    return [Route("/v2/stream/{stream}/events", events, methods=["GET"])]
