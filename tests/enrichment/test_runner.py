"""The runner and operator with in-process enrichers (no third party): outcomes, retries, streaming, config errors."""

from __future__ import annotations

import threading
import tracemalloc
from collections.abc import Iterator

import pytest

from airflow_provider_lytics.client.retry import RetryPolicy
from airflow_provider_lytics.enrichment import (
    CallableEnricher,
    EmailDomainLookupEnricher,
    Enricher,
    EnrichmentConfigError,
    EnrichmentResult,
    EnrichmentRunner,
    FreshnessPolicy,
    HttpEnricher,
    PermanentEnrichmentError,
    TransientEnrichmentError,
)
from airflow_provider_lytics.enrichment.ratelimit import RequestLimiter
from airflow_provider_lytics.operators.enrichment import LyticsEnrichmentOperator

FAST = RetryPolicy(max_attempts=3, base_delay=0.001, max_delay=0.002, jitter=False)


def _run(enricher, profiles, **kwargs):
    results = []
    runner = EnrichmentRunner(enricher, identifier_fields=kwargs.pop("fields", ["email"]),
                              on_result=lambda ids, r: results.append((dict(ids), r)), retry_policy=FAST,
                              **kwargs)  # fmt: skip
    return runner, runner.run(profiles), results


def test_outcomes_are_counted_and_none_dropped() -> None:
    def lookup(ids):
        if ids["email"].startswith("boom"):
            raise RuntimeError("sdk exploded")
        return None if ids["email"].startswith("ghost") else {"score": len(ids["email"])}

    profiles = [{"email": "a@x.io"}, {"email": "ghost@x.io"}, {"email": "boom@x.io"}, {"user_id": "u1"},
                {"email": ["", "b@x.io"], "enrich_enriched_at": "2000-01-01T00:00:00Z"}]  # fmt: skip
    runner, counts, results = _run(CallableEnricher(lookup), profiles, workers=2,
                                   freshness=FreshnessPolicy("enrich"))  # fmt: skip
    assert counts.as_dict() | {} == {"scanned": 5, "skipped_fresh": 0, "skipped_no_identifier": 1, "would_send": 0,
                                     "sent": 4, "enriched": 2, "not_found": 1, "failed": 1, "requests": 4,
                                     "retries": 0}  # fmt: skip
    by_email = {ids["email"]: r for ids, r in results}
    assert by_email["b@x.io"].data == {"score": 6}  # first non-empty value of a multi-value identifier
    assert by_email["boom@x.io"].reason == "RuntimeError: sdk exploded"
    assert runner.skipped == [{"key": "<no identifier>", "reason": "no identifier value"}]


def test_transient_errors_retried_then_reported_permanent_not_retried() -> None:
    calls: dict[str, int] = {}
    lock = threading.Lock()

    def lookup(ids):
        with lock:
            calls[ids["email"]] = calls.get(ids["email"], 0) + 1
            n = calls[ids["email"]]
        if ids["email"] == "flaky@x.io" and n < 3:
            raise TransientEnrichmentError("HTTP 503", retry_after=0.01)
        if ids["email"] == "down@x.io":
            raise TransientEnrichmentError("HTTP 502")
        if ids["email"] == "bad@x.io":
            raise PermanentEnrichmentError("HTTP 400 bad email")
        return {"ok": True}

    profiles = [{"email": e} for e in ("flaky@x.io", "down@x.io", "bad@x.io")]
    _, counts, results = _run(CallableEnricher(lookup), profiles)
    assert calls == {"flaky@x.io": 3, "down@x.io": 3, "bad@x.io": 1}
    reasons = {ids["email"]: r.reason for ids, r in results}
    assert reasons["down@x.io"] == "HTTP 502 (gave up after 3 attempts)" and reasons["bad@x.io"] == "HTTP 400 bad email"
    assert (counts.enriched, counts.failed, counts.retries, counts.requests) == (1, 2, 4, 7)


def test_retry_after_pauses_the_shared_limiter() -> None:
    limiter = RequestLimiter(None, 2)
    paused = []
    original = limiter.pause_for
    limiter.pause_for = lambda s: (paused.append(s), original(s))  # type: ignore[method-assign]
    state = {"n": 0}

    def lookup(ids):
        state["n"] += 1
        if state["n"] == 1:
            raise TransientEnrichmentError("HTTP 429", retry_after=0.05)
        return {"ok": 1}

    _, counts, _ = _run(CallableEnricher(lookup), [{"email": "a@x.io"}], limiter=limiter, workers=2)
    assert paused == [0.05] and counts.enriched == 1 and counts.retries == 1


def test_batches_and_wrong_answer_counts() -> None:
    sizes = []

    def batch(items):
        sizes.append(len(items))
        return [{"n": i} for i, _ in enumerate(items)]

    _, counts, _ = _run(CallableEnricher(batch, batch_size=4), [{"email": f"{i}@x.io"} for i in range(10)])
    assert sorted(sizes) == [2, 4, 4] and counts.enriched == 10 and counts.requests == 3

    class Short(Enricher):
        batch_size = 2

        def enrich_batch(self, batch):
            return [EnrichmentResult.found({"a": 1})]

    _, counts, results = _run(Short(), [{"email": "a@x.io"}, {"email": "b@x.io"}])
    assert counts.failed == 2 and "must return one EnrichmentResult per user" in results[0][1].reason


def test_subclass_with_lookup_and_required_fields() -> None:
    class ById(Enricher):
        name = "by_id"
        required_fields = ("user_id",)

        def lookup(self, ids):
            return {"tier": "gold"} if ids["user_id"] == "u1" else None

    runner, counts, _ = _run(ById(), [{"user_id": "u1"}, {"user_id": "u2"}, {"email": "x@y.io"}],
                             fields=["user_id", "email"])  # fmt: skip
    assert (counts.enriched, counts.not_found, counts.skipped_no_identifier) == (1, 1, 1)
    assert runner.skipped[0]["reason"] == "no value for user_id"


def test_dry_run_calls_nothing() -> None:
    def lookup(ids):
        raise AssertionError("dry run must not call the enricher")

    _, counts, results = _run(CallableEnricher(lookup, batch_size=3), [{"email": f"{i}@x.io"} for i in range(7)],
                              dry_run=True)  # fmt: skip
    assert counts.would_send == 7 and counts.sent == 0 and counts.requests == 0 and results == []


def test_audience_is_streamed_not_held() -> None:
    """Peak memory with 20k profiles is about the same as with 2k: profiles are consumed lazily."""

    def profiles(n: int) -> Iterator[dict]:
        for i in range(n):
            yield {"email": f"user{i}@example.com", "payload": "x" * 200}

    def peak(n: int) -> int:
        enricher = CallableEnricher(lambda items: [{"a": 1}] * len(items), batch_size=10)
        runner = EnrichmentRunner(enricher, identifier_fields=["email"], on_result=lambda ids, r: None, workers=2)
        tracemalloc.start()
        runner.run(profiles(n))
        _, top = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert runner.counts.enriched == n
        return top

    small, large = peak(2_000), peak(20_000)
    assert large < small * 1.5 + 200_000, (small, large)


def test_config_errors_say_what_to_fix() -> None:
    with pytest.raises(EnrichmentConfigError, match="identifier_fields"):
        EnrichmentRunner(CallableEnricher(dict), identifier_fields=[], on_result=lambda *a: None)
    with pytest.raises(EnrichmentConfigError, match="use method POST"):
        HttpEnricher("c", batch_size=5, body={"email": "{email}"})
    with pytest.raises(EnrichmentConfigError, match="match_path"):
        HttpEnricher("c", method="POST", batch_size=5, body={"email": "{email}"}, match_path="input.email")
    with pytest.raises(EnrichmentConfigError, match="between 1 and 100"):
        EmailDomainLookupEnricher("c", batch_size=500)
    assert HttpEnricher("c", endpoint="/u/{user_id}", params={"d": "{email_domain}"}).required_fields == (
        "user_id", "email")  # fmt: skip
    with pytest.raises(ValueError, match="exactly one audience"):
        LyticsEnrichmentOperator(task_id="t", enricher=dict)
    with pytest.raises(ValueError, match="identifier_fields"):
        LyticsEnrichmentOperator(task_id="t", segment="s", enricher=HttpEnricher("c", endpoint="/u/{user_id}"))
    with pytest.raises(ValueError, match="needs one of"):
        LyticsEnrichmentOperator(task_id="t", segment="s", identifier_fields=["user_id"],
                                 enricher=EmailDomainLookupEnricher("c"))  # fmt: skip
    with pytest.raises(ValueError, match="Enricher"):
        LyticsEnrichmentOperator(task_id="t", segment="s", enricher="clearbit")  # type: ignore[arg-type]
    with pytest.raises(EnrichmentConfigError, match="freshness_days"):
        LyticsEnrichmentOperator(task_id="t", segment="s", enricher=dict, freshness_days="a month")  # type: ignore[arg-type]


def test_operator_scans_only_the_fields_it_needs_and_survives_copies() -> None:
    import copy

    op = LyticsEnrichmentOperator(task_id="t", segment="s", identifier_fields=["email", "user_id"],
                                  enricher=EmailDomainLookupEnricher("c"), field_prefix="cb")  # fmt: skip
    assert op.scan_fields() == ["email", "user_id", "cb_enriched_at", "cb_checked_at", "cb_status"]
    clone = copy.deepcopy(op)
    assert clone.enricher.caller is not op.enricher.caller and clone.enricher.caller._lock is not None
