"""Enrichment round trip: an audience's identifiers go to a third-party lookup, the answers come back to
Lytics as events keyed by the same identifiers, so identity resolution lands them on the same profiles.

Where the state lives: on the profiles themselves. Each result written carries ``<prefix>_status``
(``enriched``/``not_found``/``failed``), ``<prefix>_checked_at``, ``<prefix>_enricher`` and, on success,
``<prefix>_enriched_at``. The next run reads those fields in the scan: users enriched within
``freshness_days`` are skipped; failed users (and, unless ``not_found_retry_days`` says otherwise,
not-found users) are sent again. No side store to lose or keep in sync. ``results_path`` adds an NDJSON audit of
the run (one line per user sent) for reporting.

Memory stays flat: the audience is read one scan page at a time, at most ``2 x max_in_flight`` requests are
queued, and results are written back in batches of ``write_batch_size``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import AirflowException, BaseOperator

from airflow_provider_lytics.enrichment.base import ENRICHED, FAILED, Enricher, EnrichmentResult, Identifiers
from airflow_provider_lytics.enrichment.freshness import FreshnessPolicy, as_timedelta, format_time
from airflow_provider_lytics.enrichment.mapping import RecordBuilder
from airflow_provider_lytics.errors import LyticsArgumentError
from airflow_provider_lytics.links import LyticsAudienceLink, LyticsStreamLink, publish_links
from airflow_provider_lytics.retry_policy import http_retry_from_kwargs

if TYPE_CHECKING:
    from airflow_provider_lytics.client.retry import RetryPolicy
    from airflow_provider_lytics.enrichment.runner import EnrichmentRunner
    from airflow_provider_lytics.hooks.lytics import LyticsHook

_STREAM_NAME = re.compile(r"^[A-Za-z0-9_\-.]{1,128}$")
#: Lytics's limit for one record inside a batch posted to ``/collect``.
MAX_RECORD_BYTES = 16 * 1024
#: Flush the write buffer before the request body reaches this size (the API host accepts 10 MB).
MAX_WRITE_BYTES = 4 * 1024 * 1024


class _StreamWriter:
    """Buffers result records and posts them to ``/collect/json/{stream}`` in batches."""

    def __init__(self, hook: LyticsHook, stream: str, batch_size: int, log: Any) -> None:
        self.hook = hook
        self.stream = stream
        self.batch_size = batch_size
        self.log = log
        self.buffer: list[bytes] = []
        self.size = 0
        self.written = 0
        self.rejected = 0
        self.requests = 0

    def add(self, encoded: bytes) -> None:
        self.buffer.append(encoded)
        self.size += len(encoded) + 1
        if len(self.buffer) >= self.batch_size or self.size >= MAX_WRITE_BYTES:
            self.flush()

    def flush(self) -> None:
        if not self.buffer:
            return
        from airflow_provider_lytics.client.errors import LyticsError

        body = b"[" + b",".join(self.buffer) + b"]"
        count = len(self.buffer)
        try:
            data = self.hook.request("POST", f"/collect/json/{self.stream}", data=body,
                                     headers={"Content-Type": "application/json"}).data or {}  # fmt: skip
        except LyticsError as err:  # reaches Airflow as itself (see errors.py), with what it means for the run
            err.add_note(
                f"Could not write {count} enrichment results to Lytics stream {self.stream!r}. Those users "
                "were not marked as enriched, so the next run sends them again."
            )
            raise
        self.requests += 1
        rejected = int(data.get("rejected_count") or 0) if isinstance(data, Mapping) else 0
        self.rejected += rejected
        self.written += count - rejected
        if rejected:
            self.log.warning("Lytics rejected %d of %d enrichment records on stream %s", rejected, count, self.stream)
        self.buffer = []
        self.size = 0


class _Audit:
    """Optional NDJSON file, one line per user sent; written to ``<path>.part`` and renamed when the run ends."""

    def __init__(self, path: str | None) -> None:
        self.path = path
        self._tmp = Path(f"{path}.part") if path else None
        self._out: IO[str] | None = None
        if self._tmp is not None:
            self._tmp.parent.mkdir(parents=True, exist_ok=True)
            self._out = self._tmp.open("w", encoding="utf-8")

    def write(self, ids: Identifiers, result: EnrichmentResult) -> None:
        if self._out is not None:
            line = {"identifiers": dict(ids), "status": result.status}
            if result.reason:
                line["reason"] = result.reason
            self._out.write(json.dumps(line, ensure_ascii=False, default=str) + "\n")

    def close(self) -> None:
        if self._out is not None:
            self._out.close()
            self._out = None
            self._tmp.replace(self.path)  # type: ignore[union-attr, arg-type]


class LyticsEnrichmentOperator(BaseOperator):
    """Enrich an audience through a third party and write the answers back to a Lytics stream.

    :param enricher: an :class:`~airflow_provider_lytics.enrichment.Enricher` (``HttpEnricher``,
        ``EmailDomainLookupEnricher``, a subclass) or a plain callable ``identifiers -> dict | None``.
    :param segment: saved audience id or slug. Exactly one of ``segment``/``filter_ql``.
    :param filter_ql: ad-hoc FilterQL audience, e.g. ``FILTER AND (EXISTS email) FROM user``.
    :param identifier_fields: profile fields sent to the enricher and used as the keys of the written records
        (they must be identity fields of the account, e.g. ``email``, ``user_id``).
    :param stream: Lytics stream receiving the results.
    :param field_prefix: prefix of every written field (``enrich`` gives ``enrich_company_name``...).
    :param record_shape: ``flat`` (identifiers + prefixed fields) or ``origin_response`` (Lytics's
        ``webhook_enrichment`` shape, ``{"origin": {...}, "response": {...}}``; needs LQL mapping ``origin.*``).
    :param freshness_days: skip users enriched less than this long ago (days or a timedelta; ``None``: never).
    :param not_found_retry_days: skip users the service did not know for this long (``None``: ask every run).
    :param rate_limit: requests per second toward the third party (``None``: unlimited).
    :param max_in_flight: concurrent requests toward the third party.
    :param http_retry_policy: attempts and back-off toward the third party for 429/5xx/timeouts; ``Retry-After`` is
        honoured and pauses all workers. (``retry_policy=`` is Airflow's task retry policy, e.g.
        ``lytics_retry_policy()``; a client ``RetryPolicy`` passed there still works, deprecated.)
    :param write_batch_size: records per ``/collect`` request.
    :param record_failures: also write ``failed``/``not_found`` statuses to the profiles (so audiences can
        target them, and ``not_found_retry_days`` can work).
    :param dry_run: scan and apply freshness, report how many users would be sent, call nothing, write nothing.
    :param max_failures: stop the run once more users than this have failed.
    :param max_failure_rate: fail the task at the end if failed / sent exceeds this fraction.
    :param results_path: NDJSON audit file, one line per user sent (identifiers, status, reason).
    :param scan_page_size: profiles per scan page (1-100).
    :param max_scan_restarts: times the audience scan may restart after its cursor expired (users already
        processed in this run are passed over; needs ``record_failures`` so every processed user is marked).
    :return: the counts (``scanned``, ``skipped_fresh``, ``skipped_no_identifier``, ``sent``/``would_send``,
        ``enriched``, ``not_found``, ``failed``, ``requests``, ``retries``, ``written``) and failure samples.
    """

    template_fields: Sequence[str] = ("segment", "filter_ql", "stream", "results_path", "lytics_conn_id")
    template_fields_renderers = {"filter_ql": "sql"}
    ui_color = "#9AD0C2"
    operator_extra_links = (LyticsAudienceLink(), LyticsStreamLink())

    def __init__(
        self,
        *,
        enricher: Enricher | Callable[[dict[str, Any]], Any],
        segment: str | None = None,
        filter_ql: str | None = None,
        identifier_fields: Sequence[str] = ("email",),
        stream: str = "enrichment",
        field_prefix: str = "enrich",
        record_shape: str = "flat",
        freshness_days: float | timedelta | None = 30,
        not_found_retry_days: float | timedelta | None = None,
        rate_limit: float | None = None,
        max_in_flight: int = 4,
        http_retry_policy: RetryPolicy | None = None,
        write_batch_size: int = 500,
        record_failures: bool = True,
        dry_run: bool = False,
        max_failures: int | None = None,
        max_failure_rate: float | None = None,
        results_path: str | None = None,
        scan_page_size: int = 100,
        max_scan_restarts: int = 5,
        lytics_conn_id: str = "lytics_default",
        **kwargs: Any,
    ) -> None:
        http_retry_policy = http_retry_from_kwargs("LyticsEnrichmentOperator", http_retry_policy, kwargs)
        super().__init__(**kwargs)
        if (segment is None) == (filter_ql is None):
            raise LyticsArgumentError("Pass exactly one audience: segment (id or slug) or filter_ql")
        if isinstance(identifier_fields, str):
            identifier_fields = [identifier_fields]
        if not identifier_fields:
            raise LyticsArgumentError("identifier_fields must name at least one profile field to send, e.g. ['email']")
        if not isinstance(enricher, Enricher):
            if not callable(enricher):
                raise LyticsArgumentError(
                    "enricher must be an Enricher (HttpEnricher, EmailDomainLookupEnricher...) or a "
                    f"callable; got {type(enricher).__name__}"
                )
            from airflow_provider_lytics.enrichment.function import CallableEnricher

            enricher = CallableEnricher(enricher)
        unknown = sorted(set(enricher.required_fields) - set(identifier_fields))
        if unknown:
            raise LyticsArgumentError(
                f"the enricher needs {unknown}, which identifier_fields {list(identifier_fields)} lacks"
            )
        if enricher.any_of_fields and not set(enricher.any_of_fields) & set(identifier_fields):
            raise LyticsArgumentError(
                f"the enricher needs one of {list(enricher.any_of_fields)}; add it to identifier_fields "
                f"{list(identifier_fields)}"
            )
        if not 1 <= max_in_flight <= 64:
            raise LyticsArgumentError(f"max_in_flight must be between 1 and 64, got {max_in_flight}")
        if not 1 <= scan_page_size <= 100:
            raise LyticsArgumentError(
                f"scan_page_size must be between 1 and 100 (the Lytics scan maximum), got {scan_page_size}"
            )
        if write_batch_size < 1:
            raise LyticsArgumentError(f"write_batch_size must be at least 1, got {write_batch_size}")
        if rate_limit is not None and not rate_limit > 0:
            raise LyticsArgumentError(f"rate_limit must be a positive number of requests per second, got {rate_limit}")
        if max_failure_rate is not None and not 0 <= max_failure_rate <= 1:
            raise LyticsArgumentError(f"max_failure_rate is a fraction between 0 and 1, got {max_failure_rate}")
        self.freshness = FreshnessPolicy(
            prefix=field_prefix,
            max_age=as_timedelta(freshness_days, "freshness_days"),
            not_found_max_age=as_timedelta(not_found_retry_days, "not_found_retry_days"),
        )
        self.builder = RecordBuilder(prefix=field_prefix, enricher_name=enricher.name, shape=record_shape)
        self.enricher = enricher
        self.segment = segment
        self.filter_ql = filter_ql
        self.identifier_fields = list(identifier_fields)
        self.stream = stream
        self.field_prefix = field_prefix
        self.record_shape = record_shape
        self.rate_limit = rate_limit
        self.max_in_flight = max_in_flight
        self.http_retry_policy = http_retry_policy
        self.write_batch_size = write_batch_size
        self.record_failures = record_failures
        self.is_dry_run = dry_run  # not self.dry_run: that would hide BaseOperator.dry_run() (template check)
        self.max_failures = max_failures
        self.max_failure_rate = max_failure_rate
        self.results_path = results_path
        self.scan_page_size = scan_page_size
        self.max_scan_restarts = max_scan_restarts
        self.lytics_conn_id = lytics_conn_id

    # -- audience -------------------------------------------------------------------------------------------
    def scan_fields(self) -> list[str]:
        """Profile fields the scan returns: the identifiers plus the freshness fields, nothing else."""
        return list(dict.fromkeys([*self.identifier_fields, *self.freshness.read_fields()]))

    def _scan(self, hook: LyticsHook) -> Iterator[Mapping[str, Any]]:
        kwargs: dict[str, Any] = {"fields": self.scan_fields(), "limit": self.scan_page_size}
        if self.segment is not None:
            return hook.scan(self.segment, **kwargs)
        return hook.scan(filter_ql=self.filter_ql, **kwargs)

    def _profiles(self, hook: LyticsHook, runner: EnrichmentRunner, writer: _StreamWriter, run_at: datetime,
                  state: dict[str, int]) -> Iterator[Mapping[str, Any]]:  # fmt: skip
        """The audience, restarting the scan when its cursor expires (a slow third party can outlast it).

        Before a restart every result so far is settled and written, and profiles already checked in this run
        (``<prefix>_checked_at`` at or after the run start) are passed over, so nobody is sent twice.
        """
        from airflow_provider_lytics.client.errors import LyticsCursorExpiredError
        from airflow_provider_lytics.enrichment.freshness import parse_time

        checked_field = self.freshness.fields["checked_at"]
        since = run_at.replace(microsecond=0)
        restarted = False
        while True:
            progress = False
            try:
                for profile in self._scan(hook):
                    if restarted:
                        checked = parse_time(profile.get(checked_field))
                        if checked is not None and checked >= since:
                            state["already_processed"] += 1
                            continue
                    progress = True
                    yield profile
                return
            except LyticsCursorExpiredError:
                if state["scan_restarts"] >= self.max_scan_restarts or (restarted and not progress):
                    raise
                state["scan_restarts"] += 1
                self.log.warning("The audience scan cursor expired; settling %d in-flight requests and restarting "
                                 "the scan (restart %d of at most %d)", len(runner._pending), state["scan_restarts"],
                                 self.max_scan_restarts)  # fmt: skip
                runner.settle()
                writer.flush()
                restarted = True

    # -- execution ------------------------------------------------------------------------------------------
    def execute(self, context: Any) -> dict[str, Any]:
        from airflow_provider_lytics.client.errors import LyticsConfigError
        from airflow_provider_lytics.enrichment.ratelimit import RequestLimiter
        from airflow_provider_lytics.enrichment.runner import EnrichmentRunner
        from airflow_provider_lytics.hooks.lytics import LyticsHook

        hook = LyticsHook(self.lytics_conn_id)
        if not _STREAM_NAME.match(str(self.stream)):
            raise LyticsConfigError(
                f"stream {self.stream!r} is not a usable Lytics stream name: use 1-128 letters, digits, '_', '-', '.'"
            )
        publish_links(context, self.lytics_conn_id, audience=self.segment, stream=self.stream)
        writer = _StreamWriter(hook, self.stream, self.write_batch_size, self.log)
        audit = _Audit(None if self.is_dry_run else self.results_path)
        now = datetime.now(timezone.utc)
        runner: EnrichmentRunner | None = None
        scan_state = {"scan_restarts": 0, "already_processed": 0}

        def on_result(ids: Identifiers, result: EnrichmentResult) -> EnrichmentResult:
            record = self.builder.build(ids, result, now)
            encoded = json.dumps(record, separators=(",", ":"), ensure_ascii=False, default=str).encode()
            if len(encoded) > MAX_RECORD_BYTES:
                result = EnrichmentResult.failed(
                    f"enriched record is {len(encoded)} bytes, over Lytics's {MAX_RECORD_BYTES}-byte limit per "
                    "record: map fewer response fields"
                )
                record = self.builder.build(ids, result, now)
                encoded = json.dumps(record, separators=(",", ":"), ensure_ascii=False, default=str).encode()
            if result.status == ENRICHED or self.record_failures:
                writer.add(encoded)
            audit.write(ids, result)
            failed = runner.counts.failed + 1 if runner is not None else 0
            if result.status == FAILED and self.max_failures is not None and failed > self.max_failures:
                raise AirflowException(
                    f"Stopped after {failed} failed users (max_failures={self.max_failures}); they will be retried "
                    f"next run. First failures: {[*(runner.failures if runner else []), {'reason': result.reason}][:3]}"
                )
            return result

        runner = EnrichmentRunner(
            self.enricher,
            identifier_fields=self.identifier_fields,
            on_result=on_result,
            freshness=self.freshness,
            limiter=RequestLimiter(self.rate_limit, self.max_in_flight),
            retry_policy=self.http_retry_policy,
            workers=self.max_in_flight,
            dry_run=self.is_dry_run,
            now=lambda: now,
            logger=self.log,
        )
        self.log.info(
            "Enriching %s with %s (%s), sending %s%s%s", self._audience(), self.enricher.name,
            type(self.enricher).__name__, ", ".join(self.identifier_fields),
            f", at most {self.rate_limit:g} requests/s" if self.rate_limit else "",
            " [dry run: nothing is sent or written]" if self.is_dry_run else "",
        )  # fmt: skip
        try:
            counts = runner.run(self._profiles(hook, runner, writer, now, scan_state))
        finally:
            try:
                writer.flush()  # results already paid for are kept even when the run stops early
            finally:
                audit.close()
                hook.close()
        summary: dict[str, Any] = {**counts.as_dict(), "written": writer.written, "write_rejected": writer.rejected,
                                   "write_requests": writer.requests, "dry_run": self.is_dry_run, "stream": self.stream,
                                   "enricher": self.enricher.name, "run_at": format_time(now),
                                   "failures_sample": runner.failures, "skipped_sample": runner.skipped,
                                   **scan_state}  # fmt: skip
        if self.results_path and not self.is_dry_run:
            summary["results_path"] = self.results_path
        self.log.info("Enrichment %s: %s", "dry run" if self.is_dry_run else "done",
                      {k: v for k, v in summary.items() if not k.endswith("_sample")})  # fmt: skip
        if self.is_dry_run:
            self.log.info(
                "Dry run: %d of %d scanned users would be sent (%d fresh, %d without identifiers)",
                counts.would_send, counts.scanned, counts.skipped_fresh, counts.skipped_no_identifier,
            )  # fmt: skip
        rate = counts.failed / counts.sent if counts.sent else 0.0
        if self.max_failure_rate is not None and rate > self.max_failure_rate:
            raise AirflowException(
                f"{counts.failed} of {counts.sent} users failed ({rate:.1%}), above max_failure_rate="
                f"{self.max_failure_rate:.1%}; they will be retried next run. First failures: {runner.failures[:3]}"
            )
        from airflow_provider_lytics.lineage import audience_ref, stream_ref

        api_url = hook.settings.api_url
        self._lineage = (
            audience_ref(api_url, self.segment, self.filter_ql),
            None if self.is_dry_run else stream_ref(api_url, str(self.stream)),
            writer.written,
        )
        return summary

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """For Airflow's OpenLineage listener: the audience read and the Lytics stream the results went to."""
        from airflow_provider_lytics.lineage import operator_lineage

        lineage = getattr(self, "_lineage", None)
        if lineage is None:
            return operator_lineage([], [])
        audience, stream, written = lineage
        return operator_lineage([audience], [stream] if stream else [], output_rows=written if stream else None)

    def _audience(self) -> str:
        return f"segment {self.segment!r}" if self.segment is not None else "ad-hoc FilterQL audience"
