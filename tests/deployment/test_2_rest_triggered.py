"""Every example DAG, triggered through the REST API v2 with no logical date, succeeds on the real deployment.

This is how Airflow 3 creates runs from the API and ``airflow dags trigger``: ``logical_date`` is null, so
templates such as ``{{ ds }}`` do not exist. Connections come from the metadata database, tasks run on two Celery
workers, and deferrable tasks wait in the separate triggerer.
"""

from __future__ import annotations

import pytest
import requests

from tests.deployment.inputs import demo_module
from tests.deployment.runs import Run, assert_succeeded, wait_all

pytestmark = pytest.mark.deployment

#: Every example DAG that a user triggers by hand (the asset-scheduled ones are triggered too: no event is fine).
EXAMPLE_DAGS = (
    "lytics_quickstart",
    "lytics_import_one_time",
    "lytics_import_continuous_sftp_pgp",
    "lytics_pgp_sftp_round_trip",
    "lytics_export_one_time",
    "lytics_export_scheduled",
    "lytics_export_backfill_incremental",
    "lytics_export_consumer",
    "lytics_job_as_code",
    "lytics_realtime_audience_setup",
    "lytics_audience_changed",
    "lytics_enrichment_round_trip",
    "lytics_go_template_alerts",
)


def _segment_id(world, slug: str) -> str:
    lytics = world.sandbox.lytics
    resp = requests.get(f"{lytics.url}/api/segment/{slug}", headers={"Authorization": lytics.token}, timeout=30)
    resp.raise_for_status()
    return resp.json()["data"]["id"]


def _confs(world) -> dict[str, dict]:
    """Each DAG's run conf, after writing the inputs it reads (as the demo does)."""
    demo, out, sandbox = demo_module(), world.outputs / "rest", world.sandbox
    customers = demo.write_customers(out / "data" / "customers.csv", 2_000)
    demo.write_customers(out / "import" / "customers_extra.csv", 1_000, seed=8, start=2_000, bad_rows=4)
    plain = demo.write_customers(out / "continuous" / "customers_2026-11-29.csv.gz", 300, seed=21, start=300_000)
    sandbox.encrypt_to_sftp(plain, f"/imports/customers/{plain.name}.gpg", age_seconds=120)
    loyalty = demo.write_loyalty(out / "data" / "loyalty_2026-11-29.csv", 1_000)
    sandbox.encrypt_to_sftp(loyalty, f"/partner/inbox/{loyalty.name}.gpg")
    return {
        "lytics_quickstart": {"customers_csv": str(customers), "export_path": str(out / "quickstart" / "hv.csv"),
                              "stream": "crm_customers", "audience_slug": "demo_high_value"},
        "lytics_import_one_time": {"input_glob": str(out / "import" / "customers*.csv*"),
                                   "quarantine_dir": str(out / "import" / "quarantine")},
        "lytics_pgp_sftp_round_trip": {"work_dir": str(out / "pgp_round_trip")},
        "lytics_export_backfill_incremental": {"export_uri": (out / "exports" / "known_users").as_uri()},
        "lytics_realtime_audience_setup": {"segment_id": _segment_id(world, "demo_high_value")},
        "lytics_enrichment_round_trip": {"results_dir": str(out / "enrichment")},
        "lytics_go_template_alerts": {"results_dir": str(out / "alerts")},
    }  # fmt: skip


@pytest.fixture(scope="module")
def rest_runs(world) -> dict[str, Run]:
    airflow = world.airflow
    airflow.wait_for_dags(list(EXAMPLE_DAGS))
    confs = _confs(world)
    runs = {}
    for dag_id in EXAMPLE_DAGS:
        airflow.unpause(dag_id)
        runs[dag_id] = Run(dag_id, airflow.trigger(dag_id, confs.get(dag_id)))
    wait_all(airflow, list(runs.values()))
    return runs


@pytest.mark.parametrize("dag_id", EXAMPLE_DAGS)
def test_example_dag_succeeds_when_triggered_by_rest_without_logical_date(world, rest_runs, dag_id):
    run = rest_runs[dag_id]
    assert run.logical_date is None and run.run_type == "manual"
    assert_succeeded(world.airflow, run)


def test_deferrable_job_tasks_wait_in_the_triggerer_and_resume(world, rest_runs):
    """The job-as-code DAG's deferrable tasks were seen deferred, and their logs show the trigger's own lines."""
    run = rest_runs["lytics_job_as_code"]
    deferred = sorted(t for t, states in run.states_seen.items() if "deferred" in states)
    assert deferred, f"no task of lytics_job_as_code was seen deferred: {run.states_seen}"
    for task_id in deferred:
        log = world.airflow.task_log(run.dag_id, run.run_id, task_id)
        assert "trigger" in log.lower(), f"{task_id}'s log shows no triggerer section:\n{log[-2000:]}"
