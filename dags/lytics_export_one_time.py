"""One-time audience export: every current member of an audience, as gzip'd CSV encrypted with PGP, to SFTP.

The source document's one-time run ("export your audience once before sending the email"). Connections:
``lytics_default`` (Lytics), ``partner_sftp`` (an ``sftp`` connection with the host key pinned) and
``partner_pgp`` (a ``pgp`` connection holding the partner's public key). Trigger it with a different audience
through the ``segment`` param. The file appears atomically with a manifest next to it; the task returns the
paths and row counts, and emits the ``lytics-export://one_time_<segment>`` asset event.
"""

from __future__ import annotations

from datetime import datetime

from airflow.providers.common.compat.sdk import DAG, Param

from airflow_provider_lytics.operators.exports import LyticsAudienceExportOperator

with DAG(
    dag_id="lytics_export_one_time",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    params={
        "segment": Param(
            "high_value",
            type="string",
            minLength=1,
            description="Slug or id of the Lytics audience to export (also names the file).",
        ),
    },
    tags=["lytics", "export", "example"],
    doc_md=__doc__,
) as dag:
    LyticsAudienceExportOperator(
        task_id="export_audience",
        segment="{{ params.segment }}",
        export_name="one_time_high_value",
        fields=["user_id", "email", "first_name", "last_name", "country", "plan", "lifetime_value", "interests"],
        membership_segments=["paid_plans", "recent_visitors"],
        format="csv",
        compression="gzip",
        pgp_conn_id="partner_pgp",
        destination="sftp",
        sftp_conn_id="partner_sftp",
        path="/inbox/lytics",
        file_name="{{ params.segment }}_{TIMESTAMP}",
        manifest=True,
        mode="full",
    )
