"""Fast, safe SFTP transfers with a synchronous API for operators.

One :class:`SftpSession` holds one SSH connection (asyncssh, on a private event loop thread) for many operations::

    from airflow_provider_lytics.hooks.sftp import LyticsSftpHook

    with LyticsSftpHook("partner_sftp").session() as sftp:
        picked = sftp.newer_than("/outbox", watermark, glob="users_*.csv", by="name")
        for f in picked.files:
            sftp.download_file(f.path, f"/data/{f.name}")
        sftp.finish(picked.files, action="archive", archive_dir="processed")
        sftp.upload_file("/data/export.csv.gpg", "/inbox/export.csv.gpg", manifest=True, row_count=1200)

Speed: reads and writes are pipelined (up to ``max_requests`` block requests in flight, blocks as large as the
server allows), which is what makes SFTP fast; Airflow's SFTPHook sends one block at a time.

Safety:

* Uploads go to ``.<name>.<random>.part`` in the target directory, are fsync'ed (where the server supports
  ``fsync@openssh.com``) and closed, then renamed to the final name (``posix-rename@openssh.com`` when
  overwriting, so readers see the old or the new file, never half of one). On any failure, including a source
  stream that raises half way, the part file is removed and no final file appears.
* Downloads go to ``.<name>.<random>.part`` next to the local target, are fsync'ed, then ``os.replace``'d.
* Every transfer returns its size and SHA-256, computed while the bytes stream past.
* An optional manifest (JSON: name, size, sha256, row_count, created) is written next to the data, atomically
  and only after the data file is in place, so its presence means the data is complete.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import posixpath
import secrets
import stat as stat_mod
import time
from collections.abc import Collection, Iterable, Iterator
from dataclasses import replace
from datetime import date, datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Literal

from airflow_provider_lytics.io.sftp_config import SftpConfig
from airflow_provider_lytics.io.sftp_errors import (
    RemoteFileExistsError,
    RemoteFileNotFoundError,
    SftpConfigError,
    SftpConnectError,
    SftpTransferError,
)
from airflow_provider_lytics.io.sftp_loop import Drain, Feeder, LoopThread, ProducerAborted, wait_future
from airflow_provider_lytics.io.sftp_pipeline import (
    DEFAULT_MAX_REQUESTS,
    choose_block_size,
    pipelined_read,
    pipelined_write,
)
from airflow_provider_lytics.io.sftp_results import TransferResult, manifest_bytes, manifest_path_for
from airflow_provider_lytics.io.sftp_select import (
    RemoteFile,
    Selection,
    WatermarkKind,
    filter_files,
    newer_than,
    newest,
)

if TYPE_CHECKING:
    import asyncssh

    from airflow_provider_lytics.io.sftp_fastpath import FastSender

__all__ = ["DEFAULT_MAX_DEPTH", "RemoteFile", "Selection", "SftpSession", "TransferResult"]

log = logging.getLogger(__name__)

# Hand-overs between the caller's thread and the loop move about this much at a time: fewer, larger hand-overs
# mean fewer GIL switches between the two threads (measurably cheaper than one per SFTP block).
STREAM_CHUNK_SIZE = 2 * 1024 * 1024
BRIDGE_DEPTH = 4
AfterLoad = Literal["delete", "archive", "keep"]
OnConflict = Literal["suffix", "overwrite", "error"]
# A recursive listing enters at most this many folder levels below the listed directory (dated drop zones
# ``YYYY/MM/DD/HH`` need 4); deeper folders are reported in a warning, not listed.
DEFAULT_MAX_DEPTH = 10
# Folders read at once during a recursive listing (each is a round trip; OpenSSH allows many open handles).
WALK_CONCURRENCY = 8


@contextlib.contextmanager
def _remote_errors(action: str, path: str) -> Iterator[None]:
    """Translate asyncssh errors into this provider's errors, naming the action and the path."""
    import asyncssh

    try:
        yield
    except (asyncssh.SFTPNoSuchFile, asyncssh.SFTPNoSuchPath) as exc:
        raise RemoteFileNotFoundError(f"Cannot {action} {path}: no such file or directory ({exc.reason})") from None
    except asyncssh.SFTPPermissionDenied as exc:
        raise SftpTransferError(f"Cannot {action} {path}: permission denied ({exc.reason})") from None
    except asyncssh.SFTPFileAlreadyExists:
        raise RemoteFileExistsError(f"Cannot {action} {path}: the target already exists") from None
    except (asyncssh.SFTPConnectionLost, asyncssh.SFTPNoConnection, asyncssh.ConnectionLost) as exc:
        raise SftpConnectError(f"Connection lost while trying to {action} {path}: {exc}") from None
    except asyncssh.SFTPError as exc:
        raise SftpTransferError(f"Cannot {action} {path}: {exc.reason or type(exc).__name__}") from None
    except asyncssh.DisconnectError as exc:
        raise SftpConnectError(f"Disconnected while trying to {action} {path}: {exc.reason}") from None


def _check_walk(glob: str | None, recursive: bool, max_depth: int) -> None:
    if max_depth < 0:
        raise SftpConfigError(f"max_depth must be 0 or more, got {max_depth}")
    if glob and "/" in glob and not recursive:
        raise SftpConfigError(f"glob {glob!r} names sub-folders: pass recursive=True to look below the directory")


def _skipped_dir(base: str, child: str, name: str, exclude_dirs: Collection[str]) -> bool:
    """Hidden folders (in-progress uploads, ``.ssh``) and excluded ones (e.g. the archive) are not entered."""
    if name.startswith("."):
        return True
    for excluded in exclude_dirs:
        if "/" not in excluded.strip("/"):
            if name == excluded.strip("/"):
                return True
        elif posixpath.normpath(posixpath.join(base, excluded)) == posixpath.normpath(posixpath.join(base, child)):
            return True
    return False


def _part_name(name: str) -> str:
    return f".{name}.{secrets.token_hex(6)}.part"


def _iter_source(source: BinaryIO | Iterable[bytes] | bytes, chunk_size: int) -> Iterator[bytes]:
    if isinstance(source, (bytes, bytearray, memoryview)):
        yield bytes(source)
        return
    if isinstance(source, str):
        raise TypeError("upload_stream needs bytes: open the file in binary mode or encode the text first")
    read = getattr(source, "read", None)
    if callable(read):
        while True:
            data = read(chunk_size)
            if not data:
                return
            if isinstance(data, str):
                raise TypeError("upload_stream needs a binary stream: open it with 'rb', not 'r'")
            yield data
    else:
        for chunk in source:  # type: ignore[union-attr]
            if isinstance(chunk, str):
                raise TypeError("upload_stream chunks must be bytes, got str: encode them first")
            yield chunk


def _coalesce(chunks: Iterator[bytes], target: int) -> Iterator[bytes]:
    """Merge small chunks (e.g. one CSV line each) so each hand-over to the loop moves about ``target`` bytes."""
    buffer = bytearray()
    for chunk in chunks:
        if not buffer and len(chunk) >= target:
            yield chunk
            continue
        buffer += chunk
        if len(buffer) >= target:
            yield bytes(buffer)
            buffer.clear()
    if buffer:
        yield bytes(buffer)


class SftpSession:
    """One SSH/SFTP connection serving many synchronous operations. Use it as a context manager.

    :param config: connection settings (see :class:`~airflow_provider_lytics.io.sftp_config.SftpConfig`; the hook
        :class:`~airflow_provider_lytics.hooks.sftp.LyticsSftpHook` builds one from an Airflow connection).
    :param block_size: bytes per SFTP request; default: the largest the server allows, up to 256 KiB.
    :param max_requests: requests kept in flight per transfer (memory bound: ``block_size * max_requests``).
    :param fsync: fsync uploads on the server before the rename (skipped where the server lacks
        ``fsync@openssh.com``) and downloads locally before the replace. ``False`` trades durability for speed.
    """

    def __init__(
        self,
        config: SftpConfig,
        *,
        block_size: int | None = None,
        max_requests: int = DEFAULT_MAX_REQUESTS,
        fsync: bool = True,
    ) -> None:
        if max_requests < 1:
            raise SftpConfigError("max_requests must be at least 1")
        if block_size is not None and block_size < 1024:
            raise SftpConfigError("block_size must be at least 1024 bytes")
        self.config = config
        self.max_requests = max_requests
        self.fsync = fsync
        self._requested_block_size = block_size
        self.block_size = block_size or 0
        self._loop: LoopThread | None = None
        self._conn: asyncssh.SSHClientConnection | None = None
        self._sftp: asyncssh.SFTPClient | None = None
        self.fast_sender: FastSender | None = None

    # ------------------------------------------------------------------ lifecycle
    def __enter__(self) -> SftpSession:
        return self.open()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def open(self) -> SftpSession:
        """Connect and start the SFTP subsystem (idempotent)."""
        if self._sftp is not None:
            return self
        self._loop = LoopThread(name=f"lytics-sftp-{self.config.host}")
        self._loop.start()
        try:
            self._loop.run(self._open())
        except BaseException:
            self._loop.stop()
            self._loop = None
            raise
        return self

    async def _open(self) -> None:
        import asyncssh

        from airflow_provider_lytics.io.sftp_connect import connect
        from airflow_provider_lytics.io.sftp_fastpath import install

        conn = await connect(self.config)
        self.fast_sender = install(conn)
        try:
            sftp = await conn.start_sftp_client()
        except (asyncssh.Error, OSError) as exc:
            conn.close()
            raise SftpConnectError(f"{self.config.label} accepted the login but has no SFTP subsystem: {exc}") from None
        self._conn, self._sftp = conn, sftp
        self.block_size = choose_block_size(
            sftp.limits.max_read_len, sftp.limits.max_write_len, self._requested_block_size
        )
        log.debug("SFTP session to %s open, block size %d", self.config.label, self.block_size)

    def close(self) -> None:
        """Close the SFTP session, the connection and the loop thread."""
        if self._loop is None:
            return
        try:
            self._loop.run(self._close(), timeout=30)
        except Exception:
            log.debug("Closing the SFTP connection to %s failed", self.config.label, exc_info=True)
        finally:
            self._loop.stop()
            self._loop = None

    async def _close(self) -> None:
        if self._sftp is not None:
            self._sftp.exit()
        if self._conn is not None:
            self._conn.close()
            await self._conn.wait_closed()
        self._sftp = self._conn = None

    @property
    def _client(self) -> asyncssh.SFTPClient:
        if self._sftp is None:
            raise RuntimeError("The SFTP session is not open: use `with hook.session() as sftp:`")
        return self._sftp

    def _run(self, coro: Any) -> Any:
        if self._loop is None or self._sftp is None:
            coro.close()
            raise RuntimeError("The SFTP session is not open: use `with hook.session() as sftp:`")
        return self._loop.run(coro)

    # ------------------------------------------------------------------ small remote operations
    async def _exists(self, path: str) -> bool:
        with _remote_errors("check", path):
            return await self._client.exists(path)

    async def _remove_quietly(self, path: str) -> None:
        try:
            await self._client.remove(path)
        except Exception:
            log.warning("Could not remove the temporary remote file %s", path)

    async def _makedirs(self, directory: str) -> None:
        if directory in ("", ".", "/"):
            return
        with _remote_errors("create directory", directory):
            await self._client.makedirs(directory, exist_ok=True)

    def exists(self, path: str) -> bool:
        """Whether ``path`` exists on the server."""
        return self._run(self._exists(path))

    def makedirs(self, directory: str) -> None:
        """Create ``directory`` and its parents if missing."""
        self._run(self._makedirs(directory))

    def delete(self, path: str) -> None:
        """Remove a remote file."""

        async def _delete() -> None:
            with _remote_errors("delete", path):
                await self._client.remove(path)

        self._run(_delete())

    # ------------------------------------------------------------------ uploads
    async def _rename_into_place(self, part: str, final: str, overwrite: bool) -> None:
        import asyncssh

        client = self._client
        with _remote_errors("rename into place", final):
            if not overwrite:
                if await client.exists(final):
                    raise RemoteFileExistsError(
                        f"{final} already exists on the server: pass overwrite=True to replace it"
                    )
                await client.rename(part, final)
                return
            try:
                await client.posix_rename(part, final)
            except asyncssh.SFTPOpUnsupported:
                log.warning("%s has no posix-rename: replacing %s is not atomic", self.config.label, final)
                if await client.exists(final):
                    await client.remove(final)
                await client.rename(part, final)

    async def _upload(self, chunks: Any, remote_path: str, *, overwrite: bool, makedirs: bool) -> int:
        directory, name = posixpath.split(remote_path)
        if not name:
            raise SftpConfigError(f"Remote path {remote_path!r} must name a file, not a directory")
        if makedirs:
            await self._makedirs(directory)
        if not overwrite and await self._exists(remote_path):
            raise RemoteFileExistsError(
                f"{remote_path} already exists on the server: pass overwrite=True to replace it"
            )
        part = posixpath.join(directory, _part_name(name))
        client = self._client
        created = False
        try:
            with _remote_errors("upload to", remote_path):
                handle = await client.open(part, "wb", encoding=None, block_size=0)
                created = True
                try:
                    size = await pipelined_write(
                        handle, chunks, block_size=self.block_size, max_requests=self.max_requests
                    )
                    if self.fsync:
                        await self._fsync(handle)
                finally:
                    await handle.close()
            await self._rename_into_place(part, remote_path, overwrite)
        except BaseException:
            if created:
                await self._remove_quietly(part)
            raise
        return size

    async def _fsync(self, handle: Any) -> None:
        import asyncssh

        try:
            await handle.fsync()
        except asyncssh.SFTPOpUnsupported:
            pass

    def _upload_chunks(
        self, chunks: Iterator[bytes], remote_path: str, *, overwrite: bool, makedirs: bool
    ) -> TransferResult:
        """Feed chunks produced (and hashed) in this thread to the loop, which keeps the writes in flight."""
        if self._loop is None or self._sftp is None:
            raise RuntimeError("The SFTP session is not open: use `with hook.session() as sftp:`")
        started = time.perf_counter()
        hasher = hashlib.sha256()
        feeder = Feeder(self._loop, BRIDGE_DEPTH)
        future = self._loop.submit(self._upload(feeder.chunks(), remote_path, overwrite=overwrite, makedirs=makedirs))
        try:
            for chunk in chunks:
                hasher.update(chunk)
                if not feeder.put(chunk, future):
                    break
            else:
                feeder.finish()
        except BaseException as exc:
            feeder.abort(exc)
            with contextlib.suppress(ProducerAborted, Exception):
                wait_future(future, timeout=60)
            raise
        size = wait_future(future)
        return TransferResult(remote_path, size, hasher.hexdigest(), time.perf_counter() - started)

    def upload_file(
        self,
        local_path: str | os.PathLike[str],
        remote_path: str,
        *,
        overwrite: bool = False,
        makedirs: bool = False,
        manifest: bool | str = False,
        row_count: int | None = None,
    ) -> TransferResult:
        """Upload a local file atomically (``.part`` + fsync + rename). Returns size and SHA-256.

        :param overwrite: replace an existing remote file (atomically); otherwise an existing file is an error.
        :param makedirs: create the remote directory if missing.
        :param manifest: ``True`` writes ``<remote_path>.manifest.json`` after the data; a string names the path.
        :param row_count: recorded in the manifest when given.
        """
        local = os.fspath(local_path)
        if not Path(local).is_file():
            raise FileNotFoundError(f"Local file to upload does not exist: {local}")
        with open(local, "rb") as handle:
            result = self._upload_chunks(
                _iter_source(handle, STREAM_CHUNK_SIZE), remote_path, overwrite=overwrite, makedirs=makedirs
            )
        result = replace(result, local_path=local)
        return self._after_upload(result, manifest, row_count)

    def upload_stream(
        self,
        source: BinaryIO | Iterable[bytes],
        remote_path: str,
        *,
        overwrite: bool = False,
        makedirs: bool = False,
        manifest: bool | str = False,
        row_count: int | None = None,
    ) -> TransferResult:
        """Upload from a readable binary stream or an iterator of ``bytes`` chunks, atomically.

        The source is read in the calling thread (so a gpg pipe or a generator works as is) while the connection
        keeps many writes in flight; memory stays bounded. If the source raises, the partial upload is removed and
        the source's exception is re-raised. Parameters as for :meth:`upload_file`.
        """
        chunks = _coalesce(_iter_source(source, STREAM_CHUNK_SIZE), STREAM_CHUNK_SIZE)
        result = self._upload_chunks(chunks, remote_path, overwrite=overwrite, makedirs=makedirs)
        return self._after_upload(result, manifest, row_count)

    def _after_upload(self, result: TransferResult, manifest: bool | str, row_count: int | None) -> TransferResult:
        if manifest:
            path = manifest if isinstance(manifest, str) else None
            result = self.write_manifest(result, row_count=row_count, manifest_path=path)
        log.info(
            "Uploaded %s: %d bytes in %.2f s (%.1f MB/s), sha256 %s",
            result.remote_path,
            result.size,
            result.seconds,
            result.mb_per_s,
            result.sha256,
        )
        return result

    def write_manifest(
        self, result: TransferResult, *, row_count: int | None = None, manifest_path: str | None = None
    ) -> TransferResult:
        """Write the manifest for an uploaded file (atomically, overwriting an older one). Returns the result
        with ``manifest_path`` set. Call it after the data upload, e.g. once the row count is known."""
        path = manifest_path or manifest_path_for(result.remote_path)
        body = manifest_bytes(result, row_count)
        self._run(self._upload([body], path, overwrite=True, makedirs=False))
        return replace(result, manifest_path=path)

    # ------------------------------------------------------------------ downloads
    async def _open_for_read(self, remote_path: str) -> tuple[Any, int]:
        from asyncssh import FILEXFER_TYPE_DIRECTORY

        with _remote_errors("download", remote_path):
            handle = await self._client.open(remote_path, "rb", encoding=None, block_size=0)
            try:
                attrs = await handle.stat()
            except BaseException:
                await handle.close()
                raise
        if attrs.type == FILEXFER_TYPE_DIRECTORY or (attrs.permissions and stat_mod.S_ISDIR(attrs.permissions)):
            await handle.close()
            raise SftpConfigError(f"{remote_path} is a directory, not a file")
        return handle, int(attrs.size or 0)

    async def _download_to_drain(self, remote_path: str, drain: Drain) -> int:
        written = 0
        try:
            handle, size = await self._open_for_read(remote_path)
            try:
                # Blocks go to the caller's thread in batches of about STREAM_CHUNK_SIZE, as lists (not joined:
                # the caller hashes and writes each block, so no extra copy is made).
                batch: list[bytes] = []
                batched = 0
                with _remote_errors("download", remote_path):
                    async for data in pipelined_read(
                        handle, size, block_size=self.block_size, max_requests=self.max_requests, path=remote_path
                    ):
                        batch.append(data)
                        batched += len(data)
                        if batched >= STREAM_CHUNK_SIZE:
                            await drain.put(batch)
                            written += batched
                            batch, batched = [], 0
                if batch:
                    await drain.put(batch)
                    written += batched
            finally:
                with contextlib.suppress(Exception):
                    await handle.close()
        except BaseException as exc:
            drain.close(exc)
            raise
        drain.close()
        return written

    def download_stream(self, remote_path: str, sink: BinaryIO) -> TransferResult:
        """Download into a writable binary stream, written (and hashed) in the calling thread while the
        connection keeps reads in flight. Returns size and SHA-256."""
        if self._loop is None or self._sftp is None:
            raise RuntimeError("The SFTP session is not open: use `with hook.session() as sftp:`")
        started = time.perf_counter()
        hasher = hashlib.sha256()
        drain = Drain(self._loop, BRIDGE_DEPTH)
        future = self._loop.submit(self._download_to_drain(remote_path, drain))
        try:
            for blocks in drain:
                for data in blocks:
                    hasher.update(data)
                    sink.write(data)
        except BaseException:
            future.cancel()
            with contextlib.suppress(BaseException):
                wait_future(future, timeout=60)
            raise
        size = wait_future(future)
        return TransferResult(remote_path, size, hasher.hexdigest(), time.perf_counter() - started)

    def download_file(
        self, remote_path: str, local_path: str | os.PathLike[str], *, overwrite: bool = True
    ) -> TransferResult:
        """Download to ``local_path`` atomically (local ``.part`` file, fsync, rename over the target)."""
        local = Path(local_path)
        if local.is_dir():
            raise SftpConfigError(f"Local path {local} is a directory: give the target file name")
        if not overwrite and local.exists():
            raise FileExistsError(f"Local file {local} already exists: pass overwrite=True to replace it")
        if not local.parent.is_dir():
            raise FileNotFoundError(f"Local directory {local.parent} does not exist: create it first")
        tmp = local.parent / _part_name(local.name)
        try:
            with open(tmp, "wb") as out:
                result = self.download_stream(remote_path, out)
                out.flush()
                if self.fsync:
                    os.fsync(out.fileno())
            tmp.replace(local)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            raise
        log.info(
            "Downloaded %s: %d bytes in %.2f s (%.1f MB/s)", remote_path, result.size, result.seconds, result.mb_per_s
        )
        return replace(result, local_path=str(local))

    # ------------------------------------------------------------------ listing and selection
    async def _read_dir(self, base: str, rel: str, sem: asyncio.Semaphore) -> tuple[list[RemoteFile], list[str]]:
        """Regular files and sub-folder names in ``base/rel``. Symlinks to files count as files; symlinks to
        folders are never followed (no loops). An unreadable or vanished sub-folder is a warning, not an error."""
        import asyncssh

        client = self._client
        directory = posixpath.join(base, rel) if rel else base
        files: list[RemoteFile] = []
        subdirs: list[str] = []
        async with sem:
            try:
                with _remote_errors("list", directory):
                    entries = await client.readdir(directory)
            except (RemoteFileNotFoundError, SftpTransferError) as exc:
                if not rel:
                    raise
                log.warning("Skipping sub-folder %s: %s", directory, exc)
                return files, subdirs
            for entry in entries:
                name = entry.filename
                if name in (".", "..") or not isinstance(name, str) or "/" in name:
                    continue
                attrs = entry.attrs
                path = posixpath.join(directory, name)
                if attrs.type == asyncssh.FILEXFER_TYPE_DIRECTORY:
                    subdirs.append(name)
                    continue
                if attrs.type == asyncssh.FILEXFER_TYPE_SYMLINK:
                    try:
                        attrs = await client.stat(path)
                    except asyncssh.SFTPError:
                        continue  # dangling link
                    if attrs.type == asyncssh.FILEXFER_TYPE_DIRECTORY:
                        log.debug("Not following the folder symlink %s", path)
                        continue
                if attrs.type != asyncssh.FILEXFER_TYPE_REGULAR:
                    continue
                relative = posixpath.join(rel, name) if rel else name
                files.append(RemoteFile(path, int(attrs.size or 0), float(attrs.mtime or 0), relative))
        return files, subdirs

    async def _list(
        self, directory: str, *, recursive: bool = False, max_depth: int = DEFAULT_MAX_DEPTH,
        exclude_dirs: Collection[str] = (),
    ) -> list[RemoteFile]:  # fmt: skip
        """Files in ``directory`` (and, when ``recursive``, its sub-folders down to ``max_depth``), sorted by
        relative path. Folders are read level by level, up to ``WALK_CONCURRENCY`` at once (one round trip each)."""
        sem = asyncio.Semaphore(WALK_CONCURRENCY)
        files: list[RemoteFile] = []
        level, depth = [""], 0
        too_deep: list[str] = []
        while level:
            reads = [self._read_dir(directory, rel, sem) for rel in level]
            listed: list[tuple[list[RemoteFile], list[str]]] = []
            for outcome in await asyncio.gather(*reads, return_exceptions=True):  # no read left running on error
                if isinstance(outcome, BaseException):
                    raise outcome
                listed.append(outcome)
            next_level: list[str] = []
            for rel, (found, subdirs) in zip(level, listed, strict=True):
                files.extend(found)
                if not recursive:
                    continue
                for name in subdirs:
                    child = posixpath.join(rel, name) if rel else name
                    if _skipped_dir(directory, child, name, exclude_dirs):
                        continue
                    (next_level if depth < max_depth else too_deep).append(child)
            level, depth = next_level, depth + 1
        if too_deep:
            log.warning(
                "%d sub-folder(s) of %s are deeper than max_depth=%d and were not listed (e.g. %s): raise max_depth "
                "to include them", len(too_deep), directory, max_depth, sorted(too_deep)[0],
            )  # fmt: skip
        files.sort(key=lambda f: f.relative)
        return files

    def stat(self, path: str) -> RemoteFile:
        """The remote file at exactly ``path`` (raises :class:`RemoteFileNotFoundError` if absent)."""

        async def _stat() -> RemoteFile:
            with _remote_errors("stat", path):
                attrs = await self._client.stat(path)
            return RemoteFile(path, int(attrs.size or 0), float(attrs.mtime or 0))

        return self._run(_stat())

    def list_files(
        self,
        directory: str = ".",
        *,
        glob: str | None = None,
        regex: str | None = None,
        recursive: bool = False,
        max_depth: int = DEFAULT_MAX_DEPTH,
        exclude_dirs: Collection[str] = (),
    ) -> list[RemoteFile]:
        """Regular files in ``directory``, sorted by relative path, optionally filtered.

        :param glob: shell-style pattern for the file name (``users_*.csv``), or for the relative path when it
            contains ``/`` (``2026/*/*/users_*.csv``, ``**`` spans any depth; needs ``recursive``).
        :param regex: regular expression that must match the whole file name (``users_\\d{8}\\.csv``), or the
            whole relative path when it contains ``/``.
        :param recursive: also list sub-folders, down to ``max_depth`` levels below ``directory``. Hidden folders
            (``.name``), folder symlinks and ``exclude_dirs`` are not entered; unreadable sub-folders are skipped
            with a warning. Each file's ``relative`` path says where below ``directory`` it was found.
        :param exclude_dirs: folders not to enter: a bare name (``processed``) at any depth, or a path relative to
            ``directory`` (or absolute) for one folder.
        """
        _check_walk(glob, recursive, max_depth)
        files = self._run(self._list(directory, recursive=recursive, max_depth=max_depth, exclude_dirs=exclude_dirs))
        return filter_files(files, glob=glob, regex=regex)

    def newest(
        self,
        directory: str = ".",
        *,
        glob: str | None = None,
        regex: str | None = None,
        recursive: bool = False,
        max_depth: int = DEFAULT_MAX_DEPTH,
        exclude_dirs: Collection[str] = (),
    ) -> RemoteFile | None:
        """The most recently modified matching file (across sub-folders when ``recursive``), or None."""
        return newest(self.list_files(directory, glob=glob, regex=regex, recursive=recursive, max_depth=max_depth,
                                      exclude_dirs=exclude_dirs))  # fmt: skip

    def newer_than(
        self,
        directory: str,
        watermark: str | float | datetime | date | None,
        *,
        glob: str | None = None,
        regex: str | None = None,
        by: WatermarkKind = "mtime",
        date_format: str = "%Y-%m-%d",
        recursive: bool = False,
        max_depth: int = DEFAULT_MAX_DEPTH,
        exclude_dirs: Collection[str] = (),
    ) -> Selection:
        """Matching files newer than ``watermark`` (oldest first) and the new watermark to store.

        ``by="mtime"`` compares modification times (watermark: ISO timestamp); ``by="name"`` compares the date in
        the file's relative path, read with ``date_format`` (watermark: ISO date; ``"%Y/%m/%d"`` reads dated
        folders). ``None`` selects everything. ``recursive`` etc. as for :meth:`list_files`.
        """
        files = self.list_files(directory, glob=glob, regex=regex, recursive=recursive, max_depth=max_depth,
                                exclude_dirs=exclude_dirs)  # fmt: skip
        return newer_than(files, watermark, by=by, date_format=date_format)

    # ------------------------------------------------------------------ after a load
    async def _archive(self, path: str, archive_dir: str, on_conflict: OnConflict) -> str:
        directory, name = posixpath.split(path)
        target_dir = archive_dir if posixpath.isabs(archive_dir) else posixpath.join(directory, archive_dir)
        await self._makedirs(target_dir)
        target = posixpath.join(target_dir, name)
        client = self._client
        if await self._exists(target):
            if on_conflict == "error":
                raise RemoteFileExistsError(f"Cannot archive {path}: {target} already exists")
            if on_conflict == "suffix":
                stem, dot, ext = name.partition(".")
                stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
                target = posixpath.join(target_dir, f"{stem}.{stamp}{dot}{ext}")
                counter = 1
                while await self._exists(target):
                    target = posixpath.join(target_dir, f"{stem}.{stamp}-{counter}{dot}{ext}")
                    counter += 1
        with _remote_errors("archive", path):
            if on_conflict == "overwrite":
                await client.posix_rename(path, target)
            else:
                await client.rename(path, target)
        return target

    def archive(self, path: str, archive_dir: str, *, on_conflict: OnConflict = "suffix") -> str:
        """Move ``path`` into ``archive_dir`` (relative to the file's directory unless absolute; created if
        missing). An existing archived file of the same name gets a UTC timestamp suffix (``on_conflict="suffix"``),
        is replaced (``"overwrite"``) or stops the move (``"error"``). Returns the new path."""
        if on_conflict not in ("suffix", "overwrite", "error"):
            raise SftpConfigError(f"on_conflict must be 'suffix', 'overwrite' or 'error', got {on_conflict!r}")
        return self._run(self._archive(path, archive_dir, on_conflict))

    def finish(
        self,
        files: Iterable[RemoteFile | str],
        *,
        action: AfterLoad = "keep",
        archive_dir: str | None = None,
        on_conflict: OnConflict = "suffix",
    ) -> list[str]:
        """After a successful load, ``"delete"`` the files, ``"archive"`` them into ``archive_dir`` or ``"keep"``
        them. Returns the resulting paths (empty for delete)."""
        if action not in ("delete", "archive", "keep"):
            raise SftpConfigError(f"action must be 'delete', 'archive' or 'keep', got {action!r}")
        if action == "archive" and not archive_dir:
            raise SftpConfigError("action='archive' needs archive_dir (e.g. 'processed' or '/archive')")
        paths = [f.path if isinstance(f, RemoteFile) else f for f in files]
        done: list[str] = []
        for path in paths:
            if action == "delete":
                self.delete(path)
            elif action == "archive":
                done.append(self.archive(path, archive_dir or "", on_conflict=on_conflict))
            else:
                done.append(path)
        return done
