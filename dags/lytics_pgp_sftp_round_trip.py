"""PGP SFTP round trip: a partner's encrypted file in, an encrypted audience file back out.

1. ``download_partner_file`` takes every ``loyalty_*.csv.gpg`` the partner dropped in ``/partner/inbox`` on SFTP,
   decrypting while it downloads (the plaintext only ever exists as the final local file), then archives the
   remote files to ``/partner/inbox/processed`` so the next run does not load them again.
2. ``import_loyalty`` loads the decrypted CSVs into the ``partner_loyalty`` stream (keyed by ``email``).
3. ``define_audience`` upserts the ``loyalty_gold`` audience (``loyalty_tier = "gold"``) built on that data.
4. ``export_audience`` writes the audience's members to a local CSV.
5. ``upload_to_partner`` encrypts it to the partner's public key while uploading it to ``/partner/outbox``
   (atomic rename on the server: the partner never sees a partial file).

Connections: ``lytics_default``; ``partner_sftp`` (type sftp, host key pinned); ``partner_pgp`` (type pgp: the
partner's ``public_key`` to encrypt to, and our ``private_key`` + passphrase to decrypt what they send). Param
``work_dir``: local directory for the decrypted input and the export (one sub-directory per run).
"""

from __future__ import annotations

from datetime import datetime

from airflow.providers.common.compat.sdk import DAG, Param, task

from airflow_provider_lytics.macros import RUN_MACROS
from airflow_provider_lytics.operators.exports import LyticsAudienceExportOperator
from airflow_provider_lytics.operators.file_transfer import LyticsSftpDownloadOperator, LyticsSftpUploadOperator
from airflow_provider_lytics.operators.imports import LocalFilesToLyticsOperator

STREAM = "partner_loyalty"
AUDIENCE = "loyalty_gold"
RUN_DIR = "{{ params.work_dir }}/{{ run_slug(run_id) }}"

with DAG(
    dag_id="lytics_pgp_sftp_round_trip",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    params={
        "work_dir": Param(
            "/tmp/lytics-pgp-round-trip",
            type="string",
            minLength=1,
            description="Local folder for the decrypted input and the export (one sub-folder per run).",
        ),
    },
    render_template_as_native_obj=True,  # the upload takes the export's list of paths as a list
    user_defined_macros=RUN_MACROS,
    tags=["lytics", "example", "sftp", "pgp"],
    doc_md=__doc__,
) as dag:
    download = LyticsSftpDownloadOperator(
        task_id="download_partner_file",
        sftp_conn_id="partner_sftp",
        pgp_conn_id="partner_pgp",
        remote_dir="/partner/inbox",
        glob="loyalty_*.csv.gpg",
        local_dir=RUN_DIR + "/in",
        after_load="archive",
        archive_dir="processed",
        fail_if_empty=True,
    )
    load = LocalFilesToLyticsOperator(
        task_id="import_loyalty",
        paths=RUN_DIR + "/in/loyalty_*.csv",
        stream=STREAM,
        max_rejected_fraction=0.01,
    )

    @task
    def define_audience() -> str:
        """Create or update (v1 create is an upsert by slug) the audience the partner gets back."""
        from airflow_provider_lytics.hooks.lytics import LyticsHook

        segment = LyticsHook().create_segment(
            f'FILTER loyalty_tier = "gold" FROM user ALIAS {AUDIENCE} WITH name = "Loyalty gold members"'
        )
        return segment["id"]

    export = LyticsAudienceExportOperator(
        task_id="export_audience",
        segment=AUDIENCE,
        export_name="partner_loyalty_gold",
        fields=["email", "first_name", "loyalty_tier", "loyalty_points"],
        format="csv",
        destination="local",
        path=RUN_DIR + "/out",
        file_name="loyalty_gold_{TIMESTAMP}",
        mode="full",
    )
    upload = LyticsSftpUploadOperator(
        task_id="upload_to_partner",
        sftp_conn_id="partner_sftp",
        pgp_conn_id="partner_pgp",
        local_path="{{ ti.xcom_pull(task_ids='export_audience')['paths'] }}",
        remote_dir="/partner/outbox",
    )

    download >> load >> define_audience() >> export >> upload
