"""Lytics jobs as code: the DAG owns a Lytics export job, keeps it matching its spec, runs it and waits.

``sync_export_job`` creates the job the first time, repairs drift later (only the fields below are managed;
settings changed in the Lytics UI that the spec does not mention are kept) and pushes the job id and a UI link.
``run_export`` restarts it and waits in the triggerer (deferrable); ``wait_for_nightly_import`` waits for a run
of a continuous SFTP import that started after this DAG run began. Needs a ``lytics_default`` connection, e.g.
``AIRFLOW_CONN_LYTICS_DEFAULT`` pointing at ``lytics-emulator serve``.

The import has a daily quiet window (office hours in New York, param ``import_quiet_time_of_day``): triggered inside
it, the import sleeps until the window ends and the sensor waits for that (deferred, so no worker slot is held);
its timeout covers the whole window, so the DAG succeeds whatever the hour. Move the window in the trigger form
(e.g. 12 hours from now) to see the run at once.
"""

from __future__ import annotations

from datetime import datetime

from airflow.providers.common.compat.sdk import DAG, Param

from airflow_provider_lytics.operators.jobs import LyticsCreateOrUpdateJobOperator, LyticsRunJobOperator
from airflow_provider_lytics.sensors.jobs import LyticsJobSensor

EXPORT_SPEC = {
    "workflow": "lytics_simple_csv_export",
    "name": "airflow: high value customers export",
    "tag": "airflow:lytics_job_as_code:export",
    "description": "Owned by the Airflow DAG lytics_job_as_code",
    "config": {"segment_id": "demo_high_value", "fields": ["email", "plan"], "write_headers": True},
}

IMPORT_SPEC = {
    "workflow": "sftp_import",
    "name": "airflow: nightly CRM import",
    "config": {"path": "/incoming/crm", "filename_pattern": "*.csv", "continuous": True},
    "quiet_time_of_day": "{{ params.import_quiet_time_of_day }}",
    "quiet_period": 8,
    "quiet_timezone": "America/New_York",
}

with DAG(
    dag_id="lytics_job_as_code",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["lytics", "example"],
    doc_md=__doc__,
    params={
        "import_quiet_time_of_day": Param(
            "09:00",
            type="string",
            pattern=r"^([01]\d|2[0-3]):[0-5]\d$",
            description="Start (HH:MM, America/New_York) of the import's daily 8-hour quiet window",
        )
    },
) as dag:
    sync_export_job = LyticsCreateOrUpdateJobOperator(task_id="sync_export_job", spec=EXPORT_SPEC, run_job=False)
    run_export = LyticsRunJobOperator(
        task_id="run_export",
        job_id=sync_export_job.output,
        deferrable=True,
        poll_interval=1,
        wait_timeout=3600,
        cancel_on_kill="pause",
    )
    sync_import_job = LyticsCreateOrUpdateJobOperator(task_id="sync_import_job", spec=IMPORT_SPEC)
    wait_for_nightly_import = LyticsJobSensor(
        task_id="wait_for_nightly_import",
        job_id=sync_import_job.output,
        deferrable=True,
        poke_interval=1,
        timeout=(IMPORT_SPEC["quiet_period"] + 1) * 3600,  # a run due after the quiet window is still in time
        max_faults=3,
    )
    sync_export_job >> run_export
    sync_import_job >> wait_for_nightly_import
