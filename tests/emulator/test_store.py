"""ProfileStore, identity resolution, segments, scans, stream decoding and seeding, without HTTP."""

from __future__ import annotations

import gzip
import json
import threading

import pytest

from airflow_provider_lytics.emulator.ingest import (
    BadInput,
    IngestOptions,
    decode_text,
    iter_csv,
    iter_json,
    run_ingest,
)
from airflow_provider_lytics.emulator.persistence import StateDB
from airflow_provider_lytics.emulator.scan import CursorError
from airflow_provider_lytics.emulator.seed import seed_population
from airflow_provider_lytics.emulator.segments import MAX_SEGMENTS, SegmentError
from airflow_provider_lytics.emulator.store import DEFAULT_IDENTITY_FIELDS, ProfileStore
from airflow_provider_lytics.emulator.values import parse_time_ms, render, rfc3339


@pytest.fixture
def store() -> ProfileStore:
    return ProfileStore(StateDB(None))


def _users(n: int, start: int = 0) -> list[dict]:
    return [{"email": f"User{i}@Example.com", "user_id": f"u{i}", "score": i} for i in range(start, start + n)]


# -- identity resolution ---------------------------------------------------------------------------------------
def test_events_with_two_identifiers_merge_profiles_across_streams(store: ProfileStore) -> None:
    store.ingest("web", [{"_uid": "cookie-1", "page": "/pricing", "_ts": 1_700_000_000_000}])
    store.ingest("crm", [{"email": "Ann@Example.COM", "plan": "pro", "_ts": 1_700_000_001_000}])
    assert sum(1 for _ in store.profiles()) == 2
    store.ingest("web", [{"_uid": "cookie-1", "email": "ann@example.com", "_ts": 1_700_000_002_000}])

    profiles = list(store.profiles())
    assert len(profiles) == 1
    profile = profiles[0]
    assert profile["email"] == "ann@example.com"
    assert profile["plan"] == "pro" and profile["page"] == "/pricing"
    assert profile["_uids"] == ["cookie-1"]
    assert profile["_num_events"] == 3
    assert sorted(profile["_streamnames"]) == ["crm", "web"]
    assert profile["_created"] == rfc3339(1_700_000_000_000)
    assert profile["_modified"] == rfc3339(1_700_000_002_000)
    for field, value in (("email", "ANN@example.com"), ("_uid", "cookie-1"), ("_uids", "cookie-1")):
        assert store.lookup(field, value)["_id"] == profile["_id"]
    assert store.lookup("_id", profile["_id"])["email"] == "ann@example.com"
    assert store.lookup("email", "nobody@example.com") is None


def test_out_of_order_events_never_overwrite_newer_values(store: ProfileStore) -> None:
    store.ingest("s", [{"user_id": "7", "city": "Paris", "seen": "2024-05-02T00:00:00Z"}], timestamp_field="seen")
    store.ingest("s", [{"user_id": "7", "city": "Lyon", "tier": "gold", "seen": "2024-05-01"}], timestamp_field="seen")
    profile = store.lookup("user_id", "7")
    assert profile["city"] == "Paris"  # the late, older event loses for the field it shares
    assert profile["tier"] == "gold"  # but fills a field the newer event did not carry
    assert profile["_created"] == "2024-05-01T00:00:00Z"
    store.ingest("s", [{"user_id": "7", "city": "Nice", "_ts": "1714694400000"}])  # 2024-05-03, epoch ms string
    assert store.lookup("user_id", "7")["city"] == "Nice"


def test_merge_keeps_latest_value_per_field_and_unions_lists(store: ProfileStore) -> None:
    store.ingest("a", [{"email": "x@y.z", "color": "red", "tags": ["a", "b"], "_ts": 2000_000_000_000}])
    store.ingest("b", [{"user_id": "9", "color": "blue", "tags": ["c"], "_ts": 1000_000_000_000}])
    store.ingest("c", [{"user_id": "9", "email": "x@y.z", "_ts": 1500_000_000_000}])
    (profile,) = store.profiles()
    assert profile["color"] == "red"
    assert sorted(profile["tags"]) == ["a", "b", "c"]
    assert profile["_num_events"] == 3


def test_rejections_are_counted_with_reasons(store: ProfileStore) -> None:
    result = store.ingest(
        "s",
        [
            {"email": "ok@example.com"},
            ["not", "an", "object"],
            {"email": "n@example.com", "items": [{"sku": 1}]},
            {"email": "x" * 300 + "@example.com"},
            {"user_id": "2", "prefs": {"inner": [{"deep": 1}]}},
        ],
    )
    assert (result.message_count, result.rejected_count) == (1, 4)
    reasons = dict(result.rejections)
    assert set(reasons) == {1, 2, 3, 4}
    assert "not an object" in reasons[1]
    assert "inside an array" in reasons[2]
    assert "longer than 256 bytes" in reasons[3]
    assert store.stream_event_count("s") == 1


def test_dryrun_validates_without_storing(store: ProfileStore) -> None:
    result = store.ingest("s", [*_users(3), [1]], dryrun=True)
    assert (result.message_count, result.rejected_count) == (3, 1)
    assert store.stream_event_count("s") == 0
    assert list(store.profiles()) == []


def test_events_without_identifiers_are_kept_raw_only(store: ProfileStore) -> None:
    assert store.ingest("s", [{"page": "/"}]).message_count == 1
    assert store.stream_event_count("s") == 1
    assert list(store.profiles()) == []
    assert [e for _, e in store.db.iter_events("s")] == [{"page": "/"}]


def test_identity_fields_are_configurable() -> None:
    store = ProfileStore(StateDB(None), identity_fields=("customer_no",))
    store.ingest("s", [{"customer_no": 1, "email": "a@b.c"}, {"customer_no": 1, "email": "d@e.f"}])
    assert len(list(store.profiles())) == 1
    assert store.lookup("customer_no", "1")["email"] == "d@e.f"
    assert store.lookup("email", "a@b.c") is None
    with pytest.raises(ValueError, match="identity_fields"):
        ProfileStore(StateDB(None), identity_fields=())
    assert DEFAULT_IDENTITY_FIELDS == ("_uid", "email", "user_id", "external_id")


def test_invalid_stream_name_is_refused(store: ProfileStore) -> None:
    with pytest.raises(ValueError, match="stream name"):
        store.ingest("bad stream/name", [{"email": "a@b.c"}])


# -- persistence -------------------------------------------------------------------------------------------------
def test_state_survives_reopening_the_database(tmp_path) -> None:
    path = str(tmp_path / "state.db")
    first = ProfileStore(StateDB(path))
    first.ingest("web", [{"_uid": "c1", "page": "/"}])
    first.ingest("crm", _users(50))
    first.ingest("crm", [{"_uid": "c1", "email": "user3@example.com", "_ts": 2_000_000_000_000}])  # merge
    seg, _ = first.segments.create({"segment_ql": "FILTER score >= 10 FROM user ALIAS tens"}, None,
                                   rename_taken_slug=False)  # fmt: skip
    before = sorted(first.profiles(), key=lambda p: p["_id"])
    first.db.close()

    second = ProfileStore(StateDB(path))
    after = sorted(second.profiles(), key=lambda p: p["_id"])
    assert after == before and len(after) == 50  # the merged-away profile did not come back
    assert second.lookup("_uid", "c1")["email"] == "user3@example.com"
    assert second.segment_size("tens") == 40
    assert second.segments.get(seg["id"])["slug_name"] == "tens"
    assert second.stream_event_count("crm") == 51
    assert second.stream_event_count("web") == 1
    assert [s.name for s in second.stream_list()] == ["crm", "web"]
    second.ingest("crm", [{"email": "user3@example.com", "score": 1, "_ts": 2_100_000_000_000}])
    assert second.lookup("_uid", "c1")["score"] == 1
    second.db.close()


def test_reset_forgets_everything(tmp_path) -> None:
    path = str(tmp_path / "state.db")
    store = ProfileStore(StateDB(path))
    store.ingest("crm", _users(5))
    store.segments.create({"segment_ql": "FILTER * ALIAS everyone"}, None, rename_taken_slug=False)
    store.reset()
    assert list(store.profiles()) == [] and store.stream_event_count("crm") == 0
    assert store.segments.list() == []
    reopened = ProfileStore(StateDB(path))
    assert list(reopened.profiles()) == [] and reopened.segments.list() == []
    assert reopened.db.count_events() == 0


# -- segments ----------------------------------------------------------------------------------------------------
def test_segment_upsert_rename_and_slug_rules(store: ProfileStore) -> None:
    ql = 'FILTER score > 5 FROM user ALIAS big WITH name = "Big"'
    doc, created = store.segments.create({"segment_ql": ql}, None, rename_taken_slug=False)
    assert created and doc["name"] == "Big" and doc["slug_name"] == "big" and len(doc["id"]) == 32
    again, created = store.segments.create({"segment_ql": ql.replace("5", "7")}, None, rename_taken_slug=False)
    assert not created and again["id"] == doc["id"] and "7" in again["segment_ql"]
    renamed, created = store.segments.create({"segment_ql": ql}, None, rename_taken_slug=True)
    assert created and renamed["slug_name"] == "big_1"
    assert store.segments.create({"segment_ql": ql}, None, rename_taken_slug=True)[0]["slug_name"] == "big_2"
    with pytest.raises(SegmentError, match=r"Slug is already used\."):
        store.segments.update(renamed["id"], {"slug_name": "big"}, None)
    with pytest.raises(SegmentError, match="limit is 64"):
        store.segments.create({"segment_ql": "FILTER *", "name": "n" * 65}, None, rename_taken_slug=False)
    with pytest.raises(SegmentError, match="Failed parsing segment QL"):
        store.segments.create({"segment_ql": "FILTER AND (x = "}, None, rename_taken_slug=False)


def test_segment_limit_per_account(store: ProfileStore) -> None:
    for i in range(MAX_SEGMENTS):
        store.segments.create({"segment_ql": f"FILTER score > {i} ALIAS s{i}"}, None, rename_taken_slug=False)
    with pytest.raises(SegmentError, match="500 audiences"):
        store.segments.create({"segment_ql": "FILTER * ALIAS one_too_many"}, None, rename_taken_slug=False)
    # an upsert of an existing slug is still allowed at the limit
    store.segments.create({"segment_ql": "FILTER score > 1 ALIAS s0"}, None, rename_taken_slug=False)


def test_include_sizes_and_cycles(store: ProfileStore) -> None:
    store.ingest("crm", _users(30))
    create = store.segments.create
    create({"segment_ql": "FILTER score >= 10 ALIAS ten_plus"}, None, rename_taken_slug=False)
    create({"segment_ql": "FILTER AND (INCLUDE ten_plus, score < 20) ALIAS teens"}, None, rename_taken_slug=False)
    assert store.segment_size("ten_plus") == 20
    assert store.segment_size("teens") == 10
    store.ingest("crm", [{"email": "new@example.com", "score": 15}])
    assert store.segment_size("teens") == 11  # the size cache follows ingest
    with pytest.raises(SegmentError, match="INCLUDEs itself"):
        create({"segment_ql": "FILTER AND (INCLUDE teens, score > 1) ALIAS ten_plus"}, None, rename_taken_slug=False)
    view = store.lookup("email", "new@example.com")
    assert sorted(s["slug_name"] for s in store.profile_segments(view)) == ["teens", "ten_plus"]
    assert store.segments.get("teens")["invalid"] is False
    store.segments.delete(["ten_plus"])
    assert [s["slug_name"] for s in store.segments.list(valid="false")] == ["teens"]
    assert "ten_plus" in store.segments.get("teens")["invalid_reason"]
    assert store.segment_size("teens") == 0


# -- scans -------------------------------------------------------------------------------------------------------
def _scan_all(store: ProfileStore, **kwargs) -> tuple[list[dict], int, int]:
    rows, pages, total, start = [], 0, None, None
    while True:
        page = store.scan(start=start, **kwargs)
        pages += 1
        total = page.total if total is None else total
        assert page.total == total
        rows.extend(page.data)
        if not page.next:
            return rows, pages, total
        start = page.next


def test_scan_pages_to_completion_without_duplicates_or_gaps(store: ProfileStore) -> None:
    store.ingest("crm", _users(205))
    store.segments.create({"segment_ql": "FILTER * ALIAS everyone"}, None, rename_taken_slug=False)
    rows, pages, total = _scan_all(store, segment="everyone", limit=1000)
    assert total == 205 and pages == 3  # limit clamped to 100
    ids = [r["_id"] for r in rows]
    assert len(ids) == len(set(ids)) == 205
    rows, pages, _ = _scan_all(store, segment="everyone")
    assert pages == 11  # default page size 20
    assert rows[0]["score"] == "0" and rows[0]["_num_events"] == "1"  # Lytics renders numbers as strings


def test_scan_is_a_snapshot_while_ingest_continues(store: ProfileStore) -> None:
    store.ingest("crm", _users(150))
    first = store.scan(segment_ql="FILTER score >= 0", limit=50)
    assert first.total == 150
    writer = threading.Thread(target=lambda: store.ingest("crm", _users(300, start=1000)))
    writer.start()
    seen = [r["_id"] for r in first.data]
    start = first.next
    while start:
        page = store.scan(segment_ql="FILTER score >= 0", start=start, limit=50)
        seen.extend(r["_id"] for r in page.data)
        start = page.next
    writer.join()
    assert len(seen) == len(set(seen)) == 150
    assert store.scan(segment_ql="FILTER score >= 0").total == 450


def test_scan_cursor_expiry_and_validation(store: ProfileStore) -> None:
    now = [1000.0]
    store.scans.clock = lambda: now[0]
    store.scans.ttl = 60
    store.ingest("crm", _users(30))
    page = store.scan(segment_ql="FILTER *", limit=10)
    now[0] += 59
    page = store.scan(segment_ql="FILTER *", start=page.next, limit=10)  # still fresh: ttl counts from last page
    now[0] += 61
    with pytest.raises(CursorError, match=r"expired.*restart the scan"):
        store.scan(segment_ql="FILTER *", start=page.next, limit=10)
    with pytest.raises(CursorError, match="malformed"):
        store.scan(segment_ql="FILTER *", start="not-a-cursor")


def test_scan_projection_sorting_and_retry(store: ProfileStore) -> None:
    store.ingest("crm", _users(25))
    page = store.scan(segment_ql="FILTER *", fields=["email", "score"], sortfield="score", sortorder="desc", limit=5)
    assert [r["score"] for r in page.data] == ["24", "23", "22", "21", "20"]
    assert set(page.data[0]) == {"email", "score"}
    again = store.scan(segment_ql="FILTER *", start=page.next, limit=5)
    retry = store.scan(segment_ql="FILTER *", start=page.next, limit=5)  # same cursor, same page (safe retries)
    assert again.data == retry.data and [r["score"] for r in again.data] == ["19", "18", "17", "16", "15"]
    assert set(again.data[0]) == {"email", "score"}  # projection carries over to later pages


def test_entity_and_identity_views(store: ProfileStore) -> None:
    store.ingest("crm", [{"email": "a@b.c", "_uid": "k1", "score": 3}])
    store.segments.create({"segment_ql": "FILTER score > 1 ALIAS scored"}, None, rename_taken_slug=False)
    data = store.entity("email", "A@B.C", allsegments=True)
    assert data["segments"] == ["all", "scored"] and data["score"] == "3"
    assert data["segments_all"] == [store.segments.get("scored")["id"]]
    ident = store.identity("_uid", "k1")
    assert {"key": "email", "value": "a@b.c"} in ident["keys"]
    assert ident["entity"]["score"] == 3 and ident["fragments"][0]["streams"] == ["crm"]
    assert store.entity("email", "zz@b.c") is None


# -- decoding ----------------------------------------------------------------------------------------------------
def _chunks(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


@pytest.mark.parametrize("size", [1, 7, 4096])
def test_json_decoding_across_chunk_boundaries(size: int) -> None:
    records = [{"email": f"u{i}@x.y", "note": "a, [b] {c} \u00e9", "n": i * 1.5} for i in range(40)]
    bodies = {
        "array": (json.dumps(records), records),
        "ndjson": ("\n".join(json.dumps(r) for r in records) + "\n", records),
        "object": (json.dumps(records[0]), records[:1]),
    }
    for body, expected in bodies.values():
        assert [i.value for i in iter_json(decode_text(_chunks(body.encode(), size)))] == expected
    single = list(iter_json(decode_text([json.dumps(records[0]).encode()])))
    assert len(single) == 1 and single[0].batch is False
    ndjson = list(iter_json(decode_text([b'{"a": 1}\n{"a": 2}\n'])))
    assert [i.batch for i in ndjson] == [True, True] and [i.line for i in ndjson] == [1, 2]


def test_json_numbers_split_by_chunks_are_not_truncated() -> None:
    items = list(iter_json(decode_text([b"[1", b'2345, {"a":', b" 6}]"])))
    assert [i.value for i in items] == [12345, {"a": 6}]


@pytest.mark.parametrize(
    "body, message",
    [(b'[{"a": 1},', "not closed"), (b'{"a": }', "not valid JSON"), (b'[{"a": 1}] x', "after the array"),
     (b'[{"a":1} {"b":2}]', "expected ','")],
)  # fmt: skip
def test_json_errors_name_the_problem(body: bytes, message: str) -> None:
    with pytest.raises(BadInput, match=message):
        list(iter_json(decode_text(_chunks(body, 3))))


def test_gzip_multi_member_and_utf8_bom() -> None:
    body = gzip.compress(b"\xef\xbb\xbfemail,name\n") + gzip.compress("a@b.c,Ren\u00e9e\n".encode())
    rows = list(iter_csv(decode_text(_chunks(body, 5)), IngestOptions(fmt="csv")))
    assert [r.value for r in rows] == [{"email": "a@b.c", "name": "Ren\u00e9e"}]
    with pytest.raises(BadInput, match="gzip"):
        list(decode_text([b"\x1f\x8b\x08\x00garbage-garbage"]))
    with pytest.raises(BadInput, match="UTF-8"):
        list(decode_text([b"email\n\xff\xfe\n"]))


def test_csv_quoted_newlines_across_chunks_and_bad_rows() -> None:
    body = b'email,note\na@b.c,"line one\nline two"\nb@c.d,plain\nc@d.e,too,many\n'
    opts = IngestOptions(fmt="csv")
    rows = list(iter_csv(decode_text(_chunks(body, 4)), opts))
    assert rows[0].value == {"email": "a@b.c", "note": "line one\nline two"}
    assert rows[1].value == {"email": "b@c.d", "note": "plain"}
    assert isinstance(rows[2].value, str) and "line 5 has 3 fields" in rows[2].value


def test_run_ingest_aborts_or_drops_bad_csv_rows(store: ProfileStore) -> None:
    body = b"email,score\na@b.c,1\nbad-row-without-comma-count,1,2\nc@d.e,3\n"
    with pytest.raises(BadInput, match=r"line 3.*droperrors=true") as info:
        run_ingest(store, "csv", [body], IngestOptions(fmt="csv"))
    assert info.value.accepted == 0  # the first row was still in the pending batch
    summary = run_ingest(store, "csv", [body], IngestOptions(fmt="csv", droperrors=True))
    assert (summary.message_count, summary.rejected_count) == (2, 1)
    assert summary.rejections[0][0] == 3


# -- values and seed ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "raw, expected",
    [(1714608000, 1714608000000), (1714608000000, 1714608000000), ("1714608000000", 1714608000000),
     ("2024-05-02T00:00:00Z", 1714608000000), ("2024-05-02 00:00:00", 1714608000000),
     ("2024-05-02T02:00:00+02:00", 1714608000000), ("05/02/2024", 1714608000000), ("garbage", None), (None, None)],
)  # fmt: skip
def test_lenient_time_parsing(raw, expected) -> None:
    assert parse_time_ms(raw) == expected


def test_rendering_like_lytics() -> None:
    assert render({"a": 1, "b": 2.5, "c": [1, True], "d": "x", "e": 3.0}) == {
        "a": "1", "b": "2.5", "c": ["1", "true"], "d": "x", "e": "3",
    }  # fmt: skip
    assert rfc3339(1714608000123) == "2024-05-02T00:00:00.123Z"


def test_seed_population_is_deterministic_and_realistic() -> None:
    a, b = ProfileStore(StateDB(None)), ProfileStore(StateDB(None))
    counts = seed_population(a, 400, seed=3)
    seed_population(b, 400, seed=3)
    assert counts["users"] == 400 and counts["profiles"] == 400  # anonymous web profiles were stitched in
    assert counts["events"]["web_events"] > 200
    strip = ("_created", "_modified")
    rows_a = sorted(({k: v for k, v in p.items() if k not in strip} for p in a.profiles()), key=lambda p: p["_id"])
    rows_b = sorted(({k: v for k, v in p.items() if k not in strip} for p in b.profiles()), key=lambda p: p["_id"])
    assert rows_a == rows_b
    merged = [p for p in a.profiles() if p["_uids"] and "crm_users" in p["_streamnames"]]
    assert merged and all(sorted(p["_streamnames"]) == ["crm_users", "web_events"] for p in merged)
    sizes = {slug: a.segment_size(slug) for slug in counts["segments"]}
    assert sizes["all_users"] == 400
    assert 0 < sizes["high_value"] < 400 and 0 < sizes["recent_visitors"] < 400
    assert sizes["high_value_active"] <= min(sizes["high_value"], sizes["recent_visitors"])
    other = ProfileStore(StateDB(None))
    seed_population(other, 400, seed=4)
    assert sorted(p["email"] for p in other.profiles()) != sorted(p["email"] for p in a.profiles())
    with pytest.raises(ValueError, match="positive integer"):
        seed_population(a, 0)


def test_streaming_ingest_memory_stays_flat(store: ProfileStore) -> None:
    """Peak memory of a streamed ingest does not grow with the body: about one chunk plus one batch."""
    import tracemalloc

    def body(rows: int):
        yield b"email,user_id,note\n"
        for start in range(0, rows, 500):
            yield "".join(f"m{i}@example.com,u{i},{'w' * 120}\n" for i in range(start, start + 500)).encode()

    def peak_for(rows: int) -> tuple[int, int]:
        tracemalloc.start()
        try:
            summary = run_ingest(store, "mem", body(rows), IngestOptions(fmt="csv", dryrun=True))
            return summary.message_count, tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    small_count, small_peak = peak_for(8_000)
    large_count, large_peak = peak_for(32_000)
    large_total = sum(len(chunk) for chunk in body(32_000))
    assert (small_count, large_count) == (8_000, 32_000)
    assert large_peak < small_peak * 1.25, (small_peak, large_peak)
    assert large_peak < large_total * 0.75, (large_peak, large_total)  # never the whole body


def test_scan_cursor_of_another_segment_and_invalid_segments(store: ProfileStore) -> None:
    store.ingest("crm", _users(30))
    create = store.segments.create
    create({"segment_ql": "FILTER score >= 10 ALIAS a"}, None, rename_taken_slug=False)
    create({"segment_ql": "FILTER score < 10 ALIAS b"}, None, rename_taken_slug=False)
    create({"segment_ql": "FILTER INCLUDE a ALIAS via_a"}, None, rename_taken_slug=False)
    page = store.scan(segment="a", limit=5)
    with pytest.raises(CursorError, match="different segment"):
        store.scan(segment="b", start=page.next)
    assert store.scan(segment="via_a").total == 20
    store.segments.delete(["a"])
    with pytest.raises(SegmentError, match="invalid"):
        store.scan(segment="via_a")
    assert store.scan(segment_ql="FILTER * FROM content").total == 0


def test_recent_scan_orders_by_last_change(store: ProfileStore) -> None:
    store.ingest("crm", [{"email": f"r{i}@e.com", "_ts": 1_700_000_000_000 + i * 1000} for i in range(5)])
    store.ingest("crm", [{"email": "r0@e.com", "seen": 1, "_ts": 1_800_000_000_000}])
    page = store.scan(segment_ql="FILTER *", recent=True, fields=["email"])
    assert [r["email"] for r in page.data] == ["r0@e.com", "r4@e.com", "r3@e.com", "r2@e.com", "r1@e.com"]
    with pytest.raises(ValueError, match="sortorder"):
        store.scan(segment_ql="FILTER *", sortfield="email", sortorder="sideways")


# -- persistence: write-behind, batched raw event log, codec ----------------------------------------------------
def test_profiles_are_written_behind_and_on_close(tmp_path) -> None:
    path = str(tmp_path / "state.db")
    store = ProfileStore(StateDB(path), write_interval=3600)  # the writer never wakes up during this test
    store.ingest("crm", _users(20))
    store.ingest("crm", [{"email": "user1@example.com", "plan": "pro"}])
    assert store.db.count_events("crm") == 21  # raw events are stored with the batch
    assert store.db.load("profile") == {}  # profiles wait for the writer
    store.flush()
    stored = [doc for doc in store.db.load("profile").values() if "merged_into" not in doc]
    assert len(stored) == 20 and any(doc["fields"].get("plan") == "pro" for doc in stored)
    store.ingest("crm", [{"email": "late@example.com"}])
    store.db.close()  # a clean close flushes what the writer has not written yet
    reopened = ProfileStore(StateDB(path))
    assert reopened.lookup("email", "late@example.com") is not None
    assert reopened.lookup("email", "user1@example.com")["plan"] == "pro"
    assert reopened.stream_event_count("crm") == 22
    reopened.db.close()


def test_background_writer_flushes_without_being_asked(tmp_path) -> None:
    store = ProfileStore(StateDB(str(tmp_path / "state.db")), write_interval=0.05)
    store.ingest("crm", _users(5))
    for _ in range(200):  # bounded wait: the writer runs every 50 ms (profiles and streams may land in turn)
        if len(store.db.load("profile")) == 5 and "crm" in store.db.load("stream"):
            break
        threading.Event().wait(0.05)
    assert len(store.db.load("profile")) == 5
    assert "crm" in store.db.load("stream")
    store.db.close()


def test_background_writes_wait_for_a_deferred_block(tmp_path) -> None:
    store = ProfileStore(StateDB(str(tmp_path / "state.db")), write_interval=0.01)
    with store.deferred_writes():
        store.ingest("crm", _users(5))
        threading.Event().wait(0.2)  # many writer intervals pass while the block is open
        assert store.db.load("profile") == {}
    store.flush()
    assert len(store.db.load("profile")) == 5
    store.db.close()


def test_a_failed_flush_keeps_the_changes_for_the_next_one(tmp_path, monkeypatch) -> None:
    store = ProfileStore(StateDB(str(tmp_path / "state.db")), write_interval=3600)
    store.ingest("crm", _users(3))
    real = store.db.put_encoded

    def refuse(kind, rows):
        raise OSError("disk full")

    monkeypatch.setattr(store.db, "put_encoded", refuse)
    with pytest.raises(OSError, match="disk full"):
        store.flush()
    monkeypatch.setattr(store.db, "put_encoded", real)
    store.flush()
    assert len(store.db.load("profile")) == 3 and "crm" in store.db.load("stream")
    store.db.close()


def test_in_memory_state_keeps_profiles_only_in_memory(store: ProfileStore) -> None:
    store.ingest("crm", _users(4))
    store.ingest("crm", [{"email": "user0@example.com", "user_id": "u1"}])  # merges two profiles
    store.flush()
    assert store.db.load("profile") == {} and store.db.load("stream") == {}
    assert store.db.count_events("crm") == 5 and store.profile_count() == 3
    assert store.graph.merged_seq == {}  # no tombstone bookkeeping left behind


def test_raw_event_log_is_stored_in_batches_and_read_back_in_order(monkeypatch) -> None:
    from airflow_provider_lytics.emulator import persistence

    monkeypatch.setattr(persistence, "EVENT_ROW_MAX", 3)
    db = StateDB(None)
    assert db.append_events("a", [{"n": i} for i in range(7)]) == 7  # 3 rows: 3 + 3 + 1 events
    assert db.append_events("b", iter([{"n": 100}])) == 1
    assert db.append_events("a", []) == 0
    db.append_events("a", [{"n": 7}])
    assert db._conn.execute("SELECT COUNT(*) FROM event_batches").fetchone()[0] == 5
    assert [e["n"] for _, e in db.iter_events("a")] == list(range(8))
    assert [(s, e["n"]) for s, e in db.iter_events()][6:9] == [("a", 6), ("b", 100), ("a", 7)]
    assert (db.count_events(), db.count_events("a"), db.count_events("b"), db.count_events("c")) == (9, 8, 1, 0)
    db.clear_events()
    assert db.count_events() == 0 and list(db.iter_events()) == []


def test_event_rows_of_earlier_versions_are_still_read(tmp_path) -> None:
    path = str(tmp_path / "old.db")
    db = StateDB(path)
    db._conn.executemany("INSERT INTO events (stream, doc) VALUES (?, ?)", [("s", '{"n": 1}'), ("s", '{"n": NaN}')])
    db.append_events("s", [{"n": 3}])
    events = [e["n"] for _, e in db.iter_events("s")]
    assert events[0] == 1 and events[1] != events[1] and events[2] == 3  # NaN written by the json module
    assert db.count_events("s") == 3
    db.clear()
    assert db.count_events() == 0
    db.close()
    db.close()  # closing twice is harmless


def test_codec_round_trips_what_json_alone_accepts() -> None:
    from datetime import datetime
    from decimal import Decimal

    from airflow_provider_lytics.emulator.persistence import decode, encode

    doc = {"big": 2**80, "n": 1.5, "list": [1, "a", None], "nested": {"t": True}, "tuple": (1, 2)}
    assert decode(encode(doc)) == {**doc, "tuple": [1, 2]}
    assert decode(encode({1: "int key"})) == {"1": "int key"}
    assert decode(encode({"d": Decimal("2.50"), "when": datetime(2024, 5, 1, 12)})) == {
        "d": "2.50",
        "when": "2024-05-01T12:00:00",
    }
    assert decode('{"legacy": "text"}') == {"legacy": "text"}


def test_gc_pause_is_reentrant_and_restores_the_previous_setting() -> None:
    import gc

    from airflow_provider_lytics.emulator.store import gc_paused

    assert gc.isenabled()
    with gc_paused():
        assert not gc.isenabled()
        with gc_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()
    gc.disable()
    try:
        with gc_paused():
            pass
        assert not gc.isenabled()  # an application that disabled GC keeps it disabled
    finally:
        gc.enable()


def test_scan_rows_render_like_materialised_profiles(store: ProfileStore) -> None:
    from airflow_provider_lytics.emulator.identity import materialise
    from airflow_provider_lytics.emulator.store import render_profile, render_row

    store.ingest("crm", [{"email": "a@b.c", "_uid": "ck", "n": 3, "f": 2.5, "whole": 4.0, "ok": True,
                          "tags": ["x", 2], "m": {"k": 1}}])  # fmt: skip
    store.ingest("web", [{"_uid": "ck", "page": "/"}])
    (profile,) = store.graph.profiles.values()
    expected = render_row(materialise(profile), None)
    assert render_profile(profile, None) == expected
    assert expected["n"] == "3" and expected["whole"] == "4" and expected["ok"] == "true"
    assert expected["tags"] == ["x", "2"] and expected["m"] == {"k": "1"} and expected["_num_events"] == "2"
    assert render_profile(profile, {"email", "_uids", "missing"}) == {"email": "a@b.c", "_uids": ["ck"]}


@pytest.mark.parametrize(
    ("value", "accepted"),
    [("a" * 65, True), ("a" * 256, True), ("a" * 257, False), ("\u00e9" * 129, False), ("\u00e9" * 128, True)],
)
def test_csv_identifier_length_is_checked_in_bytes(store: ProfileStore, value: str, accepted: bool) -> None:
    body = f"email,user_id\nok@example.com,u1\nx@example.com,{value}\n".encode()
    summary = run_ingest(store, "crm", [body], IngestOptions(fmt="csv", droperrors=True))
    assert (summary.message_count, summary.rejected_count) == ((2, 0) if accepted else (1, 1))
    if not accepted:
        assert summary.rejections == [(3, "record at line 3: identifier 'user_id' is longer than 256 bytes")]


def test_csv_append_identifiers_are_checked_and_single_columns_work(store: ProfileStore) -> None:
    opts = IngestOptions(fmt="csv", droperrors=True, append={"user_id": "x" * 300})
    summary = run_ingest(store, "crm", [b"email\na@example.com\n\n  \nb@example.com\n"], opts)
    assert (summary.message_count, summary.rejected_count) == (0, 2)
    summary = run_ingest(store, "crm", [b"email\na@example.com\n\n  \nb@example.com\n"], IngestOptions(fmt="csv"))
    assert (summary.message_count, summary.rejected_count) == (2, 0)  # blank lines are skipped, not rows
    summary = run_ingest(store, "crm", [b"plan\npro\n"], IngestOptions(fmt="csv"))  # no identifier column at all
    assert summary.message_count == 1 and store.stream_event_count("crm") == 3


def test_the_shared_empty_times_mapping_is_never_written(tmp_path) -> None:
    from airflow_provider_lytics.emulator.identity import NO_TIMES

    path = str(tmp_path / "state.db")
    store = ProfileStore(StateDB(path))
    store.ingest("crm", [{"email": "a@b.c", "plan": "free", "_ts": 2_000}, {"user_id": "u9", "plan": "x", "_ts": 5}])
    store.ingest("crm", [{"email": "A@B.C", "plan": "pro", "_ts": 1_000}])  # late: must not overwrite
    store.ingest("crm", [{"email": "a@b.c", "user_id": "u9", "tier": "gold", "_ts": 3_000}])  # merge
    store.db.close()
    reopened = ProfileStore(StateDB(path))
    reopened.ingest("crm", [{"email": "a@b.c", "city": "Oslo", "_ts": 4_000}])
    assert NO_TIMES == {}
    profile = reopened.lookup("user_id", "u9")
    assert (profile["plan"], profile["tier"], profile["city"]) == ("free", "gold", "Oslo")
    reopened.db.close()


def test_documents_are_read_back_in_chunks(monkeypatch) -> None:
    from airflow_provider_lytics.emulator import persistence

    monkeypatch.setattr(persistence, "_DOC_CHUNK", 2)
    db = StateDB(None)
    db.put_many("thing", [("", {"n": 0}), *((f"k{i}", {"n": i}) for i in range(1, 6))])
    db.put("other", "k1", {"n": 99})
    assert [(k, d["n"]) for k, d in db.iter_docs("thing")] == [("", 0), *((f"k{i}", i) for i in range(1, 6))]
    assert db.load("thing") == dict(db.iter_docs("thing"))
    db.delete_kind("thing")
    assert list(db.iter_docs("thing")) == [] and db.load("other") == {"k1": {"n": 99}}


@pytest.mark.parametrize("chunk", [3, 7, 64, 100_000])
def test_json_line_numbers_stay_right_across_chunks(store: ProfileStore, chunk: int) -> None:
    lines = [json.dumps({"email": f"j{i}@example.com", "n": i}) for i in range(1, 51)]
    lines[36] = '{"email": "bad@example.com", "tags": [{"nested": 1}]}'  # line 37
    lines.insert(10, "")  # a blank line shifts everything after it (bad record now on line 38)
    body = ("\n".join(lines) + "\n").encode()
    chunks = [body[i : i + chunk] for i in range(0, len(body), chunk)]
    summary = run_ingest(store, "j", chunks, IngestOptions(fmt="json"))
    assert (summary.message_count, summary.rejected_count) == (49, 1)
    assert summary.rejections[0][0] == 38 and "nests objects" in summary.rejections[0][1]
    broken = body + b'{"email": "x@example.com",\n "n": }\n'
    with pytest.raises(BadInput, match="at line 53"):
        run_ingest(store, "j", [broken[i : i + chunk] for i in range(0, len(broken), chunk)], IngestOptions())


def test_plain_csv_rows_build_the_same_profiles_as_the_general_path() -> None:
    body = b"email,user_id,plan,city\n Ann@Example.com ,u1,pro,\nbob@example.com,u2,free,Oslo\n"
    body += b"ann@example.com,,team,Rome\n"
    plain, general = ProfileStore(StateDB(None)), ProfileStore(StateDB(None))
    run_ingest(plain, "crm", [body], IngestOptions(fmt="csv"))  # plain: no '_' columns, no append
    records = [dict(r.value) for r in iter_csv(decode_text([body]), IngestOptions(fmt="csv"))]
    general.ingest("crm", records)  # the general path filters and normalises record by record
    assert plain.profile_count() == general.profile_count() == 2
    for store in (plain, general):
        ann = store.lookup("email", "ann@example.com")
        assert (ann["email"], ann["plan"], ann["city"], ann["user_id"]) == ("ann@example.com", "team", "Rome", "u1")
    strip = ("_created", "_modified")
    assert sorted(({k: v for k, v in p.items() if k not in strip} for p in plain.profiles()), key=str) == sorted(
        ({k: v for k, v in p.items() if k not in strip} for p in general.profiles()), key=str
    )
    with_uid = ProfileStore(StateDB(None))
    run_ingest(with_uid, "web", [b"_uid,page\nc1,/\n"], IngestOptions(fmt="csv"))  # '_' column: general path
    assert "_uid" not in with_uid.graph.profiles[next(iter(with_uid.graph.profiles))]["fields"]
