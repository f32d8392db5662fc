"""Send batches to ``/collect/bulk`` with a bounded number in flight and an explicit at-least-once retry loop.

The loop is ours, run by the package's retry driver (:class:`~airflow_provider_lytics.client.retry.RetryTracker`;
the hook is used with one attempt per call) so that every resend is accounted for: a batch
re-sent after a failure where Lytics may already have taken it (connection dropped after the request went out,
timeout) adds one to ``duplicate_sends``; a batch re-sent after 429/5xx or a refused connection is not.
"""

from __future__ import annotations

import queue
import random
import time
from collections.abc import Callable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

from airflow_provider_lytics.client.errors import (
    LyticsRateLimitError,
    LyticsServerError,
    LyticsTransportError,
)
from airflow_provider_lytics.client.retry import Failure, RetryPolicy, RetryTracker
from airflow_provider_lytics.imports.settings import UPLOAD_RETRY_POLICY  # re-exported: the settings' default

if TYPE_CHECKING:
    from airflow_provider_lytics.hooks.lytics import LyticsHook
    from airflow_provider_lytics.imports.batching import Batch


@dataclass
class BatchResult:
    """Lytics's answer for one batch, and how hard it was to get."""

    batch: Batch
    accepted: int = 0
    rejected: int = 0
    attempts: int = 1
    #: Sends of this batch that Lytics may have taken already (lost responses, plus an earlier try in flight).
    duplicate_sends: int = 0
    #: For a failed batch: whether any attempt may have reached Lytics (then a later resend may duplicate it).
    maybe_delivered: bool = False
    error: BaseException | None = None


def _failed(result: BatchResult, error: BaseException) -> BatchResult:
    result.error = error
    return result


def _ambiguous(error: LyticsTransportError) -> bool:
    """True when the request may have reached Lytics (anything but a refused or unresolvable connection)."""
    return not error.connect_phase


class BatchSender:
    """Upload batches in up to ``max_in_flight`` threads; results come back in the caller's thread.

    One hook per slot, created (and its connection resolved) by the caller, so worker threads never touch the
    Airflow connection machinery.
    """

    def __init__(
        self,
        hooks: list[LyticsHook],
        stream: str,
        *,
        upload_options: Mapping[str, Any] | None = None,
        policy: RetryPolicy = UPLOAD_RETRY_POLICY,
        log: Any = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not hooks:
            raise ValueError("BatchSender needs at least one hook")
        self.stream = stream
        self.options = dict(upload_options or {})
        self.policy = policy
        self.log = log
        self._sleep = sleep
        self._hooks: queue.Queue[LyticsHook] = queue.Queue()
        for hook in hooks:
            self._hooks.put(hook)
        self.max_in_flight = len(hooks)
        self._pool = ThreadPoolExecutor(max_workers=self.max_in_flight, thread_name_prefix="lytics-import")
        self._pending: set[Future[BatchResult]] = set()
        self._rng = random.Random()

    # -- one batch, in a worker thread -----------------------------------------------------------------
    def _send(self, batch: Batch) -> BatchResult:
        hook = self._hooks.get()
        try:
            return self._send_with(hook, batch)
        finally:
            self._hooks.put(hook)

    def _send_with(self, hook: LyticsHook, batch: Batch) -> BatchResult:
        result = BatchResult(batch, duplicate_sends=int(batch.possible_duplicate))
        lost = False  # the previous attempt may have reached Lytics
        options = {**self.options, **({"filename": batch.filename} if batch.filename else {})}
        label = f"Batch {batch.sequence} of {batch.part_name} (lines {batch.first_line}-{batch.last_line})"
        tracker = RetryTracker(self.policy, log=self.log, label=label, rng=self._rng)

        def attempt(n: int) -> BatchResult | Failure:
            nonlocal lost
            result.attempts = n
            if lost:
                result.duplicate_sends += 1
                lost = False
            try:
                data = hook.bulk_upload(
                    self.stream, batch.body, content_type=batch.content_type, gzipped=batch.gzipped, **options
                )
            except LyticsTransportError as err:
                ambiguous = _ambiguous(err)
                result.maybe_delivered |= ambiguous
                lost = ambiguous
                why = f"{'lost response' if ambiguous else 'no connection'} ({err})"
                return Failure(why, partial(_failed, result, err))
            except (LyticsRateLimitError, LyticsServerError) as err:
                return Failure(f"HTTP {getattr(err, 'status', '?')}", partial(_failed, result, err),
                               retry_after=getattr(err, "retry_after", None))  # fmt: skip
            except BaseException as err:  # 400/401/403/413: retrying cannot help
                return _failed(result, err)
            result.accepted = int(data.get("message_count") or 0)
            result.rejected = int(data.get("rejected_count") or 0)
            return result

        return tracker.run(attempt, sleep=self._sleep)

    # -- caller's thread --------------------------------------------------------------------------------
    def wait_for_slot(self) -> list[BatchResult]:
        """Block until fewer than ``max_in_flight`` batches are pending; returns the results that finished."""
        if len(self._pending) >= self.max_in_flight:
            return self._collect(block=True)
        return self._collect(block=False)

    def submit(self, batch: Batch) -> list[BatchResult]:
        """Queue ``batch``; blocks while ``max_in_flight`` batches are pending and returns those that finished."""
        done: list[BatchResult] = []
        if len(self._pending) >= self.max_in_flight:
            done = self._collect(block=True)
        self._pending.add(self._pool.submit(self._send, batch))
        return done + self._collect(block=False)

    def _collect(self, *, block: bool) -> list[BatchResult]:
        if not self._pending:
            return []
        finished, _ = wait(self._pending, timeout=None if block else 0, return_when=FIRST_COMPLETED)
        self._pending -= finished
        return [f.result() for f in finished]

    def drain(self) -> list[BatchResult]:
        """Wait for every pending batch and return the results."""
        results: list[BatchResult] = []
        while self._pending:
            results.extend(self._collect(block=True))
        return results

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
