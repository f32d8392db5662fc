"""Raw events by event-time range (``GET /v2/stream/{stream}/events``): over real HTTP through the sync hook,
plus the stored log's time columns surviving a reopen and an old database being migrated."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta, timezone

import pytest

from airflow_provider_lytics.client.errors import LyticsBadRequestError, LyticsConfigError, LyticsNotFoundError
from airflow_provider_lytics.emulator.persistence import StateDB
from airflow_provider_lytics.emulator.raw_events import read_page
from airflow_provider_lytics.emulator.store import ProfileStore
from airflow_provider_lytics.hooks.lytics import LyticsHook

T0 = datetime(2026, 3, 8, 12, 0, tzinfo=timezone.utc)


def _ms(dt: datetime) -> int:
    return int(dt.timestamp() * 1000)


@pytest.fixture
def hook(lytics_conn_env, emulator):
    clock = emulator.backend.clock
    clock.set(T0)
    clock.freeze(True)
    hook = LyticsHook()
    yield hook
    hook.close()
    clock.reset()


def _timed(n: int, start: datetime, step: timedelta, **extra) -> list[dict]:
    return [{"email": f"u{i}@example.com", "_ts": (start + i * step).isoformat(), "n": i, **extra} for i in range(n)]


def test_range_paging_total_and_added_fields(hook, emulator):
    hook.collect_json("web", _timed(30, T0 - timedelta(hours=3), timedelta(minutes=6)))  # 09:00 .. 11:54
    hook.collect_json("web", [{"email": "late@example.com", "n": 99}])  # no _ts: its time is its arrival (12:00)
    hook.collect_json("other", _timed(5, T0 - timedelta(hours=2), timedelta(minutes=1)))
    start, end = T0 - timedelta(hours=2), T0 - timedelta(hours=1)  # 10:00 <= t < 11:00: n = 10..19
    pages = list(hook.event_pages("web", start=start, end=end, limit=4))
    assert [len(p.records) for p in pages] == [4, 4, 2]
    assert {p.total for p in pages} == {10} and pages[-1].next_cursor in ("", None)
    events = [e for p in pages for e in p.records]
    assert [e["n"] for e in events] == list(range(10, 20))
    first = events[0]
    assert first["_stream"] == "web" and first["_event_time"] == "2026-03-08T10:00:00Z"
    assert first["_received"] == "2026-03-08T12:00:00Z" and first["email"] == "u10@example.com"
    assert len({e["_event_id"] for e in events}) == 10
    # a resent cursor returns the same page (client retries are safe)
    params = {"start_date": _ms(start), "end_date": _ms(end), "limit": 4, "start": pages[0].next_cursor}
    again = hook.request("GET", "/v2/stream/web/events", params=params)
    assert [e["_event_id"] for e in again.data] == [e["_event_id"] for e in pages[1].records]
    # no end: up to now (the emulator clock), so the event without _ts (arrived at 12:00) is in
    assert [e["n"] for e in hook.events("web", start=T0 - timedelta(minutes=6))] == [29, 99]
    assert len(list(hook.events("web"))) == 31
    assert len(list(hook.events("other", start="2026-03-08T10:00:00Z", end=_ms(T0)))) == 5


def test_first_page_fixes_the_snapshot(hook):
    hook.collect_json("web", _timed(6, T0 - timedelta(hours=1), timedelta(minutes=1)))
    pages = hook.event_pages("web", start=T0 - timedelta(hours=2), end=T0 + timedelta(hours=1), limit=4)
    first = next(pages)
    assert first.total == 6
    hook.collect_json("web", _timed(3, T0 - timedelta(minutes=30), timedelta(minutes=1)))  # in range, but later
    rest = list(pages)
    assert [len(first.records), *(len(p.records) for p in rest)] == [4, 2]
    assert len(list(hook.events("web", start=T0 - timedelta(hours=2), end=T0 + timedelta(hours=1)))) == 9


def test_timestamp_field_of_the_collect_call_is_the_event_time(hook):
    hook.collect_json("crm", [{"email": "a@example.com", "seen": "2026-03-01T00:00:00Z"}], timestamp_field="seen")
    hook.collect_json("crm", [{"email": "b@example.com", "seen": "2026-03-01T00:00:00Z"}])  # _ts absent: arrival
    march_1 = list(hook.events("crm", start="2026-03-01T00:00:00Z", end="2026-03-02T00:00:00Z"))
    assert [e["email"] for e in march_1] == ["a@example.com"]


def test_errors_say_what_to_send(hook):
    hook.collect_json("web", _timed(3, T0 - timedelta(hours=1), timedelta(minutes=1)))
    with pytest.raises(LyticsNotFoundError, match="stream 'nope' not found"):
        list(hook.events("nope"))
    with pytest.raises(LyticsBadRequestError, match="must be later than start_date"):
        list(hook.events("web", start=T0, end=T0 - timedelta(hours=1)))
    with pytest.raises(LyticsBadRequestError, match="ISO 8601"):
        list(hook.events("web", start="yesterday"))
    first = next(hook.event_pages("web", start=T0 - timedelta(hours=2), limit=1))
    with pytest.raises(LyticsBadRequestError, match="another stream or time range"):
        hook.request("GET", "/v2/stream/web/events", params={"start": first.next_cursor, "limit": 1})
    with pytest.raises(LyticsBadRequestError, match="malformed"):
        hook.request("GET", "/v2/stream/web/events", params={"start": "xyz"})
    with pytest.raises(LyticsConfigError, match="timezone-aware"):
        list(hook.events("web", start=datetime(2026, 3, 8)))  # naive: the point of the test
    with pytest.raises(LyticsConfigError, match="between 1 and 1000"):
        list(hook.events("web", limit=5000))


def test_time_columns_survive_a_reopen_and_old_databases_migrate(tmp_path):
    path = str(tmp_path / "state.db")
    old = sqlite3.connect(path)  # an event log written before the time columns existed
    old.execute("CREATE TABLE event_batches (seq INTEGER PRIMARY KEY AUTOINCREMENT, stream TEXT NOT NULL, "
                "count INTEGER NOT NULL, body BLOB NOT NULL)")  # fmt: skip
    old.execute(
        "INSERT INTO event_batches (stream, count, body) VALUES ('web', 1, '[{\"_ts\":\"2026-03-08T10:00:00Z\"}]')"
    )
    old.commit()
    old.close()
    db = StateDB(path)
    store = ProfileStore(db, wall_clock=lambda: T0.timestamp())
    store.ingest("web", _timed(4, T0 - timedelta(hours=2), timedelta(minutes=30)))  # 10:00, 10:30, 11:00, 11:30
    db.close()
    db = StateDB(path)
    page = read_page(db, "web", start_date="2026-03-08T10:00:00Z", end_date="2026-03-08T11:00:00Z", now_ms=_ms(T0))
    assert page.total == 3 and len(page.events) == 3 and page.next == ""
    assert page.events[0]["_received"] is None  # the old row has no recorded arrival
    assert [e.get("n") for e in page.events] == [None, 0, 1]
    db.close()
