"""Two Celery workers, nothing shared but Airflow's database and the services: work survives losing a worker.

- An import whose worker is killed (the worker's whole process group, SIGKILL) is noticed by the scheduler,
  retried on the other worker, and resumes from its last acknowledged batch: no row lost, no acknowledged batch
  sent twice (at most the one batch in flight at the kill can arrive twice, and it is counted).
- An incremental export's next run on the other worker continues from the state the first run stored.
"""

from __future__ import annotations

import time

import pytest
import requests

from airflow_provider_lytics.emulator import prepare
from tests.deployment.airflow_deployment import WORKERS, DeploymentError
from tests.deployment.runs import Run, assert_succeeded, wait_all

pytestmark = pytest.mark.deployment

ROWS = 40_000
BATCH_ROWS = 2_000  # the suite DAG's batch size
STREAM = "deploy_resume"


def _checkpointed_batches(world, dag_id: str, run_id: str) -> int:
    """Batches Lytics acknowledged, as the import's checkpoint in Airflow's task state store records them."""
    state = world.airflow.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/load/state-store")
    entries = {e["key"]: e["value"] for e in state.get("task_state_store", [])}
    checkpoint = entries.get("lytics_import_checkpoint") or {}
    return int((checkpoint.get("counts") or {}).get("batches_sent", 0))


def _received(world, stream: str) -> int:
    return world.emulator("GET", "/_emulator/stats")["events"].get(stream, {}).get("received", 0)


def _audience_size(world, filter_ql: str) -> int:
    lytics = world.sandbox.lytics
    resp = requests.post(f"{lytics.url}/api/segment/size", data=filter_ql.encode(), timeout=60,
                         headers={"Authorization": lytics.token, "Content-Type": "text/plain"})  # fmt: skip
    resp.raise_for_status()
    return int(float(resp.json()["data"]["size"]))


def _running_try(world, dag_id: str, run_id: str, task_id: str, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ti = world.airflow.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}")
        if ti["state"] == "running" and ti.get("hostname") in WORKERS:
            return ti
        time.sleep(0.5)
    raise DeploymentError(f"{dag_id}.{task_id} never ran on a worker within {timeout:.0f}s")


def _restart_dead_workers(world) -> None:
    for name in WORKERS:
        if not world.airflow.processes[name].alive():
            world.airflow.start_worker(name)


def test_import_killed_with_its_worker_resumes_on_the_other_worker(world):
    airflow, dag_id = world.airflow, "lytics_deploy_resumable_import"
    airflow.wait_for_dags([dag_id])
    airflow.unpause(dag_id)
    source = prepare.write_customers(world.outputs / "resume" / "customers.csv", ROWS, seed=3, start=700_000)
    # Each batch takes a second at the emulator, so the kill lands mid-import whatever the machine's speed.
    slow = {"route": f"/collect/bulk/{STREAM}", "kind": "latency", "latency": 1.0}
    fault = world.emulator("POST", "/_emulator/faults", slow)["ids"][0]
    conf = {"input_glob": str(source), "stream": STREAM, "quarantine_dir": str(world.outputs / "resume" / "q")}
    run_id = airflow.trigger(dag_id, conf)
    try:
        first = _running_try(world, dag_id, run_id, "load")
        # Kill once Airflow's database (the task state store, read over REST) holds a checkpoint of 3 acknowledged
        # batches: the checkpoint must not be on the dead worker's disk. (Counting the emulator's bulk requests
        # would also count other tests' imports, and could kill the worker before this import had begun.)
        deadline = time.monotonic() + 180
        while (acknowledged_at_kill := _checkpointed_batches(world, dag_id, run_id)) < 3:
            assert time.monotonic() < deadline, "the import checkpointed fewer than 3 acknowledged batches in 180 s"
            time.sleep(0.2)
        victim = first["hostname"]
        airflow.kill_worker(victim)
        assert _received(world, STREAM) >= acknowledged_at_kill * BATCH_ROWS
        world.emulator("DELETE", f"/_emulator/faults/{fault}")
        fault = None
        run = Run(dag_id, run_id)
        wait_all(airflow, [run], timeout=300)
        assert_succeeded(airflow, run)
        tries = airflow.tries(dag_id, run_id, "load")
        assert tries[0]["hostname"] == victim and tries[0]["state"] != "success"
        survivor = next(w for w in WORKERS if w != victim)
        assert tries[-1]["hostname"] == survivor and tries[-1]["state"] == "success", tries
        counts = airflow.xcom(dag_id, run_id, "load")
        received = _received(world, STREAM)
        duplicated = received - ROWS
        assert counts["skipped_acknowledged"] >= (acknowledged_at_kill - 1) * BATCH_ROWS, counts  # resumed
        assert 0 <= duplicated <= BATCH_ROWS, f"{received} rows received for {ROWS} in the file; counts {counts}"
        assert duplicated <= counts.get("possible_duplicates", 0) or duplicated == 0, counts
        assert _audience_size(world, f'FILTER deploy_run = "{run_id}" FROM user') == ROWS  # nothing lost
    finally:
        if fault is not None:
            world.emulator("DELETE", f"/_emulator/faults/{fault}")
        _restart_dead_workers(world)  # the next test needs two workers


def test_incremental_export_continues_from_state_stored_by_another_worker(world):
    """Run 1 on one worker, run 2 on the other (the first is stopped): run 2 writes only the changes."""
    airflow, dag_id = world.airflow, "lytics_export_scheduled"
    airflow.wait_for_dags([dag_id])
    airflow.unpause(dag_id)
    first = Run(dag_id, airflow.trigger(dag_id))
    wait_all(airflow, [first])
    assert_succeeded(airflow, first)
    export_task = next(t for t in first.states_seen if "export" in t)
    ran_on = airflow.api("GET", f"/dags/{dag_id}/dagRuns/{first.run_id}/taskInstances/{export_task}")["hostname"]
    other = next(w for w in WORKERS if w != ran_on)
    airflow.kill_worker(ran_on)  # the next run cannot use this worker's disk or memory
    try:
        lytics = world.sandbox.lytics
        records = [{"user_id": f"u{i:08d}", "plan": "enterprise", "last_active": int(time.time() * 1000)}
                   for i in range(7)]  # fmt: skip
        requests.post(f"{lytics.url}/collect/json/crm_users", json=records, timeout=30,
                      headers={"Authorization": lytics.token}).raise_for_status()  # fmt: skip
        second = Run(dag_id, airflow.trigger(dag_id))
        wait_all(airflow, [second])
        assert_succeeded(airflow, second)
        ti = airflow.api("GET", f"/dags/{dag_id}/dagRuns/{second.run_id}/taskInstances/{export_task}")
        assert ti["hostname"] == other
        result = airflow.xcom(dag_id, second.run_id, export_task)
        counts = result["counts"]
        written = sum(v for k, v in counts.items() if k != "unchanged" and isinstance(v, int))
        first_counts = airflow.xcom(dag_id, first.run_id, export_task)["counts"]
        assert 7 <= written < sum(v for v in first_counts.values() if isinstance(v, int)), (first_counts, counts)
    finally:
        _restart_dead_workers(world)
