"""Input formats and compression: detect them and open decompressed, byte-counted streams.

gzip is decompressed as a stream; zip archives need random access, so a non-seekable zip source is first spooled
to a temporary file on disk (never into memory). Each zip member is imported as its own source part.
"""

from __future__ import annotations

import contextlib
import errno
import io
import shutil
import tempfile
from collections.abc import Iterator
from typing import IO, Any, Literal

Format = Literal["csv", "ndjson", "json"]
FORMATS = ("csv", "ndjson", "json")
COMPRESSIONS = ("infer", "gzip", "zip", "none")
CSV_DELIMITERS = {",": ",", "\t": "\t", "tab": "\t", "t": "\t", "|": "|", ";": ";"}
_GZIP_MAGIC = b"\x1f\x8b"
_ZIP_MAGIC = b"PK\x03\x04"
_EXT_FORMATS = {".csv": "csv", ".tsv": "csv", ".txt": "csv", ".psv": "csv", ".ndjson": "ndjson", ".jsonl": "ndjson",
                ".json": "json"}  # fmt: skip
_COMPRESSION_EXTS = (".gz", ".gzip", ".zip", ".pgp", ".gpg", ".asc")


class ImportInputError(ValueError):
    """A source cannot be read as configured; the message names the file and what to change."""


def normalize_delimiter(value: str) -> str:
    try:
        return CSV_DELIMITERS[value]
    except KeyError:
        raise ImportInputError(
            f"CSV delimiter {value!r} is not supported by Lytics: use ',', tab ('\\t'), '|' or ';'"
        ) from None


def strip_transport_exts(name: str) -> str:
    """``users.csv.gz.pgp`` -> ``users.csv``: drop compression and encryption suffixes."""
    lower = name.lower()
    changed = True
    while changed:
        changed = False
        for ext in _COMPRESSION_EXTS:
            if lower.endswith(ext):
                name, lower, changed = name[: -len(ext)], lower[: -len(ext)], True
    return name


def infer_format(name: str, fmt: str | None) -> Format:
    """The explicit ``fmt``, or the one the file name suggests (``.csv``, ``.ndjson``, ``.jsonl``, ``.json``...)."""
    if fmt:
        if fmt not in FORMATS:
            raise ImportInputError(f"Unknown input format {fmt!r}: use one of {', '.join(FORMATS)}")
        return fmt  # type: ignore[return-value]
    base = strip_transport_exts(name).lower()
    for ext, found in _EXT_FORMATS.items():
        if base.endswith(ext):
            return found  # type: ignore[return-value]
    raise ImportInputError(
        f"Cannot tell the format of {name!r} from its name: pass file_format='csv', 'ndjson' or 'json'"
    )


def _peek(stream: IO[bytes], size: int = 4) -> tuple[bytes, IO[bytes]]:
    """First bytes of ``stream`` and a stream that still yields them."""
    if stream.seekable():
        pos = stream.tell()
        head = stream.read(size)
        stream.seek(pos)
        return head, stream
    buffered = stream if isinstance(stream, io.BufferedReader) else io.BufferedReader(stream, 1 << 16)  # type: ignore[arg-type,type-var]
    return buffered.peek(size)[:size], buffered


def detect_compression(name: str, head: bytes, compression: str) -> str:
    if compression not in COMPRESSIONS:
        raise ImportInputError(f"Unknown compression {compression!r}: use one of {', '.join(COMPRESSIONS)}")
    if compression != "infer":
        return compression
    if head.startswith(_GZIP_MAGIC):
        return "gzip"
    if head.startswith(_ZIP_MAGIC):
        return "zip"
    return "none"


@contextlib.contextmanager
def _seekable(stream: IO[bytes], tmp_dir: str | None) -> Iterator[IO[bytes]]:
    if stream.seekable():
        yield stream
        return
    with tempfile.TemporaryFile(dir=tmp_dir, prefix="lytics-import-zip-") as spool:
        shutil.copyfileobj(stream, spool, 1 << 20)
        spool.seek(0)
        yield spool


#: Exceptions a decompressor raises for damaged or unsupported data (not for I/O failures underneath).
def _damage_errors() -> tuple[type[BaseException], ...]:
    import gzip
    import zipfile
    import zlib

    return (EOFError, gzip.BadGzipFile, zlib.error, zipfile.BadZipFile, NotImplementedError)


def _damaged(name: str, kind: str, exc: BaseException) -> ImportInputError:
    what = str(exc) or type(exc).__name__
    if isinstance(exc, EOFError):
        what = f"the data ends early, the file is truncated ({what})"
    return ImportInputError(
        f"{name}: the {kind} data is damaged or unsupported: {what}. Re-create or re-send the file "
        f"(or set compression='none' if it is not {kind})"
    )


class _Guarded(io.RawIOBase):
    """A decompressed stream whose decompression faults become one :class:`ImportInputError` naming the file."""

    def __init__(self, inner: IO[bytes], name: str, kind: str) -> None:
        super().__init__()
        self.inner, self.name, self.kind = inner, name, kind
        self._errors = _damage_errors()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        try:
            data = self.inner.read(len(buffer))
        except self._errors as exc:
            raise _damaged(self.name, self.kind, exc) from None
        buffer[: len(data)] = data
        return len(data)


def _guarded(inner: IO[bytes], name: str, kind: str) -> IO[bytes]:
    return io.BufferedReader(_Guarded(inner, name, kind), 1 << 16)  # type: ignore[arg-type]


def open_parts(
    stream: IO[bytes], name: str, *, compression: str = "infer", tmp_dir: str | None = None
) -> Iterator[tuple[str, IO[bytes]]]:
    """Yield ``(part name, decompressed binary stream)`` for a source: one part, or one per zip member.

    Each part stream is only valid until the next part is requested.
    """
    head, stream = _peek(stream)
    kind = detect_compression(name, head, compression)
    if kind == "gzip":
        import gzip

        with gzip.GzipFile(fileobj=stream, mode="rb") as unzipped:
            yield name, _guarded(unzipped, name, "gzip")  # type: ignore[arg-type]
    elif kind == "zip":
        import zipfile

        broken: tuple[type[BaseException], ...] = (
            *_damage_errors(),
            ValueError,
            RuntimeError,
        )  # ValueError: "negative seek value" in bad headers
        with _seekable(stream, tmp_dir) as seekable:
            try:
                archive = zipfile.ZipFile(seekable)
            except broken as exc:
                raise ImportInputError(f"{name} is not a readable zip archive: {exc}; re-create the archive") from None
            with archive:
                members = [m for m in archive.infolist() if not m.is_dir() and not _hidden(m.filename)]
                if not members:
                    raise ImportInputError(f"zip archive {name} holds no files")
                for member in members:
                    part = f"{name}!{member.filename}"
                    try:
                        handle = archive.open(member)
                    except broken as exc:
                        raise _damaged(part, "zip", exc) from None
                    except OSError as exc:  # a seek before the start of a local file: a header points nowhere
                        if exc.errno != errno.EINVAL:
                            raise
                        raise _damaged(part, "zip", exc) from None
                    with handle:
                        yield part, _guarded(handle, part, "zip")  # type: ignore[arg-type]
    else:
        yield name, stream


def _hidden(member: str) -> bool:
    base = member.rstrip("/").rsplit("/", 1)[-1]
    return member.startswith("__MACOSX/") or base.startswith(".")
