"""Progress lines in the task log at a steady interval: rows/s and bytes done of total."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from airflow_provider_lytics.imports.counts import ImportCounts


def _mb(n: int) -> str:
    return f"{n / 1e6:,.1f} MB"


class ProgressReporter:
    """Call :meth:`tick` often (it is cheap); it logs at most every ``interval`` seconds."""

    def __init__(
        self,
        log: Any,
        counts: ImportCounts,
        *,
        interval: float = 30.0,
        total_bytes: int | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if interval <= 0:
            raise ValueError(f"progress_interval must be positive, got {interval}")
        self.log, self.counts, self.interval, self.total_bytes = log, counts, interval, total_bytes
        self.clock = clock
        self.started = self.last = clock()
        self._last_rows = 0
        self.lines_logged = 0

    def tick(self, bytes_done: int) -> None:
        now = self.clock()
        if now - self.last >= self.interval:
            self.report(bytes_done, now)

    def report(self, bytes_done: int, now: float | None = None, *, final: bool = False) -> None:
        now = self.clock() if now is None else now
        c = self.counts
        elapsed = max(now - self.started, 1e-9)
        window = max(now - self.last, 1e-9)
        rate_now = (c.rows_read - self._last_rows) / window
        done = _mb(bytes_done)
        if self.total_bytes:
            done += f" of {_mb(self.total_bytes)} ({100.0 * bytes_done / self.total_bytes:.1f}%)"
        self.log.info(
            "Import %s: %d rows read (%.0f rows/s now, %.0f rows/s overall), %s, %d sent, %d rejected here, "
            "%d rejected by Lytics, %.0fs elapsed",
            "finished" if final else "progress", c.rows_read, rate_now, c.rows_read / elapsed, done, c.rows_sent,
            c.rejected_here, c.rejected_by_lytics, elapsed,
        )  # fmt: skip
        self.last, self._last_rows = now, c.rows_read
        self.lines_logged += 1
