"""Pipelined SFTP reads and writes: many block requests in flight on one file handle, hashing as data passes.

asyncssh's own ``get``/``put`` pipeline too, but they cannot checksum while streaming nor take a stream as the
source, so the transfer engine drives the file handle itself: writes are issued at increasing offsets with at most
``max_requests`` outstanding; reads are issued ahead and yielded strictly in order.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterable, AsyncIterator, Iterable
from typing import TYPE_CHECKING, Any

from airflow_provider_lytics.io.sftp_errors import SftpTransferError

if TYPE_CHECKING:
    import hashlib

    from asyncssh import SFTPClientFile

# Servers that advertise no limits must accept 32 KiB requests (SFTP draft); 256 KiB is OpenSSH's limit.
SAFE_BLOCK_SIZE = 32 * 1024
MAX_BLOCK_SIZE = 256 * 1024
DEFAULT_MAX_REQUESTS = 32


def choose_block_size(max_read_len: int, max_write_len: int, requested: int | None = None) -> int:
    """Largest request size the server accepts (capped), or ``requested`` if given and accepted."""
    server_limit = min(max_read_len, max_write_len)
    if server_limit <= 16 * 1024:
        # No limits@openssh.com reply: asyncssh assumes 16 KiB, every server takes 32 KiB.
        server_limit = SAFE_BLOCK_SIZE
    size = min(server_limit, MAX_BLOCK_SIZE)
    if requested:
        size = min(requested, server_limit)
    return max(1024, size)


async def _as_async(chunks: AsyncIterable[bytes] | Iterable[bytes]) -> AsyncIterator[bytes]:
    if hasattr(chunks, "__aiter__"):
        async for chunk in chunks:  # type: ignore[union-attr]
            yield chunk
    else:
        for chunk in chunks:  # type: ignore[union-attr]
            yield chunk


async def pipelined_write(
    remote: SFTPClientFile,
    chunks: AsyncIterable[bytes] | Iterable[bytes],
    *,
    block_size: int,
    max_requests: int,
    hasher: hashlib._Hash | None = None,
) -> int:
    """Write every chunk to ``remote`` in order of offset with up to ``max_requests`` writes outstanding.

    Returns the number of bytes written. On any error the outstanding writes are cancelled and the error raised.
    """
    loop = asyncio.get_running_loop()
    slots = asyncio.Semaphore(max_requests)
    inflight: set[asyncio.Task[Any]] = set()
    errors: list[BaseException] = []

    def _done(task: asyncio.Task[Any]) -> None:
        inflight.discard(task)
        slots.release()
        if not task.cancelled() and task.exception() is not None:
            errors.append(task.exception())  # type: ignore[arg-type]

    offset = 0
    try:
        async for chunk in _as_async(chunks):
            if not isinstance(chunk, (bytes, bytearray, memoryview)):
                raise TypeError(f"upload chunks must be bytes, got {type(chunk).__name__}")
            # Slices of a memoryview: asyncssh frames each piece with one copy, so none is made here.
            view = memoryview(chunk).cast("B")
            for start in range(0, len(view), block_size):
                piece = view[start : start + block_size]
                if hasher is not None:
                    hasher.update(piece)
                await slots.acquire()
                if errors:
                    raise errors[0]
                task = loop.create_task(remote.write(piece, offset))  # type: ignore[type-var]  # memoryview is written as bytes
                inflight.add(task)
                task.add_done_callback(_done)
                offset += len(piece)
        while inflight:
            await asyncio.wait(set(inflight))
        if errors:
            raise errors[0]
    except BaseException:
        for task in list(inflight):
            task.cancel()
        if inflight:
            await asyncio.gather(*inflight, return_exceptions=True)
        raise
    return offset


async def _read_exact(remote: SFTPClientFile, offset: int, size: int, path: str) -> bytes:
    parts: list[bytes] = []
    while size > 0:
        data = await remote.read(size, offset)
        if not data:
            raise SftpTransferError(f"{path} became shorter while it was being downloaded; retry the download.")
        parts.append(data)  # type: ignore[arg-type]  # a binary-mode file reads bytes
        offset += len(data)
        size -= len(data)
    return b"".join(parts)


async def pipelined_read(
    remote: SFTPClientFile,
    size: int,
    *,
    block_size: int,
    max_requests: int,
    path: str,
) -> AsyncIterator[bytes]:
    """Yield the first ``size`` bytes of ``remote`` in order, keeping ``max_requests`` reads in flight."""
    loop = asyncio.get_running_loop()
    window: deque[tuple[int, int, asyncio.Task[bytes]]] = deque()
    next_offset = 0

    def _schedule() -> None:
        nonlocal next_offset
        length = min(block_size, size - next_offset)
        window.append((next_offset, length, loop.create_task(remote.read(length, next_offset))))
        next_offset += length

    try:
        while next_offset < size and len(window) < max_requests:
            _schedule()
        while window:
            offset, length, task = window.popleft()
            if next_offset < size:
                _schedule()
            data = await task
            if len(data) < length:
                data += await _read_exact(remote, offset + len(data), length - len(data), path)
            yield data
    finally:
        for _, _, task in window:
            task.cancel()
        if window:
            await asyncio.gather(*(t for _, _, t in window), return_exceptions=True)
