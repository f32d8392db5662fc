"""Run one import: read sources, validate rows, quarantine rejects, batch, send, checkpoint, count.

Resuming: the checkpoint holds, per source part, the line ranges Lytics acknowledged and the ranges that were in
flight. A retried run re-reads the sources (local validation and the quarantine are rebuilt the same way) but sends
no acknowledged row again; rows of an in-flight range are re-sent and counted as possible duplicates, because
Lytics may have taken them before the previous try died.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping, Sequence
from typing import IO, TYPE_CHECKING, Any, cast

from airflow_provider_lytics.imports.batching import DEFAULT_BATCH_BYTES, Batch, BatchBuilder
from airflow_provider_lytics.imports.checkpoint import CHECKPOINT_VERSION, CheckpointStore, MemoryCheckpointStore
from airflow_provider_lytics.imports.counts import ImportCounts
from airflow_provider_lytics.imports.formats import infer_format, open_parts
from airflow_provider_lytics.imports.progress import ProgressReporter
from airflow_provider_lytics.imports.ranges import LineRanges, RangeCursor
from airflow_provider_lytics.imports.readers import SourceRow, checked_json, open_rows
from airflow_provider_lytics.imports.sender import BatchResult, BatchSender
from airflow_provider_lytics.imports.settings import ImportSettings  # re-exported: defined apart for DAG parsing
from airflow_provider_lytics.io.counting import CountingReader

if TYPE_CHECKING:
    from airflow_provider_lytics.hooks.lytics import LyticsHook
    from airflow_provider_lytics.imports.lease import CheckpointLease
    from airflow_provider_lytics.imports.quarantine import QuarantineWriter
    from airflow_provider_lytics.imports.sources import SourceFile


class ImportThresholdError(Exception):
    """More rows were rejected than the configured threshold allows (raised after the quarantine is written)."""


class ImportReconciliationError(Exception):
    """The counts do not add up (rows read != sent + quarantined + skipped): a row may be lost, so the run fails."""


class ImportBatchError(Exception):
    """A batch could not be delivered; earlier acknowledged batches are checkpointed and will not be re-sent."""


class _Part:
    """Checkpoint state of one source part."""

    def __init__(self, saved: Mapping[str, Any] | None) -> None:
        saved = saved or {}
        self.acked = LineRanges(saved.get("acked", ()))
        self.inflight: list[list[int]] = [list(r) for r in saved.get("inflight", ())]
        self.earlier_inflight = LineRanges(self.inflight)

    def as_dict(self) -> dict[str, Any]:
        return {"acked": self.acked.as_list(), "inflight": self.inflight}


class ImportRunner:
    """Drive one import. ``hooks`` are ready :class:`LyticsHook` objects, one per batch in flight."""

    def __init__(
        self,
        settings: ImportSettings,
        hooks: Sequence[LyticsHook],
        *,
        log: Any,
        checkpoint: CheckpointStore | None = None,
        quarantine: QuarantineWriter | None = None,
        lease: CheckpointLease | None = None,
    ) -> None:
        self.s = settings
        self.hooks = list(hooks)[: settings.max_in_flight]
        self.log = log
        self.store = checkpoint or MemoryCheckpointStore()
        self.quarantine = quarantine
        self.lease = lease
        self.counts = ImportCounts()
        self.dry_run_report: dict[str, Any] = {}
        self._parts: dict[str, _Part] = {}
        self._bytes_before = 0
        self._failure: BatchResult | None = None
        self._dry_sent = 0

    # -- checkpoint ---------------------------------------------------------------------------------------
    def _load(self) -> None:
        if self.s.dry_run:
            return
        doc = self.store.load()
        if not doc:
            return
        if doc.get("version") != CHECKPOINT_VERSION or doc.get("stream") != self.s.stream:
            where = self.store.description
            self.log.warning("Ignoring a checkpoint from %s written for another stream or version", where)
            return
        self._parts = {k: _Part(v) for k, v in (doc.get("parts") or {}).items()}
        self.counts.restore_remote(doc.get("counts"))
        self.log.info(
            "Resuming from %s: %d rows in %d batches already acknowledged by Lytics",
            self.store.description, self.counts.rows_sent, self.counts.batches_sent,
        )  # fmt: skip

    def _save(self) -> None:
        if self.s.dry_run:
            return
        if self.lease is not None:
            self.lease.check()  # never write a checkpoint another run holds
        self.store.save({
            "version": CHECKPOINT_VERSION,
            "stream": self.s.stream,
            "parts": {k: p.as_dict() for k, p in self._parts.items()},
            "counts": self.counts.remote_part(),
        })  # fmt: skip

    # -- sending ------------------------------------------------------------------------------------------
    def _sender(self) -> BatchSender:
        options: dict[str, Any] = {"droperrors": True, "use_bulk_host": self.s.use_bulk_host}
        if self.s.timestamp_field:
            options["timestamp_field"] = self.s.timestamp_field
        if self.s.dry_run:
            options["dryrun"] = True
        return BatchSender(self.hooks, self.s.stream, upload_options=options, policy=self.s.retry_policy, log=self.log)

    def _dispatch(self, sender: BatchSender, batch: Batch | None) -> None:
        if batch is None or self._failure is not None:
            return
        for result in sender.wait_for_slot():
            self._on_result(result)
        if self._failure is not None:
            return
        part = self._parts[batch.part_key]
        batch.possible_duplicate = part.earlier_inflight.overlaps(batch.first_line, batch.last_line)
        if not self.s.dry_run:
            part.inflight.append([batch.first_line, batch.last_line])
            self._save()  # write-ahead: a crash from here on may leave this batch delivered but unrecorded
        for result in sender.submit(batch):
            self._on_result(result)

    def _on_result(self, result: BatchResult) -> None:
        batch, c = result.batch, self.counts
        part = self._parts[batch.part_key]
        rng = [batch.first_line, batch.last_line]
        if result.error is not None:
            if self._failure is None:
                self._failure = result
            if not result.maybe_delivered and not batch.possible_duplicate and rng in part.inflight:
                part.inflight.remove(rng)  # Lytics refused it every time: certainly not delivered
                self._save()
            return
        if rng in part.inflight:
            part.inflight.remove(rng)
        if self.s.dry_run:
            self.dry_run_report["sample_rows"] = self.dry_run_report.get("sample_rows", 0) + batch.rows
            self.dry_run_report["sample_accepted"] = self.dry_run_report.get("sample_accepted", 0) + result.accepted
            self.dry_run_report["sample_rejected_by_lytics"] = (
                self.dry_run_report.get("sample_rejected_by_lytics", 0) + result.rejected
            )
            return
        part.acked.add(batch.first_line, batch.last_line)
        c.rows_sent += batch.rows
        c.rows_sent_this_try += batch.rows
        c.accepted += result.accepted
        c.rejected_by_lytics += result.rejected
        c.batches_sent += 1
        c.bytes_sent += len(batch.body)
        if result.duplicate_sends:
            c.possible_duplicates += batch.rows * result.duplicate_sends
            self.log.warning(
                "Batch %d of %s (lines %d-%d, %d rows) was re-sent %d time(s) after a lost response: Lytics may "
                "hold these rows more than once", batch.sequence, batch.part_name, batch.first_line, batch.last_line,
                batch.rows, result.duplicate_sends,
            )  # fmt: skip
        self._save()

    # -- reading ------------------------------------------------------------------------------------------
    def _import_file(self, source: SourceFile, sender: BatchSender, progress: ProgressReporter) -> None:
        s, c = self.s, self.counts
        fmt = infer_format(source.name, s.file_format or source.fmt_hint)
        with source.open() as raw, contextlib.ExitStack() as checks:
            counting = CountingReader(raw, seekable=True)  # a local zip is then read in place, not spooled

            def done_bytes() -> int:
                return self._bytes_before + (getattr(raw, "bytes_in", None) or counting.count)

            for part_name, stream in open_parts(
                cast(IO[bytes], counting), source.name, compression=s.compression, tmp_dir=s.tmp_dir
            ):
                suffix = part_name[len(source.name) :]
                part_key = source.key + suffix
                part = self._parts.setdefault(part_key, _Part(None))
                acked = part.acked.cursor()
                if fmt == "json":  # a broken array must stop the file before any record is sent
                    stream = checks.enter_context(checked_json(stream, part_name, encoding=s.encoding,
                                                               tmp_dir=s.tmp_dir))  # fmt: skip
                rows = open_rows(fmt, stream, part_name, encoding=s.encoding, constants=s.constant_fields,
                                 max_record_bytes=s.max_record_bytes, delimiter=s.delimiter, quotechar=s.quotechar,
                                 columns=s.columns, has_header=s.has_header)  # fmt: skip
                filename = part_name.split("!")[-1].rsplit("/", 1)[-1] if s.send_filename else None
                builder = BatchBuilder(part_key, part_name, fmt=fmt, batch_bytes=s.batch_bytes or DEFAULT_BATCH_BYTES,
                                       batch_rows=s.batch_rows, gzip_bodies=s.gzip_batches,
                                       filename=filename)  # fmt: skip
                any_acked = bool(part.acked)
                next_tick = 4096
                for row in rows:
                    if row.rows > 1:
                        if s.dry_run and self._dry_sent >= s.dry_run_sample:
                            c.rows_read += row.rows  # sample sent: the rest is only counted (it is all valid)
                        elif s.dry_run or any_acked or not builder.fits_block(row.rows, row.body):  # type: ignore[arg-type]
                            self._rows_one_by_one(row, rows.header_text, builder, sender, acked)
                        else:
                            c.rows_read += row.rows
                            if self._failure is None:
                                builder.header_text = rows.header_text
                                self._dispatch(sender, builder.take_if_full(row.rows, row.body))  # type: ignore[arg-type]
                                builder.add_block(row.line, row.line + row.rows - 1, row.rows, row.body)  # type: ignore[arg-type]
                    else:
                        self._one_row(row, part_name, rows.header_text, builder, sender, acked)
                    if c.rows_read >= next_tick:
                        next_tick = c.rows_read + 4096
                        progress.tick(done_bytes())
                        if self._failure is not None:
                            break
                self._dispatch(sender, builder.take())
                if self._failure is not None:
                    break
            self._bytes_before = done_bytes()

    def _one_row(self, row: SourceRow, part_name: str, header: str, builder: BatchBuilder, sender: BatchSender,
                 acked: RangeCursor) -> None:  # fmt: skip
        c, s = self.counts, self.s
        c.rows_read += 1
        if row.error is not None:
            c.rejected_here += 1
            if self.quarantine is not None:
                self.quarantine.write(part_name, row.line, row.error, row.raw)
        elif row.line in acked:
            c.skipped_acknowledged += 1
        elif self._failure is None and (not s.dry_run or self._dry_sent < s.dry_run_sample):
            builder.header_text = header
            self._dry_sent += 1
            self._dispatch(sender, builder.add(row.line, row.body))  # type: ignore[arg-type]

    def _rows_one_by_one(self, block: SourceRow, header: str, builder: BatchBuilder, sender: BatchSender,
                         acked: RangeCursor) -> None:  # fmt: skip
        """A block row taken apart (resumed parts, dry runs, blocks larger than the batch limits)."""
        for i, body in enumerate((block.body or "").split("\n")):
            self._one_row(SourceRow(block.line + i, body, body), "", header, builder, sender, acked)

    def run(self, sources: Iterable[SourceFile]) -> ImportCounts:
        """Import every source; raises :class:`ImportBatchError` or :class:`ImportThresholdError` on failure."""
        sources = list(sources)
        self._load()
        known = [src.size for src in sources]
        total = sum(k for k in known if k is not None) if all(k is not None for k in known) else None
        progress = ProgressReporter(self.log, self.counts, interval=self.s.progress_interval, total_bytes=total)
        sender = self._sender()
        try:
            try:
                for source in sources:
                    self.counts.files += 1
                    self.log.info("Importing %s into stream %r", source.name, self.s.stream)
                    self._import_file(source, sender, progress)
                    if self._failure is not None:
                        break
            finally:
                for result in sender.drain():
                    self._on_result(result)
        finally:
            sender.close()
            self.counts.bytes_read = self._bytes_before
            progress.report(self._bytes_before, final=True)
        if self.quarantine is not None:
            self.quarantine_path = self.quarantine.close()
        if self._failure is not None:
            self._raise_failure(self._failure)
        self.check_reconciled()
        self.check_threshold()
        return self.counts

    def check_reconciled(self) -> None:
        """Fail loudly unless every row read was sent, quarantined or skipped as already acknowledged."""
        c = self.counts
        if self.s.dry_run or not c.unaccounted():
            return
        raise ImportReconciliationError(
            f"Import counts do not reconcile: {c.rows_read} rows read but {c.rows_sent_this_try} sent by this try + "
            f"{c.rejected_here} quarantined + {c.skipped_acknowledged} skipped as already acknowledged = "
            f"{c.rows_read - c.unaccounted()} ({c.unaccounted():+d} unaccounted). The run is failed and its "
            f"checkpoint in {self.store.description} kept, so no row is silently lost; please report this as a bug"
        )

    def _raise_failure(self, result: BatchResult) -> None:
        batch = result.batch
        raise ImportBatchError(
            f"Batch {batch.sequence} of {batch.part_name} (lines {batch.first_line}-{batch.last_line}) was not "
            f"delivered after {result.attempts} attempt(s): {result.error}. {self.counts.rows_sent} rows are "
            f"acknowledged and checkpointed in {self.store.description}; a retry continues from there."
        ) from result.error

    def check_threshold(self) -> None:
        c, s = self.counts, self.s
        rejected = c.rejected
        fraction = rejected / c.rows_read if c.rows_read else 0.0
        too_many = s.max_rejected_rows is not None and rejected > s.max_rejected_rows
        too_large = s.max_rejected_fraction is not None and fraction > s.max_rejected_fraction
        if too_many or too_large:
            limit = []
            if s.max_rejected_rows is not None:
                limit.append(f"max_rejected_rows={s.max_rejected_rows}")
            if s.max_rejected_fraction is not None:
                limit.append(f"max_rejected_fraction={s.max_rejected_fraction}")
            where = getattr(self, "quarantine_path", None)
            raise ImportThresholdError(
                f"{rejected} of {c.rows_read} rows rejected ({fraction:.2%}: {c.rejected_here} here, "
                f"{c.rejected_by_lytics} by Lytics), over the threshold ({', '.join(limit)})"
                + (f"; see the quarantine file {where}" if where else "")
            )
