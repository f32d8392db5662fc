"""A binary reader that counts the bytes read through it (progress reports, operation statistics)."""

from __future__ import annotations

import io
from typing import IO, Any


class CountingReader(io.RawIOBase):
    """Wrap a readable binary stream; ``count`` is the number of bytes read so far.

    :param seekable: pass ``seek``/``tell`` through to the inner stream (e.g. so a local zip can be read in place).
        Off by default: a consumer that seeks back and re-reads would make ``count`` exceed the stream's size.
    """

    def __init__(self, inner: IO[bytes], *, seekable: bool = False) -> None:
        super().__init__()
        self.inner = inner
        self.count = 0
        self._seekable = seekable

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return self._seekable and self.inner.seekable()

    def seek(self, offset: int, whence: int = 0) -> int:
        if not self._seekable:
            raise io.UnsupportedOperation("seek")
        return self.inner.seek(offset, whence)

    def tell(self) -> int:
        if not self._seekable:
            raise io.UnsupportedOperation("tell")
        return self.inner.tell()

    def read(self, size: int = -1) -> bytes:
        data = self.inner.read(size)
        self.count += len(data)
        return data

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)
