"""Pace calls toward a third party: at most N request starts per second, at most M requests in flight.

Thread-safe: worker threads call :meth:`RequestLimiter.slot` around each request. Starts are spaced evenly
(``1 / rate`` apart, no bursts), retries included. When the third party answers ``Retry-After``,
:meth:`RequestLimiter.pause_until` holds back *every* worker, not only the one that was told.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from airflow_provider_lytics.enrichment.base import EnrichmentConfigError


class RequestLimiter:
    """Requests-per-second spacing plus an in-flight cap, shared by all workers of one run.

    :param rate: maximum request starts per second (``None``: no limit).
    :param max_in_flight: maximum concurrent requests (``None``: no cap beyond the worker count).
    """

    def __init__(
        self,
        rate: float | None = None,
        max_in_flight: int | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate is not None and not rate > 0:
            raise EnrichmentConfigError(f"rate_limit must be a positive number of requests per second, got {rate}")
        if max_in_flight is not None and max_in_flight < 1:
            raise EnrichmentConfigError(f"max_in_flight must be at least 1, got {max_in_flight}")
        self.rate = rate
        self.interval = 1.0 / rate if rate else 0.0
        self.max_in_flight = max_in_flight
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._next_start = float("-inf")
        self._paused_until = float("-inf")
        self._slots = threading.BoundedSemaphore(max_in_flight) if max_in_flight else None
        self.in_flight = 0
        self.peak_in_flight = 0
        self.waited = 0.0

    def pause_until(self, when: float) -> None:
        """Start no request before ``when`` (a ``clock()`` value), e.g. after a 429 with ``Retry-After``."""
        with self._lock:
            self._paused_until = max(self._paused_until, when)

    def pause_for(self, seconds: float) -> None:
        self.pause_until(self._clock() + max(seconds, 0.0))

    def _reserve(self) -> float:
        """Book the next start time (evenly spaced, after any pause) and return it."""
        with self._lock:
            start = max(self._clock(), self._next_start, self._paused_until)
            self._next_start = start + self.interval
            return start

    def acquire(self) -> None:
        """Block until a request may start; pair with :meth:`release` (or use :meth:`slot`)."""
        if self._slots is not None:
            self._slots.acquire()
        try:
            while True:
                start = self._reserve()
                now = self._clock()
                if start > now:
                    self.waited += start - now
                    self._sleep(start - now)
                with self._lock:
                    if self._paused_until <= max(start, self._clock()):
                        self.in_flight += 1
                        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
                        return
                # a pause arrived while this worker waited for its turn: book again after the pause
        except BaseException:
            if self._slots is not None:
                self._slots.release()
            raise

    def release(self) -> None:
        with self._lock:
            self.in_flight -= 1
        if self._slots is not None:
            self._slots.release()

    @contextmanager
    def slot(self) -> Iterator[None]:
        """``with limiter.slot(): send()``: waits for the rate and an in-flight slot, frees the slot after."""
        self.acquire()
        try:
            yield
        finally:
            self.release()
