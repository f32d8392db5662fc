"""Export the raw events of one or more streams for an event-time range, through the audience export's pipeline.

Pages of ``GET /v2/stream/{stream}/events`` are read in a background thread (:class:`EventScanner`, the audience
scanner's thread, bounded queue and cursor-restart logic) and written by the same :class:`OutputStream` as
audience exports: CSV/NDJSON/Parquet, gzip/zip, PGP, split parts, a manifest, any destination, atomic files and
cleanup after a failure.

Modes:

* ``full``: the events of ``[start, end)``, no state.
* ``incremental``: the first run exports ``[start, end)``; every later run exports from the previous run's
  watermark (its range end) minus ``lookback`` up to its own ``end``. The state, stored like the audience
  export's (``<state_dir>/<export_name>.state.sqlite.gz``, written last, only after a complete run, under the
  same lease), remembers the ids of the events whose time is within ``lookback`` of the watermark, so events
  that arrive late (up to ``lookback``) are exported exactly once and a rerun of the same interval writes no
  event twice.

Reconciliation: for each stream, the events read (new + already exported) must equal the events the API says
are in the range (``total`` of the first page), and the rows written must equal the new events; otherwise the
run fails and its state is not advanced.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_provider_lytics.exports.errors import (
    ExportConfigError,
    ExportError,
    ExportReconciliationError,
    ExportStateError,
)
from airflow_provider_lytics.exports.event_ledger import EventLedger
from airflow_provider_lytics.exports.lease import ExportLease
from airflow_provider_lytics.exports.ledger import pack_state, unpack_state
from airflow_provider_lytics.exports.leftovers import (
    RunFolder,
    remove_dead_folders,
    remove_dead_parts,
    remove_dead_state_parts,
)
from airflow_provider_lytics.exports.naming import (
    DEFAULT_TIMESTAMP_FORMAT,
    FileNamer,
    extension_chain,
    safe_component,
    validate_template,
)
from airflow_provider_lytics.exports.options import EVENT_MODES
from airflow_provider_lytics.exports.outputs import EncryptionOptions, FileResult, FormatOptions, OutputStream
from airflow_provider_lytics.exports.runner import DEFAULT_STATE_DIR, _iso
from airflow_provider_lytics.exports.scanner import AudienceScanner

if TYPE_CHECKING:
    from airflow_provider_lytics.exports.destinations import Destination
    from airflow_provider_lytics.hooks.lytics import LyticsHook

log = logging.getLogger(__name__)

DEFAULT_EVENT_TEMPLATE = "lytics_events_{AUDIENCE}_{TIMESTAMP}"
ID_FIELD = "_event_id"
TIME_FIELD = "_event_time"
STREAM_FIELD = "_stream"


@dataclass
class EventExportSpec:
    """Everything that defines an event export (validated by :meth:`validate`)."""

    streams: Sequence[str]
    start: datetime | None = None
    end: datetime | None = None
    mode: str = "full"
    lookback: timedelta = timedelta(0)
    fields: Sequence[str] | None = None
    fmt: FormatOptions = field(default_factory=lambda: FormatOptions(fmt="ndjson"))
    encryption: EncryptionOptions | None = None
    file_name: str = DEFAULT_EVENT_TEMPLATE
    timestamp_format: str = DEFAULT_TIMESTAMP_FORMAT
    split_rows: int | None = None
    split_bytes: int | None = None
    overwrite: bool = False
    manifest: bool = False
    export_name: str | None = None
    state_dir: str = DEFAULT_STATE_DIR
    reset_state: bool = False
    max_cursor_restarts: int = 3
    page_size: int = 1000
    lease_wait: float = 0.0
    lease_ttl: float = 120.0

    @property
    def name(self) -> str:
        return self.export_name or "events_" + "_".join(self.streams)

    @property
    def stateful(self) -> bool:
        return self.mode == "incremental"

    def validate(self) -> None:
        if isinstance(self.streams, str) or not self.streams or not all(isinstance(s, str) and s for s in self.streams):
            raise ExportConfigError("streams must be a non-empty list of stream names, e.g. ['web_events']")
        if len(set(self.streams)) != len(self.streams):
            raise ExportConfigError("streams lists a stream twice: each stream is read once")
        if self.mode not in EVENT_MODES:
            raise ExportConfigError(f"Unknown mode {self.mode!r}: use one of {EVENT_MODES}")
        for name in ("start", "end"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, datetime) or value.tzinfo is None):
                raise ExportConfigError(f"{name} must be a timezone-aware datetime, got {value!r}")
        if self.start is not None and self.end is not None and self.end <= self.start:
            raise ExportConfigError(f"end ({self.end.isoformat()}) must be later than start ({self.start.isoformat()})")
        if not isinstance(self.lookback, timedelta) or self.lookback < timedelta(0):
            raise ExportConfigError(f"lookback must be a non-negative timedelta, got {self.lookback!r}")
        if self.fields is not None and (
            isinstance(self.fields, str) or not all(isinstance(f, str) and f for f in self.fields)
        ):
            raise ExportConfigError("fields must be a list of event field names, e.g. ['_event_time', 'url']")
        if self.fields is not None and len(set(self.fields)) != len(self.fields):
            raise ExportConfigError("fields lists a field twice: each column must appear once")
        if self.fmt.fmt in ("csv", "parquet") and not self.fields:
            raise ExportConfigError(
                f"format {self.fmt.fmt!r} needs fields=[...] (raw events have no fixed columns); NDJSON without "
                "fields writes whole events"
            )
        if not 1 <= self.page_size <= 1000:
            raise ExportConfigError(f"page_size must be 1-1000 (the events endpoint's limit), got {self.page_size}")
        validate_template(self.file_name)


@dataclass
class EventExportResult:
    """The run's summary (small), as returned to XCom."""

    export_name: str
    mode: str
    run_kind: str
    destination: str
    streams: list[str]
    range_start: str
    range_end: str
    files: list[FileResult]
    counts: dict[str, int]
    events_in_range: dict[str, int]
    rows_scanned: int
    duplicates_dropped: int
    rows_written: int
    cursor_restarts: int
    watermark: str
    previous_watermark: str | None
    manifest: str | None = None
    state: str | None = None
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "export_name": self.export_name, "mode": self.mode, "run_kind": self.run_kind,
            "destination": self.destination, "streams": list(self.streams), "range_start": self.range_start,
            "range_end": self.range_end, "files": [f.as_dict() for f in self.files],
            "paths": [f.path for f in self.files], "counts": dict(self.counts),
            "events_in_range": dict(self.events_in_range), "rows_scanned": self.rows_scanned,
            "duplicates_dropped": self.duplicates_dropped, "rows_written": self.rows_written,
            "cursor_restarts": self.cursor_restarts, "watermark": self.watermark,
            "previous_watermark": self.previous_watermark, "manifest": self.manifest, "state": self.state,
            "seconds": round(self.seconds, 3),
        }  # fmt: skip


class EventScanner(AudienceScanner):
    """The audience scanner's background thread and cursor restarts, over a stream's raw events."""

    def __init__(self, hook: LyticsHook, stream: str, start: datetime, end: datetime, **kwargs: Any) -> None:
        super().__init__(hook, segment=stream, **kwargs)
        self.stream, self.start, self.end = stream, start, end

    def _pages(self) -> Iterator[Any]:
        return self.hook.event_pages(self.stream, start=self.start, end=self.end, limit=self.page_size)


def _parse_iso(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _ms(dt: datetime) -> int:
    return int(dt.timestamp() * 1000)


class EventExport:
    """One run of an event export; create, then call :meth:`run`."""

    def __init__(
        self,
        spec: EventExportSpec,
        hook: LyticsHook,
        destination: Destination,
        *,
        state_destination: Destination | None = None,
        clock: Any = time.time,
    ) -> None:
        spec.validate()
        self.spec = spec
        self.hook = hook
        self.dest = destination
        self.state_dest = state_destination or destination
        self.clock = clock
        base = f"{spec.state_dir.rstrip('/')}/{safe_component(spec.name)}"
        self.state_name = f"{base}.state.sqlite.gz"
        self.lease_name = f"{base}.lease.json"

    def _config_key(self) -> dict[str, Any]:
        return {"streams": list(self.spec.streams), "fields": list(self.spec.fields) if self.spec.fields else None}

    def _extension(self) -> str:
        s = self.spec
        return extension_chain(s.fmt.fmt, s.fmt.compression, s.encryption is not None,
                               s.encryption.armor if s.encryption else False)  # fmt: skip

    def _load_state(self, workdir: Path) -> Path | None:
        if not self.spec.stateful:
            return None
        if self.spec.reset_state:
            log.warning("reset_state=True: ignoring any previous state of event export %r", self.spec.name)
            return None
        packed = workdir / "previous.state.gz"
        if not self.state_dest.fetch(self.state_name, str(packed)):
            log.info("No previous state for event export %r at %s", self.spec.name, self.state_name)
            return None
        db = workdir / "previous.sqlite"
        unpack_state(packed, db)
        packed.unlink()
        return db

    def _range(self, ledger: EventLedger, now: datetime) -> tuple[datetime, datetime, str | None, datetime]:
        """``(start, end, previous watermark, new watermark)`` of this run (see the module docstring)."""
        spec = self.spec
        end = spec.end or now
        previous = ledger.previous_meta.get("watermark") if ledger.has_previous else None
        if previous:
            prev_wm = _parse_iso(previous)
            start = prev_wm - spec.lookback
            if spec.start is not None and spec.start != start:
                log.info("Incremental run: reading from the previous watermark %s minus lookback %s (%s), not from "
                         "the requested start %s", previous, spec.lookback, start.isoformat(),
                         spec.start.isoformat())  # fmt: skip
            return start, max(end, start), previous, max(end, prev_wm)
        if spec.start is None:
            raise ExportConfigError(
                "the first run of an event export needs start= (the beginning of the event-time range), e.g. the "
                "data interval start"
            )
        return spec.start, end, None, end

    def run(self) -> EventExportResult:
        """Read, encode, compress, encrypt and upload the range's events; returns the small result."""
        spec = self.spec
        started = time.perf_counter()
        remove_dead_folders(spec.name)
        folder = RunFolder(spec.name)
        workdir = folder.path
        outputs: list[OutputStream] = []
        ledger: EventLedger | None = None
        scanner: EventScanner | None = None
        lease: ExportLease | None = None
        try:
            if spec.stateful:
                lease = ExportLease(self.state_dest, self.lease_name, export_name=spec.name, ttl=spec.lease_ttl,
                                    wait=spec.lease_wait)  # fmt: skip
                lease.acquire()
                remove_dead_parts(self.dest, spec.file_name, spec.name, self._extension())
                remove_dead_state_parts(self.state_dest, spec.state_dir.rstrip("/"), spec.name)
            ledger = EventLedger(workdir, self._load_state(workdir))
            if ledger.has_previous:
                stored = json.loads(ledger.previous_meta.get("config", "null"))
                if stored != self._config_key():
                    raise ExportStateError(
                        f"the state of event export {spec.name!r} was written for a different configuration "
                        f"({stored}, now {self._config_key()}): pass reset_state=True or use another export_name"
                    )
            run_ts = self.clock()
            start, end, previous_wm, new_wm = self._range(ledger, datetime.fromtimestamp(run_ts, tz=timezone.utc))
            run_kind = "full" if not spec.stateful else ("incremental" if ledger.has_previous else "first")
            namer = FileNamer(spec.file_name, datetime.fromtimestamp(run_ts, tz=timezone.utc), spec.name,
                              self._extension(), spec.timestamp_format)  # fmt: skip
            fmt = FormatOptions(**{**spec.fmt.__dict__, "columns": tuple(spec.fields) if spec.fields else None})
            out = OutputStream(
                self.dest,
                namer,
                "events",
                fmt,
                spec.encryption,
                split_rows=spec.split_rows,
                split_bytes=spec.split_bytes,
                overwrite=spec.overwrite,
                with_change_in_name=False,
            )
            outputs.append(out)  # fmt: skip
            log.info("Event export %r (%s run) of %s, event time [%s, %s), to %s%s", spec.name, run_kind,
                     ", ".join(spec.streams), _iso(start.timestamp()), _iso(end.timestamp()), self.dest.uri(),
                     f"; previous watermark {previous_wm}" if previous_wm else "")  # fmt: skip

            counts = {"new": 0, "already_exported": 0}
            in_range: dict[str, int] = {}
            scanned = duplicates = restarts = 0
            for stream in spec.streams:
                seen = 0
                if end > start:
                    scanner = EventScanner(self.hook, stream, start, end, page_size=spec.page_size,
                                           max_restarts=spec.max_cursor_restarts)  # fmt: skip
                    for page in scanner:
                        entries = []
                        for row in page:
                            event_id, when = row.get(ID_FIELD), row.get(TIME_FIELD)
                            if not event_id or not when:
                                raise ExportError(
                                    f"an event of stream {stream!r} has no {ID_FIELD!r}/{TIME_FIELD!r}: the events "
                                    "endpoint must return them (is the API URL a Lytics events API?)"
                                )
                            entries.append((f"{stream}:{event_id}", _ms(_parse_iso(when))))
                        marks = ledger.classify(entries)
                        fresh = [row for row, mark in zip(page, marks, strict=True) if mark == "new"]
                        counts["new"] += len(fresh)
                        counts["already_exported"] += sum(1 for m in marks if m == "exported")
                        duplicates += sum(1 for m in marks if m is None)
                        seen += sum(1 for m in marks if m is not None)
                        if fresh:
                            out.write_rows(fresh)
                    scanner.close()
                    stats = scanner.stats
                    scanner = None
                    scanned += stats.rows
                    restarts += stats.restarts
                    total = stats.size_at_start or 0
                else:
                    total = 0
                in_range[stream] = total
                if seen != total:
                    raise ExportReconciliationError(
                        f"stream {stream!r}: Lytics reported {total} events in [{_iso(start.timestamp())}, "
                        f"{_iso(end.timestamp())}) but {seen} were read: the export is incomplete and its state was "
                        "not advanced"
                    )
            files = out.close()
            outputs.clear()
            written = sum(f.rows for f in files)
            if written != counts["new"]:
                raise ExportReconciliationError(
                    f"rows written ({written}) differ from new events read ({counts['new']}): the export is "
                    "incomplete and its state was not advanced"
                )
            log.info("Reconciled event export %r: events in range %s, read %d (%d repeats dropped after %d cursor "
                     "restart(s)), already exported %d, rows written %d", spec.name, in_range, scanned, duplicates,
                     restarts, counts["already_exported"], written)  # fmt: skip

            watermark = _iso(new_wm.timestamp())
            manifest_path = None
            if spec.manifest:
                manifest_path = self._write_manifest(files, namer, run_kind, counts, in_range, start, end, watermark,
                                                     previous_wm)  # fmt: skip
            state_path = None
            if spec.stateful:
                meta = {
                    "config": json.dumps(self._config_key(), sort_keys=True),
                    "export_name": spec.name,
                    "watermark": watermark,
                    "previous_watermark": previous_wm or "",
                    "run_kind": run_kind,
                }
                db_path = ledger.finish(meta, _ms(new_wm - spec.lookback))  # fmt: skip
                ledger = None
                packed = workdir / "next.state.gz"
                pack_state(db_path, packed)
                if lease is not None:
                    lease.check()
                state_path = self.state_dest.store(str(packed), self.state_name)
                log.info("Stored event export state (watermark %s) at %s", watermark, state_path)
            self.dest.publish([f.path for f in files] + ([manifest_path] if manifest_path else []))
            return EventExportResult(
                export_name=spec.name, mode=spec.mode, run_kind=run_kind, destination=self.dest.uri(),
                streams=list(spec.streams), range_start=_iso(start.timestamp()), range_end=_iso(end.timestamp()),
                files=files, counts=counts, events_in_range=in_range, rows_scanned=scanned,
                duplicates_dropped=duplicates, rows_written=written, cursor_restarts=restarts, watermark=watermark,
                previous_watermark=previous_wm, manifest=manifest_path, state=state_path,
                seconds=time.perf_counter() - started,
            )  # fmt: skip
        except BaseException as exc:
            if scanner is not None:
                scanner.close()
            for stream_out in outputs:
                stream_out.abort(exc)
                for f in stream_out.files:
                    try:
                        self.dest.delete(f.name)
                    except Exception:
                        log.warning("Could not remove %s after the failed event export", f.path)
            raise
        finally:
            if lease is not None:
                lease.release()
            if ledger is not None:
                ledger.close()
            folder.remove()

    def _write_manifest(
        self,
        files: list[FileResult],
        namer: FileNamer,
        run_kind: str,
        counts: dict[str, int],
        in_range: dict[str, int],
        start: datetime,
        end: datetime,
        watermark: str,
        previous_watermark: str | None,
    ) -> str:
        doc = {
            "export_name": self.spec.name, "streams": list(self.spec.streams), "mode": self.spec.mode,
            "run_kind": run_kind, "range_start": _iso(start.timestamp()), "range_end": _iso(end.timestamp()),
            "watermark": watermark, "previous_watermark": previous_watermark, "created": _iso(time.time()),
            "events_in_range": in_range, "counts": counts, "rows_written": sum(f.rows for f in files),
            "files": [{"name": f.name, "rows": f.rows, "bytes": f.bytes, "sha256": f.sha256} for f in files],
        }  # fmt: skip
        data_name = namer.name("manifest", with_change=False)
        name = data_name[: -len(namer.extension)] + "manifest.json"
        local = Path(tempfile.mkdtemp(prefix="lytics-manifest-")) / "manifest.json"
        try:
            local.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
            return self.dest.store(str(local), name)
        finally:
            shutil.rmtree(local.parent, ignore_errors=True)
