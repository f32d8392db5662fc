"""Plain PGP + SFTP file moves, the way Lytics file jobs exchange files with partners.

- :class:`LyticsSftpUploadOperator`: local files, optionally PGP-encrypted (and signed) while they stream, uploaded
  atomically to an SFTP directory, with an optional manifest next to each file.
- :class:`LyticsSftpDownloadOperator`: SFTP files picked by name, glob, regex, "newest" or "newer than a
  watermark", optionally PGP-decrypted while they download, written atomically to a local directory; the remote
  files can then be archived or deleted.

Encryption and decryption never need the whole file twice on disk: ciphertext flows between gpg and the SFTP
connection through bounded in-memory buffers, and a local file appears under its final name only when complete.
"""

from __future__ import annotations

import glob as globlib
import posixpath
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, BinaryIO, Literal, cast

from airflow.providers.common.compat.sdk import BaseOperator

from airflow_provider_lytics.errors import LyticsArgumentError

PGP_SUFFIXES = (".gpg", ".pgp", ".asc")
Selection = Literal["all", "newest", "newer_than"]


def _resolve_local_files(local_path: str | Sequence[str]) -> list[Path]:
    patterns = [local_path] if isinstance(local_path, str) else list(local_path)
    files: list[Path] = []
    for pattern in patterns:
        matches = sorted(globlib.glob(pattern)) if globlib.has_magic(pattern) else [pattern]  # noqa: PTH207
        files.extend(Path(m) for m in matches if Path(m).is_file())
        if not globlib.has_magic(pattern) and not Path(pattern).is_file():
            raise FileNotFoundError(f"Local file {pattern} does not exist")
    return files


def plaintext_name(remote_name: str) -> str:
    """``users.csv.gpg`` -> ``users.csv``; names without a PGP suffix are kept."""
    for suffix in PGP_SUFFIXES:
        if remote_name.lower().endswith(suffix):
            return remote_name[: -len(suffix)]
    return remote_name


def local_target(local_dir: Path, relative: str) -> Path:
    """Where a remote file found at ``relative`` (below the listed folder) lands: the same path below
    ``local_dir``, parent folders created. A path leaving ``local_dir`` (``..``) is refused."""
    parts = relative.split("/")
    if any(part in ("", ".", "..") for part in parts):
        raise ValueError(f"Refusing to download to {relative!r}: not a plain relative path")
    target = local_dir.joinpath(*parts)
    target.parent.mkdir(parents=True, exist_ok=True)
    return target


class LyticsSftpUploadOperator(BaseOperator):
    """Upload local files to SFTP atomically, PGP-encrypting them on the way when ``pgp_conn_id`` is set.

    :param local_path: a file, a glob (``/data/out/*.csv``) or a list of them. Templated.
    :param remote_dir: target directory on the SFTP server. Templated.
    :param sftp_conn_id: Airflow ``sftp`` connection (host key verified; see the README).
    :param pgp_conn_id: ``pgp`` connection whose public key encrypts the files; ``None`` uploads them as they are.
    :param remote_name: target name template; ``{name}`` is the local file name, ``{timestamp}`` the UTC time
        ``YYYYMMDDTHHMMSSZ``. Default ``{name}`` plus ``.gpg`` (``.asc`` when armored) when encrypting.
    :param sign: also sign with the PGP connection's private (or signing) key.
    :param armor, compress: PGP output options; ``None`` uses the connection's defaults.
    :param manifest: write ``<file>.manifest.json`` (name, size, sha256, created) after each file.
    :param overwrite: replace existing remote files (atomically); otherwise an existing file fails the task.
    :param makedirs: create ``remote_dir`` when missing.
    :returns: (XCom) a list of ``{"local", "remote", "size", "sha256"}``, one per file.
    """

    template_fields: Sequence[str] = ("local_path", "remote_dir", "remote_name", "sftp_conn_id", "pgp_conn_id")
    ui_color = "#f4a261"

    def __init__(
        self,
        *,
        local_path: str | Sequence[str],
        remote_dir: str,
        sftp_conn_id: str = "sftp_default",
        pgp_conn_id: str | None = None,
        remote_name: str | None = None,
        sign: bool = False,
        armor: bool | None = None,
        compress: bool | None = None,
        manifest: bool = False,
        overwrite: bool = False,
        makedirs: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.local_path = local_path
        self.remote_dir = remote_dir
        self.sftp_conn_id = sftp_conn_id
        self.pgp_conn_id = pgp_conn_id
        self.remote_name = remote_name
        self.sign = sign
        self.armor = armor
        self.compress = compress
        self.manifest = manifest
        self.overwrite = overwrite
        self.makedirs = makedirs
        if sign and not pgp_conn_id:
            raise LyticsArgumentError("sign=True needs pgp_conn_id: signing uses the PGP connection's private key")

    def _target_name(self, local: Path, encrypted_suffix: str) -> str:
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        template = self.remote_name or ("{name}" + encrypted_suffix)
        return template.format(name=local.name, timestamp=stamp)

    def execute(self, context: Any) -> list[dict[str, Any]]:
        from airflow_provider_lytics.hooks.sftp import LyticsSftpHook

        files = _resolve_local_files(self.local_path)
        if not files:
            raise FileNotFoundError(f"No local file matches {self.local_path!r}: nothing to upload")
        pgp = None
        suffix = ""
        if self.pgp_conn_id:
            from airflow_provider_lytics.hooks.pgp import PgpHook

            pgp = PgpHook(self.pgp_conn_id)
            armored = pgp.armor if self.armor is None else self.armor
            suffix = ".asc" if armored else ".gpg"
        results: list[dict[str, Any]] = []
        with LyticsSftpHook(self.sftp_conn_id).session() as sftp:
            for local in files:
                remote = posixpath.join(self.remote_dir, self._target_name(local, suffix))
                options = {"overwrite": self.overwrite, "makedirs": self.makedirs, "manifest": self.manifest}
                if pgp is None:
                    result = sftp.upload_file(local, remote, **options)
                else:
                    with pgp.encrypted_reader(
                        local, armor=self.armor, compress=self.compress, sign=self.sign
                    ) as ciphertext:
                        result = sftp.upload_stream(ciphertext, remote, **options)
                results.append({"local": str(local), "remote": remote, "size": result.size, "sha256": result.sha256})
                self.log.info("Uploaded %s -> %s (%d bytes%s)", local, remote, result.size,
                              ", PGP-encrypted" if pgp else "")  # fmt: skip
        return results


class LyticsSftpDownloadOperator(BaseOperator):
    """Download SFTP files atomically, PGP-decrypting them on the way when ``pgp_conn_id`` is set.

    :param remote_dir: directory on the SFTP server. Templated.
    :param local_dir: local target directory (created when missing). Templated.
    :param glob, regex: which file names to consider (shell glob, or a regex matching the whole name). With
        ``recursive``, a pattern containing ``/`` matches the path below ``remote_dir`` (``2026/*/*/users_*.csv``;
        ``**`` spans any depth).
    :param recursive: also look in sub-folders of ``remote_dir``, down to ``max_depth`` levels (default 10).
        Hidden folders, folder symlinks and a relative ``archive_dir`` are not entered; unreadable sub-folders are
        skipped with a warning. Local files keep the relative path (``2026/11/28/users.csv``), so equal names in
        different folders never overwrite each other.
    :param select: ``"all"`` matches, the ``"newest"`` one, or those ``"newer_than"`` ``watermark``.
    :param watermark: for ``newer_than``: an ISO timestamp (``by="mtime"``) or date (``by="name"``, read from the
        file name with ``date_format``); ``None`` takes everything. Templated, e.g. from the previous run's XCom.
    :param pgp_conn_id: ``pgp`` connection whose private key decrypts the files (``.gpg``/``.pgp``/``.asc``
        suffixes are dropped from the local names); ``verify`` also checks signatures against its signer keys.
    :param after_load: ``"keep"``, ``"delete"`` or ``"archive"`` (into ``archive_dir``) the remote files once every
        selected file is safely on local disk.
    :returns: (XCom) ``{"files": [{"remote", "local", "size", "sha256"}], "watermark": <new watermark or None>}``.
    """

    template_fields: Sequence[str] = (
        "remote_dir", "local_dir", "glob", "regex", "watermark", "archive_dir", "sftp_conn_id", "pgp_conn_id",
    )  # fmt: skip
    ui_color = "#f4a261"

    def __init__(
        self,
        *,
        remote_dir: str,
        local_dir: str,
        sftp_conn_id: str = "sftp_default",
        glob: str | None = None,
        regex: str | None = None,
        select: Selection = "all",
        watermark: str | None = None,
        by: Literal["mtime", "name"] = "mtime",
        date_format: str = "%Y-%m-%d",
        pgp_conn_id: str | None = None,
        verify: bool = False,
        after_load: Literal["keep", "delete", "archive"] = "keep",
        archive_dir: str | None = None,
        fail_if_empty: bool = False,
        recursive: bool = False,
        max_depth: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if select not in ("all", "newest", "newer_than"):
            raise LyticsArgumentError(f"select must be 'all', 'newest' or 'newer_than', got {select!r}")
        if after_load not in ("keep", "delete", "archive"):
            raise LyticsArgumentError(f"after_load must be 'keep', 'delete' or 'archive', got {after_load!r}")
        if max_depth is not None and max_depth < 0:
            raise LyticsArgumentError(f"max_depth must be 0 or more, got {max_depth}")
        if after_load == "archive" and not archive_dir:
            raise LyticsArgumentError("after_load='archive' needs archive_dir (e.g. 'processed')")
        if verify and not pgp_conn_id:
            raise LyticsArgumentError("verify=True needs pgp_conn_id: signatures are checked against its signer keys")
        self.remote_dir = remote_dir
        self.local_dir = local_dir
        self.sftp_conn_id = sftp_conn_id
        self.glob = glob
        self.regex = regex
        self.select = select
        self.watermark = watermark
        self.by = by
        self.date_format = date_format
        self.pgp_conn_id = pgp_conn_id
        self.verify = verify
        self.after_load = after_load
        self.archive_dir = archive_dir
        self.fail_if_empty = fail_if_empty
        self.recursive = recursive
        self.max_depth = max_depth

    def _walk_options(self) -> dict[str, Any]:
        """Listing options: the archive folder is never walked, or archived files would come back next run."""
        from airflow_provider_lytics.io.sftp import DEFAULT_MAX_DEPTH

        archive = [self.archive_dir] if self.after_load == "archive" and self.archive_dir else []
        return {"recursive": self.recursive, "exclude_dirs": archive,
                "max_depth": DEFAULT_MAX_DEPTH if self.max_depth is None else self.max_depth}  # fmt: skip

    def execute(self, context: Any) -> dict[str, Any]:
        from airflow_provider_lytics.hooks.sftp import LyticsSftpHook

        local_dir = Path(self.local_dir)
        local_dir.mkdir(parents=True, exist_ok=True)
        pgp = None
        if self.pgp_conn_id:
            from airflow_provider_lytics.hooks.pgp import PgpHook

            pgp = PgpHook(self.pgp_conn_id)
        downloaded: list[dict[str, Any]] = []
        walk = self._walk_options()
        with LyticsSftpHook(self.sftp_conn_id).session() as sftp:
            new_watermark = None
            if self.select == "newer_than":
                picked = sftp.newer_than(self.remote_dir, self.watermark or None, glob=self.glob, regex=self.regex,
                                         by=self.by, date_format=self.date_format, **walk)  # fmt: skip
                files, new_watermark = picked.files, picked.watermark
            elif self.select == "newest":
                newest = sftp.newest(self.remote_dir, glob=self.glob, regex=self.regex, **walk)
                files = [newest] if newest else []
            else:
                files = sftp.list_files(self.remote_dir, glob=self.glob, regex=self.regex, **walk)
            if not files:
                message = f"No file in {self.remote_dir} matches glob={self.glob!r} regex={self.regex!r}"
                if self.fail_if_empty:
                    raise FileNotFoundError(message)
                self.log.info("%s (select=%s, watermark=%s)", message, self.select, self.watermark)
            for remote in files:
                if pgp is None:
                    target = local_target(local_dir, remote.relative)
                    result = sftp.download_file(remote.path, target)
                else:
                    target = local_target(local_dir, plaintext_name(remote.relative))
                    with pgp.open_decryptor(target, verify=self.verify) as plaintext_sink:
                        result = sftp.download_stream(remote.path, cast(BinaryIO, plaintext_sink))
                downloaded.append({"remote": remote.path, "local": str(target), "size": result.size,
                                   "sha256": result.sha256})  # fmt: skip
                self.log.info("Downloaded %s -> %s (%d bytes%s)", remote.path, target, result.size,
                              ", PGP-decrypted" if pgp else "")  # fmt: skip
            if files and self.after_load != "keep":
                sftp.finish(files, action=self.after_load, archive_dir=self.archive_dir)
        return {"files": downloaded, "watermark": new_watermark if new_watermark is not None else self.watermark}
