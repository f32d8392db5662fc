"""Import sources: local files and globs, Airflow object storage paths, SFTP files (optionally PGP-encrypted),
and pandas DataFrames. Each is a :class:`SourceFile` whose ``open()`` yields the raw bytes as a stream.

SFTP files are downloaded in a background thread into a small bounded pipe that the reader drains: nothing is
staged on disk and memory stays at a few hundred KiB per file. PGP files (SFTP or local) are decrypted and
verified completely before the first row is read (see :mod:`~airflow_provider_lytics.imports.verified`).
"""

from __future__ import annotations

import contextlib
import functools
import glob
import io
import json
import os
import queue
import shutil
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from airflow_provider_lytics.imports.formats import ImportInputError
from airflow_provider_lytics.imports.verified import verified_plaintext

if TYPE_CHECKING:
    from airflow_provider_lytics.io.sftp import SftpSession

_PIPE_CHUNKS = 16
_DF_CHUNK_ROWS = 10_000


@dataclass
class SourceFile:
    """One input: ``name`` for logs and the quarantine, ``key`` identifies its content for checkpoints."""

    name: str
    key: str
    size: int | None
    opener: Callable[[], contextlib.AbstractContextManager[IO[bytes]]]
    fmt_hint: str | None = None
    mtime: float | None = None

    def open(self) -> contextlib.AbstractContextManager[IO[bytes]]:
        return self.opener()


# -- local files and object storage ------------------------------------------------------------------------
Decryptor = Callable[[IO[bytes]], contextlib.AbstractContextManager[IO[bytes]]]


def _local_source(path: str, decryptor: Decryptor | None = None, tmp_dir: str | None = None) -> SourceFile:
    st = Path(path).stat()

    def feed(writer: IO[bytes]) -> None:
        with open(path, "rb") as fh:
            shutil.copyfileobj(fh, writer, 1 << 20)

    def opener() -> contextlib.AbstractContextManager[IO[bytes]]:
        if decryptor is None:
            return open(path, "rb")
        return verified_plaintext(path, feed, decryptor, tmp_dir=tmp_dir)

    return SourceFile(path, f"file:{Path(path).absolute()}:{st.st_size}:{int(st.st_mtime)}", st.st_size, opener,
                      mtime=st.st_mtime)  # fmt: skip


def expand_local(patterns: str | Iterable[str], decryptor: Decryptor | None = None, tmp_dir: str | None = None
                 ) -> list[SourceFile]:  # fmt: skip
    """Local files named by paths or glob patterns (``**`` recursive), sorted by name, each file once.

    A pattern with a URL scheme (``s3://``, ``gs://``, ``file://``...) goes through Airflow object storage.
    With ``decryptor`` every local file is PGP-decrypted and verified before it is read.
    """
    items = [patterns] if isinstance(patterns, str) else list(patterns)
    if not items:
        raise ImportInputError("No input paths given: pass a path, a glob pattern or a list of them")
    found: dict[str, SourceFile] = {}
    for pattern in items:
        pattern = os.fspath(pattern)
        if "://" in pattern:
            for src in expand_object_storage(pattern):
                found.setdefault(src.name, src)
            continue
        matches = sorted(glob.glob(pattern, recursive=True)) if glob.has_magic(pattern) else [pattern]  # noqa: PTH207
        matches = [m for m in matches if Path(m).is_file() and not _partial(m)]
        if not matches and not glob.has_magic(pattern):
            raise ImportInputError(f"Input file {pattern} does not exist (or is not a regular file)")
        for m in matches:
            found.setdefault(m, _local_source(m, decryptor, tmp_dir))
    return sorted(found.values(), key=lambda s: s.name)


def _partial(path: str) -> bool:
    base = Path(path).name
    return base.endswith((".part", ".tmp", ".filepart")) or base.startswith(".")


def _object_storage_path(url: str, conn_id: str | None = None) -> Any:
    try:
        from airflow.sdk import ObjectStoragePath
    except ImportError:
        try:
            from airflow.io.path import ObjectStoragePath  # type: ignore[no-redef]
        except ImportError:
            raise ImportInputError(f"{url}: this Airflow has no object storage support (needs Airflow 2.8+)") from None
    return ObjectStoragePath(url, conn_id=conn_id) if conn_id else ObjectStoragePath(url)


def expand_object_storage(url: str, conn_id: str | None = None) -> list[SourceFile]:
    """Files at an Airflow object storage URL; the last path component may be a glob pattern."""
    path = _object_storage_path(url, conn_id)
    if glob.has_magic(url):
        parent, pattern = path.parent, path.name
        matches = sorted((p for p in parent.glob(pattern) if p.is_file()), key=str)
    else:
        if not path.is_file():
            raise ImportInputError(f"Input {url} does not exist or is not a file")
        matches = [path]
    out = []
    for p in matches:
        info = p.stat()
        size = int(info.get("size") or 0) if isinstance(info, dict) else int(getattr(info, "st_size", 0))
        mtime = info.get("mtime") or info.get("LastModified") or info.get("updated") if isinstance(info, dict) else None
        key = f"obj:{p}:{size}:{mtime}"
        out.append(SourceFile(str(p), key, size, functools.partial(p.open, "rb"), mtime=None))
    return out


# -- SFTP, streamed through a bounded pipe ------------------------------------------------------------------
class _Pipe(io.RawIOBase):
    """Bytes from a producer thread to the reader, at most ``_PIPE_CHUNKS`` chunks buffered."""

    def __init__(self) -> None:
        super().__init__()
        self._q: queue.Queue[bytes | BaseException | None] = queue.Queue(_PIPE_CHUNKS)
        self._rest = b""
        self._eof = False
        self.aborted = threading.Event()
        self.bytes_in = 0

    # producer side
    def put(self, data: bytes) -> None:
        while True:
            if self.aborted.is_set():
                raise BrokenPipeError("the import stopped reading this file")
            try:
                self._q.put(bytes(data), timeout=0.2)
                return
            except queue.Full:
                continue

    def finish(self, error: BaseException | None = None) -> None:
        while not self.aborted.is_set():
            try:
                self._q.put(error, timeout=0.2)
                return
            except queue.Full:
                continue

    # consumer side
    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if not self._rest and not self._eof:
            item = self._q.get()
            if isinstance(item, BaseException):
                self._eof = True
                raise item
            if item is None:
                self._eof = True
            else:
                self._rest = item
        n = min(len(buffer), len(self._rest))
        buffer[:n] = self._rest[:n]
        self._rest = self._rest[n:]
        return n

    def close(self) -> None:
        self.aborted.set()
        super().close()


class _PipeWriter(io.RawIOBase):
    def __init__(self, pipe: _Pipe, count: bool) -> None:
        super().__init__()
        self.pipe, self.count = pipe, count

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self.pipe.put(data)
        return len(data)


class _Counting(io.RawIOBase):
    """Count bytes written through to ``inner`` (the ciphertext size for a PGP file)."""

    def __init__(self, inner: IO[bytes], pipe: _Pipe) -> None:
        super().__init__()
        self.inner, self.pipe = inner, pipe

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self.pipe.bytes_in += len(data)
        self.inner.write(data)
        return len(data)


@contextlib.contextmanager
def sftp_stream(session: SftpSession, remote_path: str) -> Iterator[IO[bytes]]:
    """Stream one remote file as a readable binary stream."""
    pipe = _Pipe()
    writer = _PipeWriter(pipe, count=True)

    def produce() -> None:
        try:
            session.download_stream(remote_path, _Counting(writer, pipe))  # type: ignore[arg-type]
        except BaseException as exc:
            pipe.finish(exc)
        else:
            pipe.finish(None)

    thread = threading.Thread(target=produce, name="lytics-import-sftp", daemon=True)
    thread.start()
    try:
        yield io.BufferedReader(pipe, 1 << 16)  # type: ignore[arg-type]
    finally:
        pipe.close()
        thread.join(timeout=120)


def sftp_sources(session: SftpSession, files: Iterable[Any], decryptor: Decryptor | None = None,
                 tmp_dir: str | None = None) -> list[SourceFile]:  # fmt: skip
    """SourceFiles for remote files (``RemoteFile`` items from the SFTP session's listing/selection).

    With ``decryptor`` each file is downloaded, decrypted and verified completely before its first row is read.
    """

    def opener(path: str) -> contextlib.AbstractContextManager[IO[bytes]]:
        if decryptor is None:
            return sftp_stream(session, path)
        return verified_plaintext(path, lambda w: session.download_stream(path, w), decryptor,  # type: ignore[arg-type]
                                  tmp_dir=tmp_dir)  # fmt: skip

    out = []
    for f in files:
        key = f"sftp:{f.path}:{f.size}:{int(f.mtime)}"
        out.append(SourceFile(f.path, key, f.size, functools.partial(opener, f.path), mtime=f.mtime))
    return out


# -- pandas DataFrames, rendered as NDJSON lazily ------------------------------------------------------------
class _ChunkStream(io.RawIOBase):
    def __init__(self, chunks: Iterator[bytes]) -> None:
        super().__init__()
        self._chunks, self._rest = chunks, b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._rest:
            try:
                self._rest = next(self._chunks)
            except StopIteration:
                return 0
        n = min(len(buffer), len(self._rest))
        buffer[:n] = self._rest[:n]
        self._rest = self._rest[n:]
        return n


def dataframe_ndjson(frames: Any, chunk_rows: int = _DF_CHUNK_ROWS, *, drop_nulls: bool = True) -> Iterator[bytes]:
    """NDJSON bytes for a DataFrame or an iterable of DataFrames, ``chunk_rows`` rows rendered at a time.

    One line per row, so the line number in the quarantine is the 1-based row position across all frames.
    With ``drop_nulls`` a missing value (NaN, None, NaT) leaves the field out instead of sending null.
    """
    import pandas as pd

    if isinstance(frames, pd.DataFrame):
        frames = [frames]
    for i, frame in enumerate(frames):
        if not isinstance(frame, pd.DataFrame):
            raise ImportInputError(f"DataFrame source item {i} is a {type(frame).__name__}, not a pandas DataFrame")
        if frame.columns.duplicated().any():
            dupes = sorted({str(c) for c in frame.columns[frame.columns.duplicated()]})
            raise ImportInputError(f"DataFrame has duplicate column names: {', '.join(dupes)}")
        for start in range(0, len(frame), chunk_rows):
            part = frame.iloc[start : start + chunk_rows]
            text = part.to_json(orient="records", lines=True, date_format="iso", date_unit="ms", force_ascii=False)
            if drop_nulls and part.isna().to_numpy().any():
                text = "".join(_without_nulls(line) for line in text.splitlines())
            if text:
                yield text.encode() + (b"" if text.endswith("\n") else b"\n")


def _without_nulls(line: str) -> str:
    record = json.loads(line)
    return (
        json.dumps({k: v for k, v in record.items() if v is not None}, separators=(",", ":"), ensure_ascii=False) + "\n"
    )


def dataframe_source(frames: Any, name: str = "dataframe", *, drop_nulls: bool = True) -> SourceFile:
    """A SourceFile over DataFrame rows (NDJSON). Its key is fixed: a resumed DataFrame import must be re-produced
    identically by the task (same rows in the same order) to skip the acknowledged ones."""

    @contextlib.contextmanager
    def opener() -> Iterator[IO[bytes]]:
        yield io.BufferedReader(_ChunkStream(dataframe_ndjson(frames, drop_nulls=drop_nulls)), 1 << 16)  # type: ignore[arg-type]

    return SourceFile(name, f"dataframe:{name}", None, opener, fmt_hint="ndjson")
