"""Run one audience export: scan -> dedupe/diff -> encode -> compress -> encrypt -> upload, as one pipeline.

Threads and bounded queues connect the stages (scan thread -> this thread encoding and compressing -> gpg ->
upload thread -> SFTP event loop), so they overlap and memory stays flat whatever the audience size.

Modes:

* ``full``: every current member, one file (or parts).
* ``incremental``: only what changed since the previous successful run: ``added``, ``changed`` (any exported
  field differs) and ``removed`` members, as separate files or one file with a change column. The first run
  (no state yet) reports every member as ``added``.
* ``backfill_then_incremental``: the first run writes the whole audience as a full file (the backfill); every
  later run is incremental. The handoff is explicit: the result's ``watermark`` (scan start of the backfill) and
  ``run_kind`` say which run was the backfill and where the increments start.

State (incremental modes) is the member ledger of the last successful run, stored next to the exports (or at
``state_uri``) as ``<state_dir>/<export_name>.state.sqlite.gz``; it is written last, only after every data file
and the manifest are in place, so a failed run leaves it untouched and the next run repeats the same changes.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_provider_lytics.exports.errors import (
    ExportConfigError,
    ExportError,
    ExportReconciliationError,
    ExportStateError,
)
from airflow_provider_lytics.exports.lease import ExportLease
from airflow_provider_lytics.exports.ledger import MemberLedger, fingerprint, pack_state, unpack_state
from airflow_provider_lytics.exports.leftovers import (
    RunFolder,
    remove_dead_folders,
    remove_dead_parts,
    remove_dead_state_parts,
)
from airflow_provider_lytics.exports.naming import (
    DEFAULT_TEMPLATE,
    DEFAULT_TIMESTAMP_FORMAT,
    FileNamer,
    extension_chain,
    safe_component,
    validate_template,
)
from airflow_provider_lytics.exports.options import CHANGE_OUTPUTS, MODES
from airflow_provider_lytics.exports.outputs import EncryptionOptions, FileResult, FormatOptions, OutputStream
from airflow_provider_lytics.exports.scanner import AudienceScanner, scan_ids, scan_process_supported

if TYPE_CHECKING:
    from airflow_provider_lytics.exports.destinations import Destination
    from airflow_provider_lytics.hooks.lytics import LyticsHook

log = logging.getLogger(__name__)

CHANGES = ("added", "changed", "removed")
MEMBERSHIP_COLUMN = "segments"
#: the scan row field listing the slugs of the audiences a profile is in (``all`` first)
SCAN_SEGMENTS = "segments"
DEFAULT_STATE_DIR = ".lytics_export_state"
_REMOVED_BATCH = 1000


@dataclass
class ExportSpec:
    """Everything that defines an export (validated by :meth:`validate`)."""

    segment: str | None = None
    filter_ql: str | None = None
    fields: Sequence[str] | None = None
    id_field: str = "_id"
    membership_segments: Sequence[str] | None = None
    #: audience slugs that become boolean columns (one per slug), read from the scan rows' ``segments``
    segment_columns: Sequence[str] | None = None
    max_members: int | None = None
    fmt: FormatOptions = field(default_factory=FormatOptions)
    encryption: EncryptionOptions | None = None
    file_name: str = DEFAULT_TEMPLATE
    timestamp_format: str = DEFAULT_TIMESTAMP_FORMAT
    split_rows: int | None = None
    split_bytes: int | None = None
    overwrite: bool = False
    manifest: bool = False
    mode: str = "full"
    export_name: str | None = None
    change_output: str = "separate"
    change_column: str = "_change"
    state_dir: str = DEFAULT_STATE_DIR
    reset_state: bool = False
    max_cursor_restarts: int = 3
    page_size: int = 100
    #: scan in a separate light process (see :mod:`.scan_worker`) so encoding never slows the scan down
    scan_process: bool = True
    #: incremental modes: how long a second run waits for the lease before failing (seconds; 0: fail at once)
    lease_wait: float = 0.0
    #: how long a lease outlives its holder's last heartbeat (a killed run blocks the next one this long)
    lease_ttl: float = 120.0

    @property
    def audience(self) -> str:
        return self.segment if self.segment is not None else "adhoc"

    @property
    def name(self) -> str:
        return self.export_name or self.audience

    @property
    def stateful(self) -> bool:
        return self.mode != "full"

    def validate(self) -> None:
        if (self.segment is None) == (self.filter_ql is None):
            raise ExportConfigError("Pass exactly one of segment (audience id or slug) or filter_ql (ad-hoc FilterQL)")
        if self.mode not in MODES:
            raise ExportConfigError(f"Unknown mode {self.mode!r}: use one of {MODES}")
        if self.change_output not in CHANGE_OUTPUTS:
            raise ExportConfigError(f"Unknown change_output {self.change_output!r}: use one of {CHANGE_OUTPUTS}")
        if self.fields is not None and (
            isinstance(self.fields, str) or not all(isinstance(f, str) and f for f in self.fields)
        ):
            raise ExportConfigError("fields must be a list of profile field names, e.g. ['email', 'first_name']")
        if self.fields is not None and len(set(self.fields)) != len(self.fields):
            raise ExportConfigError("fields lists a field twice: each column must appear once")
        if self.fmt.fmt in ("csv", "parquet") and not self.fields:
            raise ExportConfigError(f"format {self.fmt.fmt!r} needs fields=[...] (the columns to export)")
        if self.max_members is not None:
            if self.max_members < 1:
                raise ExportConfigError(f"max_members must be a positive number, got {self.max_members}")
            if self.stateful:
                raise ExportConfigError("max_members (a sample) only works with mode='full': a sample has no state")
        if self.fields and self.change_column in self.fields:
            raise ExportConfigError(f"change_column {self.change_column!r} clashes with a field name: rename it")
        if self.membership_segments is not None and (
            isinstance(self.membership_segments, str) or not all(self.membership_segments)
        ):
            raise ExportConfigError("membership_segments must be a list of audience slugs or ids")
        self._validate_segment_columns()
        if not 1 <= self.page_size <= 100:
            raise ExportConfigError(f"page_size must be 1-100 (Lytics's scan limit), got {self.page_size}")
        validate_template(self.file_name)

    def _validate_segment_columns(self) -> None:
        cols = self.segment_columns
        if cols is None:
            return
        if isinstance(cols, str) or not all(isinstance(c, str) and c for c in cols):
            raise ExportConfigError("segment_columns must be a list of audience slugs, e.g. ['vip', 'churn_risk']")
        if len(set(cols)) != len(cols):
            raise ExportConfigError("segment_columns lists an audience twice: each column must appear once")
        taken = {*(self.fields or ()), self.change_column, MEMBERSHIP_COLUMN if self.membership_segments else ""}
        clash = [c for c in cols if c in taken]
        if clash:
            raise ExportConfigError(
                f"segment_columns {clash} clash with other column names (fields, change_column or the membership "
                "column): rename the fields or drop those audiences from segment_columns"
            )


@dataclass
class ExportResult:
    """The run's summary (small: paths, counts, watermark), as returned to XCom."""

    export_name: str
    mode: str
    run_kind: str
    destination: str
    files: list[FileResult]
    counts: dict[str, int]
    size_at_start: int | None
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
            "export_name": self.export_name,
            "mode": self.mode,
            "run_kind": self.run_kind,
            "destination": self.destination,
            "files": [f.as_dict() for f in self.files],
            "paths": [f.path for f in self.files],
            "counts": dict(self.counts),
            "size_at_start": self.size_at_start,
            "rows_scanned": self.rows_scanned,
            "duplicates_dropped": self.duplicates_dropped,
            "rows_written": self.rows_written,
            "cursor_restarts": self.cursor_restarts,
            "watermark": self.watermark,
            "previous_watermark": self.previous_watermark,
            "manifest": self.manifest,
            "state": self.state,
            "seconds": round(self.seconds, 3),
        }


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class AudienceExport:
    """One run of an export; create, then call :meth:`run`."""

    def __init__(
        self,
        spec: ExportSpec,
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
        self.state_name = f"{spec.state_dir.rstrip('/')}/{safe_component(spec.name)}.state.sqlite.gz"
        self.lease_name = f"{spec.state_dir.rstrip('/')}/{safe_component(spec.name)}.lease.json"

    # -- configuration identity stored with the state -------------------------------------------------------------
    def _config_key(self) -> dict[str, Any]:
        s = self.spec
        return {
            "audience": s.segment if s.segment is not None else {"filter_ql": s.filter_ql},
            "fields": list(s.fields) if s.fields else None,
            "id_field": s.id_field,
            "membership_segments": list(s.membership_segments or []),
            # only when used, so the states of exports that never had them still match
            **({"segment_columns": list(s.segment_columns)} if s.segment_columns else {}),
        }

    def _load_state(self, workdir: Path) -> tuple[Path | None, dict[str, str]]:
        if not self.spec.stateful or self.spec.reset_state:
            if self.spec.reset_state:
                log.warning("reset_state=True: ignoring any previous state of export %r", self.spec.name)
            return None, {}
        packed = workdir / "previous.state.gz"
        if not self.state_dest.fetch(self.state_name, str(packed)):
            log.info("No previous state for export %r at %s", self.spec.name, self.state_name)
            return None, {}
        db = workdir / "previous.sqlite"
        unpack_state(packed, db)
        packed.unlink()
        return db, {}

    def run(self) -> ExportResult:
        """Run the export: scan, encode, compress, encrypt and upload overlapping; returns the small result."""
        spec = self.spec
        started = time.perf_counter()
        remove_dead_folders(spec.name)  # of killed runs of this export (a live run's folder is locked)
        folder = RunFolder(spec.name)
        workdir = folder.path
        outputs: list[OutputStream] = []
        ledger: MemberLedger | None = None
        scanner: AudienceScanner | None = None
        lease: ExportLease | None = None
        try:
            if spec.stateful:
                lease = ExportLease(
                    self.state_dest, self.lease_name, export_name=spec.name, ttl=spec.lease_ttl, wait=spec.lease_wait
                )
                lease.acquire()
                # holding the lease, no other run of this export is writing: what is partial now is dead
                extension = extension_chain(
                    spec.fmt.fmt, spec.fmt.compression, spec.encryption is not None,
                    spec.encryption.armor if spec.encryption else False,
                )  # fmt: skip
                remove_dead_parts(self.dest, spec.file_name, spec.audience, extension)
                remove_dead_state_parts(self.state_dest, spec.state_dir.rstrip("/"), spec.name)
            previous_db, _ = self._load_state(workdir)
            ledger = MemberLedger(workdir, previous_db)
            prev_meta = ledger.previous_meta
            if ledger.has_previous:
                stored = json.loads(prev_meta.get("config", "null"))
                if stored != self._config_key():
                    raise ExportStateError(
                        f"the state of export {spec.name!r} was written for a different configuration ({stored}, "
                        f"now {self._config_key()}): pass reset_state=True to start again with a full export, "
                        "or use another export_name"
                    )
            run_kind = "full" if spec.mode == "full" else "incremental"
            if spec.mode == "backfill_then_incremental" and not ledger.has_previous:
                run_kind = "backfill"
            previous_watermark = prev_meta.get("watermark") if ledger.has_previous else None

            # audience membership columns: the listed audiences' member ids, into the ledger first
            membership = list(spec.membership_segments or [])
            for index, seg in enumerate(membership):
                for ids in scan_ids(self.hook, seg, spec.id_field):
                    ledger.add_membership(index, ids)

            fields = list(spec.fields) if spec.fields else None
            columns = list(fields) if fields else None
            if columns is not None and membership:
                columns.append(MEMBERSHIP_COLUMN)
            seg_columns = list(spec.segment_columns or [])
            if columns is not None:
                columns.extend(seg_columns)
            fp_columns = list(columns) if columns is not None else None  # the same in every run kind
            if run_kind == "incremental" and columns is not None and spec.id_field not in columns:
                columns.insert(0, spec.id_field)  # removed members are identified by id alone
            out_columns = columns
            one_file_changes = run_kind == "incremental" and spec.change_output == "column"
            if one_file_changes and out_columns is not None:
                out_columns = [*out_columns, spec.change_column]
            scan_fields = None
            if fields is not None:
                scan_fields = fields if spec.id_field in fields else [*fields, spec.id_field]
                if seg_columns and SCAN_SEGMENTS not in scan_fields:
                    scan_fields = [*scan_fields, SCAN_SEGMENTS]
            drop_segments = bool(seg_columns) and fields is not None and SCAN_SEGMENTS not in fields

            watermark_ts = self.clock()
            watermark = _iso(watermark_ts)
            namer = FileNamer(
                spec.file_name,
                datetime.fromtimestamp(watermark_ts, tz=timezone.utc),
                spec.audience,
                extension_chain(
                    spec.fmt.fmt,
                    spec.fmt.compression,
                    spec.encryption is not None,
                    spec.encryption.armor if spec.encryption else False,
                ),
                spec.timestamp_format,
            )
            fmt = FormatOptions(**{**spec.fmt.__dict__, "columns": tuple(out_columns) if out_columns else None})

            def stream(change: str, cols: list[str] | None = None, *, named: bool = True) -> OutputStream:
                options = fmt if cols is None else FormatOptions(**{**fmt.__dict__, "columns": tuple(cols)})
                out = OutputStream(
                    self.dest, namer, change, options, spec.encryption, split_rows=spec.split_rows,
                    split_bytes=spec.split_bytes, overwrite=spec.overwrite, with_change_in_name=named,
                )  # fmt: skip
                outputs.append(out)
                return out

            routes: dict[str, OutputStream] = {}
            if run_kind in ("full", "backfill"):
                routes["all"] = stream("full")
            elif one_file_changes:
                routes["all"] = stream("changes")
            else:
                for change in ("added", "changed"):
                    routes[change] = stream(change)
                routes["removed"] = stream("removed", [spec.id_field] if out_columns is not None else None)

            counts = {"added": 0, "changed": 0, "unchanged": 0, "removed": 0}
            duplicates = 0
            unique = 0
            log.info(
                "Export %r (%s run, mode %s) of %s to %s: watermark %s%s",
                spec.name, run_kind, spec.mode, spec.segment or "ad-hoc FilterQL", self.dest.uri(), watermark,
                f", previous watermark {previous_watermark}" if previous_watermark else "",
            )  # fmt: skip
            scanner = AudienceScanner(
                self.hook, segment=spec.segment, filter_ql=spec.filter_ql, fields=scan_fields,
                page_size=spec.page_size, max_restarts=spec.max_cursor_restarts,
                isolate=spec.scan_process and scan_process_supported(self.hook),
            )  # fmt: skip
            id_field = spec.id_field
            need_fp = spec.stateful
            whole_pages = run_kind in ("full", "backfill") and spec.max_members is None
            for page in scanner:
                entries = []
                for row in page:
                    member_id = row.get(id_field)
                    if member_id is None or member_id == "":
                        raise ExportError(
                            f"a scanned profile has no {id_field!r}: set id_field= to a field every member has "
                            "(it identifies members for dedupe and incremental state)"
                        )
                    entries.append((str(member_id), b""))
                if seg_columns:
                    _add_segment_columns(page, seg_columns, drop_segments)
                if membership:
                    found = ledger.memberships([e[0] for e in entries])
                    for row, (member_id, _) in zip(page, entries, strict=True):
                        row[MEMBERSHIP_COLUMN] = [membership[i] for i in found.get(member_id, [])]
                if need_fp:
                    entries = [
                        (member_id, fingerprint(row, fp_columns) if fp_columns else _row_fp(row))
                        for row, (member_id, _) in zip(page, entries, strict=True)
                    ]
                marks = ledger.classify(entries)
                if whole_pages and None not in marks:  # full run, no sample, no duplicate: the page as it is
                    unique += len(marks)
                    counts["added"] += len(marks)
                    routes["all"].write_rows(page)
                    continue
                batches: dict[str, list[Mapping[str, Any]]] = {}
                stop = False
                for row, mark in zip(page, marks, strict=True):
                    if mark is None:
                        duplicates += 1
                        continue
                    unique += 1
                    counts[mark] += 1
                    if run_kind in ("full", "backfill"):
                        batches.setdefault("all", []).append(row)
                    elif mark != "unchanged":
                        if one_file_changes:
                            row[spec.change_column] = mark
                            batches.setdefault("all", []).append(row)
                        else:
                            batches.setdefault(mark, []).append(row)
                    if spec.max_members is not None and unique >= spec.max_members:
                        stop = True
                        break
                for key, rows in batches.items():
                    routes[key].write_rows(rows)
                if stop:
                    log.info("Reached max_members=%d: stopping the scan (a sample)", spec.max_members)
                    break
            scanner.close()
            stats = scanner.stats
            if run_kind == "incremental":
                target = routes["all"] if one_file_changes else routes["removed"]
                batch: list[Mapping[str, Any]] = []
                for member_id in ledger.removed():
                    counts["removed"] += 1
                    row = {id_field: member_id}
                    if one_file_changes:
                        row[spec.change_column] = "removed"
                    batch.append(row)
                    if len(batch) >= _REMOVED_BATCH:
                        target.write_rows(batch)
                        batch = []
                if batch:
                    target.write_rows(batch)
            files: list[FileResult] = []
            for out in outputs:
                files.extend(out.close())
            outputs.clear()  # all closed: nothing left to abort

            # reconciliation: every unique member scanned is accounted for, and written where it should be
            written = sum(f.rows for f in files)
            if run_kind in ("full", "backfill"):
                expected = unique
                counts = {"full": unique}
            else:
                expected = counts["added"] + counts["changed"] + counts["removed"]
            scanned_unique = stats.rows - duplicates
            if spec.max_members is None and unique != scanned_unique:
                raise ExportReconciliationError(
                    f"scanned {scanned_unique} unique rows but accounted for {unique}: the export is incomplete"
                )
            if written != expected:
                raise ExportReconciliationError(
                    f"rows written ({written}) differ from rows expected ({expected}) after scanning {stats.rows} "
                    f"rows: the export is incomplete and its state was not advanced"
                )
            log.info(
                "Reconciled export %r: audience size at start %s, rows scanned %d (%d duplicates dropped after %d "
                "cursor restart(s)), unique members %d, rows written %d %s",
                spec.name, stats.size_at_start, stats.rows, duplicates, stats.restarts, unique, written, counts,
            )  # fmt: skip
            if stats.size_at_start is not None and spec.max_members is None and stats.size_at_start != unique:
                log.warning(
                    "Audience size at scan start was %d but %d members were exported: membership changed during "
                    "the scan", stats.size_at_start, unique,
                )  # fmt: skip

            manifest_path = None
            if spec.manifest:
                manifest_path = self._write_manifest(
                    files, namer, run_kind, counts, stats, watermark, previous_watermark, written
                )
            state_path = None
            if spec.stateful:
                meta = {
                    "config": json.dumps(self._config_key(), sort_keys=True),
                    "export_name": spec.name,
                    "watermark": watermark,
                    "previous_watermark": previous_watermark or "",
                    "members": str(unique),
                    "run_kind": run_kind,
                }
                db_path = ledger.finish(meta)
                ledger = None
                packed = workdir / "next.state.gz"
                pack_state(db_path, packed)
                if lease is not None:
                    lease.check()
                state_path = self.state_dest.store(str(packed), self.state_name)
                log.info("Stored incremental state (%d members, watermark %s) at %s", unique, watermark, state_path)
            self.dest.publish([f.path for f in files] + ([manifest_path] if manifest_path else []))
            if run_kind == "backfill":
                log.info(
                    "Backfill complete at watermark %s: later runs of %r export changes since then",
                    watermark,
                    spec.name,
                )
            return ExportResult(
                export_name=spec.name, mode=spec.mode, run_kind=run_kind, destination=self.dest.uri(), files=files,
                counts=counts, size_at_start=stats.size_at_start, rows_scanned=stats.rows,
                duplicates_dropped=duplicates, rows_written=written, cursor_restarts=stats.restarts,
                watermark=watermark, previous_watermark=previous_watermark, manifest=manifest_path, state=state_path,
                seconds=time.perf_counter() - started,
            )  # fmt: skip
        except BaseException as exc:
            if scanner is not None:
                scanner.close()
            self._cleanup_failed(outputs, exc)
            raise
        finally:
            if lease is not None:
                lease.release()
            if ledger is not None:
                ledger.close()
            folder.remove()

    def _cleanup_failed(self, outputs: list[OutputStream], exc: BaseException) -> None:
        """Remove partial parts and the files this failed run already completed: a failed run leaves nothing."""
        for out in outputs:
            out.abort(exc)
            for f in out.files:
                try:
                    self.dest.delete(f.name)
                except Exception:  # best effort: report, keep the original error
                    log.warning("Could not remove %s after the failed export", f.path)

    def _write_manifest(
        self,
        files: list[FileResult],
        namer: FileNamer,
        run_kind: str,
        counts: Mapping[str, int],
        stats: Any,
        watermark: str,
        previous_watermark: str | None,
        written: int,
    ) -> str:
        spec = self.spec
        doc = {
            "export_name": spec.name,
            "audience": spec.segment if spec.segment is not None else {"filter_ql": spec.filter_ql},
            "mode": spec.mode,
            "run_kind": run_kind,
            "watermark": watermark,
            "previous_watermark": previous_watermark,
            "created": _iso(time.time()),
            "size_at_start": stats.size_at_start,
            "rows_scanned": stats.rows,
            "rows_written": written,
            "counts": dict(counts),
            "files": [
                {"name": f.name, "change": f.change, "rows": f.rows, "bytes": f.bytes, "sha256": f.sha256}
                for f in files
            ],
        }
        data_name = namer.name("manifest")
        name = data_name[: -len(namer.extension)] + "manifest.json"
        local = Path(tempfile.mkdtemp(prefix="lytics-manifest-")) / "manifest.json"
        try:
            local.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
            return self.dest.store(str(local), name)
        finally:
            shutil.rmtree(local.parent, ignore_errors=True)


def _row_fp(row: Mapping[str, Any]) -> bytes:
    import hashlib

    payload = json.dumps(row, ensure_ascii=False, separators=(",", ":"), sort_keys=True, default=str)
    return hashlib.blake2b(payload.encode("utf-8"), digest_size=16).digest()


def _add_segment_columns(page: list[dict[str, Any]], slugs: Sequence[str], drop: bool) -> None:
    """One boolean column per slug: whether the row's ``segments`` lists it (dropping ``segments`` if unasked)."""
    for row in page:
        member_of = row.pop(SCAN_SEGMENTS, None) if drop else row.get(SCAN_SEGMENTS)
        if member_of is None:
            member_of = ()
        elif isinstance(member_of, str):  # a single membership may come back as a bare string
            member_of = (member_of,)
        for slug in slugs:
            row[slug] = slug in member_of
