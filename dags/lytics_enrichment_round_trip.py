"""Enrichment round trip: send an audience's emails to a person/company lookup service and land the answers on
the same Lytics profiles.

1. ``preview`` (dry run) scans the audience, applies the freshness window and reports how many users *would*
   be sent: nothing is called or written.
2. ``enrich`` sends the users not enriched in the last ``freshness_days`` to the service (at most
   ``rate_limit`` requests/s, ``max_in_flight`` at once, 429/5xx retried honouring ``Retry-After``) and posts
   the results to the ``enrichment`` stream keyed by ``email``: ``enrich_full_name``, ``enrich_company_name``...
   plus ``enrich_status``/``enrich_enriched_at``/``enrich_enricher``. Failed and not-found users are reported
   and sent again next run; enriched ones are skipped until their data is ``freshness_days`` old.
3. ``report`` turns the counts into one line.

Connections: ``lytics_default`` and ``enrichment_api`` (HTTP: host = the service's base URL, password = its API
key, sent as ``Authorization: Bearer``). Offline, run the emulated service:
``python -m airflow_provider_lytics.emulator.enrichment_service --port 8791``.
"""

from __future__ import annotations

from datetime import datetime

from airflow.providers.common.compat.sdk import DAG, Param, task

from airflow_provider_lytics.enrichment import EmailDomainLookupEnricher
from airflow_provider_lytics.macros import RUN_MACROS
from airflow_provider_lytics.operators.enrichment import LyticsEnrichmentOperator

AUDIENCE = "{{ params.audience_slug }}"
COMMON = {
    "segment": AUDIENCE,
    "identifier_fields": ["email"],
    "enricher": EmailDomainLookupEnricher("enrichment_api"),
    "stream": "enrichment",
    "field_prefix": "enrich",
    "freshness_days": 30,
}

with DAG(
    dag_id="lytics_enrichment_round_trip",
    schedule="@daily",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,  # two overlapping runs would both send the users neither has marked fresh yet
    params={
        "audience_slug": Param(
            "demo_enrichment_audience",
            type="string",
            minLength=1,
            description="Slug or id of the Lytics audience whose members are enriched.",
        ),
        "results_dir": Param(
            "/tmp/lytics-enrichment",
            type="string",
            minLength=1,
            description="Local folder for the audit file (one sub-folder per run).",
        ),
    },
    user_defined_macros=RUN_MACROS,
    tags=["lytics", "example", "enrichment"],
    doc_md=__doc__,
) as dag:
    preview = LyticsEnrichmentOperator(task_id="preview", dry_run=True, **COMMON)

    enrich = LyticsEnrichmentOperator(
        task_id="enrich",
        rate_limit=10,
        max_in_flight=4,
        max_failure_rate=0.2,
        results_path="{{ params.results_dir }}/{{ run_slug(run_id) }}/results.ndjson",
        **COMMON,
    )

    @task
    def report(summary: dict) -> str:
        """One line for humans; the numbers themselves are in the ``enrich`` task's XCom."""
        line = (
            f"{summary['sent']} sent of {summary['scanned']} scanned ({summary['skipped_fresh']} still fresh): "
            f"{summary['enriched']} enriched, {summary['not_found']} not found, {summary['failed']} failed"
        )
        if summary.get("failures_sample"):
            first = summary["failures_sample"][0]
            line += f"; e.g. {first['key']}: {first['reason']}"
        return line

    preview >> enrich
    report(enrich.output)
