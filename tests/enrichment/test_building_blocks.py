"""Unit tests for the pure enrichment pieces: templates, mapping, freshness, pacing (fake clock)."""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta, timezone

import pytest

from airflow_provider_lytics.enrichment import EnrichmentConfigError, EnrichmentResult, FreshnessPolicy, RecordBuilder
from airflow_provider_lytics.enrichment.freshness import as_timedelta, parse_time
from airflow_provider_lytics.enrichment.mapping import extract_path, flatten, select_fields
from airflow_provider_lytics.enrichment.ratelimit import RequestLimiter
from airflow_provider_lytics.enrichment.request_template import placeholders, render_text, render_value, template_values

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)


# -- request templates -------------------------------------------------------------------------------------
def test_placeholders_found_in_nested_templates_and_braces_escaped() -> None:
    assert placeholders({"q": "{email}", "n": [{"id": "{user_id}"}], "lit": "{{not}}"}) == {"email", "user_id"}
    with pytest.raises(EnrichmentConfigError, match="stray"):
        placeholders("/users/{id")


def test_render_keeps_types_for_whole_placeholders_and_quotes_paths() -> None:
    values = template_values({"email": "A+b@Example.COM ", "n": 3})
    assert values["email_domain"] == "example.com"
    assert render_value({"count": "{n}", "text": "n={n}", "x": ["{email_domain}"]}, values) == {
        "count": 3, "text": "n=3", "x": ["example.com"]}  # fmt: skip
    assert render_text("/p/{email}/x{{y}}", {"email": "a b/c@d"}, url_quote=True) == "/p/a%20b%2Fc%40d/x{y}"
    with pytest.raises(KeyError, match="user_id"):
        render_value({"id": "{user_id}"}, values)


# -- mapping -------------------------------------------------------------------------------------------------
def test_extract_and_flatten() -> None:
    doc = {"person": {"name": {"full": "Ada"}, "emails": ["a@x.io", "b@x.io"]}, "tags": [{"k": 1}], "gone": None}
    assert extract_path(doc, "person.name.full") == "Ada"
    assert extract_path(doc, "person.emails.1") == "b@x.io"
    assert extract_path(doc, "person.nope.deeper", "dflt") == "dflt"
    assert flatten(doc) == {"person_name_full": "Ada", "person_emails": ["a@x.io", "b@x.io"], "tags": ['{"k":1}']}
    assert select_fields(doc, {"name": "person.name.full", "p": "person.name", "missing": "x.y"}) == {
        "name": "Ada", "p_full": "Ada"}  # fmt: skip


def test_flat_records_carry_identifiers_prefixed_fields_and_provenance() -> None:
    builder = RecordBuilder(prefix="cb", enricher_name="clearbit")
    record = builder.build({"email": "a@x.io"}, EnrichmentResult.found({"company": {"name": "X"}, "email": "z"}), NOW)
    assert record == {"email": "a@x.io", "cb_company_name": "X", "cb_email": "z", "cb_enricher": "clearbit",
                      "cb_status": "enriched", "cb_checked_at": "2026-03-01T12:00:00Z",
                      "cb_enriched_at": "2026-03-01T12:00:00Z"}  # fmt: skip
    failed = builder.build({"email": "a@x.io"}, EnrichmentResult.failed("x" * 500), NOW)
    assert failed["cb_status"] == "failed" and len(failed["cb_error"]) == 200 and "cb_enriched_at" not in failed
    bare = RecordBuilder(prefix="", enricher_name="e").build(
        {"email": "a@x.io"}, EnrichmentResult.found({"email": "other"}), NOW
    )
    assert bare["email"] == "a@x.io"  # enriched data never overwrites the record's identity
    shaped = RecordBuilder(prefix="e", enricher_name="e", shape="origin_response").build(
        {"email": "a@x.io"}, EnrichmentResult.found({"a": {"b": 1}}), NOW)  # fmt: skip
    assert shaped["origin"] == {"email": "a@x.io"} and shaped["response"] == {"a_b": 1}
    with pytest.raises(EnrichmentConfigError, match="record_shape"):
        RecordBuilder(prefix="e", enricher_name="e", shape="nested")
    with pytest.raises(EnrichmentConfigError, match="field_prefix"):
        RecordBuilder(prefix="bad prefix", enricher_name="e")


# -- freshness -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-02-27T12:00:00Z", datetime(2026, 2, 27, 12, tzinfo=timezone.utc)),
        ("2026-02-27T13:00:00+01:00", datetime(2026, 2, 27, 12, tzinfo=timezone.utc)),
        (1772193600000, datetime(2026, 2, 27, 12, tzinfo=timezone.utc)),
        ("1772193600", datetime(2026, 2, 27, 12, tzinfo=timezone.utc)),
        (["2026-01-01T00:00:00Z", "2026-02-27T12:00:00Z"], datetime(2026, 2, 27, 12, tzinfo=timezone.utc)),
        ("yesterday", None),
        ("", None),
    ],
)
def test_parse_time(value, expected) -> None:
    assert parse_time(value) == expected


def test_freshness_policy() -> None:
    policy = FreshnessPolicy("e", max_age=timedelta(days=7), not_found_max_age=timedelta(days=1))
    assert policy.read_fields() == ["e_enriched_at", "e_checked_at", "e_status"]
    assert policy.is_fresh({"e_enriched_at": "2026-02-25T12:00:00Z"}, NOW)
    assert not policy.is_fresh({"e_enriched_at": "2026-02-20T12:00:00Z"}, NOW)
    assert not policy.is_fresh({"e_status": "failed", "e_checked_at": "2026-03-01T11:00:00Z"}, NOW)
    assert policy.is_fresh({"e_status": "not_found", "e_checked_at": "2026-03-01T11:00:00Z"}, NOW)
    assert not policy.is_fresh({"e_status": "not_found", "e_checked_at": "2026-02-27T11:00:00Z"}, NOW)
    never = FreshnessPolicy("e", max_age=None)
    assert not never.is_fresh({"e_enriched_at": "2026-03-01T11:59:00Z"}, NOW)
    assert as_timedelta(1.5, "x") == timedelta(days=1.5)
    with pytest.raises(EnrichmentConfigError, match="freshness_days"):
        as_timedelta("30", "freshness_days")
    with pytest.raises(EnrichmentConfigError, match="negative"):
        as_timedelta(-1, "freshness_days")


# -- pacing --------------------------------------------------------------------------------------------------
class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_limiter_spaces_starts_evenly_and_honours_pauses() -> None:
    clock = FakeClock()
    limiter = RequestLimiter(4, clock=clock, sleep=clock.sleep)
    starts = []
    for _ in range(5):
        with limiter.slot():
            starts.append(clock.now)
    assert starts == [100.0, 100.25, 100.5, 100.75, 101.0]
    limiter.pause_for(2.0)
    with limiter.slot():
        assert clock.now == pytest.approx(103.0)
    with limiter.slot():
        assert clock.now == pytest.approx(103.25)
    with pytest.raises(EnrichmentConfigError, match="rate_limit"):
        RequestLimiter(0)
    with pytest.raises(EnrichmentConfigError, match="max_in_flight"):
        RequestLimiter(None, 0)


def test_limiter_caps_requests_in_flight_across_threads() -> None:
    limiter = RequestLimiter(None, max_in_flight=3)
    barrier_hits = []

    def work() -> None:
        with limiter.slot():
            barrier_hits.append(limiter.in_flight)
            time.sleep(0.02)

    threads = [threading.Thread(target=work) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert limiter.peak_in_flight == 3 and max(barrier_hits) <= 3 and limiter.in_flight == 0
