"""The job-as-code and scheduled-export patterns at emulated times of day, including both DST change weeks.

Every case pins the emulator's clock (frozen) and runs the example DAGs' own specs and settings through the
operators and the sensor on that clock (see ``tests/jobs/conftest.py``): nothing here depends on the hour the
suite runs at. New York changes to daylight time on 2026-03-08 and back on 2026-11-01.
"""

from __future__ import annotations

import importlib.util
from datetime import datetime, timedelta
from functools import cache
from pathlib import Path
from types import ModuleType
from zoneinfo import ZoneInfo

import pytest
from airflow.providers.common.compat.sdk import AirflowFailException

from airflow_provider_lytics.hooks.lytics import LyticsHook
from airflow_provider_lytics.operators.jobs import LyticsCreateOrUpdateJobOperator, LyticsRunJobOperator
from airflow_provider_lytics.sensors.jobs import LyticsJobSensor
from tests.jobs.helpers import FakeTI, context

NY = ZoneInfo("America/New_York")
DAGS = Path(__file__).resolve().parents[2] / "dags"

#: Day -> the end of that day's 09:00-17:00 New York quiet window in UTC, written out (not computed with zoneinfo).
WINDOW_END_UTC = {
    "2026-03-06": "2026-03-06T22:00:00.000Z",  # Friday before the spring change: EST, UTC-5
    "2026-03-08": "2026-03-08T21:00:00.000Z",  # the change day itself: EDT from 03:00
    "2026-03-09": "2026-03-09T21:00:00.000Z",  # Monday after: EDT, UTC-4
    "2026-10-30": "2026-10-30T21:00:00.000Z",  # Friday before the autumn change: EDT
    "2026-11-01": "2026-11-01T22:00:00.000Z",  # the change day: EST from 01:00 (second time)
    "2026-11-02": "2026-11-02T22:00:00.000Z",  # Monday after: EST
    "2026-12-03": "2026-12-03T22:00:00.000Z",  # an ordinary winter day
}
HOURS = (3, 12, 20)


@cache
def _dag_module(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"example_{name}", DAGS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _job_as_code() -> tuple[dict, dict, float]:
    """The example's export spec, its import spec rendered with the default param, and its sensor's timeout."""
    module = _dag_module("lytics_job_as_code")
    params = module.dag.params
    quiet = params["import_quiet_time_of_day"]
    quiet = getattr(quiet, "value", quiet)  # Airflow 2 keeps Param objects, 3 the resolved value
    import_spec = {**module.IMPORT_SPEC, "quiet_time_of_day": quiet}
    timeout = module.dag.get_task("wait_for_nightly_import").timeout
    seconds = timeout.total_seconds() if isinstance(timeout, timedelta) else float(timeout)
    return module.EXPORT_SPEC, import_spec, seconds


def _cases():
    for day in WINDOW_END_UTC:
        for hour in HOURS:
            yield pytest.param(day, hour, id=f"{day}T{hour:02d}NY")


@pytest.mark.parametrize(("day", "hour"), list(_cases()))
def test_job_as_code_at_any_hour(lytics_conn_env, emulated_time, day, hour):
    export_spec, import_spec, sensor_timeout = _job_as_code()
    start = datetime.fromisoformat(day).replace(hour=hour, tzinfo=NY)
    emulated_time.set(start)
    hook = LyticsHook()

    # the export: created paused, then run and awaited (the operator's polling sleeps advance the emulated clock)
    export_id = LyticsCreateOrUpdateJobOperator(task_id="sync_export_job", spec=export_spec, run_job=False).execute(
        context(FakeTI(emulated_time.now()))
    )
    run = LyticsRunJobOperator(task_id="run_export", job_id=export_id, poll_interval=1, wait_timeout=3600)
    assert run.execute(context(FakeTI(emulated_time.now()))) == export_id
    assert hook.get_job(export_id)["status"] == "completed"

    # the import with its office-hours quiet window, and the sensor as the example configures it
    ti = FakeTI(emulated_time.now())
    import_id = LyticsCreateOrUpdateJobOperator(task_id="sync_import_job", spec=import_spec).execute(context(ti))
    sensor = LyticsJobSensor(task_id="wait_for_nightly_import", job_id=import_id, poke_interval=1,
                             timeout=sensor_timeout, max_faults=3)  # fmt: skip
    emulated_time.advance(0.1)  # past initializing (0.05 s), not past a run (0.2 s)
    job = hook.get_job(import_id)
    in_window = 9 <= hour < 17
    if in_window:
        assert job["status"] == "sleeping" and job["sleep_until"] == WINDOW_END_UTC[day]
        assert sensor.poke(context(ti)).is_done is False  # waits: the wake-up is within its deadline
        # the example's old one-hour wait would have failed here, saying what to change
        short = LyticsJobSensor(task_id="short", job_id=import_id, timeout=3600)
        with pytest.raises(AirflowFailException, match=r"after this wait's deadline .*raise the wait's timeout"):
            short.poke(context(ti))
        emulated_time.set(WINDOW_END_UTC[day])
        assert hook.get_job(import_id)["status"] == "running"
    else:
        assert job["status"] == "running" and job["sleep_until"] is None
    emulated_time.advance(1)  # the run's minimum duration (0.2 s) is over
    result = sensor.poke(context(ti))
    assert result.is_done and result.xcom_value == import_id
    after = hook.get_job(import_id)
    assert after["status"] == "sleeping"  # between runs now, not in a quiet window
    assert datetime.fromisoformat(after["sleep_until"]) - emulated_time.now() < timedelta(seconds=3)


@pytest.mark.parametrize(
    ("now", "quiet_start", "expected_end"),
    [
        # 8 elapsed hours from 22:00 EST is 07:00 EDT: the window spans the lost hour
        ("2026-03-07T23:00:00-05:00", "22:00", "2026-03-08T11:00:00.000Z"),
        # 8 elapsed hours from 22:00 EDT is 05:00 EST: the window spans the repeated hour
        ("2026-10-31T23:00:00-04:00", "22:00", "2026-11-01T10:00:00.000Z"),
        # 01:30 on the autumn change day happens twice; the window started at the first one (EDT)
        ("2026-11-01T01:45:00-05:00", "01:30", "2026-11-01T13:30:00.000Z"),
    ],
)
def test_quiet_window_across_a_dst_change_lasts_its_period_in_elapsed_hours(
    lytics_conn_env, emulated_time, now, quiet_start, expected_end
):
    emulated_time.set(now)
    spec = {"workflow": "sftp_import", "name": "overnight", "config": {"continuous": True},
            "quiet_time_of_day": quiet_start, "quiet_period": 8, "quiet_timezone": "America/New_York"}  # fmt: skip
    job_id = LyticsCreateOrUpdateJobOperator(task_id="sync", spec=spec).execute(context(FakeTI(emulated_time.now())))
    emulated_time.advance(1)
    job = LyticsHook().get_job(job_id)
    assert job["status"] == "sleeping" and job["sleep_until"] == expected_end


# -- the scheduled export: CronTriggerTimetable("0 6 * * *", timezone="America/New_York") ---------------------------


def _next_runs(after: datetime, count: int) -> list[str]:
    """The next ``count`` scheduled runs of ``lytics_export_scheduled`` from ``after``, as UTC ISO text."""
    import pendulum
    from airflow.timetables.base import TimeRestriction

    module = _dag_module("lytics_export_scheduled")
    dags = [v for v in vars(module).values() if getattr(v, "dag_id", None) == "lytics_export_scheduled"]
    timetable = dags[0].timetable
    restriction = TimeRestriction(earliest=pendulum.instance(after), latest=None, catchup=True)
    out, last = [], None
    for _ in range(count):
        info = timetable.next_dagrun_info(last_automated_data_interval=last, restriction=restriction)
        assert info is not None
        out.append(info.run_after.in_timezone("UTC").isoformat())
        last = info.data_interval
    return out


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        # spring week: 06:00 New York is 11:00 UTC until the change, 10:00 UTC from the change day on
        (
            "2026-03-06T03:00:00-05:00",
            [
                "2026-03-06T11:00:00+00:00",
                "2026-03-07T11:00:00+00:00",
                "2026-03-08T10:00:00+00:00",
                "2026-03-09T10:00:00+00:00",
            ],
        ),
        ("2026-03-07T12:00:00-05:00", ["2026-03-08T10:00:00+00:00", "2026-03-09T10:00:00+00:00"]),
        ("2026-03-07T20:00:00-05:00", ["2026-03-08T10:00:00+00:00", "2026-03-09T10:00:00+00:00"]),
        # autumn week: 10:00 UTC until the change, 11:00 UTC from the change day on
        (
            "2026-10-30T03:00:00-04:00",
            [
                "2026-10-30T10:00:00+00:00",
                "2026-10-31T10:00:00+00:00",
                "2026-11-01T11:00:00+00:00",
                "2026-11-02T11:00:00+00:00",
            ],
        ),
        ("2026-10-31T12:00:00-04:00", ["2026-11-01T11:00:00+00:00", "2026-11-02T11:00:00+00:00"]),
        ("2026-10-31T20:00:00-04:00", ["2026-11-01T11:00:00+00:00", "2026-11-02T11:00:00+00:00"]),
        # an ordinary winter day
        ("2026-12-03T12:00:00-05:00", ["2026-12-04T11:00:00+00:00"]),
    ],
)
def test_scheduled_export_runs_at_six_new_york_time_across_dst(emulated_time, now, expected):
    emulated_time.set(now)  # the emulator's now is the scheduler's "now" for this check
    runs = _next_runs(emulated_time.now(), len(expected))
    assert runs == expected
    for run in runs:
        assert datetime.fromisoformat(run).astimezone(NY).strftime("%H:%M") == "06:00"
