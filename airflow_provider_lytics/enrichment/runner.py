"""Drive an enricher over a stream of profiles: freshness skips, batching, worker threads, pacing and retries.

Profiles are consumed lazily and at most ``2 x workers`` requests are queued, so memory stays flat whatever the
audience size. Results are handed to ``on_result`` on the calling thread (one writer, no locking needed there).
Every user sent ends with exactly one result: enriched, not found or failed (with a reason), never dropped.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from functools import partial
from typing import Any

from airflow_provider_lytics.client.retry import Failure, RetryPolicy, RetryTracker
from airflow_provider_lytics.enrichment.base import (
    ENRICHED,
    NOT_FOUND,
    Enricher,
    EnrichmentConfigError,
    EnrichmentResult,
    Identifiers,
    PermanentEnrichmentError,
    TransientEnrichmentError,
)
from airflow_provider_lytics.enrichment.freshness import FreshnessPolicy
from airflow_provider_lytics.enrichment.ratelimit import RequestLimiter

log = logging.getLogger(__name__)

#: Failures (and skipped users) kept in the summary; the rest are only counted.
SAMPLE_SIZE = 10
MAX_REASON_CHARS = 300


@dataclass
class EnrichmentCounts:
    """What happened to each scanned user, plus the request bookkeeping."""

    scanned: int = 0
    skipped_fresh: int = 0
    skipped_no_identifier: int = 0
    would_send: int = 0
    sent: int = 0
    enriched: int = 0
    not_found: int = 0
    failed: int = 0
    requests: int = 0
    retries: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def identifiers_of(profile: Mapping[str, Any], fields: Sequence[str]) -> dict[str, Any]:
    """The non-empty identifier values of a profile; a multi-value field contributes its first value."""
    out: dict[str, Any] = {}
    for name in fields:
        value = profile.get(name)
        if isinstance(value, list):
            value = next((v for v in value if v not in (None, "")), None)
        if value is None or value == "":
            continue
        out[name] = value
    return out


class EnrichmentRunner:
    """One enrichment pass. Construct, then :meth:`run` with an iterable of profiles.

    :param enricher: the lookup to call (thread-safe; ``batch_size`` users per call).
    :param identifier_fields: profile fields sent to the enricher and written back as the record's keys.
    :param on_result: receives ``(identifiers, result)`` for every user sent, on the calling thread; it may
        return a replacement result (e.g. ``failed`` when the record cannot be stored), which is what is counted.
    :param freshness: skip users enriched recently (``None``: send everyone).
    :param limiter: requests/s and in-flight cap toward the third party.
    :param retry_policy: attempts and back-off for transient failures; ``Retry-After`` takes precedence.
    :param workers: concurrent requests (threads).
    :param dry_run: count who would be sent, call nothing.
    """

    def __init__(
        self,
        enricher: Enricher,
        *,
        identifier_fields: Sequence[str],
        on_result: Callable[[Identifiers, EnrichmentResult], EnrichmentResult | None],
        freshness: FreshnessPolicy | None = None,
        limiter: RequestLimiter | None = None,
        retry_policy: RetryPolicy | None = None,
        workers: int = 4,
        dry_run: bool = False,
        now: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
        clock: Callable[[], float] = time.monotonic,
        logger: logging.Logger | Any = None,
        progress_every: int = 10_000,
    ) -> None:
        if not identifier_fields:
            raise EnrichmentConfigError("identifier_fields must name at least one profile field (e.g. ['email'])")
        if workers < 1:
            raise EnrichmentConfigError(f"workers must be at least 1, got {workers}")
        if enricher.batch_size < 1:
            raise EnrichmentConfigError(f"{type(enricher).__name__}.batch_size must be at least 1")
        self.enricher = enricher
        self.identifier_fields = list(identifier_fields)
        self.on_result = on_result
        self.freshness = freshness
        self.limiter = limiter or RequestLimiter(max_in_flight=workers)
        self.retry_policy = retry_policy or RetryPolicy()
        self.workers = workers
        self.dry_run = dry_run
        self.now = now
        self.clock = clock
        self.log = logger or log
        self.progress_every = progress_every
        self.counts = EnrichmentCounts()
        self.failures: list[dict[str, Any]] = []
        self.skipped: list[dict[str, Any]] = []
        self._stop = threading.Event()
        self._batch: list[Identifiers] = []
        self._pending: set[Future] = set()
        self._executor: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    # -- main loop ------------------------------------------------------------------------------------------
    def run(self, profiles: Iterable[Mapping[str, Any]]) -> EnrichmentCounts:
        """Consume ``profiles`` and return the counts; an exception from ``on_result`` stops the run."""
        counts = self.counts
        started = self.now()
        batch: list[Identifiers] = []
        self._batch = batch
        self._pending = pending = set[Future]()
        self._executor = executor = (
            None if self.dry_run else ThreadPoolExecutor(self.workers, thread_name_prefix="lytics-enrich")
        )
        if executor is not None:
            self.enricher.open()
        try:
            for profile in profiles:
                counts.scanned += 1
                ids = identifiers_of(profile, self.identifier_fields)
                reason = "no identifier value" if not ids else self.enricher.missing(ids)
                if reason:
                    counts.skipped_no_identifier += 1
                    if len(self.skipped) < SAMPLE_SIZE:
                        self.skipped.append({"key": _key(ids or profile, self.identifier_fields), "reason": reason})
                    continue
                if self.freshness is not None and self.freshness.is_fresh(profile, started):
                    counts.skipped_fresh += 1
                    continue
                batch.append(ids)
                if len(batch) >= self.enricher.batch_size:
                    self._dispatch(executor, batch[:], pending)
                    batch.clear()
            self.settle()
        except BaseException:
            self._stop.set()
            raise
        finally:
            if executor is not None:
                executor.shutdown(wait=True, cancel_futures=True)
                self.enricher.close()
        return counts

    def settle(self) -> None:
        """Send the partial batch and wait for every request in flight; results reach ``on_result`` before this
        returns. Profile sources call it before restarting a scan (e.g. after a cursor expired)."""
        if self._batch:
            self._dispatch(self._executor, self._batch[:], self._pending)
            self._batch.clear()
        while self._pending:
            self._drain(self._pending, FIRST_COMPLETED)

    def _dispatch(self, executor: ThreadPoolExecutor | None, batch: list[Identifiers], pending: set[Future]) -> None:
        if executor is None:
            self.counts.would_send += len(batch)
            return
        self.counts.sent += len(batch)
        pending.add(executor.submit(self._call, batch))
        while len(pending) >= 2 * self.workers:
            self._drain(pending, FIRST_COMPLETED)

    def _drain(self, pending: set[Future], how: str) -> None:
        done, _ = wait(pending, return_when=how)
        for future in done:
            pending.discard(future)
            for ids, result in future.result():
                self._record(ids, result)

    def _record(self, ids: Identifiers, result: EnrichmentResult) -> None:
        result = self.on_result(ids, result) or result  # the writer may downgrade a result it cannot store
        if result.status == ENRICHED:
            self.counts.enriched += 1
        elif result.status == NOT_FOUND:
            self.counts.not_found += 1
        else:
            self.counts.failed += 1
            if len(self.failures) < SAMPLE_SIZE:
                key = _key(ids, self.identifier_fields)
                self.failures.append({"key": key, "reason": result.reason})
                self.log.warning("Enrichment failed for %s: %s", key, result.reason)
        done = self.counts.enriched + self.counts.not_found + self.counts.failed
        if self.progress_every and done % self.progress_every == 0:
            self.log.info("Enrichment progress: %s", self.counts.as_dict())

    # -- worker ---------------------------------------------------------------------------------------------
    def _call(self, batch: list[Identifiers]) -> list[tuple[Identifiers, EnrichmentResult]]:
        """One batch to the enricher with retries; always returns one result per user, never raises."""
        tracker = RetryTracker(self.retry_policy, log=self.log, clock=self.clock, label="Enrichment request")

        def attempt(n: int) -> list[tuple[Identifiers, EnrichmentResult]] | Failure:
            if self._stop.is_set():
                return _all(batch, EnrichmentResult.failed("run stopped before this user was enriched"))
            with self.limiter.slot():
                with self._lock:
                    self.counts.requests += 1
                try:
                    results = list(self.enricher.enrich_batch(batch))
                except TransientEnrichmentError as err:
                    error = err
                except PermanentEnrichmentError as err:
                    return _all(batch, EnrichmentResult.failed(_cut(err.reason)))
                except Exception as err:  # a bug or surprise in the enricher fails this batch, not the run
                    return _all(batch, EnrichmentResult.failed(_cut(f"{type(err).__name__}: {err}")))
                else:
                    if len(results) != len(batch) or not all(isinstance(r, EnrichmentResult) for r in results):
                        reason = (
                            f"{type(self.enricher).__name__}.enrich_batch returned {len(results)} results for "
                            f"{len(batch)} users; it must return one EnrichmentResult per user, in order"
                        )
                        return _all(batch, EnrichmentResult.failed(reason))
                    return list(zip(batch, results, strict=True))
            if error.retry_after is not None:
                self.limiter.pause_for(error.retry_after)  # every worker holds back, not just this one
            gave_up = EnrichmentResult.failed(_cut(f"{error.reason} (gave up after {n} attempts)"))
            return Failure(error.reason, partial(_all, batch, gave_up), retry_after=error.retry_after)

        return tracker.run(attempt, sleep=self._stop.wait, on_retry=self._count_retry)

    def _count_retry(self, delay: float) -> None:
        with self._lock:
            self.counts.retries += 1


def _all(batch: list[Identifiers], result: EnrichmentResult) -> list[tuple[Identifiers, EnrichmentResult]]:
    return [(ids, result) for ids in batch]


def _cut(reason: str) -> str:
    return reason if len(reason) <= MAX_REASON_CHARS else reason[: MAX_REASON_CHARS - 3] + "..."


def _key(ids: Mapping[str, Any], fields: Sequence[str]) -> str:
    for name in fields:
        value = ids.get(name)
        if value not in (None, "", []):
            return f"{name}={value}"
    return "<no identifier>"
