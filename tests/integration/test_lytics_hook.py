"""LyticsHook against the emulator over real HTTP: API coverage, quirks, retries under injected faults, secrecy."""

from __future__ import annotations

import gzip
import io
import json
import logging
import socket

import pytest
import requests

from airflow_provider_lytics.client import errors
from airflow_provider_lytics.client.retry import RetryPolicy
from airflow_provider_lytics.hooks.lytics import LyticsHook

FAST = RetryPolicy(max_attempts=4, base_delay=0.01, max_delay=0.05, max_total=30)


@pytest.fixture
def hook(lytics_conn_env):
    hook = LyticsHook(retry_policy=FAST)
    waits: list[float] = []
    hook._sleep = waits.append  # record back-off decisions instead of sleeping
    hook.waits = waits
    yield hook
    hook.close()


def add_fault(emulator, **rule) -> None:
    requests.post(f"{emulator.url}/_emulator/faults", json=rule, timeout=5).raise_for_status()


def route_hits(emulator, method: str, path_prefix: str, *, exact: bool = False) -> int:
    """Requests the emulator served on routes starting with ``path_prefix`` (or equal to it, with ``exact``)."""
    stats = requests.get(f"{emulator.url}/_emulator/stats", timeout=5).json()
    total = 0
    for entry in stats["requests"]:
        route = entry["route"]
        if entry["method"] == method and (route == path_prefix if exact else route.startswith(path_prefix)):
            total += entry["count"]
    return total


CSV = "email,first_name,plan,ltv\n" + "".join(f"user{i}@example.com,User{i},{'pro' if i % 3 == 0 else 'free'},{i}\n"
                                            for i in range(250))  # fmt: skip


def test_test_connection_ok(hook, emulator):
    ok, message = hook.test_connection()
    assert ok, message
    assert emulator.url in message


def test_test_connection_reports_bad_token(monkeypatch, emulator):
    conn = {"conn_type": "lytics", "password": "wrong-token", "host": emulator.url}
    monkeypatch.setenv("AIRFLOW_CONN_LYTICS_BAD", json.dumps(conn))
    ok, message = LyticsHook("lytics_bad", retry_policy=FAST).test_connection()
    assert not ok
    assert "401" in message and "wrong-token" not in message


def test_bearer_prefix_is_refused_with_a_hint(monkeypatch, emulator):
    conn = {"conn_type": "lytics", "password": "Bearer abc", "host": emulator.url}
    monkeypatch.setenv("AIRFLOW_CONN_LYTICS_BEARER", json.dumps(conn))
    with pytest.raises(errors.LyticsConfigError, match="raw token"):
        LyticsHook("lytics_bearer").get_account()


def test_collect_json_then_entity_lookup_and_not_found_quirk(hook):
    data = hook.collect_json("web", [{"email": "Ann@Example.com", "name": "Ann"}, {"email": "bob@example.com"}])
    assert data["message_count"] == 2 and data["rejected_count"] == 0
    profile = hook.get_entity("email", "ann@example.com")
    assert profile is not None and profile["name"] == "Ann"
    assert hook.get_entity("email", "nobody@example.com") is None


def test_dryrun_stores_nothing(hook, emulator):
    hook.collect_json("web", {"email": "dry@example.com"}, dryrun=True)
    assert hook.get_entity("email", "dry@example.com") is None


@pytest.mark.parametrize("gzipped", [False, True])
def test_bulk_csv_upload_then_full_scan(hook, gzipped):
    body = gzip.compress(CSV.encode()) if gzipped else CSV.encode()
    data = hook.bulk_upload("crm", io.BytesIO(body), gzipped=gzipped, filename="users.csv")
    assert data["message_count"] == 250
    hook.create_segment('FILTER EXISTS email FROM user ALIAS everyone WITH name = "Everyone"')
    pages = list(hook.scan_pages("everyone", limit=100))
    assert [len(p.records) for p in pages] == [100, 100, 50]
    assert pages[0].total == 250
    emails = [r["email"] for p in pages for r in p.records]
    assert len(emails) == len(set(emails)) == 250


def test_adhoc_scan_with_field_projection(hook):
    hook.bulk_upload("crm", CSV.encode())
    rows = list(hook.scan(filter_ql='FILTER plan = "pro" FROM user', fields=["email", "plan"], limit=50))
    assert len(rows) == 84
    assert all(set(r) <= {"email", "plan"} and r["plan"] == "pro" for r in rows)


def test_segment_lifecycle_and_validation(hook):
    seg = hook.create_segment({"name": "Pro", "slug_name": "pro_users", "segment_ql": 'FILTER plan = "pro"'})
    assert hook.get_segment("pro_users")["id"] == seg["id"]
    hook.bulk_upload("crm", CSV.encode())
    assert hook.segment_size(seg["id"]) == 84
    assert any(s["id"] == seg["id"] for s in hook.list_segments())
    hook.update_segment(seg["id"], {"name": "Pro plan", "segment_ql": 'FILTER plan = "free"'})
    assert hook.get_segment(seg["id"])["name"] == "Pro plan"
    with pytest.raises(errors.LyticsBadRequestError, match="Failed parsing"):
        hook.validate_segment("FILTER AND (email = ")
    hook.validate_segment("FILTER EXISTS email")
    hook.delete_segment(seg["id"])
    with pytest.raises(errors.LyticsNotFoundError):
        hook.get_segment(seg["id"])


def test_schema_and_streams(hook):
    hook.bulk_upload("crm", CSV.encode())
    assert any(s.get("stream") == "crm" for s in hook.list_streams())
    assert hook.get_schema("user")


def test_jobs_lifecycle_and_typed_not_found(hook):
    job = hook.create_job("sftp_import", {"name": "nightly import", "config": {"filename": "users.csv"}})
    assert hook.get_job(job["id"])["name"] == "nightly import"
    assert any(j["id"] == job["id"] for j in hook.list_jobs())
    assert hook.pause_job(job["id"])["status"] in {"paused", "pausing"}
    hook.resume_job(job["id"])
    assert isinstance(hook.job_logs(job["id"]), list)
    with pytest.raises(errors.LyticsNotFoundError) as caught:
        hook.get_job("0" * 32)
    assert "JOB-NOTFOUND-004" in caught.value.codes and caught.value.request_id


def test_429_with_retry_after_is_honoured(hook, emulator):
    add_fault(emulator, route="/api/segment", method="GET", kind="status", status=429, retry_after=2, times=2)
    hook.list_segments()
    assert hook.waits == [2.0, 2.0]
    assert route_hits(emulator, "GET", "/api/segment", exact=True) == 3


def test_real_sleep_honours_retry_after(lytics_conn_env, emulator):
    import time

    add_fault(emulator, route="/api/segment", method="GET", kind="status", status=429, retry_after=1, times=1)
    started = time.monotonic()
    LyticsHook(retry_policy=FAST).list_segments()
    assert time.monotonic() - started >= 1.0


def test_503_without_retry_after_backs_off_exponentially(hook, emulator):
    add_fault(emulator, route="/api/segment", method="GET", kind="status", status=503, times=3)
    hook.list_segments()
    assert len(hook.waits) == 3
    assert all(0 < w <= FAST.max_delay for w in hook.waits)
    assert route_hits(emulator, "GET", "/api/segment", exact=True) == 4  # the list route only


def test_retries_are_capped_and_reported(hook, emulator):
    add_fault(emulator, route="/api/segment", method="GET", kind="status", status=429)
    with pytest.raises(errors.LyticsRateLimitError) as caught:
        hook.list_segments()
    assert caught.value.attempts == FAST.max_attempts
    assert route_hits(emulator, "GET", "/api/segment", exact=True) == FAST.max_attempts


def test_unsafe_call_is_not_retried_after_a_server_error(hook, emulator):
    add_fault(emulator, route="/v2/job/*", method="POST", kind="status", status=503, times=1)
    with pytest.raises(errors.LyticsServerError):
        hook.create_job("sftp_import", {"name": "once", "config": {}})
    assert route_hits(emulator, "POST", "/v2/job") == 1


def test_dropped_connection_before_processing_is_retried_without_duplicates(hook, emulator):
    add_fault(emulator, route="/collect/json/*", method="POST", kind="drop_before", times=1)
    hook.collect_json("drops", [{"email": f"d{i}@example.com"} for i in range(10)])
    assert emulator.backend.store.stream_event_count("drops") == 10


def test_response_lost_after_acceptance_duplicates_only_that_batch(hook, emulator):
    add_fault(emulator, route="/collect/json/*", method="POST", kind="drop_after", times=1)
    hook.collect_json("lost", [{"email": f"l{i}@example.com"} for i in range(10)])
    assert emulator.backend.store.stream_event_count("lost") == 20  # at-least-once: the batch arrived twice


def test_connection_refused_gives_a_transport_error(monkeypatch):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    conn = {"conn_type": "lytics", "password": "t", "host": f"http://127.0.0.1:{port}"}
    monkeypatch.setenv("AIRFLOW_CONN_LYTICS_DOWN", json.dumps(conn))
    hook = LyticsHook("lytics_down", retry_policy=FAST)
    hook._sleep = lambda s: None
    with pytest.raises(errors.LyticsTransportError, match="could not connect") as caught:
        hook.get_account()
    assert caught.value.attempts == FAST.max_attempts
    assert caught.value.connect_phase, "a refused connection certainly never reached Lytics"


def test_token_never_reaches_logs_or_errors(hook, emulator, caplog):
    add_fault(emulator, route="/api/segment", method="GET", kind="status", status=429)
    with caplog.at_level(logging.DEBUG):
        hook.test_connection()
        with pytest.raises(errors.LyticsRateLimitError) as caught:
            hook.list_segments()
        with pytest.raises(errors.LyticsNotFoundError) as caught2:
            hook.get_job("f" * 32)
    for text in (caplog.text, str(caught.value), repr(caught.value), str(caught2.value), repr(hook.settings)):
        assert emulator.token not in text
