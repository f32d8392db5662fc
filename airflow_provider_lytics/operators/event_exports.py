"""Raw event exports as an Airflow operator: the events of one or more streams for an event-time range, full or
incremental, to the same destinations, formats, compression and PGP as audience exports.

A separate operator rather than a ``source="events"`` mode of :class:`LyticsAudienceExportOperator`: an event
export has a time range, streams and a look-back instead of an audience, and appends (new events) instead of
diffing members (added/changed/removed), so half of each operator's arguments would be meaningless in the other
mode. The destination, format and encryption arguments are the audience operator's, with the same names and
meanings, and are mapped by the same code.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

from airflow.providers.common.compat.sdk import BaseOperator

from airflow_provider_lytics.errors import LyticsArgumentError
from airflow_provider_lytics.operators.exports import XCOM_WATERMARK, LyticsAudienceExportOperator, default_asset_uri


class LyticsEventExportOperator(BaseOperator):
    """Export a time range of raw events of Lytics streams to files (see docs/exports.md, "Raw event export").

    :param streams: stream name or list of names (each read with ``GET /v2/stream/{stream}/events``).
    :param start, end: the event-time range ``[start, end)``: datetimes or ISO 8601 strings with a zone
        (templated). Defaults: the run's data interval when it has one; ``end`` falls back to the run's
        ``run_after`` (Airflow 3 runs without a logical date), else now. An incremental run after the first
        reads from the previous watermark minus ``lookback`` instead of ``start``.
    :param mode: ``full`` (the range, no state) or ``incremental`` (state next to the files, like the audience
        export's: reruns write no event twice, events arriving up to ``lookback`` late are exported once).
    :param window: for a first run with neither ``start`` nor a data interval: read ``[end - window, end)``.
    :param lookback: how late events may arrive (a ``timedelta`` or seconds; default 0).
    :param fields: columns (needed for CSV and Parquet; NDJSON without it writes whole events, including
        ``_event_id``, ``_stream``, ``_event_time`` and ``_received``).
    :param export_name: names the state and the default asset (default ``events_<streams>``).
    :param file_name: as the audience export's (``{AUDIENCE}`` is the export name); default
        ``lytics_events_{AUDIENCE}_{TIMESTAMP}``.

    Format, compression, encryption and destination arguments: as :class:`LyticsAudienceExportOperator`
    (``format`` defaults to ``ndjson`` here).

    :return: (XCom) paths, range, events in range per stream, rows read/written, counts, watermark.
    """

    template_fields: Sequence[str] = (
        "streams",
        "start",
        "end",
        "fields",
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
    template_fields_renderers = {"fields": "json"}
    ui_color = "#B8E1F2"

    def __init__(
        self,
        *,
        streams: str | Sequence[str],
        start: datetime | str | None = None,
        end: datetime | str | None = None,
        mode: str = "full",
        lookback: timedelta | float = 0,
        window: timedelta | float | None = None,
        fields: Sequence[str] | None = None,
        format: str = "ndjson",
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
        email_subject: str = "Lytics event export",
        email_body: str = "The Lytics event export is attached.",
        email_max_bytes: int = 20 * 1024 * 1024,
        file_name: str = "lytics_events_{AUDIENCE}_{TIMESTAMP}",
        timestamp_format: str = "%Y%m%dT%H%M%SZ",
        overwrite: bool = False,
        split_rows: int | None = None,
        split_bytes: int | None = None,
        manifest: bool = False,
        export_name: str | None = None,
        state_uri: str | None = None,
        reset_state: bool = False,
        max_cursor_restarts: int = 3,
        lease_wait: float = 0.0,
        emit_asset: bool = True,
        lytics_conn_id: str = "lytics_default",
        **kwargs: Any,
    ) -> None:
        from airflow_provider_lytics.exports.naming import validate_template
        from airflow_provider_lytics.exports.options import COMPRESSIONS, DESTINATIONS, EVENT_MODES, FORMATS

        stream_list = [streams] if isinstance(streams, str) else list(streams)
        if emit_asset and not kwargs.get("outlets"):
            name = export_name or ("events_" + "_".join(stream_list) if stream_list else None)
            if name and "{{" not in name:
                from airflow.providers.common.compat.sdk import Asset

                kwargs["outlets"] = [Asset(uri=default_asset_uri(name))]
        super().__init__(**kwargs)
        for value, allowed, what in (
            (format, FORMATS, "format"),
            (compression, COMPRESSIONS, "compression"),
            (destination, DESTINATIONS, "destination"),
            (mode, EVENT_MODES, "mode"),
        ):
            if value not in allowed:
                raise LyticsArgumentError(f"Unknown {what} {value!r}: use one of {allowed}")
        if not stream_list:
            raise LyticsArgumentError("streams must name at least one stream, e.g. streams=['web_events']")
        if "{{" not in file_name:
            validate_template(file_name)
        if destination == "email" and mode != "full" and not state_uri:
            raise LyticsArgumentError("An incremental email export needs state_uri= (email cannot hold the state)")
        self.streams = stream_list
        self.start = start
        self.end = end
        self.mode = mode
        self.lookback = lookback if isinstance(lookback, timedelta) else timedelta(seconds=float(lookback))
        self.window = window if window is None or isinstance(window, timedelta) else timedelta(seconds=float(window))
        self.fields = fields
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
        self.export_name = export_name
        self.state_uri = state_uri
        self.reset_state = reset_state
        self.max_cursor_restarts = max_cursor_restarts
        self.lease_wait = lease_wait
        self.lytics_conn_id = lytics_conn_id

    # the audience operator's mappings of the shared arguments (same attribute names)
    _destination = LyticsAudienceExportOperator._destination
    _attach_asset_extra = LyticsAudienceExportOperator._attach_asset_extra

    def _range(self, context: Mapping[str, Any]) -> tuple[datetime | None, datetime | None]:
        start = _instant(self.start, "start") if self.start not in (None, "", "None") else None
        end = _instant(self.end, "end") if self.end not in (None, "", "None") else None
        if start is None:
            start = _instant(context.get("data_interval_start"), "data_interval_start")
        if end is None:
            end = _instant(context.get("data_interval_end"), "data_interval_end")
            if end is None or (start is not None and end <= start):  # no interval (e.g. a manual run): up to now
                dag_run = context.get("dag_run")
                end = _instant(getattr(dag_run, "run_after", None), "run_after") if dag_run is not None else None
        if start is None and end is not None and self.window is not None:
            start = end - self.window
        return start, end

    def _spec(self, context: Mapping[str, Any]) -> Any:
        from airflow_provider_lytics.exports.events import EventExportSpec
        from airflow_provider_lytics.exports.outputs import EncryptionOptions, FormatOptions

        encryption = None
        if self.pgp_conn_id:
            from airflow_provider_lytics.hooks.pgp import PgpHook

            encryption = EncryptionOptions(
                pgp=PgpHook(self.pgp_conn_id), armor=self.pgp_armor,
                compress=self.compression == "none" and self.format != "parquet", sign=self.pgp_sign,
            )  # fmt: skip
        start, end = self._range(context)
        return EventExportSpec(
            streams=list(self.streams), start=start, end=end, mode=self.mode, lookback=self.lookback,
            fields=list(self.fields) if self.fields is not None else None,
            fmt=FormatOptions(
                fmt=self.format, delimiter=self.csv_delimiter, header=self.csv_header, join=self.multi_value_join,
                neutralize_formulas=self.csv_neutralize_formulas, compression=self.compression,
                compression_level=self.compression_level, parquet_codec=self.parquet_codec,
            ),
            encryption=encryption, file_name=self.file_name, timestamp_format=self.timestamp_format,
            split_rows=self.split_rows, split_bytes=self.split_bytes, overwrite=self.overwrite,
            manifest=self.manifest, export_name=self.export_name, reset_state=self.reset_state,
            max_cursor_restarts=self.max_cursor_restarts, lease_wait=self.lease_wait,
        )  # fmt: skip

    def execute(self, context: Mapping[str, Any]) -> dict[str, Any]:
        from airflow_provider_lytics.exports.destinations import ObjectStorageDestination
        from airflow_provider_lytics.exports.errors import ExportError
        from airflow_provider_lytics.exports.events import EventExport
        from airflow_provider_lytics.hooks.lytics import LyticsHook

        try:
            spec = self._spec(context)
            spec.validate()
        except ExportError as exc:  # ExportConfigError is a LyticsArgumentError: reaches Airflow as itself
            exc.add_note("Lytics event export is misconfigured")
            raise
        hook = LyticsHook(self.lytics_conn_id)
        dest = self._destination()  # type: ignore[misc]  # shares the audience operator's attribute names
        state_dest = ObjectStorageDestination(self.state_uri) if self.state_uri else None
        try:
            result = EventExport(spec, hook, dest, state_destination=state_dest).run()
        except ExportError as exc:  # reaches Airflow as itself (see errors.py), named after the export
            exc.add_note(f"Lytics event export {spec.name!r} failed")
            raise
        finally:
            dest.close()
            hook.close()
        summary = result.as_dict()
        self.log.info(
            "Event export %r (%s run) of [%s, %s): %d file(s), events in range %s, rows written %d, watermark %s",
            result.export_name, result.run_kind, result.range_start, result.range_end, len(result.files),
            result.events_in_range, result.rows_written, result.watermark,
        )  # fmt: skip
        ti = context.get("ti") or context.get("task_instance")
        if ti is not None:
            ti.xcom_push(key=XCOM_WATERMARK, value=result.watermark)
        self._attach_asset_extra(context, summary)  # type: ignore[misc]
        return summary


def _instant(value: Any, name: str) -> datetime | None:
    """A datetime with a zone from a datetime/pendulum value or an ISO 8601 string (``None`` stays ``None``)."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise LyticsArgumentError(
                f"{name} must be an ISO 8601 time with a zone, e.g. 2026-03-08T00:00:00Z, not {value!r}"
            ) from None
    if not isinstance(value, datetime):
        raise LyticsArgumentError(f"{name} must be a datetime or an ISO 8601 string, not {value!r}")
    if value.tzinfo is None:
        raise LyticsArgumentError(f"{name} {value.isoformat()} has no time zone: add one (e.g. +00:00 or Z)")
    return value.astimezone(timezone.utc)
