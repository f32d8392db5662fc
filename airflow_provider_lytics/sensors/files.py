"""File-arrival sensor for continuous imports: local directory or SFTP, files newer than the import's watermark.

Point it at the same ``watermark_key`` as the import operator: it then waits only for files the import has not
loaded yet. The selected paths are pushed to XCom (``lytics_new_files``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.providers.common.compat.sdk import BaseSensorOperator

from airflow_provider_lytics.errors import LyticsArgumentError

XCOM_NEW_FILES = "lytics_new_files"


class LyticsFileArrivalSensor(BaseSensorOperator):
    """Wait until at least ``min_files`` matching files newer than the watermark are present.

    :param directory: directory to watch (local, or remote when ``sftp_conn_id`` is set).
    :param glob: file name pattern, e.g. ``users_*.csv.gpg``; or ``regex`` for the whole name. With ``recursive``,
        a pattern containing ``/`` matches the path below ``directory`` (``2026/*/*/users_*.csv``, ``**`` any depth).
    :param sftp_conn_id: watch an SFTP server instead of the local file system.
    :param recursive: also watch sub-folders (SFTP only), down to ``max_depth`` levels; hidden folders and folder
        symlinks are not entered. Use the same options as the import operator.
    :param exclude_dirs: folders not to enter when ``recursive``, e.g. the import's relative ``archive_dir``
        (``["done"]``: that name at any depth) or a path relative to ``directory``.
    :param watermark_by: ``mtime``, ``name`` (date in the name, or in the path below ``directory`` when
        ``recursive``; read with ``date_format``) or ``none``.
    :param watermark_key: Airflow Variable the import operator keeps its watermark in (same value in both).
    :param min_age_seconds: ignore files modified more recently (upload may still be running).
    """

    template_fields: Sequence[str] = ("directory", "glob", "regex", "watermark_key")

    def __init__(
        self,
        *,
        directory: str,
        glob: str | None = None,
        regex: str | None = None,
        sftp_conn_id: str | None = None,
        watermark_by: str = "mtime",
        watermark_key: str | None = None,
        date_format: str = "%Y-%m-%d",
        min_age_seconds: float = 0.0,
        min_files: int = 1,
        recursive: bool = False,
        max_depth: int | None = None,
        exclude_dirs: Sequence[str] = (),
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if recursive and not sftp_conn_id:
            raise LyticsArgumentError("recursive=True watches an SFTP server: set sftp_conn_id")
        if max_depth is not None and max_depth < 0:
            raise LyticsArgumentError(f"max_depth must be 0 or more, got {max_depth}")
        if watermark_by not in ("none", "mtime", "name"):
            raise LyticsArgumentError(f"watermark_by must be 'none', 'mtime' or 'name', got {watermark_by!r}")
        if watermark_by != "none" and not watermark_key:
            raise LyticsArgumentError(
                "watermark_key is required with a watermark: use the same Variable name as the import operator"
            )
        if min_files < 1:
            raise LyticsArgumentError(f"min_files must be at least 1, got {min_files}")
        self.directory, self.glob, self.regex = directory, glob, regex
        self.sftp_conn_id = sftp_conn_id
        self.watermark_by, self.watermark_key = watermark_by, watermark_key
        self.date_format, self.min_age_seconds, self.min_files = date_format, min_age_seconds, min_files
        self.recursive, self.max_depth, self.exclude_dirs = recursive, max_depth, list(exclude_dirs)

    def _list(self) -> list[Any]:
        if self.sftp_conn_id:
            from airflow_provider_lytics.hooks.sftp import LyticsSftpHook
            from airflow_provider_lytics.io.sftp import DEFAULT_MAX_DEPTH

            depth = DEFAULT_MAX_DEPTH if self.max_depth is None else self.max_depth
            with LyticsSftpHook(self.sftp_conn_id).session() as sftp:
                return sftp.list_files(self.directory, glob=self.glob, regex=self.regex, recursive=self.recursive,
                                       max_depth=depth, exclude_dirs=self.exclude_dirs)  # fmt: skip
        from airflow_provider_lytics.imports.watermark import list_local

        try:
            return list_local(self.directory, glob=self.glob, regex=self.regex)
        except FileNotFoundError:
            self.log.info("Directory %s does not exist yet", self.directory)
            return []

    def poke(self, context: Any) -> bool:
        from airflow_provider_lytics.imports.watermark import read_watermark, select_new

        current = read_watermark(self.watermark_key) if self.watermark_key and self.watermark_by != "none" else None
        selection = select_new(self._list(), current, by=self.watermark_by, date_format=self.date_format,
                               min_age_seconds=self.min_age_seconds)  # fmt: skip
        found = [f.path for f in selection.files]
        self.log.info("%d new file(s) in %s since watermark %s", len(found), self.directory, current)
        if len(found) < self.min_files:
            return False
        ti = context.get("ti")
        if ti is not None:
            ti.xcom_push(key=XCOM_NEW_FILES, value=found)
        return True
