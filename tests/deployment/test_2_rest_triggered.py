"""Every example DAG, triggered through the REST API v2 with no logical date, succeeds on the real deployment;
so do the runs the scheduler creates by itself for the interval-scheduled ones when they are unpaused.

This is how Airflow 3 creates runs from the API and ``airflow dags trigger``: ``logical_date`` is null, so
templates such as ``{{ ds }}`` do not exist. Connections come from the metadata database, tasks run on two Celery
workers, and deferrable tasks wait in the separate triggerer.

The continuous import runs twice (its scheduled run and the REST run, one at a time: ``max_active_runs=1``); each
must find a new file, so the second file lands on SFTP as soon as the first of the two runs has ended.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import requests

from airflow_provider_lytics.emulator import prepare
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
    "lytics_query_as_code",
    "lytics_metrics",
    "lytics_event_export",
    "lytics_content",
)


#: Interval-scheduled examples (``catchup=False``): unpausing one makes the scheduler run its latest interval.
SCHEDULED_BY_INTERVAL = (
    "lytics_import_continuous_sftp_pgp",
    "lytics_export_backfill_incremental",
    "lytics_enrichment_round_trip",
)
CONTINUOUS = "lytics_import_continuous_sftp_pgp"


def _segment_id(world, slug: str) -> str:
    lytics = world.sandbox.lytics
    resp = requests.get(f"{lytics.url}/api/segment/{slug}", headers={"Authorization": lytics.token}, timeout=30)
    resp.raise_for_status()
    return resp.json()["data"]["id"]


def _quiet_window_out_of_the_way(world) -> str:
    """``HH:MM`` New York, 12 h after the emulator's now: the import job's 8 h quiet window cannot cover this run.

    Without it the example still succeeds, but between 09:00 and 17:00 New York its sensor waits (deferred, no slot
    held) until the window ends: correct, and longer than this suite's budget.
    """
    now = datetime.fromisoformat(world.emulator("GET", "/_emulator/clock")["now"].replace("Z", "+00:00"))
    return (now + timedelta(hours=12)).astimezone(ZoneInfo("America/New_York")).strftime("%H:%M")


def _confs(world) -> dict[str, dict]:
    """Each DAG's run conf, after writing the inputs it reads (as the demo does)."""
    demo, out, sandbox = prepare, world.outputs / "rest", world.sandbox
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
        "lytics_job_as_code": {"import_quiet_time_of_day": _quiet_window_out_of_the_way(world)},
        "lytics_metrics": {"results_dir": str(out / "metrics")},
        "lytics_event_export": {"results_dir": str(out / "events")},
        "lytics_content": {"results_dir": str(out / "content")},
    }  # fmt: skip


def _second_continuous_file(world) -> None:
    demo = prepare
    plain = demo.write_customers(world.outputs / "rest" / "continuous" / "customers_2026-11-30.csv.gz", 200, seed=22,
                                 start=400_000)  # fmt: skip
    world.sandbox.encrypt_to_sftp(plain, f"/imports/customers/{plain.name}.gpg", age_seconds=120)


def _scheduled_run(world, dag_id: str, timeout: float = 120.0) -> Run:
    """The run the scheduler created for ``dag_id`` after it was unpaused."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = world.airflow.api("GET", f"/dags/{dag_id}/dagRuns", params={"run_type": "scheduled"})["dag_runs"]
        if runs:
            return Run(dag_id, runs[0]["dag_run_id"])
        time.sleep(1)
    raise AssertionError(f"the scheduler created no run for {dag_id} within {timeout:.0f}s of unpausing it")


@pytest.fixture(scope="module")
def all_runs(world) -> dict[tuple[str, str], Run]:
    """Every example run: ``(dag_id, "rest")`` triggered by the API, ``(dag_id, "scheduled")`` by the scheduler."""
    airflow = world.airflow
    airflow.wait_for_dags(list(EXAMPLE_DAGS))
    confs = _confs(world)
    runs: dict[tuple[str, str], Run] = {}
    for dag_id in EXAMPLE_DAGS:  # triggered while paused: the run exists before any scheduled one
        runs[(dag_id, "rest")] = Run(dag_id, airflow.trigger(dag_id, confs.get(dag_id)))
    for dag_id in EXAMPLE_DAGS:
        airflow.unpause(dag_id)
    for dag_id in SCHEDULED_BY_INTERVAL:
        runs[(dag_id, "scheduled")] = _scheduled_run(world, dag_id)
    fed = []

    def feed_continuous(run: Run) -> None:
        if run.dag_id == CONTINUOUS and not fed:
            fed.append(run.run_id)
            _second_continuous_file(world)

    wait_all(airflow, list(runs.values()), on_end=feed_continuous)
    return runs


@pytest.fixture(scope="module")
def rest_runs(all_runs) -> dict[str, Run]:
    return {dag_id: run for (dag_id, kind), run in all_runs.items() if kind == "rest"}


@pytest.mark.parametrize("dag_id", EXAMPLE_DAGS)
def test_example_dag_succeeds_when_triggered_by_rest_without_logical_date(world, rest_runs, dag_id):
    run = rest_runs[dag_id]
    assert run.logical_date is None and run.run_type == "manual"
    assert_succeeded(world.airflow, run)


@pytest.mark.parametrize("dag_id", SCHEDULED_BY_INTERVAL)
def test_interval_scheduled_example_runs_by_its_schedule(world, all_runs, dag_id):
    run = all_runs[(dag_id, "scheduled")]
    assert run.run_type == "scheduled" and run.logical_date is not None
    assert_succeeded(world.airflow, run)


def test_deferrable_job_tasks_wait_in_the_triggerer_and_resume(world, rest_runs):
    """The job-as-code DAG's deferrable tasks were seen deferred, and their logs show the trigger's own lines."""
    run = rest_runs["lytics_job_as_code"]
    deferred = sorted(t for t, states in run.states_seen.items() if "deferred" in states)
    assert deferred, f"no task of lytics_job_as_code was seen deferred: {run.states_seen}"
    for task_id in deferred:
        log = world.airflow.task_log(run.dag_id, run.run_id, task_id)
        assert "trigger" in log.lower(), f"{task_id}'s log shows no triggerer section:\n{log[-2000:]}"


def test_time_of_day_schedule_runs_at_six_new_york_across_a_dst_change(world, all_runs):
    """``lytics_export_scheduled`` (06:00 America/New_York) backfilled through the REST API over the November
    DST change: its runs get the timetable's logical dates, 10:00 UTC before the change and 11:00 UTC after."""
    airflow, dag_id = world.airflow, "lytics_export_scheduled"
    body = {"dag_id": dag_id, "from_date": "2026-10-31T00:00:00Z", "to_date": "2026-11-02T23:59:00Z",
            "max_active_runs": 1, "reprocess_behavior": "none", "dag_run_conf": {}}  # fmt: skip
    airflow.api("POST", "/backfills", json=body)
    deadline = time.monotonic() + 60
    while (
        len(backfilled := airflow.api("GET", f"/dags/{dag_id}/dagRuns", params={"run_type": "backfill"})["dag_runs"])
        < 3
    ):
        assert time.monotonic() < deadline, f"backfill created {len(backfilled)} of 3 runs"
        time.sleep(1)
    runs = [Run(dag_id, r["dag_run_id"]) for r in backfilled]
    wait_all(airflow, runs)
    for run in runs:
        assert_succeeded(airflow, run)
    stamps = sorted(r.logical_date for r in runs)
    assert [s[:16] for s in stamps] == ["2026-10-31T10:00", "2026-11-01T11:00", "2026-11-02T11:00"], stamps
