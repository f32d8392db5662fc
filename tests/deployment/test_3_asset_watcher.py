"""The audience asset watcher runs in the real triggerer and schedules its DAG with the event's payload.

``lytics_audience_changed`` is scheduled on ``lytics://audience/demo_high_value``, whose ``AssetWatcher`` runs
``LyticsAudienceChangeEventTrigger`` (poll every 60 s) in the triggerer. The suite waits until the trigger has taken
its baseline (its first scan reached the emulator), makes members enter the audience through the collect API, and
expects an asset-triggered run whose task saw the event's counts.
"""

from __future__ import annotations

import time

import pytest
import requests

from tests.deployment.runs import Run, assert_succeeded, wait_all

pytestmark = pytest.mark.deployment

DAG_ID = "lytics_audience_changed"
ASSET_URI = "lytics://audience/demo_high_value"


def _scans(world) -> int:
    stats = world.emulator("GET", "/_emulator/stats")
    return sum(r["count"] for r in stats["requests"] if r["route"] == "/api/segment/{id}/scan")


def _asset_runs(world) -> list[dict]:
    runs = world.airflow.api("GET", f"/dags/{DAG_ID}/dagRuns", params={"limit": 100})["dag_runs"]
    return [r for r in runs if r["run_type"] == "asset_triggered"]


def test_audience_change_fires_the_watcher_and_the_consumer_gets_the_payload(world):
    airflow = world.airflow
    airflow.wait_for_dags([DAG_ID])
    before_runs = {r["dag_run_id"] for r in _asset_runs(world)}
    scans = _scans(world)
    airflow.unpause(DAG_ID)  # the triggerer starts the watcher's trigger for an active asset-scheduled DAG
    deadline = time.monotonic() + 180
    while _scans(world) == scans:  # the baseline is taken by the trigger's first snapshot
        assert time.monotonic() < deadline, "the watcher never scanned the audience\n" + airflow.report()
        time.sleep(0.5)
    settled = _scans(world)
    time.sleep(2)
    while _scans(world) != settled:  # a snapshot of several pages: wait until it is complete
        settled = _scans(world)
        time.sleep(2)

    lytics = world.sandbox.lytics
    vips = [{"user_id": f"deployvip{i}", "email": f"deployvip{i}@example.com", "plan": "pro", "ltv": 950 + i}
            for i in range(4)]  # fmt: skip
    requests.post(f"{lytics.url}/collect/json/crm_users", json=vips, headers={"Authorization": lytics.token},
                  timeout=30).raise_for_status()  # fmt: skip

    deadline = time.monotonic() + 180  # the watcher polls every 60 s
    while not (new := [r for r in _asset_runs(world) if r["dag_run_id"] not in before_runs]):
        assert time.monotonic() < deadline, "no asset-triggered run within 180 s of the change\n" + airflow.report()
        time.sleep(2)
    run = Run(DAG_ID, new[0]["dag_run_id"])
    wait_all(airflow, [run], timeout=180)
    assert_succeeded(airflow, run)
    assert airflow.xcom(DAG_ID, run.run_id, "react")["events"] >= 1

    asset = airflow.api("GET", "/assets", params={"uri_pattern": "audience/demo_high_value"})["assets"][0]
    events = airflow.api("GET", "/assets/events", params={"asset_id": asset["id"], "limit": 100})["asset_events"]
    payloads = [(e.get("extra") or {}).get("payload") or {} for e in events]  # a watcher event's extra
    assert any(p.get("entered", 0) >= len(vips) and p.get("segment") == "demo_high_value" for p in payloads), payloads
