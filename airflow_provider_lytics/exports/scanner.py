"""Scan an audience page by page in a background thread, restarting cleanly when the cursor expires.

Each page request is retried by the hook (network errors, 429, 5xx; re-sending a cursor returns the same page).
A cursor that expired (``LyticsCursorExpiredError``) cannot be resumed, so the scan starts again from the
beginning; the consumer drops members it already has (the ledger dedupes by member id), so the result has no
missing and no doubled rows. Pages travel through a bounded queue: the scan runs ahead of encoding by at most
``depth`` pages. With ``isolate`` the HTTP requests run in a separate light process (:mod:`.scan_process`), so
the export's encoding work never holds up a page request.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from airflow_provider_lytics.exports.errors import ExportError

if TYPE_CHECKING:
    from airflow_provider_lytics.hooks.lytics import LyticsHook

log = logging.getLogger(__name__)
_DONE = object()


@dataclass
class ScanStats:
    """What the scan saw: audience size at start (``total`` of the first page), pages, rows, restarts."""

    size_at_start: int | None = None
    pages: int = 0
    rows: int = 0
    restarts: int = 0
    started: float = field(default_factory=time.time)


class AudienceScanner:
    """Iterate pages (lists of profile dicts) of one audience; ``close`` stops the background scan early."""

    def __init__(
        self,
        hook: LyticsHook,
        *,
        segment: str | None = None,
        filter_ql: str | None = None,
        fields: Sequence[str] | None = None,
        page_size: int = 100,
        max_restarts: int = 3,
        depth: int = 8,
        isolate: bool = False,
    ) -> None:
        if (segment is None) == (filter_ql is None):
            raise ExportError("pass exactly one of segment (id or slug) or filter_ql")
        self.hook = hook
        self.segment = segment
        self.filter_ql = filter_ql
        self.fields = list(fields) if fields else None
        self.page_size = page_size
        self.max_restarts = max_restarts
        self.isolate = isolate
        self.stats = ScanStats()
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _pages(self) -> Iterator[Any]:
        if not self.isolate:
            return self.hook.scan_pages(
                self.segment, filter_ql=self.filter_ql, fields=self.fields, limit=self.page_size
            )
        from airflow_provider_lytics.exports.scan_process import ProcessScan

        scan = ProcessScan(
            self.hook.settings, self.hook.retry_policy, segment=self.segment, filter_ql=self.filter_ql,
            fields=self.fields, limit=self.page_size,
        )  # fmt: skip
        return iter(scan)

    def _run(self) -> None:
        from airflow_provider_lytics.client.errors import LyticsCursorExpiredError
        from airflow_provider_lytics.exports.scan_process import ScanProcessUnavailableError

        try:
            while True:
                try:
                    pages = self._pages()
                    for page in pages:
                        if self.stats.size_at_start is None and page.total is not None:
                            self.stats.size_at_start = int(page.total)
                        self.stats.pages += 1
                        self.stats.rows += len(page.records)
                        if not self._put(page.records):
                            _close(pages)
                            return
                    break
                except ScanProcessUnavailableError as exc:  # that attempt produced no page: falling back is safe
                    log.warning("%s; scanning in this process instead (slower while encoding runs)", exc)
                    self.isolate = False
                except LyticsCursorExpiredError as exc:
                    if self.stats.restarts >= self.max_restarts:
                        raise ExportError(
                            f"the scan cursor expired {self.stats.restarts + 1} times (last: {exc.message}); the "
                            "export is too slow for Lytics's cursor lifetime: speed up the destination or raise "
                            "max_cursor_restarts"
                        ) from None
                    self.stats.restarts += 1
                    log.warning(
                        "Scan cursor expired after %d pages (%s); restarting the scan from the beginning "
                        "(restart %d of at most %d), members already exported are skipped",
                        self.stats.pages, exc.message, self.stats.restarts, self.max_restarts,
                    )  # fmt: skip
            self._put(_DONE)
        except BaseException as exc:
            self._put(exc)

    def _put(self, item: Any) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def __iter__(self) -> Iterator[list[dict[str, Any]]]:
        if self._thread is None:
            self.stats.started = time.time()
            self._thread = threading.Thread(target=self._run, name="lytics-export-scan", daemon=True)
            self._thread.start()
        while True:
            item = self._queue.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    def close(self) -> None:
        """Stop the background scan (if still running) and wait for it."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=120)


def scan_process_supported(hook: Any) -> bool:
    """Whether a scan process can stand in for ``hook``: only the stock hook's transport can be reproduced there."""
    from airflow_provider_lytics.hooks.lytics import LyticsHook

    if not isinstance(hook, LyticsHook):
        return False
    cls, own = type(hook), vars(hook)
    stock_class = cls.scan_pages is LyticsHook.scan_pages and cls.request is LyticsHook.request
    return stock_class and "scan_pages" not in own and "request" not in own


def _close(pages: Iterator[Any]) -> None:
    close = getattr(pages, "close", None)
    if close is not None:
        close()


def scan_ids(hook: LyticsHook, segment: str, id_field: str) -> Iterator[list[str]]:
    """Member ids of ``segment``, a page at a time (for membership columns), with cursor-expiry restarts.

    A restart may repeat ids; callers insert them idempotently.
    """
    from airflow_provider_lytics.client.errors import LyticsCursorExpiredError

    for attempt in range(4):
        try:
            for page in hook.scan_pages(segment, fields=[id_field]):
                yield [str(r[id_field]) for r in page.records if r.get(id_field) is not None]
            return
        except LyticsCursorExpiredError:
            if attempt == 3:
                raise
            log.warning("Scan cursor expired while reading members of %s; restarting that scan", segment)
