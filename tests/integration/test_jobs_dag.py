"""The example DAG ``lytics_job_as_code`` run end to end by ``airflow dags test`` (Airflow 3 runs deferred tasks'
triggers in line) against a served emulator: create-or-update, a deferrable run, a deferrable job sensor."""

from __future__ import annotations

import json
import re
import subprocess
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import requests

from airflow_provider_lytics.hooks.lytics import LyticsHook
from tests.integration.airflow_cli import BIN, airflow_version, migrated_env

pytestmark = pytest.mark.slow


# Realistic job timings (a run lasts seconds, not 0.25 s): with the fast preset a job could finish before the task
# looked at it, and the task would then rightly not defer. The deployment suite pins deferral with 20 s runs.
@pytest.mark.parametrize("served_emulator", [["--job-timings", "realistic"]], indirect=True)
def test_job_as_code_dag_runs_with_deferred_tasks(tmp_path, served_emulator, monkeypatch):
    if airflow_version()[0] < 3:
        pytest.skip("airflow dags test runs triggers in line on Airflow 3 only")
    conn = {"conn_type": "lytics", "host": served_emulator.url, "password": served_emulator.token}
    env = migrated_env(tmp_path / "home", conn)
    # The import's quiet window starts 12 h after the emulator's now, so it never covers this run whatever the hour
    # (left at office hours, the DAG waits for the window to end: correct, but hours long).
    now = datetime.fromisoformat(requests.get(f"{served_emulator.url}/_emulator/clock", timeout=10).json()["now"])
    later = (now + timedelta(hours=12)).astimezone(ZoneInfo("America/New_York"))
    conf = json.dumps({"import_quiet_time_of_day": later.strftime("%H:%M")})
    run = subprocess.run([str(BIN / "airflow"), "dags", "test", "lytics_job_as_code", "--conf", conf], env=env,
                         capture_output=True, text=True, timeout=240)  # fmt: skip
    out = run.stdout + run.stderr
    assert run.returncode == 0, out[-3000:]
    assert out.count("Pausing task as DEFERRED") >= 1 and "running trigger in line" in out
    assert re.search(r"DagRun Finished: dag_id=lytics_job_as_code.*state=success", out), out[-3000:]
    assert served_emulator.token not in out
    monkeypatch.setenv("AIRFLOW_CONN_LYTICS_DEFAULT", json.dumps(conn))
    jobs = LyticsHook().list_jobs(show_all=True)
    export = next(j for j in jobs if j["tag"] == "airflow:lytics_job_as_code:export")
    assert export["status"] == "completed" and export["config"]["write_headers"] is True
