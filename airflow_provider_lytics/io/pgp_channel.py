"""A bounded in-memory byte channel between a producer and a consumer thread, with file-object ends.

PGP stream stages run gpg in a worker thread and connect it to the caller's code through this channel, so data
flows through at most :data:`CHANNEL_CHUNKS` x :data:`CHUNK_SIZE` bytes of memory whatever the file size. It is
separate from the key ring because it knows nothing about gpg: it only moves bytes and propagates failures
(``fail``/``abort``/``hang_up``) so neither side waits for a peer that has gone away.
"""

from __future__ import annotations

import io
import threading
from collections import deque
from typing import Any

from airflow_provider_lytics.io.counting import CountingReader

#: Bytes moved per read from/to gpg and per channel hand-over. Each hand-over wakes a thread: a streamed decrypt of
#: 128 MiB cost 0.47 CPU-s with 64 KiB chunks and 0.38 with 1 MiB (gpg fed by ``cat`` through a pipe: 0.39).
CHUNK_SIZE = 1 << 20
#: Chunks a stream stage may hold between producer and consumer (bounded memory: 4 x 1 MiB).
CHANNEL_CHUNKS = 4


class _Channel:
    """A bounded FIFO of byte chunks: writes block when full, reads block when empty.

    ``fail`` makes reads raise (after the buffered data) and ``hang_up`` makes reads return EOF at once and
    writes raise, so neither side ever waits for a peer that has gone away.
    """

    def __init__(self, max_chunks: int = CHANNEL_CHUNKS) -> None:
        self._cond = threading.Condition()
        self._chunks: deque[bytes] = deque()
        self._max = max_chunks
        self._eof = False
        self._error: BaseException | None = None
        self._reader_gone: BaseException | None = None
        self._aborted = False
        self._abort_callbacks: list[Any] = []

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        for start in range(0, len(view), CHUNK_SIZE):
            piece = bytes(view[start : start + CHUNK_SIZE])
            with self._cond:
                while len(self._chunks) >= self._max and self._reader_gone is None:
                    self._cond.wait()
                if self._reader_gone is not None:
                    raise BrokenPipeError(str(self._reader_gone))
                if self._eof:
                    raise ValueError("write to a closed PGP stream")
                self._chunks.append(piece)
                self._cond.notify_all()

    def close(self) -> None:
        with self._cond:
            self._eof = True
            self._cond.notify_all()

    def fail(self, error: BaseException) -> None:
        with self._cond:
            self._error = error
            self._eof = True
            self._cond.notify_all()

    def abort(self, error: BaseException) -> None:
        """The producer failed: drop buffered data, make reads raise ``error`` and stop the consuming gpg."""
        with self._cond:
            self._error = error
            self._eof = True
            self._aborted = True
            self._chunks.clear()
            callbacks = list(self._abort_callbacks)
            self._cond.notify_all()
        for callback in callbacks:
            callback()

    def on_abort(self, callback: Any) -> None:
        with self._cond:
            aborted = self._aborted
            if not aborted:
                self._abort_callbacks.append(callback)
        if aborted:
            callback()

    def hang_up(self, reason: BaseException) -> None:
        with self._cond:
            self._reader_gone = reason
            self._chunks.clear()
            self._cond.notify_all()

    def read(self, size: int) -> bytes:
        with self._cond:
            while not self._chunks and not self._eof and self._reader_gone is None:
                self._cond.wait()
            if self._reader_gone is not None:
                return b""
            if not self._chunks:
                if self._error is not None:
                    raise self._error
                return b""
            chunk = self._chunks.popleft()
            if size >= 0 and len(chunk) > size:
                self._chunks.appendleft(chunk[size:])
                chunk = chunk[:size]
            self._cond.notify_all()
            return chunk


class _ChannelWriter(io.RawIOBase):
    """Writable binary file object feeding a :class:`_Channel`."""

    def __init__(self, channel: _Channel) -> None:
        super().__init__()
        self._channel = channel
        self.bytes_written = 0

    def writable(self) -> bool:
        return True

    def write(self, b: Any) -> int:
        if self.closed:
            raise ValueError("write to a closed PGP stream")
        data = bytes(b)
        self._channel.write(data)
        self.bytes_written += len(data)
        return len(data)

    def close(self) -> None:
        if not self.closed:
            self._channel.close()
        super().close()


class _ChannelReader(io.RawIOBase):
    """Readable binary file object draining a :class:`_Channel`."""

    def __init__(self, channel: _Channel) -> None:
        super().__init__()
        self.channel = channel

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        data = self.channel.read(len(b))
        b[: len(data)] = data
        return len(data)

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            return self.readall()
        return self.channel.read(size)


#: Kept under its old name for the PGP modules.
_CountingReader = CountingReader
