"""Backfill then incremental: the first run exports the whole audience, every later run only the changes.

Lytics's own ``withbackfill`` cannot tell you where the backfill ended; here the handoff is explicit. Each run
returns (XCom ``return_value``) ``run_kind`` (``backfill`` on the first run, ``incremental`` afterwards) and
``watermark`` (when the run's scan started), also pushed as XCom ``lytics_export_watermark`` and logged; an
incremental run's ``previous_watermark`` is the watermark of the run it diffs against. Files go to Airflow object
storage (any ``ObjectStoragePath`` URI; set the ``export_uri`` param, e.g. ``s3://bucket/lytics/``), as NDJSON
with one file per run and a change column. To redo the backfill, delete ``.lytics_export_state/`` under the
export URI (or deploy one run with ``reset_state=True``).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.providers.common.compat.sdk import DAG, Param, task

from airflow_provider_lytics.operators.exports import LyticsAudienceExportOperator

with DAG(
    dag_id="lytics_export_backfill_incremental",
    schedule=timedelta(hours=6),
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    params={
        "export_uri": Param(
            "file:///tmp/lytics-exports/known_users",
            type="string",
            minLength=1,
            description="Object storage folder for the files and the export state (file://, s3://, gs://...).",
        ),
    },
    render_template_as_native_obj=True,
    tags=["lytics", "export", "example"],
    doc_md=__doc__,
) as dag:
    export = LyticsAudienceExportOperator(
        task_id="export",
        segment="known_users",
        export_name="known_users_feed",
        fields=["user_id", "email", "first_name", "plan", "lifetime_value"],
        format="ndjson",
        compression="gzip",
        mode="backfill_then_incremental",
        change_output="column",
        destination="object_storage",
        path="{{ params.export_uri }}",
        file_name="known_users_{CHANGE}_{TIMESTAMP}",
        manifest=True,
    )

    @task
    def handoff(result: dict) -> str:
        """Say where this run stands relative to the backfill."""
        if result["run_kind"] == "backfill":
            return f"backfill of {result['counts']['full']} members complete at {result['watermark']}"
        return f"changes between {result['previous_watermark']} and {result['watermark']}: {result['counts']}"

    handoff(export.output)
