"""Quickstart: import customers into Lytics, build an audience, export it, and run a Lytics job.

Needs a ``lytics_default`` connection (e.g. ``AIRFLOW_CONN_LYTICS_DEFAULT`` pointing at ``lytics-emulator serve``).
Every task does its work with :class:`~airflow_provider_lytics.hooks.lytics.LyticsHook`; nothing touches the
network while the DAG file is parsed.
"""

from __future__ import annotations

import csv
import time
from datetime import datetime
from pathlib import Path

from airflow.providers.common.compat.sdk import Param, dag, task

DEFAULT_PARAMS = {
    "customers_csv": Param(
        "/tmp/lytics-demo/customers.csv",
        type="string",
        minLength=1,
        description="Local CSV of customers to upload (header row, one customer a line).",
    ),
    "stream": Param(
        "crm_customers", type="string", minLength=1, description="Lytics stream the customers are uploaded to."
    ),
    "audience_slug": Param(
        "demo_high_value",
        type="string",
        minLength=1,
        description="Slug of the audience created (or updated) from the uploaded data.",
    ),
    "export_path": Param(
        "/tmp/lytics-demo/high_value.csv",
        type="string",
        minLength=1,
        description="Local CSV file the audience's members are exported to.",
    ),
}


@dag(
    dag_id="lytics_quickstart",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    params=DEFAULT_PARAMS,
    tags=["lytics", "example"],
    doc_md=__doc__,
)
def lytics_quickstart():
    @task
    def check_connection() -> str:
        from airflow_provider_lytics.hooks.lytics import LyticsHook

        ok, message = LyticsHook().test_connection()
        if not ok:
            raise RuntimeError(f"Lytics connection check failed: {message}")
        return message

    @task
    def import_customers(params: dict | None = None) -> dict:
        from airflow_provider_lytics.hooks.lytics import LyticsHook

        path = Path(params["customers_csv"])
        with path.open("rb") as body:  # streamed by requests, never read whole
            result = LyticsHook().bulk_upload(params["stream"], body, filename=path.name)
        return {"sent": result.get("message_count"), "rejected": result.get("rejected_count")}

    @task
    def define_audience(params: dict | None = None) -> str:
        from airflow_provider_lytics.hooks.lytics import LyticsHook

        slug = params["audience_slug"]
        segment = LyticsHook().create_segment(
            f'FILTER AND (plan = "pro", ltv >= 500) FROM user ALIAS {slug} WITH name = "Demo high value"'
        )
        return segment["id"]

    @task
    def export_audience(segment_id: str, params: dict | None = None) -> dict:
        from airflow_provider_lytics.hooks.lytics import LyticsHook

        target = Path(params["export_path"])
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.part")
        rows, total = 0, None
        fields = ["email", "first_name", "plan", "ltv"]
        with partial.open("w", newline="") as out:
            writer = csv.DictWriter(out, fieldnames=fields, extrasaction="ignore")
            writer.writeheader()
            for page in LyticsHook().scan_pages(segment_id, fields=fields):
                total = page.total if total is None else total
                writer.writerows(page.records)
                rows += len(page.records)
        partial.replace(target)  # readers never see a partial export
        if total is not None and rows != total:
            raise RuntimeError(f"Exported {rows} rows but the audience had {total} members at scan start")
        return {"path": str(target), "rows": rows}

    @task
    def run_lytics_job(segment_id: str) -> dict:
        from airflow_provider_lytics.hooks.lytics import LyticsHook

        hook = LyticsHook()
        job = hook.create_job(
            "lytics_simple_csv_export",
            {"name": "demo csv export", "config": {"segment_id": segment_id, "continuous": False}},
        )
        deadline = time.monotonic() + 120
        while (status := hook.get_job(job["id"])["status"]) not in {"completed", "failed", "killed", "deleted"}:
            if time.monotonic() > deadline:
                raise TimeoutError(f"Lytics job {job['id']} still {status!r} after 120 s")
            time.sleep(0.5)
        if status != "completed":
            raise RuntimeError(f"Lytics job {job['id']} ended {status!r}")
        return {"job_id": job["id"], "status": status}

    imported = import_customers()
    audience = define_audience()
    check_connection() >> imported >> audience
    export_audience(audience)
    run_lytics_job(audience)


quickstart_dag = lytics_quickstart()
