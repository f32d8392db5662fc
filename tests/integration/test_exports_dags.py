"""The export example DAGs parse on this Airflow, and the scheduled one fires at 06:00 New York across DST."""

from __future__ import annotations

import importlib.util
from datetime import datetime, timezone
from pathlib import Path

import pytest

DAGS = Path(__file__).resolve().parents[2] / "dags"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"export_dag_{name}", DAGS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def _dags(module) -> dict:
    from airflow.providers.common.compat.sdk import DAG

    found = {v.dag_id: v for v in vars(module).values() if isinstance(v, DAG)}
    return found


@pytest.mark.parametrize(
    ("name", "dag_ids"),
    [
        ("lytics_export_one_time", {"lytics_export_one_time"}),
        ("lytics_export_scheduled", {"lytics_export_scheduled", "lytics_export_consumer"}),
        ("lytics_export_backfill_incremental", {"lytics_export_backfill_incremental"}),
    ],
)
def test_example_dags_parse(name, dag_ids):
    dags = _dags(_load(name))
    assert set(dags) == dag_ids
    for dag in dags.values():
        assert dag.tasks


@pytest.mark.parametrize(
    ("after", "expected_utc"),
    [
        (datetime(2026, 1, 15, 12, 0, tzinfo=timezone.utc), datetime(2026, 1, 16, 11, 0, tzinfo=timezone.utc)),
        (datetime(2026, 3, 7, 12, 0, tzinfo=timezone.utc), datetime(2026, 3, 8, 10, 0, tzinfo=timezone.utc)),
        (datetime(2026, 10, 31, 12, 0, tzinfo=timezone.utc), datetime(2026, 11, 1, 11, 0, tzinfo=timezone.utc)),
    ],
)
def test_scheduled_export_runs_at_six_new_york_time_across_dst(after, expected_utc):
    from airflow.timetables.base import TimeRestriction

    dag = _dags(_load("lytics_export_scheduled"))["lytics_export_scheduled"]
    info = dag.timetable.next_dagrun_info(
        last_automated_data_interval=None, restriction=TimeRestriction(earliest=after, latest=None, catchup=True)
    )
    assert info.run_after == expected_utc
