"""A bounded byte pipe between two threads: the writer blocks when the reader falls behind (flat memory), and
either side can fail the other, so no stage waits forever on a dead partner."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator

from airflow_provider_lytics.exports.errors import ExportAbortedError

CHUNK_BYTES = 256 * 1024
DEPTH = 16  # chunks in flight: at most DEPTH x CHUNK_BYTES (4 MiB) buffered per pipe
_POLL = 0.2


class _End:
    pass


_END = _End()


class BytePipe:
    """``write`` bytes in one thread, iterate chunks in another. ``abort(exc)`` from the writer makes the reader
    raise ``exc``; ``fail(exc)`` from the reader makes the next ``write`` raise."""

    def __init__(self, depth: int = DEPTH, chunk_bytes: int = CHUNK_BYTES) -> None:
        self._queue: queue.Queue[bytes | _End | BaseException] = queue.Queue(maxsize=depth)
        self._chunk = chunk_bytes
        self._pending: list[bytes] = []
        self._pending_size = 0
        self._reader_error: BaseException | None = None
        self._closed = False
        self._lock = threading.Lock()

    # -- writer side ----------------------------------------------------------------------------------------
    def write(self, data: bytes) -> int:
        if self._closed:
            raise ValueError("write to a closed pipe")
        self._check_reader()
        if data:
            self._pending.append(bytes(data))
            self._pending_size += len(data)
            if self._pending_size >= self._chunk:
                self._put(b"".join(self._pending))
                self._pending, self._pending_size = [], 0
        return len(data)

    def close(self) -> None:
        """End of data: the reader sees the remaining bytes, then the end."""
        if self._closed:
            return
        if self._pending:
            self._put(b"".join(self._pending))
            self._pending, self._pending_size = [], 0
        self._closed = True
        self._put(_END)

    def abort(self, exc: BaseException) -> None:
        """Tell the reader the data is incomplete: its iteration raises ``exc`` (never blocks)."""
        self._closed = True
        self._pending = []
        while True:
            try:
                self._queue.put_nowait(exc)
                return
            except queue.Full:
                try:
                    self._queue.get_nowait()  # drop data nobody will use to make room for the error
                except queue.Empty:
                    pass

    def _put(self, item: bytes | _End) -> None:
        while True:
            self._check_reader()
            try:
                self._queue.put(item, timeout=_POLL)
                return
            except queue.Full:
                continue

    def _check_reader(self) -> None:
        if self._reader_error is not None:
            raise ExportAbortedError(f"the file upload stopped: {self._reader_error}") from self._reader_error

    # -- reader side ----------------------------------------------------------------------------------------
    def fail(self, exc: BaseException) -> None:
        """The reader gave up: the writer's next write raises."""
        self._reader_error = exc
        try:  # unblock a writer waiting on a full queue
            while True:
                self._queue.get_nowait()
        except queue.Empty:
            pass

    def __iter__(self) -> Iterator[bytes]:
        while True:
            item = self._queue.get()
            if isinstance(item, _End):
                return
            if isinstance(item, BaseException):
                raise item
            yield item
