"""Retry policy arithmetic, Retry-After parsing, and which failures each kind of call retries."""

from __future__ import annotations

import logging
import random
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import pytest

from airflow_provider_lytics.client.retry import RetryPolicy, RetryTracker, parse_retry_after


def test_backoff_grows_exponentially_and_is_capped():
    policy = RetryPolicy(base_delay=1, max_delay=5, jitter=False)
    assert [policy.backoff(a) for a in range(1, 6)] == [1, 2, 4, 5, 5]


def test_jitter_stays_within_half_to_full_ceiling():
    policy = RetryPolicy(base_delay=2, max_delay=100)
    rng = random.Random(7)
    for attempt in range(1, 6):
        ceiling = 2 * 2 ** (attempt - 1)
        for _ in range(50):
            assert ceiling / 2 <= policy.backoff(attempt, rng) <= ceiling


def test_retry_after_wins_over_backoff_and_is_capped():
    policy = RetryPolicy(base_delay=1, max_retry_after=10, jitter=False)
    assert policy.delay(1, 3.0) == 3.0
    assert policy.delay(1, 500.0) == 10.0


def test_next_delay_stops_at_max_attempts_and_time_budget():
    policy = RetryPolicy(max_attempts=3, base_delay=1, max_total=10, jitter=False)
    assert policy.next_delay(1, elapsed=0) == 1
    assert policy.next_delay(3, elapsed=0) is None
    assert policy.next_delay(2, elapsed=9.5) is None


@pytest.mark.parametrize("bad", [{"max_attempts": 0}, {"base_delay": -1}])
def test_policy_rejects_nonsense(bad):
    with pytest.raises(ValueError):
        RetryPolicy(**bad)


def test_parse_retry_after_seconds_and_http_date():
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after(" 1.5 ") == 1.5
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    now = datetime(2026, 11, 28, 12, 0, 0, tzinfo=timezone.utc)
    assert parse_retry_after(format_datetime(now + timedelta(seconds=30), usegmt=True), now=now) == 30.0
    assert parse_retry_after(format_datetime(now - timedelta(seconds=30), usegmt=True), now=now) == 0.0


def _tracker(safe: bool, **policy) -> RetryTracker:
    return RetryTracker(
        RetryPolicy(jitter=False, **policy),
        method="POST",
        path="/x",
        safe=safe,
        log=logging.getLogger("test"),
        clock=lambda: 0.0,
    )


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
def test_safe_calls_retry_transient_statuses(status):
    tracker = _tracker(safe=True)
    tracker.begin()
    assert tracker.on_status(status, None) is not None


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 413, 422])
def test_client_errors_are_never_retried(status):
    tracker = _tracker(safe=True)
    tracker.begin()
    assert tracker.on_status(status, None) is None


def test_unsafe_calls_retry_only_when_nothing_happened():
    tracker = _tracker(safe=False)
    tracker.begin()
    assert tracker.on_status(429, None) is not None
    assert tracker.on_status(503, None) is None
    assert tracker.on_transport_error(ConnectionResetError(), connect_phase=False) is None
    assert tracker.on_transport_error(ConnectionRefusedError(), connect_phase=True) is not None


def test_retries_are_logged_without_secrets(caplog):
    tracker = _tracker(safe=True)
    tracker.begin()
    with caplog.at_level(logging.WARNING):
        tracker.on_status(503, 2.0)
    assert "HTTP 503 (Retry-After 2s)" in caplog.text
    assert "attempt 2 of 5" in caplog.text
