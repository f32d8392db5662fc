"""Imports into Lytics: local files (and object storage), SFTP files (optionally PGP-encrypted) and DataFrames.

All three share one engine (:mod:`airflow_provider_lytics.imports`): rows are streamed, validated against the
Lytics limits, rejected rows go to a quarantine file with their line numbers, valid rows are uploaded in batches
to ``/collect/bulk`` (the bulk host by default) with a bounded number in flight, and every acknowledged batch is
checkpointed so a retried task re-sends nothing Lytics already acknowledged. Counts go to the log and to XCom
(the return value); the target stream is an asset/dataset outlet ``lytics://stream/<name>``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import AirflowException, BaseOperator

from airflow_provider_lytics.errors import LyticsArgumentError
from airflow_provider_lytics.links import LyticsStreamLink, publish_links

if TYPE_CHECKING:
    from airflow_provider_lytics.imports.sources import SourceFile

XCOM_IMPORT_FILES = "lytics_import_files"


def lytics_stream_asset(stream: str) -> Any:
    """The asset (dataset on Airflow 2) that stands for a Lytics stream: ``lytics://stream/<name>``."""
    from airflow.providers.common.compat.sdk import Asset

    return Asset(f"lytics://stream/{stream}")


class _ToLyticsOperator(BaseOperator):
    """Shared options of the import operators (see the subclasses for the sources).

    :param stream: target Lytics stream (created on first use).
    :param lytics_conn_id: Lytics connection.
    :param file_format: ``csv``, ``ndjson`` or ``json`` (array or concatenated objects); inferred from the file
        name when omitted.
    :param compression: ``infer`` (by content), ``gzip``, ``zip`` or ``none``.
    :param encoding: text encoding of the input (rows that do not decode are quarantined).
    :param delimiter: CSV delimiter: ``,``, tab, ``|`` or ``;``.
    :param columns: CSV column names; replace the header row, or name the columns when ``has_header=False``.
    :param constant_fields: fields added to every record, e.g. ``{"source_file": "{{ ds }}.csv"}``.
    :param timestamp_field: record field holding the event time (passed to Lytics).
    :param batch_bytes: upload body size (default 8 MB on the bulk host, just under 10 MB on the API host).
    :param batch_rows: rows per upload at most.
    :param max_in_flight: uploads in flight at once (threads); reading the next batch always overlaps the
        upload in progress. Raise it (2-4) when the network round trip, not Lytics, is the bottleneck.
    :param use_bulk_host: send to the bulk host (large bodies); ``False`` uses the API host (10 MB cap).
    :param gzip_batches: gzip each upload body (less bandwidth, more CPU).
    :param max_rejected_rows: fail the task when more rows are rejected (here or by Lytics).
    :param max_rejected_fraction: fail the task when a larger fraction of rows is rejected (0..1).
    :param quarantine_path: where rejected rows go (NDJSON, ``.gz`` for gzip); local path, or a remote path on
        ``quarantine_sftp_conn_id``. Default: no file, rejects are only counted and logged.
    :param checkpoint: ``auto`` (Airflow 3.3 task state store, else an Airflow Variable), ``task_state``,
        ``variable``, ``none`` or an absolute file path on durable storage.
    :param checkpoint_lease_wait: seconds to wait when another run holds the checkpoint before failing with a
        message naming it (dag, task, run, try, host). One run at a time may use a checkpoint.
    :param checkpoint_lease_ttl: seconds without a heartbeat after which a holder counts as dead and its lease
        is taken over (heartbeats every third of it).
    :param progress_interval: seconds between progress lines in the log.
    :param dry_run: validate everything locally and send a sample with Lytics's ``dryrun`` (nothing stored).
    :param dry_run_sample: rows sent in a dry run.
    :param emit_asset: add the ``lytics://stream/<stream>`` outlet (when ``stream`` is not templated).
    """

    template_fields: Sequence[str] = ("stream", "constant_fields", "timestamp_field", "quarantine_path", "checkpoint")
    template_fields_renderers = {"constant_fields": "json"}
    ui_color = "#e8f4ff"
    operator_extra_links = (LyticsStreamLink(),)

    def __init__(
        self,
        *,
        stream: str,
        lytics_conn_id: str = "lytics_default",
        file_format: str | None = None,
        compression: str = "infer",
        encoding: str = "utf-8",
        delimiter: str = ",",
        quotechar: str = '"',
        columns: Sequence[str] | None = None,
        has_header: bool = True,
        constant_fields: Mapping[str, Any] | None = None,
        timestamp_field: str | None = None,
        batch_bytes: int | None = None,
        batch_rows: int = 500_000,
        max_in_flight: int = 1,
        use_bulk_host: bool = True,
        gzip_batches: bool = False,
        max_rejected_rows: int | None = None,
        max_rejected_fraction: float | None = None,
        quarantine_path: str | None = None,
        quarantine_sftp_conn_id: str | None = None,
        checkpoint: str = "auto",
        checkpoint_lease_wait: float = 60.0,
        checkpoint_lease_ttl: float = 120.0,
        progress_interval: float = 30.0,
        dry_run: bool = False,
        dry_run_sample: int = 1000,
        emit_asset: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.stream = stream
        self.lytics_conn_id = lytics_conn_id
        self.file_format = file_format
        self.compression = compression
        self.encoding = encoding
        self.delimiter = delimiter
        self.quotechar = quotechar
        self.columns = list(columns) if columns else None
        self.has_header = has_header
        self.constant_fields = dict(constant_fields) if constant_fields else None
        self.timestamp_field = timestamp_field
        self.batch_bytes = batch_bytes
        self.batch_rows = batch_rows
        self.max_in_flight = max_in_flight
        self.use_bulk_host = use_bulk_host
        self.gzip_batches = gzip_batches
        self.max_rejected_rows = max_rejected_rows
        self.max_rejected_fraction = max_rejected_fraction
        self.quarantine_path = quarantine_path
        self.quarantine_sftp_conn_id = quarantine_sftp_conn_id
        self.checkpoint = checkpoint
        if checkpoint_lease_wait < 0 or checkpoint_lease_ttl <= 0:
            raise LyticsArgumentError("checkpoint_lease_wait must be 0 or more and checkpoint_lease_ttl more than 0")
        self.checkpoint_lease_wait = checkpoint_lease_wait
        self.checkpoint_lease_ttl = checkpoint_lease_ttl
        self.progress_interval = progress_interval
        self.is_dry_run = dry_run  # not self.dry_run: that would hide BaseOperator.dry_run() (template check)
        self.dry_run_sample = dry_run_sample
        if emit_asset and not dry_run and isinstance(stream, str) and stream and "{{" not in stream:
            self.outlets = [*(self.outlets or []), lytics_stream_asset(stream)]
        self._settings()  # fail at DAG parse time on bad options, not hours later on a worker
        self._lineage_inputs: list[tuple[str, str]] = []  # folders read, filled by _sources (see lineage.py)
        self._lineage_output: tuple[str, str] | None = None
        self._lineage_rows: int | None = None

    # -- engine -------------------------------------------------------------------------------------------
    def _settings(self) -> Any:
        from airflow_provider_lytics.imports.settings import ImportSettings

        stream = self.stream if "{{" not in str(self.stream) else "placeholder"
        try:
            return ImportSettings(
                stream=stream, file_format=self.file_format, compression=self.compression, encoding=self.encoding,
                delimiter=self.delimiter, quotechar=self.quotechar, columns=self.columns, has_header=self.has_header,
                constant_fields=self.constant_fields if not _templated(self.constant_fields) else None,
                timestamp_field=self.timestamp_field, batch_bytes=self.batch_bytes, batch_rows=self.batch_rows,
                gzip_batches=self.gzip_batches, use_bulk_host=self.use_bulk_host, max_in_flight=self.max_in_flight,
                max_rejected_rows=self.max_rejected_rows, max_rejected_fraction=self.max_rejected_fraction,
                progress_interval=self.progress_interval, dry_run=self.is_dry_run, dry_run_sample=self.dry_run_sample,
            )  # fmt: skip
        except ValueError as exc:
            raise LyticsArgumentError(f"{type(self).__name__} {self.task_id!r}: {exc}") from None

    def _hooks(self, count: int) -> list[Any]:
        from airflow_provider_lytics.client.retry import RetryPolicy
        from airflow_provider_lytics.hooks.lytics import LyticsHook

        hooks = []
        for _ in range(count):
            hook = LyticsHook(self.lytics_conn_id, retry_policy=RetryPolicy(max_attempts=1))
            hook.settings  # noqa: B018 -- resolve the connection here, never in upload threads
            hooks.append(hook)
        return hooks

    @contextlib.contextmanager
    def _sources(self, context: Mapping[str, Any]) -> Iterator[list[SourceFile]]:
        raise NotImplementedError

    def _after_success(self, context: Mapping[str, Any]) -> None:
        """Hook for subclasses (watermarks, archiving); runs only when the import succeeded."""

    def execute(self, context: Any) -> dict[str, Any]:
        from airflow_provider_lytics.imports.checkpoint import CheckpointWriteError, store_for_context
        from airflow_provider_lytics.imports.formats import ImportInputError
        from airflow_provider_lytics.imports.lease import ImportLeaseError
        from airflow_provider_lytics.imports.quarantine import QuarantineWriter
        from airflow_provider_lytics.imports.runner import (
            ImportBatchError,
            ImportReconciliationError,
            ImportRunner,
            ImportThresholdError,
        )

        settings = self._settings()
        settings.stream = self.stream
        try:
            settings.__post_init__()  # validate the rendered stream and constants
        except ValueError as exc:
            raise LyticsArgumentError(f"{type(self).__name__} {self.task_id!r}: {exc}") from None
        publish_links(context, self.lytics_conn_id, stream=self.stream)
        store = store_for_context(context, "none" if self.is_dry_run else self.checkpoint)
        remote_quarantine = bool(self.quarantine_sftp_conn_id and self.quarantine_path)
        local_q = None if remote_quarantine else self.quarantine_path
        quarantine = QuarantineWriter(local_q)  # without a path: a temporary file, uploaded or dropped at the end
        hooks = self._hooks(settings.max_in_flight)
        self._lineage_inputs = []
        self.log.info("Import into stream %r: checkpoints in %s", self.stream, store.description)
        error: Exception | None = None
        lease = self._lease(context, store)
        runner = ImportRunner(settings, hooks, log=self.log, checkpoint=store, quarantine=quarantine, lease=lease)
        try:
            if lease is not None:
                lease.acquire()  # an ImportLeaseError names the run holding the checkpoint
            with self._sources(context) as sources:
                if not sources:
                    self.log.info("No input files to import")
                try:
                    runner.run(sources)
                except (ImportThresholdError, ImportBatchError, ImportInputError, ImportReconciliationError,
                        ImportLeaseError, CheckpointWriteError) as exc:  # fmt: skip
                    error = exc
                if error is None:
                    self._after_success(context)
        except BaseException:
            if quarantine is not None:
                quarantine.abort()
            raise
        finally:
            if lease is not None:
                lease.release()
            for hook in hooks:
                hook.close()
            if (pgp_hook := self.__dict__.pop("_pgp_hook", None)) is not None:
                pgp_hook.close()  # its reused key ring goes now, not when a traceback lets go of the hook
        qpath = getattr(runner, "quarantine_path", None)
        if qpath and not self.quarantine_path:
            Path(qpath).unlink()  # counted and logged; the user asked for no file
            qpath = None
        if qpath and remote_quarantine:
            qpath = self._upload_quarantine(qpath)
        counts = runner.counts.as_dict()
        result: dict[str, Any] = {"stream": self.stream, **counts, "quarantine_path": qpath, "dry_run": self.is_dry_run}
        if self.is_dry_run:
            result.update(runner.dry_run_report)
        self._log_result(result, quarantine)
        ti = context.get("ti") if hasattr(context, "get") else None
        if error is not None:
            if ti is not None:
                ti.xcom_push(key="lytics_import_counts", value=result)
            raise error  # the typed error itself, for the retry policy (see errors.py); counts are in XCom
        if not self.is_dry_run:
            store.clear()
            from airflow_provider_lytics.lineage import stream_ref

            self._lineage_output = stream_ref(hooks[0].settings.api_url, str(self.stream))
            self._lineage_rows = int(result["rows_sent"])
        return result

    def _lease(self, context: Mapping[str, Any], store: Any) -> Any:
        """The lease on a durable checkpoint (None for an in-memory one, which no other run can see)."""
        if self.is_dry_run or not getattr(store, "supports_lease", False):
            return None
        from airflow_provider_lytics.imports.lease import CheckpointLease, Holder

        return CheckpointLease(store, Holder.from_context(context), ttl_seconds=self.checkpoint_lease_ttl,
                               wait_seconds=self.checkpoint_lease_wait, log=self.log)  # fmt: skip

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """For Airflow's OpenLineage listener: the folders read and the Lytics stream written (see lineage.py)."""
        from airflow_provider_lytics.lineage import operator_lineage

        outputs = [self._lineage_output] if self._lineage_output else []
        return operator_lineage(self._lineage_inputs, outputs, output_rows=self._lineage_rows)

    def _upload_quarantine(self, local: str) -> str:
        from airflow_provider_lytics.hooks.sftp import LyticsSftpHook

        remote = str(self.quarantine_path)
        try:
            with LyticsSftpHook(str(self.quarantine_sftp_conn_id)).session() as sftp:
                sftp.upload_file(local, remote, overwrite=True, makedirs=True)
        finally:
            Path(local).unlink()
        return f"sftp://{self.quarantine_sftp_conn_id}{'' if remote.startswith('/') else '/'}{remote}"

    def _log_result(self, result: Mapping[str, Any], quarantine: Any) -> None:
        self.log.info(
            "Import into %r%s: %d files, %d rows read, %d sent (%d accepted by Lytics, %d rejected by Lytics), "
            "%d rejected here, %d possible duplicates after lost responses, %d skipped as already acknowledged",
            self.stream, " (dry run)" if self.is_dry_run else "", result["files"], result["rows_read"],
            result["rows_sent"], result["accepted"], result["rejected_by_lytics"], result["rejected_here"],
            result["possible_duplicates"], result["skipped_acknowledged"],
        )  # fmt: skip
        if quarantine is not None and quarantine.samples:
            self.log.warning("Rejected rows, first of %d: %s", quarantine.count, quarantine.samples)
        if self.is_dry_run:
            self.log.info(
                "Dry run: Lytics would accept %s of %s sample rows; nothing was stored",
                result.get("sample_accepted", 0), result.get("sample_rows", 0),
            )  # fmt: skip


def _templated(value: Any) -> bool:
    return "{{" in repr(value)


class LocalFilesToLyticsOperator(_ToLyticsOperator):
    """Import local files (paths or glob patterns, ``**`` for recursion) or Airflow object storage URLs
    (``s3://bucket/in/*.csv``, ``file:///data/x.csv``) into a Lytics stream.

    :param paths: one path/pattern/URL or a list of them. Files are imported in name order.
    :param watermark_by: ``none`` (every matching file), ``mtime`` or ``name`` (dated names): only files newer than
        the watermark stored after the last successful run (``watermark_key``).
    :param watermark_key: Airflow Variable holding the watermark (default: per dag and task).
    :param date_format: date pattern in file names for ``watermark_by="name"``.
    :param min_age_seconds: skip files modified more recently (still being written).
    :param pgp_conn_id: Airflow ``pgp`` connection with the private key (+ passphrase): files are PGP-decrypted.
        Each file is decrypted and its integrity checked completely (to a private spool that has no name on disk)
        before its first row is sent; a manipulated file sends nothing and fails the task naming the file.
    :param pgp_require_signature: also require a good signature by one of the connection's
        ``signer_public_keys``; an unsigned or wrongly signed file sends nothing.
    """

    template_fields: Sequence[str] = (*_ToLyticsOperator.template_fields, "paths", "watermark_key")

    def __init__(
        self,
        *,
        paths: str | Sequence[str],
        watermark_by: str = "none",
        watermark_key: str | None = None,
        date_format: str = "%Y-%m-%d",
        min_age_seconds: float = 0.0,
        pgp_conn_id: str | None = None,
        pgp_require_signature: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.paths = paths
        self.pgp_conn_id = pgp_conn_id
        self.pgp_require_signature = pgp_require_signature
        if pgp_require_signature and not pgp_conn_id:
            raise LyticsArgumentError("pgp_require_signature=True needs pgp_conn_id (the signer's public key)")
        self.watermark_by = watermark_by
        self.watermark_key = watermark_key
        self.date_format = date_format
        self.min_age_seconds = min_age_seconds
        if watermark_by not in ("none", "mtime", "name"):
            raise LyticsArgumentError(f"watermark_by must be 'none', 'mtime' or 'name', got {watermark_by!r}")
        self._new_watermark: str | None = None

    def _decryptor(self) -> Callable[[Any], Any] | None:
        """The PGP stream stage for the files, checked up front (key pairs, signer key), or None."""
        if not self.pgp_conn_id:
            return None
        import functools

        from airflow_provider_lytics.hooks.pgp import PgpHook

        pgp = self._pgp_hook = PgpHook(self.pgp_conn_id)
        cipher = pgp.get_cipher()
        cipher.check_private_key()
        if self.pgp_require_signature and not cipher.signer_public_keys:
            from airflow_provider_lytics.io.pgp_errors import PgpConfigError

            raise PgpConfigError(
                f"pgp_require_signature=True: PGP connection {self.pgp_conn_id!r} names no signer public key "
                "(set its 'signer_public_keys' extra to the sender's armored public key)"
            )
        return functools.partial(pgp.open_decryptor, verify=self.pgp_require_signature)

    def _key(self, context: Mapping[str, Any]) -> str:
        from airflow_provider_lytics.imports.watermark import default_watermark_key

        return self.watermark_key or default_watermark_key(self.dag_id, self.task_id)

    @contextlib.contextmanager
    def _sources(self, context: Mapping[str, Any]) -> Iterator[list[SourceFile]]:
        from airflow_provider_lytics.imports.sources import expand_local

        sources = expand_local(self.paths, self._decryptor())
        if self.watermark_by != "none" or self.min_age_seconds:
            from airflow_provider_lytics.imports.watermark import encode_state, read_watermark, select_new
            from airflow_provider_lytics.io.sftp_select import RemoteFile

            by_name = {s.name: s for s in sources}
            files = [RemoteFile(s.name, s.size or 0, s.mtime or 0.0) for s in sources]
            current = read_watermark(self._key(context)) if self.watermark_by != "none" else None
            selection = select_new(files, current, by=self.watermark_by, date_format=self.date_format,
                                   min_age_seconds=self.min_age_seconds)  # fmt: skip
            sources = [by_name[f.path] for f in selection.files]
            self._new_watermark = encode_state(selection)
            self.log.info("Watermark %s: %d new file(s)", current, len(sources))
        _push(context, XCOM_IMPORT_FILES, [s.name for s in sources])
        from airflow_provider_lytics.lineage import uri_ref

        self._lineage_inputs = [uri_ref(str(Path(s.name).resolve().parent)) for s in sources]
        yield sources

    def _after_success(self, context: Mapping[str, Any]) -> None:
        if self.watermark_by != "none" and self._new_watermark and not self.is_dry_run:
            from airflow_provider_lytics.imports.watermark import write_watermark

            write_watermark(self._key(context), self._new_watermark)
            self.log.info("Watermark %s is now %s", self._key(context), self._new_watermark)


class SFTPToLyticsOperator(LocalFilesToLyticsOperator):
    """Import files from an SFTP server (e.g. the Lytics managed SFTP), decrypting PGP files.

    Plain files are downloaded as a stream straight into the import (nothing staged on disk). A PGP file is
    downloaded and decrypted completely, and its integrity (and signature, with ``pgp_require_signature``)
    verified, before its first row is sent; its plaintext waits in a private spool that has no name on disk.

    :param sftp_conn_id: Airflow ``sftp`` connection.
    :param remote_dir: remote directory to look in.
    :param glob: file name pattern (``users_*.csv.gpg``); or use ``regex``. With ``recursive``, a pattern containing
        ``/`` matches the path below ``remote_dir`` (``2026/*/*/users_*.csv.gpg``; ``**`` spans any depth).
    :param recursive: also import from sub-folders (dated drop zones such as ``2026/11/28/``), down to
        ``max_depth`` levels (default 10). Hidden folders, folder symlinks and a relative ``archive_dir`` are not
        entered; unreadable sub-folders are skipped with a warning. The watermark works across folders; with
        ``watermark_by="name"`` the date is read from the relative path, so ``date_format="%Y/%m/%d"`` reads
        dated folders.
    :param pgp_conn_id: Airflow ``pgp`` connection with the private key (+ passphrase): files are decrypted.
    :param pgp_require_signature: also require a good signature by one of the connection's
        ``signer_public_keys``; an unsigned or wrongly signed file sends nothing.
    :param after_load: ``keep``, ``archive`` (into ``archive_dir``) or ``delete`` the imported files on success.
    """

    template_fields: Sequence[str] = (*_ToLyticsOperator.template_fields, "remote_dir", "glob", "regex",
                                      "watermark_key", "archive_dir")  # fmt: skip

    def __init__(
        self,
        *,
        sftp_conn_id: str = "sftp_default",
        remote_dir: str = ".",
        glob: str | None = None,
        regex: str | None = None,
        after_load: str = "keep",
        archive_dir: str | None = None,
        recursive: bool = False,
        max_depth: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(paths=[], **kwargs)
        self.sftp_conn_id = sftp_conn_id
        self.remote_dir = remote_dir
        self.glob = glob
        self.regex = regex
        if after_load not in ("keep", "archive", "delete"):
            raise LyticsArgumentError(f"after_load must be 'keep', 'archive' or 'delete', got {after_load!r}")
        if after_load == "archive" and not archive_dir:
            raise LyticsArgumentError("after_load='archive' needs archive_dir (e.g. 'processed')")
        if max_depth is not None and max_depth < 0:
            raise LyticsArgumentError(f"max_depth must be 0 or more, got {max_depth}")
        self.after_load = after_load
        self.archive_dir = archive_dir
        self.recursive = recursive
        self.max_depth = max_depth
        self._session: Any = None
        self._selected: list[Any] = []

    @contextlib.contextmanager
    def _sources(self, context: Mapping[str, Any]) -> Iterator[list[SourceFile]]:
        from airflow_provider_lytics.hooks.sftp import LyticsSftpHook
        from airflow_provider_lytics.imports.sources import sftp_sources
        from airflow_provider_lytics.imports.watermark import encode_state, read_watermark, select_new

        decryptor = self._decryptor()
        with LyticsSftpHook(self.sftp_conn_id).session() as sftp:
            self._session = sftp
            files = sftp.list_files(self.remote_dir, glob=self.glob, regex=self.regex, **self._walk_options())
            current = read_watermark(self._key(context)) if self.watermark_by != "none" else None
            selection = select_new(files, current, by=self.watermark_by, date_format=self.date_format,
                                   min_age_seconds=self.min_age_seconds)  # fmt: skip
            self._selected, self._new_watermark = selection.files, encode_state(selection)
            self.log.info(
                "SFTP %s:%s: %d matching file(s), %d new since watermark %s",
                self.sftp_conn_id, self.remote_dir, len(files), len(selection.files), current,
            )  # fmt: skip
            _push(context, XCOM_IMPORT_FILES, [f.path for f in selection.files])
            from airflow_provider_lytics.lineage import sftp_ref

            config = sftp.config
            self._lineage_inputs = [sftp_ref(config.host, config.port, self.remote_dir)] if selection.files else []
            yield sftp_sources(sftp, selection.files, decryptor)

    def _walk_options(self) -> dict[str, Any]:
        """Listing options: the archive folder is never walked, or archived files would be imported again."""
        from airflow_provider_lytics.io.sftp import DEFAULT_MAX_DEPTH

        archive = [self.archive_dir] if self.after_load == "archive" and self.archive_dir else []
        return {"recursive": self.recursive, "exclude_dirs": archive,
                "max_depth": DEFAULT_MAX_DEPTH if self.max_depth is None else self.max_depth}  # fmt: skip

    def _after_success(self, context: Mapping[str, Any]) -> None:
        if self.is_dry_run:
            return
        if self.after_load != "keep" and self._selected:
            done = self._session.finish(self._selected, action=self.after_load, archive_dir=self.archive_dir)
            self.log.info("After load (%s): %s", self.after_load, done or [f.path for f in self._selected])
        super()._after_success(context)


class DataFrameToLyticsOperator(_ToLyticsOperator):
    """Import a pandas DataFrame, or the DataFrame(s) a callable returns or yields (chunks stream through).

    Rows become JSON records (timestamps ISO-8601, missing values dropped unless ``keep_nulls``). To resume after
    a retry the callable must produce the same rows in the same order; the row position is the line number.

    :param dataframe: a DataFrame (for small data: it becomes part of the task definition) ...
    :param python_callable: ... or a callable returning a DataFrame or an iterator of DataFrames.
    :param op_kwargs: keyword arguments for the callable.
    :param keep_nulls: send missing values as JSON null instead of leaving the field out.
    """

    template_fields: Sequence[str] = (*_ToLyticsOperator.template_fields, "op_kwargs")

    def __init__(
        self,
        *,
        dataframe: Any = None,
        python_callable: Callable[..., Any] | None = None,
        op_kwargs: Mapping[str, Any] | None = None,
        keep_nulls: bool = False,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("file_format", "ndjson")
        super().__init__(**kwargs)
        if (dataframe is None) == (python_callable is None):
            raise LyticsArgumentError("Pass exactly one of dataframe= or python_callable= to DataFrameToLyticsOperator")
        if python_callable is not None and not callable(python_callable):
            raise LyticsArgumentError("python_callable must be callable")
        self.dataframe = dataframe
        self.python_callable = python_callable
        self.op_kwargs = dict(op_kwargs or {})
        self.keep_nulls = keep_nulls

    @contextlib.contextmanager
    def _sources(self, context: Mapping[str, Any]) -> Iterator[list[SourceFile]]:
        from airflow_provider_lytics.imports.sources import dataframe_source

        frames = self.dataframe if self.python_callable is None else self.python_callable(**self.op_kwargs)
        if frames is None:
            raise AirflowException("python_callable returned None: return a DataFrame or an iterator of DataFrames")
        yield [dataframe_source(frames, name=f"dataframe:{self.task_id}", drop_nulls=not self.keep_nulls)]


def _push(context: Mapping[str, Any], key: str, value: Any) -> None:
    ti = context.get("ti") if hasattr(context, "get") else None
    if ti is not None:
        ti.xcom_push(key=key, value=value)
