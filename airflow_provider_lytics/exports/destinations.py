"""Where export files go: local disk, SFTP, Airflow object storage, or email (files staged locally, then sent).

Every destination writes each file atomically: data goes to a temporary name (or, on object stores, to an
upload that only becomes visible when it completes) and appears under its final name only after the last byte
was written; a failure removes the partial file. Destinations also hold the incremental state file
(:meth:`Destination.fetch` / :meth:`Destination.store`), so the state lives next to the exports, not on a worker.
"""

from __future__ import annotations

import contextlib
import logging
import os
import posixpath
import secrets
import shutil
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from airflow_provider_lytics.exports.errors import ExportAbortedError, ExportConfigError
from airflow_provider_lytics.exports.options import DESTINATIONS as DESTINATIONS  # re-exported
from airflow_provider_lytics.exports.pipe import BytePipe

if TYPE_CHECKING:
    from airflow_provider_lytics.io.sftp import SftpSession

log = logging.getLogger(__name__)


class FileWriter:
    """A file being written: ``write`` bytes, then exactly one of ``commit`` (make it appear) or ``abort``."""

    path: str

    def write(self, data: bytes) -> int:
        raise NotImplementedError

    def commit(self) -> None:
        raise NotImplementedError

    def abort(self) -> None:
        raise NotImplementedError


class Destination:
    """Base class: a directory-like place that takes atomic file writes."""

    kind = "base"

    def open_file(self, name: str, *, overwrite: bool) -> FileWriter:
        raise NotImplementedError

    def fetch(self, name: str, local_path: str) -> bool:
        """Copy ``name`` to ``local_path``; ``False`` when it does not exist."""
        raise NotImplementedError

    def store(self, local_path: str, name: str) -> str:
        """Atomically put ``local_path`` at ``name`` (replacing it); returns the full path."""
        with open(local_path, "rb") as src:
            writer = self.open_file(name, overwrite=True)
            try:
                shutil.copyfileobj(src, writer, 1 << 20)  # type: ignore[misc]
            except BaseException:
                writer.abort()
                raise
            writer.commit()
            return writer.path

    def full_path(self, name: str) -> str:
        raise NotImplementedError

    def delete(self, name: str) -> None:
        """Remove a file this run wrote (cleanup after a failed run); missing files are ignored."""
        raise NotImplementedError

    def uri(self) -> str:
        """Where the files go, as a URI (asset extras and the manifest)."""
        raise NotImplementedError

    def publish(self, files: list[str]) -> None:
        """Called once after every file was committed (email sends here)."""

    # -- lease operations (see exports.lease): small files, created exclusively -----------------------------
    def lease_read(self, name: str) -> bytes | None:
        raise ExportConfigError(f"destination {self.kind!r} cannot hold an export lease: set state_uri=")

    def lease_create(self, name: str, data: bytes) -> bool:
        raise ExportConfigError(f"destination {self.kind!r} cannot hold an export lease: set state_uri=")

    def lease_replace(self, name: str, data: bytes) -> None:
        raise ExportConfigError(f"destination {self.kind!r} cannot hold an export lease: set state_uri=")

    def lease_rename(self, name: str, new_name: str) -> bool:
        raise ExportConfigError(f"destination {self.kind!r} cannot hold an export lease: set state_uri=")

    def lease_delete(self, name: str) -> None:
        self.delete(name)

    def list_names(self, subdir: str = "") -> list[str]:
        """File names directly in ``subdir`` (hidden ones included), for removing a killed run's parts; a
        destination that cannot list returns nothing (and nothing is removed)."""
        return []

    def close(self) -> None:
        """Release connections and temporary files."""


# -- local ------------------------------------------------------------------------------------------------------
class _LocalWriter(FileWriter):
    def __init__(self, path: Path, overwrite: bool, fsync: bool) -> None:
        self.path = str(path)
        self._final = path
        self._overwrite = overwrite
        self._fsync = fsync
        path.parent.mkdir(parents=True, exist_ok=True)
        if not overwrite and path.exists():
            raise ExportConfigError(f"{path} already exists: pass overwrite=True or use {{TIMESTAMP}} in file_name")
        self._tmp = path.parent / f".{path.name}.{secrets.token_hex(4)}.part"
        self._fh: IO[bytes] | None = open(self._tmp, "wb")  # noqa: SIM115 - closed in commit/abort

    def write(self, data: bytes) -> int:
        return self._fh.write(data)  # type: ignore[union-attr]

    def commit(self) -> None:
        fh, self._fh = self._fh, None
        try:
            fh.flush()  # type: ignore[union-attr]
            if self._fsync:
                os.fsync(fh.fileno())  # type: ignore[union-attr]
            fh.close()  # type: ignore[union-attr]
            if self._overwrite:
                self._tmp.replace(self._final)
            else:
                os.link(self._tmp, self._final)  # fails if the name appeared meanwhile: never clobber
                self._tmp.unlink()
        except BaseException:
            with contextlib.suppress(OSError):
                self._tmp.unlink()
            raise

    def abort(self) -> None:
        if self._fh is not None:
            with contextlib.suppress(OSError):
                self._fh.close()
            self._fh = None
        with contextlib.suppress(OSError):
            self._tmp.unlink()


class LocalDestination(Destination):
    """A directory on this machine (or a mounted share)."""

    kind = "local"

    def __init__(self, directory: str, *, fsync: bool = True) -> None:
        if not directory:
            raise ExportConfigError("destination 'local' needs path= (the directory to write into)")
        self.directory = Path(directory)
        self.fsync = fsync

    def full_path(self, name: str) -> str:
        return str(self.directory / name)

    def open_file(self, name: str, *, overwrite: bool) -> FileWriter:
        return _LocalWriter(self.directory / name, overwrite, self.fsync)

    def delete(self, name: str) -> None:
        (self.directory / name).unlink(missing_ok=True)

    def fetch(self, name: str, local_path: str) -> bool:
        src = self.directory / name
        if not src.is_file():
            return False
        shutil.copyfile(src, local_path)
        return True

    def lease_read(self, name: str) -> bytes | None:
        return _local_read(self.directory / name)

    def list_names(self, subdir: str = "") -> list[str]:
        try:
            return [p.name for p in (self.directory / subdir).iterdir() if p.is_file()]
        except FileNotFoundError:
            return []

    def lease_create(self, name: str, data: bytes) -> bool:
        return _local_create(self.directory / name, data)

    def lease_replace(self, name: str, data: bytes) -> None:
        _local_replace(self.directory / name, data)

    def lease_rename(self, name: str, new_name: str) -> bool:
        return _local_rename(self.directory / name, self.directory / new_name)

    def uri(self) -> str:
        return self.directory.resolve().as_uri()


def _local_read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


def _local_create(path: Path, data: bytes) -> bool:
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        return False
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    return True


def _local_replace(path: Path, data: bytes) -> None:
    tmp = path.parent / f".{path.name}.{secrets.token_hex(4)}.part"
    tmp.write_bytes(data)
    tmp.replace(path)


def _local_rename(path: Path, new_path: Path) -> bool:
    try:
        path.rename(new_path)  # new_path is unique to the caller: nothing is replaced
    except FileNotFoundError:
        return False
    return True


# -- SFTP -------------------------------------------------------------------------------------------------------
class _SftpWriter(FileWriter):
    """Bytes written here flow through a bounded pipe to an upload thread (``SftpSession.upload_stream``)."""

    def __init__(self, session: SftpSession, path: str, overwrite: bool) -> None:
        self.path = path
        self._pipe = BytePipe()
        self._error: BaseException | None = None

        def upload() -> None:
            try:
                session.upload_stream(iter(self._pipe), path, overwrite=overwrite, makedirs=True)
            except BaseException as exc:
                self._error = exc
                self._pipe.fail(exc)

        self._thread = threading.Thread(target=upload, name="lytics-export-upload", daemon=True)
        self._thread.start()

    def write(self, data: bytes) -> int:
        if self._error is not None:
            raise ExportAbortedError(f"upload of {self.path} failed: {self._error}") from self._error
        return self._pipe.write(data)

    def commit(self) -> None:
        try:
            self._pipe.close()
        except ExportAbortedError:
            pass  # the upload thread failed: its error is raised below
        self._thread.join()
        if self._error is not None:
            raise self._error

    def abort(self) -> None:
        self._pipe.abort(ExportAbortedError("the export failed before this file was complete"))
        self._thread.join(timeout=120)


class SftpDestination(Destination):
    """A directory on an SFTP server (Airflow ``sftp`` connection), through the provider's fast SFTP engine."""

    kind = "sftp"

    def __init__(self, sftp_conn_id: str, directory: str) -> None:
        if not sftp_conn_id:
            raise ExportConfigError("destination 'sftp' needs sftp_conn_id= (an Airflow sftp connection)")
        self.sftp_conn_id = sftp_conn_id
        self.directory = directory or "."
        self._session: SftpSession | None = None
        self._lock = threading.Lock()
        self._host = ""

    @property
    def session(self) -> SftpSession:
        with self._lock:
            if self._session is None:
                from airflow_provider_lytics.hooks.sftp import LyticsSftpHook

                hook = LyticsSftpHook(self.sftp_conn_id)
                config = hook.get_config()
                self._host = f"{config.host}:{config.port}"
                self._session = hook.session().open()
            return self._session

    def full_path(self, name: str) -> str:
        return posixpath.join(self.directory, name)

    def open_file(self, name: str, *, overwrite: bool) -> FileWriter:
        return _SftpWriter(self.session, self.full_path(name), overwrite)

    def delete(self, name: str) -> None:
        if self.session.exists(self.full_path(name)):
            self.session.delete(self.full_path(name))

    def fetch(self, name: str, local_path: str) -> bool:
        remote = self.full_path(name)
        if not self.session.exists(remote):
            return False
        self.session.download_file(remote, local_path)
        return True

    def store(self, local_path: str, name: str) -> str:
        remote = self.full_path(name)
        self.session.upload_file(local_path, remote, overwrite=True, makedirs=True)
        return remote

    # -- lease operations over the session's SFTP client (exclusive create is FXF_EXCL: atomic on the server) --
    def _sftp(self, make: Any) -> Any:
        session = self.session
        return session._run(make(session._client))  # a few primitives the session does not expose

    def list_names(self, subdir: str = "") -> list[str]:
        import asyncssh

        async def names(client: Any) -> list[str]:
            try:
                return [n for n in await client.listdir(self.full_path(subdir) if subdir else self.directory)
                        if n not in (".", "..")]  # fmt: skip
            except (asyncssh.SFTPNoSuchFile, asyncssh.SFTPNoSuchPath):
                return []

        return self._sftp(names)

    def lease_read(self, name: str) -> bytes | None:
        import asyncssh

        async def read(client: Any) -> bytes | None:
            try:
                async with client.open(self.full_path(name), "rb") as fh:
                    return await fh.read()
            except (asyncssh.SFTPNoSuchFile, asyncssh.SFTPNoSuchPath):
                return None

        return self._sftp(read)

    def lease_create(self, name: str, data: bytes) -> bool:
        import asyncssh

        path = self.full_path(name)
        self.session.makedirs(posixpath.dirname(path) or ".")

        async def create(client: Any) -> bool:
            try:
                fh = await client.open(path, "xb")
            except asyncssh.SFTPError:
                if await client.exists(path):
                    return False
                raise
            async with fh:
                await fh.write(data)
            return True

        return self._sftp(create)

    def lease_replace(self, name: str, data: bytes) -> None:
        self.session.upload_stream(iter([data]), self.full_path(name), overwrite=True, makedirs=True)

    def lease_rename(self, name: str, new_name: str) -> bool:
        import asyncssh

        async def rename(client: Any) -> bool:
            try:
                await client.rename(self.full_path(name), self.full_path(new_name))
            except (asyncssh.SFTPNoSuchFile, asyncssh.SFTPNoSuchPath):
                return False
            return True

        return self._sftp(rename)

    def uri(self) -> str:
        if not self._host:
            self.session  # noqa: B018 - resolves the host
        directory = self.directory if self.directory.startswith("/") else "/" + self.directory
        return f"sftp://{self._host}{directory}"

    def close(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None


# -- object storage ---------------------------------------------------------------------------------------------
class _ObjectWriter(FileWriter):
    def __init__(self, target: Any, overwrite: bool) -> None:
        self.path = str(target)
        self._final = target
        if not overwrite and target.exists():
            raise ExportConfigError(f"{target} already exists: pass overwrite=True or use {{TIMESTAMP}} in file_name")
        # object stores publish an object only when its upload completes; local file systems need a rename
        self._rename = target.protocol in ("file", "local", "")
        self._tmp = target.parent / f".{target.name}.{secrets.token_hex(4)}.part" if self._rename else target
        if self._rename:
            self._tmp.parent.mkdir(parents=True, exist_ok=True)
        self._fh = self._tmp.open("wb")

    def write(self, data: bytes) -> int:
        self._fh.write(data)
        return len(data)

    def commit(self) -> None:
        try:
            self._fh.close()
            if self._rename:
                self._tmp.fs.mv(self._tmp.path, self._final.path)
        except BaseException:
            self.abort()
            raise

    def abort(self) -> None:
        discard = getattr(self._fh, "discard", None)
        with contextlib.suppress(Exception):
            discard() if discard else self._fh.close()
        if self._rename:
            with contextlib.suppress(Exception):
                self._tmp.unlink()


class ObjectStorageDestination(Destination):
    """An Airflow object storage location (``s3://bucket/prefix``, ``gs://...``, ``file:///...``)."""

    kind = "object_storage"

    def __init__(self, base_uri: str, conn_id: str | None = None) -> None:
        if not base_uri or "://" not in base_uri:
            raise ExportConfigError("destination 'object_storage' needs path= as a URI, e.g. 's3://bucket/exports/'")
        from airflow.providers.common.compat.sdk import ObjectStoragePath

        self.base = ObjectStoragePath(base_uri, conn_id=conn_id) if conn_id else ObjectStoragePath(base_uri)
        self.base_uri = base_uri

    def full_path(self, name: str) -> str:
        return str(self.base / name)

    def open_file(self, name: str, *, overwrite: bool) -> FileWriter:
        return _ObjectWriter(self.base / name, overwrite)

    def delete(self, name: str) -> None:
        target = self.base / name
        if target.exists():
            target.unlink()

    def fetch(self, name: str, local_path: str) -> bool:
        src = self.base / name
        if not src.exists():
            return False
        with src.open("rb") as fin, open(local_path, "wb") as fout:
            shutil.copyfileobj(fin, fout, 1 << 20)
        return True

    # -- lease operations: atomic on local paths (file://); on object stores a create is checked by reading it
    #    back (object stores without conditional writes cannot do better)
    def _local_path(self, name: str) -> Path | None:
        target = self.base / name
        return Path(target.path) if target.protocol in ("file", "local", "") else None

    def lease_read(self, name: str) -> bytes | None:
        local = self._local_path(name)
        if local is not None:
            return _local_read(local)
        target = self.base / name
        return target.read_bytes() if target.exists() else None

    def lease_create(self, name: str, data: bytes) -> bool:
        local = self._local_path(name)
        if local is not None:
            return _local_create(local, data)
        target = self.base / name
        if target.exists():
            return False
        target.write_bytes(data)
        return target.read_bytes() == data

    def lease_replace(self, name: str, data: bytes) -> None:
        local = self._local_path(name)
        if local is not None:
            _local_replace(local, data)
        else:
            (self.base / name).write_bytes(data)

    def lease_rename(self, name: str, new_name: str) -> bool:
        local = self._local_path(name)
        if local is not None:
            return _local_rename(local, self._local_path(new_name))  # type: ignore[arg-type]
        target = self.base / name
        if not target.exists():
            return False
        target.fs.mv(target.path, (self.base / new_name).path)
        return True

    def uri(self) -> str:
        return self.base_uri.rstrip("/")


# -- email ------------------------------------------------------------------------------------------------------
@dataclass
class EmailSettings:
    """Recipients and texts of the export email (sent through an Airflow SMTP connection)."""

    smtp_conn_id: str
    to: list[str]
    cc: list[str] = field(default_factory=list)
    subject: str = "Lytics audience export"
    body: str = "The Lytics audience export is attached."
    max_bytes: int = 20 * 1024 * 1024


class EmailDestination(LocalDestination):
    """Files are staged in a private temporary directory, then sent as attachments of one email."""

    kind = "email"

    def __init__(self, settings: EmailSettings) -> None:
        if not settings.smtp_conn_id:
            raise ExportConfigError("destination 'email' needs smtp_conn_id= (an Airflow smtp connection)")
        if not settings.to:
            raise ExportConfigError("destination 'email' needs email_to= (one or more addresses)")
        from airflow_provider_lytics.exports.leftovers import MAIL_OWNER, RunFolder

        self.settings = settings
        self._folder = RunFolder(MAIL_OWNER, prefix="lytics-export-mail-")  # locked: a later run removes it if dead
        self._tmpdir = str(self._folder.path)
        super().__init__(self._tmpdir, fsync=False)
        self.sent_to: list[str] = []

    def fetch(self, name: str, local_path: str) -> bool:
        raise ExportConfigError("the email destination cannot hold incremental state: set state_uri= as well")

    def store(self, local_path: str, name: str) -> str:
        if ".state." in name:
            raise ExportConfigError("the email destination cannot hold incremental state: set state_uri= as well")
        return super().store(local_path, name)  # the manifest: staged and attached with the data

    def lease_create(self, name: str, data: bytes) -> bool:
        raise ExportConfigError("the email destination cannot hold incremental state: set state_uri= as well")

    def publish(self, files: list[str]) -> None:
        from airflow_provider_lytics.exports.email import send_export_email

        self.sent_to = send_export_email(self.settings, [Path(f) for f in files])

    def uri(self) -> str:
        return "mailto:" + ",".join(self.settings.to)

    def close(self) -> None:
        self._folder.remove()
