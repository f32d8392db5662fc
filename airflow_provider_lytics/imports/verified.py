"""Decrypt a PGP source completely, and verify it, before the import reads a single row.

gpg checks a message's integrity (MDC or AEAD tag) and its signature only at the end of the stream, so rows
decrypted while downloading could reach Lytics before a manipulated file is noticed. Here the plaintext goes to a
private spool file first; the import reads it only after gpg exited 0 with a good result. The spool is an
anonymous temporary file (``O_TMPFILE``, or unlinked at once where that is missing) created in a fresh ``0700``
directory that is removed straight away: it has no name on disk while it is used, and a ``kill -9`` leaves
nothing behind. Memory stays flat (bounded buffers); disk holds one plaintext file at a time.
"""

from __future__ import annotations

import contextlib
import io
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any, cast

from airflow_provider_lytics.imports.formats import ImportInputError

#: Bytes copied per read from the spool (the import reads through a 64 KiB buffer on top).
_SPOOL_CHUNK = 1 << 20


class ImportIntegrityError(ImportInputError):
    """A PGP source failed decryption, its integrity check or the required signature; nothing of it was sent."""


class _SpoolReader(io.RawIOBase):
    """Read the verified plaintext; ``bytes_in`` maps progress onto the ciphertext size the import expects."""

    def __init__(self, spool: IO[bytes], plain_size: int, cipher_size: int) -> None:
        super().__init__()
        self._spool, self._plain, self._cipher = spool, plain_size, cipher_size

    @property
    def bytes_in(self) -> int:
        pos = self._spool.tell()
        return self._cipher if pos >= self._plain else (pos * self._cipher) // max(self._plain, 1)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._spool.seek(offset, whence)

    def tell(self) -> int:
        return self._spool.tell()

    def readinto(self, buffer: Any) -> int:
        return self._spool.readinto(buffer)  # type: ignore[attr-defined,no-any-return]


def anonymous_spool(tmp_dir: str | None) -> IO[bytes]:
    """An unnamed read/write temporary file (mode 0600) made inside a private directory that is removed at once."""
    private = tempfile.mkdtemp(prefix="lytics-import-pgp-", dir=tmp_dir)  # mode 0700
    try:
        return tempfile.TemporaryFile(dir=private, prefix="plain-")  # unlinked before it is returned
    finally:
        Path(private).rmdir()


@contextlib.contextmanager
def verified_plaintext(
    name: str,
    feed: Callable[[IO[bytes]], Any],
    decryptor: Callable[[IO[bytes]], contextlib.AbstractContextManager[IO[bytes]]],
    *,
    tmp_dir: str | None = None,
) -> Iterator[IO[bytes]]:
    """Yield the plaintext of the PGP file ``name`` once gpg has decrypted and verified all of it.

    ``feed(writer)`` writes the whole ciphertext into ``writer``; ``decryptor(sink)`` is a stream stage such as
    :meth:`PgpHook.open_decryptor` (it raises when gpg reports a failure). On a PGP failure nothing is yielded
    and :class:`ImportIntegrityError` names the file; the spool is gone whatever happens.
    """
    from airflow_provider_lytics.io.pgp_errors import PgpError

    with anonymous_spool(tmp_dir) as spool:
        counter = _CountingWriter()
        try:
            with decryptor(spool) as plain:
                feed(cast(IO[bytes], _Tee(plain, counter)))
        except PgpError as exc:
            raise ImportIntegrityError(
                f"{name}: PGP decryption or verification failed, so no row of it was sent to Lytics: {exc}. "
                "Ask the sender for an intact file encrypted to this key (and signed, when a signature is required)"
            ) from None
        spool.flush()
        plain_size = spool.tell()
        spool.seek(0)
        yield io.BufferedReader(_SpoolReader(spool, plain_size, counter.count), _SPOOL_CHUNK)  # type: ignore[arg-type]


class _CountingWriter:
    def __init__(self) -> None:
        self.count = 0


class _Tee(io.RawIOBase):
    """Pass ciphertext to the decryptor, counting it (the source size is known in ciphertext bytes)."""

    def __init__(self, inner: IO[bytes], counter: _CountingWriter) -> None:
        super().__init__()
        self.inner, self.counter = inner, counter

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self.inner.write(data)
        self.counter.count += len(data)
        return len(data)
