"""One-time import: validate a CSV with a dry run, then load it into a Lytics stream, resumably.

Needs ``lytics_default``. The input files (``input_glob``) and the quarantine directory (``quarantine_dir``) are
params. The import's counts are the task's XCom return value; the stream is published as the asset
``lytics://stream/crm_customers``, so downstream DAGs can be scheduled on it.
"""

from __future__ import annotations

from datetime import datetime

from airflow.providers.common.compat.sdk import Param, dag

from airflow_provider_lytics.macros import RUN_MACROS
from airflow_provider_lytics.operators.imports import LocalFilesToLyticsOperator

INPUT = "/tmp/lytics-demo/import/customers*.csv*"
QUARANTINE_DIR = "/tmp/lytics-demo/import/quarantine"


@dag(
    dag_id="lytics_import_one_time",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    params={
        "input_glob": Param(
            INPUT,
            type="string",
            minLength=1,
            description="Local files to load (glob; .gz/.zip/.bz2 are read compressed).",
        ),
        "quarantine_dir": Param(
            QUARANTINE_DIR,
            type="string",
            minLength=1,
            description="Local folder for the rejected rows (one file per run).",
        ),
    },
    user_defined_macros=RUN_MACROS,
    tags=["lytics", "import"],
    doc_md=__doc__,
)
def lytics_import_one_time() -> None:
    common = {
        "paths": "{{ params.input_glob }}",
        "stream": "crm_customers",
        "timestamp_field": "updated_at",
        "constant_fields": {"import_run": "{{ run_id }}"},
        "quarantine_path": "{{ params.quarantine_dir }}/{{ run_slug(run_id) }}-customers.ndjson",
    }
    validate = LocalFilesToLyticsOperator(task_id="dry_run", dry_run=True, dry_run_sample=500, **common)
    load = LocalFilesToLyticsOperator(
        task_id="load",
        max_rejected_fraction=0.01,  # fail (after writing the quarantine) if more than 1% of rows are bad
        retries=3,  # a retry resumes from the last acknowledged batch
        **common,
    )
    validate >> load


lytics_import_one_time()
