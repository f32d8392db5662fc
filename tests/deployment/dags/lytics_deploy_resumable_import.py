"""Deployment-suite DAG: a many-batch import whose worker the suite kills mid-way (it must resume elsewhere).

Small batches (``batch_rows`` from the run's conf) make the import's progress visible batch by batch; a short retry
delay lets the retry start as soon as the scheduler sees the lost worker. Not an example: it lives in the
deployment suite's own DAG bundle.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.providers.common.compat.sdk import DAG

from airflow_provider_lytics.operators.imports import LocalFilesToLyticsOperator

with DAG(
    dag_id="lytics_deploy_resumable_import",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    params={"input_glob": "", "stream": "deploy_resume", "quarantine_dir": ""},
    tags=["lytics", "deployment-suite"],
):
    LocalFilesToLyticsOperator(
        task_id="load",
        paths="{{ params.input_glob }}",
        stream="{{ params.stream }}",
        constant_fields={"deploy_run": "{{ run_id }}"},
        quarantine_path="{{ params.quarantine_dir }}/{{ run_id | replace(':', '_') }}.ndjson",
        batch_rows=2_000,
        retries=2,
        retry_delay=timedelta(seconds=2),
    )
