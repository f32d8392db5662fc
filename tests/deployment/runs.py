"""Waiting for several DAG runs at once, and telling a good run from a bad one with the evidence attached."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from tests.deployment.airflow_deployment import AirflowDeployment


@dataclass
class Run:
    """One DAG run the suite started (or found), with every task state seen while it ran."""

    dag_id: str
    run_id: str
    state: str = "queued"
    logical_date: str | None = None
    run_type: str = ""
    states_seen: dict[str, set[str]] = field(default_factory=dict)


def wait_all(
    airflow: AirflowDeployment,
    runs: list[Run],
    timeout: float = 480.0,
    poll: float = 1.0,
    on_end: Callable[[Run], None] | None = None,
) -> None:
    """Poll every run until all have ended or ``timeout`` passed, recording each task's states as they change.

    A run still going at the deadline keeps its last state; :func:`assert_succeeded` then reports it with the
    states its tasks went through, so one stuck DAG fails its own test and not its neighbours'.
    """
    deadline = time.monotonic() + timeout
    pending = list(runs)
    while pending and time.monotonic() < deadline:
        for run in list(pending):
            info = airflow.dag_run(run.dag_id, run.run_id)
            run.state, run.logical_date, run.run_type = info["state"], info.get("logical_date"), info.get("run_type")
            for ti in airflow.task_instances(run.dag_id, run.run_id):
                run.states_seen.setdefault(ti["task_id"], set()).add(str(ti["state"]))
            if run.state in ("success", "failed"):
                pending.remove(run)
                if on_end is not None:
                    on_end(run)
        if pending:
            time.sleep(poll)


def assert_succeeded(airflow: AirflowDeployment, run: Run) -> None:
    """The run succeeded; otherwise fail with every unsuccessful task's log tail."""
    if run.state != "success":
        raise AssertionError(
            f"{run.dag_id} run {run.run_id} is {run.state}; task states seen {run.states_seen}\n"
            f"{airflow.failure_details(run.dag_id, run.run_id)}"
        )
