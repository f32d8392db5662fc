"""A private asyncio event loop in a background thread, plus bounded bridges between it and the caller's thread.

The synchronous SFTP API runs its asyncssh connection on this loop, so one connection serves many calls, and
streams owned by the caller (a gpg pipe, a generator) are read or written in the caller's thread while the loop
keeps many SFTP requests in flight. Both bridges are bounded, so memory stays flat whatever the data size.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import queue
import threading
from collections.abc import AsyncIterator, Coroutine, Iterator
from typing import Any, TypeVar

T = TypeVar("T")

_END = object()
# How long a cancelled operation may take to clean up (e.g. remove a partial remote file) before we give up.
CANCEL_GRACE_SECONDS = 15.0


class _Abort:
    """Sent through a bridge when the producing side failed."""

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


class ProducerAborted(Exception):
    """Raised inside the loop when the caller's data source failed; the caller re-raises the original error."""


class LoopThread:
    """Run coroutines on an event loop owned by a daemon thread."""

    def __init__(self, name: str = "lytics-sftp-loop") -> None:
        self._name = name
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            raise RuntimeError("The SFTP event loop is not running.")
        return self._loop

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        if self.running:
            return
        ready = threading.Event()

        def _main() -> None:
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            self._loop = loop
            ready.set()
            try:
                loop.run_forever()
            finally:
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.close()

        self._thread = threading.Thread(target=_main, name=self._name, daemon=True)
        self._thread.start()
        ready.wait()

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Run ``coro`` on the loop and wait for it; on interruption cancel it and let its cleanup finish."""
        future = self.submit(coro)
        return wait_future(future, timeout)

    def call_soon(self, fn: Any, *args: Any) -> None:
        self.loop.call_soon_threadsafe(fn, *args)

    def stop(self) -> None:
        if self._loop is None or self._thread is None:
            return
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=CANCEL_GRACE_SECONDS)
        self._thread = None
        self._loop = None


def wait_future(future: concurrent.futures.Future[T], timeout: float | None = None) -> T:
    """Wait for a loop future; if the waiting thread is interrupted, cancel the work and wait for its cleanup."""
    try:
        return future.result(timeout)
    except BaseException:
        if not future.done():
            future.cancel()
            concurrent.futures.wait([future], timeout=CANCEL_GRACE_SECONDS)
        raise


class Feeder:
    """Caller thread -> loop: hand over byte chunks with at most ``depth`` chunks queued."""

    def __init__(self, loop_thread: LoopThread, depth: int) -> None:
        self._lt = loop_thread
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        self._slots = threading.Semaphore(depth)

    def put(self, chunk: bytes, consumer: concurrent.futures.Future[Any]) -> bool:
        """Queue ``chunk``; block while the queue is full. False when the consumer has already finished."""
        while not self._slots.acquire(timeout=0.05):
            if consumer.done():
                return False
        if consumer.done():
            return False
        self._lt.call_soon(self._queue.put_nowait, chunk)
        return True

    def finish(self) -> None:
        self._lt.call_soon(self._queue.put_nowait, _END)

    def abort(self, exc: BaseException) -> None:
        self._lt.call_soon(self._queue.put_nowait, _Abort(exc))

    async def chunks(self) -> AsyncIterator[bytes]:
        """Loop side: yield the chunks in order until :meth:`finish`; raise if the caller aborted."""
        while True:
            item = await self._queue.get()
            if item is _END:
                return
            if isinstance(item, _Abort):
                raise ProducerAborted(f"the data source failed: {type(item.exc).__name__}")
            self._slots.release()
            yield item


class Drain:
    """Loop -> caller thread: hand over items (byte chunks or lists of them) with at most ``depth`` waiting."""

    def __init__(self, loop_thread: LoopThread, depth: int) -> None:
        self._lt = loop_thread
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._depth = depth
        self._slots: asyncio.Semaphore | None = None

    async def put(self, chunk: Any) -> None:
        """Loop side: wait for room, then pass ``chunk`` to the caller."""
        if self._slots is None:
            self._slots = asyncio.Semaphore(self._depth)
        await self._slots.acquire()
        self._queue.put(chunk)

    def close(self, exc: BaseException | None = None) -> None:
        """Loop side: signal the end (or a failure) to the caller."""
        self._queue.put(_Abort(exc) if exc is not None else _END)

    def _release(self) -> None:
        if self._slots is not None:
            self._slots.release()

    def __iter__(self) -> Iterator[Any]:
        """Caller side: yield the items until the loop side closes the drain."""
        while True:
            item = self._queue.get()
            if item is _END:
                return
            if isinstance(item, _Abort):
                raise item.exc
            self._lt.call_soon(self._release)
            yield item
