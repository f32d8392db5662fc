"""Retry policy arithmetic, Retry-After parsing, and which failures each kind of call retries."""

from __future__ import annotations

import logging
import random
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import pytest

from airflow_provider_lytics.client.retry import Failure, RetryPolicy, RetryTracker, parse_retry_after, raising


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


class Gone(Exception):
    """What the scripted calls below end with when the driver gives up."""


def _attempts(tracker: RetryTracker, failures: list) -> tuple[object, int, list[float]]:
    """Run ``tracker`` over attempts that fail with ``failures`` (status ints or ``(error, connect_phase)``) in
    turn, then succeed; returns (outcome, attempts made, waits)."""
    waits: list[float] = []

    def attempt(n: int):
        if n > len(failures):
            return "ok"
        failure = failures[n - 1]
        if isinstance(failure, int):
            return tracker.status_failure(failure, None, raising(Gone(f"HTTP {failure}")))
        error, connect_phase = failure
        return tracker.transport_failure(error, connect_phase=connect_phase, give_up=raising(Gone(repr(error))))

    try:
        outcome: object = tracker.run(attempt, sleep=waits.append)
    except Gone as gone:
        outcome = gone
    return outcome, tracker.attempt, waits


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
def test_safe_calls_retry_transient_statuses(status):
    assert _attempts(_tracker(safe=True), [status, status]) == ("ok", 3, [0.5, 1.0])


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 413, 422])
def test_client_errors_are_never_retried(status):
    outcome, attempts, waits = _attempts(_tracker(safe=True), [status])
    assert isinstance(outcome, Gone) and (attempts, waits) == (1, [])


def test_unsafe_calls_retry_only_when_nothing_happened():
    assert _attempts(_tracker(safe=False), [429])[0] == "ok"
    assert _attempts(_tracker(safe=False), [(ConnectionRefusedError(), True)])[0] == "ok"
    for failure in (503, (ConnectionResetError(), False)):
        outcome, attempts, _ = _attempts(_tracker(safe=False), [failure])
        assert isinstance(outcome, Gone) and attempts == 1


def test_gives_up_after_max_attempts_with_the_last_failure():
    outcome, attempts, waits = _attempts(_tracker(safe=True, max_attempts=3), [503, 502, 500, 503])
    assert str(outcome) == "HTTP 500" and attempts == 3 and waits == [0.5, 1.0]


def test_retry_after_replaces_backoff_and_on_retry_sees_each_wait():
    tracker = _tracker(safe=True)
    seen: list[float] = []
    script = iter([Failure("HTTP 429", raising(Gone()), retry_after=3.0), Failure("x", raising(Gone())), "done"])
    waits: list[float] = []
    assert tracker.run(lambda n: next(script), sleep=waits.append, on_retry=seen.append) == "done"
    assert waits == seen == [3.0, 1.0]


def test_give_up_may_return_the_loops_final_value():
    tracker = _tracker(safe=True, max_attempts=2)
    assert tracker.run(lambda n: Failure("HTTP 503", lambda: f"failed after {n}"), sleep=lambda s: None) == (
        "failed after 2"
    )


def test_time_budget_stops_retries():
    now = [0.0]
    tracker = RetryTracker(RetryPolicy(jitter=False, max_total=1.0), clock=lambda: now[0], label="budget")

    def sleep(seconds: float) -> None:
        now[0] += seconds

    result = tracker.run(lambda n: Failure("HTTP 503", lambda: n), sleep=sleep)
    assert result == 2  # waits 0.5 s after the first attempt; 0.5 + 1.0 would pass the 1 s budget


async def test_async_loop_retries_like_the_sync_one():
    tracker = _tracker(safe=True)
    waits: list[float] = []

    async def attempt(n: int):
        return "ok" if n == 3 else tracker.status_failure(503, None, raising(Gone()))

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    assert await tracker.run_async(attempt, sleep=sleep) == "ok"
    assert waits == [0.5, 1.0]


def test_retries_are_logged_without_secrets(caplog):
    with caplog.at_level(logging.WARNING):
        tracker = _tracker(safe=True)
        tracker.run(lambda n: "ok" if n > 1 else tracker.status_failure(503, 2.0, raising(Gone())), sleep=lambda s: 0)
    assert "Lytics POST /x: HTTP 503 (Retry-After 2s); retrying in 2.00s" in caplog.text
    assert "attempt 2 of 5" in caplog.text
