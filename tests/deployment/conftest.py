"""The deployment suite's shared world: one offline Lytics sandbox and one real Airflow 3 deployment for the package.

The sandbox (Lytics API + bulk host, managed SFTP, enrichment vendor, webhook receiver, PGP keys) runs in the pytest
process on loopback ports; the Airflow processes reach it over TCP like any remote service. Its connections are
stored in Airflow's metadata database through the REST API (no ``AIRFLOW_CONN_*`` variables reach Airflow), and
the DAGs come from two bundles: the repository's ``dags/`` and this suite's own ``tests/deployment/dags``.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

import pytest

from tests.deployment.airflow_deployment import REPO, AirflowDeployment, service_reachable

SUITE_DAGS = Path(__file__).resolve().parent / "dags"
EXAMPLE_DAGS = REPO / "dags"


def _skip_reason() -> str | None:
    """Why the deployment cannot run here, or None. Only a truly absent service or Airflow < 3 skips."""
    if not _has("apache-airflow-core") or int(version("apache-airflow-core").split(".")[0]) < 3:
        return "the deployment suite runs Airflow 3 (api-server, dag-processor, triggerer); this is Airflow 2"
    if not service_reachable("127.0.0.1", 5432):
        return "no PostgreSQL on 127.0.0.1:5432 (the metadata database of the deployment)"
    if not service_reachable("127.0.0.1", 6379):
        return "no Redis on 127.0.0.1:6379 (the Celery broker of the deployment)"
    return None


def _has(dist: str) -> bool:
    try:
        version(dist)
        return True
    except Exception:
        return False


@dataclass
class World:
    """What a deployment test needs: the running Airflow, the sandbox it talks to, and a scratch folder."""

    airflow: AirflowDeployment
    sandbox: object
    outputs: Path

    def emulator(self, method: str, path: str, body: object | None = None) -> dict:
        """Call the emulator's admin surface (``/_emulator/...``): no token, never faulted."""
        import requests

        resp = requests.request(method, f"{self.sandbox.lytics.url}{path}", json=body, timeout=30)
        resp.raise_for_status()
        return resp.json() if resp.content else {}


def _bundles() -> str:
    local = "airflow.dag_processing.bundles.local.LocalDagBundle"
    return json.dumps([
        {"name": "lytics_examples", "classpath": local, "kwargs": {"path": str(EXAMPLE_DAGS), "refresh_interval": 5}},
        {"name": "deployment_suite", "classpath": local, "kwargs": {"path": str(SUITE_DAGS), "refresh_interval": 5}},
    ])  # fmt: skip


@pytest.fixture(scope="package")
def world(request: pytest.FixtureRequest) -> Iterator[World]:
    """Started once for the package and stopped when its last test ends (not at the end of the whole run)."""
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    from airflow_provider_lytics.emulator.cli import JOB_TIMING_PRESETS
    from airflow_provider_lytics.emulator.jobs import JobTimings
    from airflow_provider_lytics.emulator.sandbox import LyticsSandbox

    root = REPO / ".deploy"  # logs stay here after the run (gitignored); nothing secret is kept
    shutil.rmtree(root, ignore_errors=True)
    outputs = root / "outputs"
    bundles = {"AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST": _bundles()}
    airflow = AirflowDeployment(root / "airflow", extra_env=bundles)
    # Job runs last 20 s: long enough that a deferrable job task surely defers before its run ends.
    timings = JobTimings(**dict(JOB_TIMING_PRESETS["fast"], running=20.0))
    sandbox = LyticsSandbox(outputs, users=2_000, job_timings=timings)
    try:
        sandbox.start()
        airflow.start()
        for conn_id, spec in sandbox.connections().items():
            airflow.create_connection(conn_id, spec)
        yield World(airflow, sandbox, outputs)
    finally:
        airflow.stop()
        sandbox.stop()
        # The home holds the admin password file; the outputs hold exported profiles. The process logs stay.
        shutil.rmtree(root / "airflow" / "airflow_home", ignore_errors=True)
        shutil.rmtree(outputs, ignore_errors=True)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Deployment tests share a session that takes minutes to start: the suite-wide 300 s per-test cap is too short.

    Each test still has a bound (its own waits are bounded too), so a hung deployment fails instead of stalling CI.
    """
    for item in items:
        if "tests/deployment/" in str(item.fspath).replace("\\", "/"):
            item.add_marker(pytest.mark.timeout(1200))
