"""Daily incremental audience export at 06:00 New York time (DST-correct), plus a DAG scheduled on its asset.

``lytics_export_scheduled`` runs every day at 06:00 America/New_York, which is 11:00 UTC in winter and 10:00 UTC
in summer: the cron is evaluated in that time zone (``CronTriggerTimetable(..., timezone=...)``), never as a
fixed UTC hour. Each run writes only what changed since the previous successful run (``added``, ``changed``,
``removed`` files) to SFTP, PGP-encrypted; the state lives on the SFTP server next to the exports, so any
worker can run the next day's export, and a failed run does not advance it. ``max_active_runs=1`` keeps two
runs from racing on that state.

``lytics_export_consumer`` is scheduled on the export's asset (``lytics-export://daily_actives``) and reads the
summary (paths, counts, watermark) the export attached to the asset event.
"""

from __future__ import annotations

import logging
from datetime import datetime
from zoneinfo import ZoneInfo

from airflow.providers.common.compat.sdk import DAG, Asset, task
from airflow.timetables.trigger import CronTriggerTimetable

from airflow_provider_lytics.operators.exports import LyticsAudienceExportOperator, default_asset_uri

NEW_YORK = ZoneInfo("America/New_York")

EXPORT_NAME = "daily_actives"
EXPORT_ASSET = Asset(uri=default_asset_uri(EXPORT_NAME))

with DAG(
    dag_id="lytics_export_scheduled",
    schedule=CronTriggerTimetable("0 6 * * *", timezone="America/New_York"),
    start_date=datetime(2026, 1, 1, tzinfo=NEW_YORK),
    catchup=False,
    max_active_runs=1,
    tags=["lytics", "export", "example"],
    doc_md=__doc__,
) as export_dag:
    LyticsAudienceExportOperator(
        task_id="export_changes",
        segment="recent_visitors",
        export_name=EXPORT_NAME,
        fields=["user_id", "email", "first_name", "plan", "last_active"],
        mode="incremental",
        change_output="separate",
        compression="gzip",
        pgp_conn_id="partner_pgp",
        destination="sftp",
        sftp_conn_id="partner_sftp",
        path="/inbox/lytics/daily",
        file_name="actives_{CHANGE}_{TIMESTAMP}",
        manifest=True,
        outlets=[EXPORT_ASSET],
    )

with DAG(
    dag_id="lytics_export_consumer",
    schedule=[EXPORT_ASSET],
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["lytics", "export", "example"],
) as consumer_dag:

    @task
    def report(**context) -> dict:
        """Log what the export produced (from the triggering asset event's extra)."""
        events = context.get("triggering_asset_events") or context.get("triggering_dataset_events") or {}
        summaries = [event.extra for evs in events.values() for event in evs]
        for summary in summaries:
            logging.getLogger(__name__).info(
                "Export %s: %s at %s", summary.get("export_name"), summary.get("counts"), summary.get("watermark")
            )
        return {"events": len(summaries)}

    report()
