"""Audience exports as an Airflow operator: full, incremental, or backfill-then-incremental, to local files, SFTP,
object storage or email, as CSV/NDJSON/Parquet, plain/gzip/zip, optionally PGP-encrypted (and signed).

The heavy lifting is in :mod:`airflow_provider_lytics.exports`; this module maps operator arguments onto an
:class:`~airflow_provider_lytics.exports.runner.ExportSpec`, opens the hooks, runs the export, logs the row
reconciliation, returns a small result to XCom and attaches it to the task's asset/dataset event.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import BaseOperator

from airflow_provider_lytics.errors import LyticsArgumentError
from airflow_provider_lytics.links import LyticsAudienceLink, publish_links

if TYPE_CHECKING:
    from airflow_provider_lytics.exports.destinations import Destination

ASSET_SCHEME = "lytics-export"
XCOM_WATERMARK = "lytics_export_watermark"


def default_asset_uri(name: str) -> str:
    """The asset/dataset URI an export emits by default: ``lytics-export://<export name>``."""
    return f"{ASSET_SCHEME}://{name}"


class LyticsAudienceExportOperator(BaseOperator):
    """Export a Lytics audience (saved segment or ad-hoc FilterQL) to files.

    Audience and columns:

    :param segment: audience id or slug; or ``filter_ql`` for an ad-hoc audience (exactly one of them).
    :param fields: profile fields to export, in column order (needed for CSV and Parquet; NDJSON without it
        writes whole profiles).
    :param id_field: the member id field (default ``_id``): dedupe key and incremental state key.
    :param membership_segments: audience slugs/ids whose membership becomes a ``segments`` column (the listed
        audiences each member belongs to).
    :param segment_columns: audience slugs that become boolean columns named after them (``True`` when the
        member is in that audience), read from the ``segments`` Lytics lists on each scan row: no extra scan.
        Put ``"segments"`` in ``fields`` instead to export that list itself.
    :param max_members: export at most this many members (a sample; ``mode='full'`` only).

    Format:

    :param format: ``csv``, ``ndjson`` or ``parquet`` (needs pyarrow).
    :param csv_delimiter, csv_header, multi_value_join: CSV options (multi-value fields are joined by ``|``).
    :param csv_neutralize_formulas: (default ``True``) a CSV cell starting with ``=``, ``+``, ``-``, ``@``, tab
        or CR (a spreadsheet formula, e.g. ``=HYPERLINK(...)``) gets a leading ``'`` so spreadsheets show it as
        text (OWASP CSV injection guidance); plain numbers such as ``-5`` are kept. ``False`` writes values as
        they are (for machine consumers that must see the exact value).
    :param compression: ``none``, ``gzip`` or ``zip``; ``compression_level`` 0-9.
    :param pgp_conn_id: a ``pgp`` connection whose public key encrypts every file (``.gpg``, or ``.asc`` with
        ``pgp_armor=True``); ``pgp_sign=True`` also signs with the connection's private/signing key.

    Destination:

    :param destination: ``local``, ``sftp``, ``object_storage`` or ``email``.
    :param path: directory (local, SFTP) or base URI (object storage, e.g. ``s3://bucket/exports/``).
    :param sftp_conn_id / object_storage_conn_id / smtp_conn_id: the connection for the destination.
    :param email_to, email_cc, email_subject, email_body, email_max_bytes: email destination settings.
    :param file_name: name template; ``{TIMESTAMP}`` (``timestamp_format``), ``{AUDIENCE}``, ``{CHANGE}``,
        ``{PART}``, ``{EXT}``; Jinja is rendered first. Extensions are appended (``.csv.gz.gpg``).
    :param overwrite: replace existing files of the same name (default: fail instead).
    :param split_rows / split_bytes: start a new file part after this many rows / uncompressed bytes.
    :param manifest: write ``<name>.manifest.json`` (files, rows, bytes, sha256, counts, watermark) last.

    Modes:

    :param mode: ``full``, ``incremental`` or ``backfill_then_incremental``.
    :param export_name: names the incremental state and the default asset (default: the segment).
    :param change_output: ``separate`` (added/changed/removed files) or ``column`` (one file, ``change_column``).
    :param state_uri: object storage URI for the state when the destination cannot hold it (email), or to keep
        it elsewhere; by default the state lives in ``<path>/.lytics_export_state/``.
    :param reset_state: ignore the previous state (the run becomes a first run).
    :param max_cursor_restarts: scans restarted from the beginning after an expired cursor before failing.
    :param lease_wait: incremental modes hold a lease on the export's state (one run of an ``export_name`` at a
        time, on any worker); a second run waits this many seconds for it (default 0), then fails naming the
        run that holds it. A killed run's lease expires about two minutes after its last heartbeat.
    :param scan_process: run the page requests in a light child process (default) so encoding never slows
        the scan; ``False`` scans in a thread of the task process.
    :param emit_asset: add ``Asset("lytics-export://<export_name>")`` to ``outlets`` when none are given.
    :return: (XCom) paths, counts by change type, rows scanned/written, audience size at start, watermark.
    """

    template_fields: Sequence[str] = (
        "segment",
        "filter_ql",
        "fields",
        "segment_columns",
        "path",
        "file_name",
        "export_name",
        "state_uri",
        "email_to",
        "email_cc",
        "email_subject",
        "email_body",
        "sftp_conn_id",
        "pgp_conn_id",
        "lytics_conn_id",
    )
    template_fields_renderers = {"filter_ql": "sql", "fields": "json"}
    ui_color = "#B8E1F2"
    operator_extra_links = (LyticsAudienceLink(),)

    def __init__(
        self,
        *,
        segment: str | None = None,
        filter_ql: str | None = None,
        fields: Sequence[str] | None = None,
        id_field: str = "_id",
        membership_segments: Sequence[str] | None = None,
        segment_columns: Sequence[str] | None = None,
        max_members: int | None = None,
        format: str = "csv",
        csv_delimiter: str = ",",
        csv_header: bool = True,
        multi_value_join: str = "|",
        csv_neutralize_formulas: bool = True,
        compression: str = "none",
        compression_level: int = 6,
        parquet_codec: str = "snappy",
        pgp_conn_id: str | None = None,
        pgp_sign: bool = False,
        pgp_armor: bool = False,
        destination: str = "local",
        path: str = "",
        sftp_conn_id: str | None = None,
        object_storage_conn_id: str | None = None,
        smtp_conn_id: str | None = None,
        email_to: str | Sequence[str] | None = None,
        email_cc: str | Sequence[str] | None = None,
        email_subject: str = "Lytics audience export",
        email_body: str = "The Lytics audience export is attached.",
        email_max_bytes: int = 20 * 1024 * 1024,
        file_name: str = "lytics_{AUDIENCE}_{CHANGE}_{TIMESTAMP}",
        timestamp_format: str = "%Y%m%dT%H%M%SZ",
        overwrite: bool = False,
        split_rows: int | None = None,
        split_bytes: int | None = None,
        manifest: bool = False,
        mode: str = "full",
        export_name: str | None = None,
        change_output: str = "separate",
        change_column: str = "_change",
        state_uri: str | None = None,
        reset_state: bool = False,
        max_cursor_restarts: int = 3,
        lease_wait: float = 0.0,
        scan_process: bool = True,
        emit_asset: bool = True,
        lytics_conn_id: str = "lytics_default",
        **kwargs: Any,
    ) -> None:
        from airflow_provider_lytics.exports.naming import validate_template
        from airflow_provider_lytics.exports.options import CHANGE_OUTPUTS, COMPRESSIONS, DESTINATIONS, FORMATS, MODES

        if emit_asset and not kwargs.get("outlets"):
            name = export_name or segment
            if name and "{{" not in name:
                from airflow.providers.common.compat.sdk import Asset

                kwargs["outlets"] = [Asset(uri=default_asset_uri(name))]
        super().__init__(**kwargs)
        for value, allowed, what in (
            (format, FORMATS, "format"),
            (compression, COMPRESSIONS, "compression"),
            (destination, DESTINATIONS, "destination"),
            (mode, MODES, "mode"),
            (change_output, CHANGE_OUTPUTS, "change_output"),
        ):
            if value not in allowed:
                raise LyticsArgumentError(f"Unknown {what} {value!r}: use one of {allowed}")
        if (segment is None) == (filter_ql is None):
            raise LyticsArgumentError(
                "Pass exactly one of segment (audience id or slug) or filter_ql (ad-hoc FilterQL)"
            )
        if "{{" not in file_name:
            validate_template(file_name)
        if destination == "email" and mode != "full" and not state_uri:
            raise LyticsArgumentError("An incremental email export needs state_uri= (email cannot hold the state)")
        self.segment = segment
        self.filter_ql = filter_ql
        self.fields = fields
        self.id_field = id_field
        self.membership_segments = membership_segments
        self.segment_columns = segment_columns
        self.max_members = max_members
        self.format = format
        self.csv_delimiter = csv_delimiter
        self.csv_header = csv_header
        self.multi_value_join = multi_value_join
        self.csv_neutralize_formulas = csv_neutralize_formulas
        self.compression = compression
        self.compression_level = compression_level
        self.parquet_codec = parquet_codec
        self.pgp_conn_id = pgp_conn_id
        self.pgp_sign = pgp_sign
        self.pgp_armor = pgp_armor
        self.destination = destination
        self.path = path
        self.sftp_conn_id = sftp_conn_id
        self.object_storage_conn_id = object_storage_conn_id
        self.smtp_conn_id = smtp_conn_id
        self.email_to = email_to
        self.email_cc = email_cc
        self.email_subject = email_subject
        self.email_body = email_body
        self.email_max_bytes = email_max_bytes
        self.file_name = file_name
        self.timestamp_format = timestamp_format
        self.overwrite = overwrite
        self.split_rows = split_rows
        self.split_bytes = split_bytes
        self.manifest = manifest
        self.mode = mode
        self.export_name = export_name
        self.change_output = change_output
        self.change_column = change_column
        self.state_uri = state_uri
        self.reset_state = reset_state
        self.max_cursor_restarts = max_cursor_restarts
        self.lease_wait = lease_wait
        self.scan_process = scan_process
        self.lytics_conn_id = lytics_conn_id

    # -- building blocks ------------------------------------------------------------------------------------------
    def _destination(self) -> Destination:
        from airflow_provider_lytics.exports import destinations as d

        if self.destination == "local":
            return d.LocalDestination(self.path)
        if self.destination == "sftp":
            return d.SftpDestination(self.sftp_conn_id or "", self.path)
        if self.destination == "object_storage":
            return d.ObjectStorageDestination(self.path, self.object_storage_conn_id)
        settings = d.EmailSettings(
            smtp_conn_id=self.smtp_conn_id or "",
            to=_addresses(self.email_to),
            cc=_addresses(self.email_cc),
            subject=self.email_subject,
            body=self.email_body,
            max_bytes=self.email_max_bytes,
        )
        return d.EmailDestination(settings)

    def _spec(self) -> Any:
        from airflow_provider_lytics.exports.outputs import EncryptionOptions, FormatOptions
        from airflow_provider_lytics.exports.runner import ExportSpec

        encryption = None
        if self.pgp_conn_id:
            from airflow_provider_lytics.hooks.pgp import PgpHook

            # compressed data does not shrink again: skip gpg's own compression then (much faster)
            encryption = EncryptionOptions(
                pgp=PgpHook(self.pgp_conn_id),
                armor=self.pgp_armor,
                compress=self.compression == "none" and self.format != "parquet",
                sign=self.pgp_sign,
            )
        fields = list(self.fields) if self.fields is not None else None
        return ExportSpec(
            segment=self.segment,
            filter_ql=self.filter_ql,
            fields=fields,
            id_field=self.id_field,
            membership_segments=list(self.membership_segments) if self.membership_segments else None,
            segment_columns=list(self.segment_columns) if self.segment_columns else None,
            max_members=self.max_members,
            fmt=FormatOptions(
                fmt=self.format,
                delimiter=self.csv_delimiter,
                header=self.csv_header,
                join=self.multi_value_join,
                neutralize_formulas=self.csv_neutralize_formulas,
                compression=self.compression,
                compression_level=self.compression_level,
                parquet_codec=self.parquet_codec,
            ),
            encryption=encryption,
            file_name=self.file_name,
            timestamp_format=self.timestamp_format,
            split_rows=self.split_rows,
            split_bytes=self.split_bytes,
            overwrite=self.overwrite,
            manifest=self.manifest,
            mode=self.mode,
            export_name=self.export_name,
            change_output=self.change_output,
            change_column=self.change_column,
            reset_state=self.reset_state,
            max_cursor_restarts=self.max_cursor_restarts,
            lease_wait=self.lease_wait,
            scan_process=self.scan_process,
        )

    def execute(self, context: Mapping[str, Any]) -> dict[str, Any]:
        from airflow_provider_lytics.exports.destinations import ObjectStorageDestination
        from airflow_provider_lytics.exports.errors import ExportError
        from airflow_provider_lytics.exports.runner import AudienceExport
        from airflow_provider_lytics.hooks.lytics import LyticsHook

        spec = self._spec()
        publish_links(context, self.lytics_conn_id, audience=self.segment)
        hook = LyticsHook(self.lytics_conn_id)
        dest = self._destination()
        state_dest = ObjectStorageDestination(self.state_uri) if self.state_uri else None
        try:
            result = AudienceExport(spec, hook, dest, state_destination=state_dest).run()
        except ExportError as exc:  # reaches Airflow as itself (see errors.py), named after the export
            exc.add_note(f"Lytics audience export {spec.name!r} failed")
            raise
        finally:
            dest.close()
            hook.close()
        summary = result.as_dict()
        self.log.info(
            "Export %r (%s run): %d file(s), counts %s, rows scanned %d, rows written %d, audience size at start %s, "
            "watermark %s",
            result.export_name, result.run_kind, len(result.files), result.counts, result.rows_scanned,
            result.rows_written, result.size_at_start, result.watermark,
        )  # fmt: skip
        ti = context.get("ti") or context.get("task_instance")
        if ti is not None:
            ti.xcom_push(key=XCOM_WATERMARK, value=result.watermark)
        self._attach_asset_extra(context, summary)
        from airflow_provider_lytics.lineage import audience_ref, uri_ref

        self._lineage = (
            audience_ref(hook.settings.api_url, spec.segment, spec.filter_ql), uri_ref(summary["destination"]),
            int(result.rows_written),
        )  # fmt: skip
        return summary

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """For Airflow's OpenLineage listener: the audience read and the destination folder written."""
        from airflow_provider_lytics.lineage import operator_lineage

        lineage = getattr(self, "_lineage", None)
        if lineage is None:
            return operator_lineage([], [])
        audience, destination, rows = lineage
        return operator_lineage([audience], [destination], output_rows=rows)

    def _attach_asset_extra(self, context: Mapping[str, Any], summary: Mapping[str, Any]) -> None:
        """Put a small summary on every outlet's asset/dataset event so downstream DAGs can read it."""
        events = context.get("outlet_events")
        if events is None:
            return
        extra = {k: summary[k] for k in ("export_name", "run_kind", "counts", "watermark", "destination")}
        extra["paths"] = summary["paths"][:50]
        for outlet in self.outlets or []:
            try:
                events[outlet].extra = extra
            except Exception as exc:  # an outlet that is not an asset (e.g. an alias on old Airflow)
                self.log.debug("Could not attach the export summary to outlet %r: %s", outlet, exc)


def _addresses(value: str | Sequence[str] | None) -> list[str]:
    if not value:
        return []
    if isinstance(value, str):
        return [a.strip() for a in value.replace(";", ",").split(",") if a.strip()]
    return [str(a).strip() for a in value if str(a).strip()]
