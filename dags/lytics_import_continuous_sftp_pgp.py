"""Continuous import from SFTP: wait for new PGP-encrypted files, decrypt while downloading, load, archive.

Like Lytics's own SFTP import: only files newer than the last successful run are loaded (here by the date in the
file name, ``customers_2026-11-28.csv.gz.gpg``); the watermark lives in the Airflow Variable ``WATERMARK_KEY`` and
moves only when a load succeeded. Needs connections ``lytics_default``, ``lytics_sftp`` (type sftp, e.g. the
emulator's managed SFTP) and ``lytics_pgp`` (type pgp, with the private key and its passphrase).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.providers.common.compat.sdk import dag

from airflow_provider_lytics.macros import RUN_MACROS
from airflow_provider_lytics.operators.imports import SFTPToLyticsOperator
from airflow_provider_lytics.sensors.files import LyticsFileArrivalSensor

WATERMARK_KEY = "lytics_import_watermark__customers_sftp"
REMOTE_DIR = "/imports/customers"
PATTERN = "customers_*.csv*"


@dag(
    dag_id="lytics_import_continuous_sftp_pgp",
    schedule=timedelta(hours=1),
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,  # one load at a time keeps the watermark linear
    user_defined_macros=RUN_MACROS,
    tags=["lytics", "import", "sftp", "pgp"],
    doc_md=__doc__,
)
def lytics_import_continuous_sftp_pgp() -> None:
    wait = LyticsFileArrivalSensor(
        task_id="wait_for_files",
        directory=REMOTE_DIR,
        glob=PATTERN,
        sftp_conn_id="lytics_sftp",
        watermark_by="name",
        watermark_key=WATERMARK_KEY,
        min_age_seconds=60,  # an upload still in progress is not picked up
        mode="reschedule",
        poke_interval=300,
        timeout=3300,
        soft_fail=True,  # no file this hour: skip, not fail
    )
    load = SFTPToLyticsOperator(
        task_id="load",
        sftp_conn_id="lytics_sftp",
        pgp_conn_id="lytics_pgp",
        remote_dir=REMOTE_DIR,
        glob=PATTERN,
        watermark_by="name",
        watermark_key=WATERMARK_KEY,
        min_age_seconds=60,
        stream="crm_customers",
        constant_fields={"import_source": "sftp"},
        quarantine_path=REMOTE_DIR + "/quarantine/{{ run_stamp(dag_run) }}.ndjson",
        quarantine_sftp_conn_id="lytics_sftp",
        max_rejected_rows=1000,
        after_load="archive",
        archive_dir="processed",
        retries=3,
    )
    wait >> load


lytics_import_continuous_sftp_pgp()
