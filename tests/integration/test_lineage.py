"""OpenLineage: what imports, exports and enrichment report to Airflow's listener after real runs on the emulator."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from airflow_provider_lytics.lineage import audience_ref, sftp_ref, stream_ref, uri_ref
from airflow_provider_lytics.operators.exports import LyticsAudienceExportOperator
from airflow_provider_lytics.operators.imports import LocalFilesToLyticsOperator
from tests.exports.helpers import FIELDS, seed, user
from tests.integration.task_fakes import TI

pytest.importorskip("airflow.providers.openlineage", reason="needs the [openlineage] extra")


def _pairs(datasets) -> list[tuple[str, str]]:
    return [(d.namespace, d.name) for d in datasets]


def test_file_import_reads_its_folder_and_writes_the_stream(emulator, lytics_conn_env, tmp_path):
    folder = tmp_path / "drop"
    folder.mkdir()
    with (folder / "customers.csv").open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["id", "email"])
        writer.writerows([i, f"u{i}@example.com"] for i in range(25))
    op = LocalFilesToLyticsOperator(task_id="imp", paths=str(folder / "*.csv"), stream="crm_lineage",
                                    checkpoint="none")  # fmt: skip
    op.execute({"ti": TI(), "run_id": "r1"})
    lineage = op.get_openlineage_facets_on_complete(None)
    host = emulator.url.split("://", 1)[1]
    assert _pairs(lineage.inputs) == [("file", str(folder.resolve()))]
    assert _pairs(lineage.outputs) == [(f"lytics://{host}", "stream/crm_lineage")]
    assert lineage.outputs[0].outputFacets["outputStatistics"].rowCount == 25


def test_dry_run_import_reports_no_output(emulator, lytics_conn_env, tmp_path):
    (tmp_path / "a.csv").write_text("id,email\n1,a@example.com\n")
    op = LocalFilesToLyticsOperator(task_id="imp", paths=str(tmp_path / "a.csv"), stream="s", dry_run=True,
                                    checkpoint="none")  # fmt: skip
    op.execute({"ti": TI(), "run_id": "r1"})
    assert op.get_openlineage_facets_on_complete(None).outputs == []


def test_export_reads_the_audience_and_writes_its_folder(emulator, lytics_conn_env, tmp_path):
    seed(emulator, [user(i) for i in range(12)])
    op = LyticsAudienceExportOperator(task_id="export", segment="actives", fields=FIELDS, destination="local",
                                      path=str(tmp_path / "out"))  # fmt: skip
    op.execute({"ti": TI()})
    lineage = op.get_openlineage_facets_on_complete(None)
    host = emulator.url.split("://", 1)[1]
    assert _pairs(lineage.inputs) == [(f"lytics://{host}", "audience/actives")]
    assert _pairs(lineage.outputs) == [("file", str((tmp_path / "out").resolve()))]
    assert lineage.outputs[0].outputFacets["outputStatistics"].rowCount == 12


def test_names_follow_the_conventions():
    assert stream_ref("https://api.lytics.io", "web") == ("lytics://api.lytics.io", "stream/web")
    assert audience_ref("https://api.lytics.io", None, "FILTER * FROM user")[1].startswith("audience/adhoc-")
    assert uri_ref("s3://bucket/exports/daily") == ("s3://bucket", "/exports/daily")
    assert uri_ref("sftp://partner.example.com/outbox") == ("sftp://partner.example.com", "/outbox")
    assert uri_ref(str(Path("/data/in"))) == ("file", "/data/in")
    assert uri_ref("file:///data/out") == ("file", "/data/out")
    assert sftp_ref("sftp.example.com", None, "inbox") == ("sftp://sftp.example.com:22", "/inbox")
