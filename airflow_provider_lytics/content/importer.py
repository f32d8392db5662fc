"""Import content documents: one ``POST /api/content/corpus`` per document, a bounded number in flight.

Documents are read and checked first (see :mod:`.documents`); a document that fails the checks is written to the
rejects file with its source, line and reason and never sent. Valid ones are sent by ``concurrency`` worker
threads (each with its own hook, so no HTTP session is shared), at most ``batch_size`` documents read ahead, and
optionally no more than ``rate_limit`` requests started per second. Each request is retried by the hook's retry
policy (network errors, 429, 5xx; a corpus upsert by URL is idempotent). Lytics refusing a document (400, 413,
422) rejects that document, with Lytics's message as the reason; any other failure (a bad token, Lytics down
after the retries) stops the import: a task retry sends everything again, which converges because documents are
upserted by URL.
"""

from __future__ import annotations

import json
import queue
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from airflow_provider_lytics.client.errors import LyticsApiError, LyticsBadRequestError, LyticsPayloadTooLargeError
from airflow_provider_lytics.content.documents import SourceDocument
from airflow_provider_lytics.imports.quarantine import QuarantineWriter

DEFAULT_CONCURRENCY = 4
MAX_CONCURRENCY = 32
DEFAULT_BATCH_SIZE = 100


class ContentSender(Protocol):
    """What sends one document (a :class:`~airflow_provider_lytics.hooks.lytics.LyticsHook` does)."""

    def upsert_content_document(self, document: dict[str, Any]) -> tuple[dict[str, Any], bool]: ...


@dataclass
class ContentImportCounts:
    """``read`` documents read; ``sent`` accepted by Lytics (``created`` + ``updated``); ``rejected_here``
    refused by the local checks; ``rejected_by_lytics`` refused by Lytics. ``read == sent + rejected_here +
    rejected_by_lytics`` once an import has finished."""

    files: int = 0
    read: int = 0
    sent: int = 0
    created: int = 0
    updated: int = 0
    rejected_here: int = 0
    rejected_by_lytics: int = 0
    topics: Counter = field(default_factory=Counter)

    def as_dict(self, top_topics: int = 10) -> dict[str, Any]:
        out = {k: v for k, v in asdict(self).items() if k != "topics"}
        out["topics"] = dict(self.topics.most_common(top_topics))
        return out


class ContentImportError(Exception):
    """The import stopped (not a per-document rejection); ``counts`` tells how far it got."""

    def __init__(self, message: str, counts: ContentImportCounts) -> None:
        super().__init__(message)
        self.counts = counts


class _Pace:
    """At most ``rate`` request starts per second, evenly spaced, across all workers."""

    def __init__(self, rate: float | None, clock: Callable[[], float] = time.monotonic) -> None:
        if rate is not None and not rate > 0:
            raise ValueError(f"rate_limit must be a positive number of requests per second, got {rate}")
        self.interval = 1.0 / rate if rate else 0.0
        self._next = 0.0
        self._lock = threading.Lock()
        self._clock = clock

    def wait(self) -> None:
        if not self.interval:
            return
        with self._lock:
            now = self._clock()
            start = max(now, self._next)
            self._next = start + self.interval
        if start > now:
            time.sleep(start - now)


class ContentImporter:
    """Send checked documents with ``concurrency`` workers; ``sender_factory`` makes one sender per worker."""

    def __init__(
        self,
        sender_factory: Callable[[], ContentSender],
        *,
        concurrency: int = DEFAULT_CONCURRENCY,
        batch_size: int = DEFAULT_BATCH_SIZE,
        rate_limit: float | None = None,
        rejects: QuarantineWriter | None = None,
        log: Any = None,
    ) -> None:
        if not 1 <= concurrency <= MAX_CONCURRENCY:
            raise ValueError(f"concurrency must be between 1 and {MAX_CONCURRENCY}, got {concurrency}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.sender_factory = sender_factory
        self.concurrency = concurrency
        self.batch_size = max(batch_size, concurrency)
        self.pace = _Pace(rate_limit)
        self.rejects = rejects or QuarantineWriter(None)
        self.log = log
        self.counts = ContentImportCounts()
        self._local = threading.local()
        self._senders: list[ContentSender] = []
        self._senders_lock = threading.Lock()

    def _sender(self) -> ContentSender:
        sender = getattr(self._local, "sender", None)
        if sender is None:
            sender = self._local.sender = self.sender_factory()
            with self._senders_lock:
                self._senders.append(sender)
        return sender

    def _send(self, item: SourceDocument) -> tuple[dict[str, Any], bool]:
        self.pace.wait()
        return self._sender().upsert_content_document(item.document or {})

    def run(self, documents: Iterable[SourceDocument]) -> ContentImportCounts:
        """Send every valid document of ``documents``; raises :class:`ContentImportError` when the import stops."""
        counts = self.counts
        in_flight: dict[Future, SourceDocument] = {}
        finished: queue.SimpleQueue[Future] = queue.SimpleQueue()  # futures in completion order: O(1) per document
        try:
            with ThreadPoolExecutor(self.concurrency, thread_name_prefix="lytics-content") as pool:
                try:
                    for item in documents:
                        counts.read += 1
                        if item.error is not None:
                            counts.rejected_here += 1
                            self.rejects.write(item.source, item.line, item.error, item.raw)
                            continue
                        future = pool.submit(self._send, item)
                        in_flight[future] = item
                        future.add_done_callback(finished.put)
                        while len(in_flight) >= self.batch_size:
                            self._settle(finished.get(), in_flight)
                    while in_flight:
                        self._settle(finished.get(), in_flight)
                except BaseException:
                    for future in in_flight:
                        future.cancel()
                    raise
        finally:
            self._close_senders()
        return counts

    def _settle(self, future: Future, in_flight: dict[Future, SourceDocument]) -> None:
        """Count one finished send (a refused document goes to the rejects file)."""
        item = in_flight.pop(future)
        try:
            saved, created = future.result()
        except (LyticsBadRequestError, LyticsPayloadTooLargeError) as exc:
            self.counts.rejected_by_lytics += 1
            self.rejects.write(item.source, item.line, f"Lytics refused it: {exc.message}", item.raw)
            return
        except LyticsApiError as exc:
            raise ContentImportError(
                f"content import stopped at {item.source} line {item.line}: {exc}", self.counts
            ) from exc
        except Exception as exc:
            raise ContentImportError(
                f"content import stopped at {item.source} line {item.line}: {type(exc).__name__}: {exc}", self.counts
            ) from exc
        self.counts.sent += 1
        self.counts.topics.update(saved.get("topics") or [])
        if created:
            self.counts.created += 1
        else:
            self.counts.updated += 1

    def _close_senders(self) -> None:
        for sender in self._senders:
            close = getattr(sender, "close", None)
            if close is not None:
                close()
        self._senders.clear()


def dataframe_documents(frame: Any, name: str = "dataframe") -> Iterator[SourceDocument]:
    """Documents from the rows of a pandas DataFrame (line = 1-based row number); NaN cells are left out."""
    from airflow_provider_lytics.content.documents import check_document

    records = frame.to_dict(orient="records")
    for line, record in enumerate(records, 1):
        doc, error = check_document({str(k): v for k, v in record.items() if v is not None and v == v})
        yield SourceDocument(name, line, json.dumps(record, default=str, ensure_ascii=False)[:65536], doc, error)
