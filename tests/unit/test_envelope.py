"""Envelope parsing handles Lytics's documented quirks and produces typed errors."""

from __future__ import annotations

import json

import pytest

from airflow_provider_lytics.client import errors
from airflow_provider_lytics.client.envelope import build_error, entity_not_found, parse_success, scan_continuation


def _body(doc) -> bytes:
    return json.dumps(doc).encode()


def test_v1_scan_envelope_with_next_and_total():
    env = parse_success(200, _body({"status": 200, "message": "success", "total": 13, "_next": "abc", "data": [{}]}))
    assert env.next_cursor == "abc" and env.total == 13 and env.data == [{}]


def test_legacy_next_key_and_string_status_and_string_total():
    env = parse_success(200, _body({"status": "success", "next": "c2", "total": "4", "data": []}))
    assert env.next_cursor == "c2" and env.total == 4


def test_empty_next_means_end_of_scan():
    assert parse_success(200, _body({"status": 200, "_next": "", "data": []})).next_cursor is None


def test_204_empty_body():
    env = parse_success(204, b"")
    assert env.data is None


def test_v2_envelope_meta():
    env = parse_success(200, _body({"status": 200, "data": {"id": "j"}, "request_id": "r1", "_meta": {"a": 1}}))
    assert env.data == {"id": "j"} and env.request_id == "r1" and env.meta == {"a": 1}


def test_v1_error_maps_status_to_class():
    err = build_error(
        401, _body({"data": None, "message": "Not authorized", "status": 401}), method="GET", path="/api/x"
    )
    assert isinstance(err, errors.LyticsAuthError)
    assert "Not authorized" in str(err) and "GET /api/x" in str(err)


def test_v2_error_collects_codes_and_request_id():
    body = {
        "status": 404,
        "request_id": "rq",
        "errors": [{"code": "JOB-NOTFOUND-004", "level": "error", "message": "job not found", "timestamp": "t"}],
    }
    err = build_error(404, _body(body), method="GET", path="/v2/job/1")
    assert isinstance(err, errors.LyticsNotFoundError)
    assert err.codes == ("JOB-NOTFOUND-004",) and err.request_id == "rq" and err.message == "job not found"


def test_non_json_500_still_gives_a_message():
    err = build_error(500, b"", method="POST", path="/v2/template/test", header_request_id="h1")
    assert isinstance(err, errors.LyticsServerError)
    assert "no error message" in err.message and err.request_id == "h1"


def test_rate_limit_error_carries_retry_after():
    err = build_error(429, _body({"status": 429, "message": "slow down"}), method="GET", path="/", retry_after=3.0)
    assert isinstance(err, errors.LyticsRateLimitError) and err.retry_after == 3.0


def test_cursor_expiry_is_its_own_error():
    err = build_error(400, _body({"status": 400, "message": "scan cursor expired, restart the scan"}), method="GET",
                      path="/api/segment/x/scan")  # fmt: skip
    assert isinstance(err, errors.LyticsCursorExpiredError)
    assert isinstance(err, errors.LyticsBadRequestError)


@pytest.mark.parametrize(
    ("doc", "missing"),
    [
        ({"status": 200, "message": "Not Found", "data": {"segments": ["not_found", "all"]}}, True),
        ({"status": 200, "message": "Timed out", "data": {"segments": ["not_found", "all"]}}, True),
        ({"status": 200, "message": "success", "data": {"email": "a@b.c", "segments": ["all"]}}, False),
    ],
)
def test_entity_not_found_quirk(doc, missing):
    assert entity_not_found(parse_success(200, _body(doc))) is missing


@pytest.mark.parametrize(
    "body",
    [
        b'{"status":200,"data":[{"a":1},{"a":2}],"_next":"c2","total":5}',
        b'{"status":"success","data":[{"a":1}],"next":"old-style"}',
        b'{"data":[{"a":1}],"_next":"","next":"ignored: _next wins"}',
        b'{"data":[{"a":1}],"_next":null,"next":"ignored"}',
        b'{"data":[],"_next":"c3"}',
        b'{"data":[ \n ],"_next":"c3"}',
        b'{"data":null,"_next":"c3"}',
        b'{"data":{"not":"a list"},"_next":"c3"}',
        b'{"_next":42,"data":[1]}',
        b'{"message":"no data key"}',
        b"[1,2]",
        b"",
        b"not json",
        b'{"data":[NaN],"_next":"c"}',
    ],
)
def test_scan_continuation_reads_what_parse_success_reads(body):
    env = parse_success(200, body)
    expected = (env.next_cursor, isinstance(env.data, list) and bool(env.data))
    assert scan_continuation(body) == expected
