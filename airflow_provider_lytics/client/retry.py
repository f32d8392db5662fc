"""One retry policy for the sync and async hooks: exponential back-off with full jitter, ``Retry-After`` honoured.

What is retried depends on whether the call is safe to repeat:

- *safe* calls (reads, validations, ad-hoc scans, ``/collect`` posts whose duplicates are tolerable) are
  retried on connection errors, timeouts, dropped connections, 429, 500, 502, 503 and 504;
- *unsafe* calls (creating segments or jobs, job commands) are retried only when the request certainly did
  not take effect: the connection could not be opened, or Lytics answered 429.

Attempts and total time are both capped so a task never hangs on a sick API.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime

SAFE_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
UNSAFE_RETRY_STATUSES = frozenset({429})


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try. Defaults suit a worker task; triggers may pass a shorter policy."""

    max_attempts: int = 5
    base_delay: float = 0.5
    max_delay: float = 30.0
    max_total: float = 120.0
    max_retry_after: float = 120.0
    jitter: bool = True

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("RetryPolicy.max_attempts must be at least 1")
        if self.base_delay < 0 or self.max_delay < 0 or self.max_total < 0:
            raise ValueError("RetryPolicy delays must not be negative")

    def retry_on_status(self, status: int, *, safe: bool) -> bool:
        return status in (SAFE_RETRY_STATUSES if safe else UNSAFE_RETRY_STATUSES)

    def backoff(self, attempt: int, rng: random.Random | None = None) -> float:
        """Delay before attempt ``attempt + 1`` (``attempt`` counts from 1), without a server hint."""
        ceiling = min(self.max_delay, self.base_delay * (2 ** (attempt - 1)))
        if not self.jitter:
            return ceiling
        return (rng or random).uniform(ceiling / 2, ceiling)

    def delay(self, attempt: int, retry_after: float | None, rng: random.Random | None = None) -> float:
        """The wait before the next attempt: the server's ``Retry-After`` (capped) if given, else back-off."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_retry_after)
        return self.backoff(attempt, rng)

    def next_delay(self, attempt: int, elapsed: float, retry_after: float | None = None) -> float | None:
        """Seconds to wait before retrying, or ``None`` when attempts or the time budget are exhausted."""
        if attempt >= self.max_attempts:
            return None
        wait = self.delay(attempt, retry_after)
        if elapsed + wait > self.max_total:
            return None
        return wait


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Parse a ``Retry-After`` header: delta-seconds or an HTTP date. Unparseable values are ignored."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max((when - (now or datetime.now(timezone.utc))).total_seconds(), 0.0)


class RetryTracker:
    """Bookkeeping for one logical call: counts attempts, applies the policy, logs each retry once.

    The sync and async hooks drive it from their own loops so that both retry identically.
    """

    def __init__(self, policy: RetryPolicy, *, method: str, path: str, safe: bool, log, clock) -> None:
        self.policy = policy
        self.method = method
        self.path = path
        self.safe = safe
        self.log = log
        self.clock = clock
        self.started = clock()
        self.attempt = 0

    def begin(self) -> int:
        self.attempt += 1
        return self.attempt

    def _wait_or_none(self, reason: str, retry_after: float | None) -> float | None:
        wait = self.policy.next_delay(self.attempt, self.clock() - self.started, retry_after)
        if wait is not None:
            self.log.warning(
                "Lytics %s %s: %s; retrying in %.2fs (attempt %d of %d)",
                self.method,
                self.path,
                reason,
                wait,
                self.attempt + 1,
                self.policy.max_attempts,
            )
        return wait

    def on_status(self, status: int, retry_after: float | None) -> float | None:
        """Delay before retrying after an HTTP error status, or ``None`` to give up."""
        if not self.policy.retry_on_status(status, safe=self.safe):
            return None
        hint = f" (Retry-After {retry_after:g}s)" if retry_after is not None else ""
        return self._wait_or_none(f"HTTP {status}{hint}", retry_after)

    def on_transport_error(self, error: BaseException, *, connect_phase: bool) -> float | None:
        """Delay before retrying after a network failure, or ``None`` to give up.

        A failure to connect means the request never reached Lytics, so even unsafe calls retry; a failure
        after sending (reset, timeout, dropped response) is retried only for safe calls.
        """
        if not (self.safe or connect_phase):
            return None
        return self._wait_or_none(f"{type(error).__name__}", None)
