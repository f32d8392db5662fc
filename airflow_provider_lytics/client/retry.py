"""The one retry driver of the package: a policy (attempts, back-off with jitter, ``Retry-After``, time budget)
and a tracker that runs a retry loop with it, sync or async.

Every retry loop goes through :meth:`RetryTracker.run` / :meth:`RetryTracker.run_async`: the sync and async
Lytics transports, the import batch sender, the enrichment runner, webhook delivery and the SFTP connect. The
loop's attempt function says what one attempt did (a value, or a :class:`Failure` that may be retried); the
tracker counts attempts, decides the wait, logs the retry once, and sleeps with the loop's own ``sleep``.

For Lytics calls, what is retried depends on whether the call is safe to repeat:

- *safe* calls (reads, validations, ad-hoc scans, ``/collect`` posts whose duplicates are tolerable) are
  retried on connection errors, timeouts, dropped connections, 429, 500, 502, 503 and 504;
- *unsafe* calls (creating jobs or segment collections, job commands) are retried only when the request
  certainly did not take effect: the connection could not be opened, or Lytics answered 429.

Attempts and total time are both capped so a task never hangs on a sick API.
"""

from __future__ import annotations

import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar

T = TypeVar("T")

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

    def next_delay(
        self, attempt: int, elapsed: float, retry_after: float | None = None, rng: random.Random | None = None
    ) -> float | None:
        """Seconds to wait before retrying, or ``None`` when attempts or the time budget are exhausted."""
        if attempt >= self.max_attempts:
            return None
        wait = self.delay(attempt, retry_after, rng)
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


@dataclass(frozen=True)
class Failure:
    """What an attempt function returns when its attempt failed.

    :param reason: short and secret-free, for the retry log line (``HTTP 503``, ``lost response (...)``).
    :param give_up: what the call ends with when it is not retried: returns the loop's final value, or raises.
    :param retryable: whether this kind of failure may be retried at all (the budget decides the rest).
    :param retry_after: the server's ``Retry-After`` in seconds, which replaces the back-off.
    """

    reason: str
    give_up: Callable[[], Any]
    retryable: bool = True
    retry_after: float | None = None


def raising(error: BaseException) -> Callable[[], Any]:
    """A ``give_up`` that raises ``error`` (its context suppressed: the message says it all)."""

    def give_up() -> Any:
        raise error from None

    return give_up


class RetryTracker:
    """Bookkeeping and loop for one logical call: counts attempts, applies the policy, logs each retry once.

    :param label: names the call in the retry log line; defaults to ``Lytics {method} {path}``.
    :param safe: for Lytics calls, whether a repeat is harmless (see :meth:`status_failure`).
    :param log: logger for the retry warnings (``None``: silent).
    :param clock: monotonic seconds, for the time budget.
    :param rng: random source of the jitter (default: the ``random`` module).
    """

    def __init__(
        self,
        policy: RetryPolicy,
        *,
        method: str = "",
        path: str = "",
        safe: bool = True,
        log: Any = None,
        clock: Callable[[], float] = time.monotonic,
        label: str | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.policy = policy
        self.method = method
        self.path = path
        self.safe = safe
        self.log = log
        self.clock = clock
        self.label = label if label is not None else f"Lytics {method} {path}"
        self.rng = rng
        self.started = clock()
        self.attempt = 0

    def begin(self) -> int:
        self.attempt += 1
        return self.attempt

    def next_wait(self, reason: str, retry_after: float | None) -> float | None:
        """Delay before the next attempt (logged), or ``None`` when attempts or the time budget are spent."""
        wait = self.policy.next_delay(self.attempt, self.clock() - self.started, retry_after, self.rng)
        if wait is not None and self.log is not None:
            self.log.warning(
                "%s: %s; retrying in %.2fs (attempt %d of %d)",
                self.label,
                reason,
                wait,
                self.attempt + 1,
                self.policy.max_attempts,
            )
        return wait

    # -- the loop -----------------------------------------------------------------------------------------------
    def _after(self, outcome: Failure, on_retry: Callable[[float], Any] | None) -> float | None:
        wait = self.next_wait(outcome.reason, outcome.retry_after) if outcome.retryable else None
        if wait is not None and on_retry is not None:
            on_retry(wait)
        return wait

    def run(
        self,
        attempt: Callable[[int], T | Failure],
        *,
        sleep: Callable[[float], Any],
        on_retry: Callable[[float], Any] | None = None,
    ) -> T:
        """Call ``attempt(n)`` until it returns a value, or a failure that is not retried (then ``give_up()``).

        ``sleep`` waits between attempts (e.g. ``time.sleep``, or an ``Event.wait`` that a stop interrupts);
        ``on_retry`` is told each wait before it starts.
        """
        while True:
            outcome = attempt(self.begin())
            if not isinstance(outcome, Failure):
                return outcome
            wait = self._after(outcome, on_retry)
            if wait is None:
                return outcome.give_up()
            sleep(wait)

    async def run_async(
        self,
        attempt: Callable[[int], Awaitable[T | Failure]],
        *,
        sleep: Callable[[float], Awaitable[Any]],
        on_retry: Callable[[float], Any] | None = None,
    ) -> T:
        """:meth:`run` for a coroutine ``attempt`` and ``sleep`` (e.g. ``asyncio.sleep``)."""
        while True:
            outcome = await attempt(self.begin())
            if not isinstance(outcome, Failure):
                return outcome
            wait = self._after(outcome, on_retry)
            if wait is None:
                return outcome.give_up()
            await sleep(wait)

    # -- Lytics HTTP failures -------------------------------------------------------------------------------------
    def status_failure(self, status: int, retry_after: float | None, give_up: Callable[[], Any]) -> Failure:
        """An HTTP error status: retried per the policy's statuses for a safe or unsafe call."""
        hint = f" (Retry-After {retry_after:g}s)" if retry_after is not None else ""
        return Failure(f"HTTP {status}{hint}", give_up, self.policy.retry_on_status(status, safe=self.safe),
                       retry_after)  # fmt: skip

    def transport_failure(self, error: BaseException, *, connect_phase: bool, give_up: Callable[[], Any]) -> Failure:
        """A network failure. A failure to connect means the request never reached Lytics, so even unsafe calls
        retry; a failure after sending (reset, timeout, dropped response) is retried only for safe calls."""
        return Failure(type(error).__name__, give_up, self.safe or connect_phase)
