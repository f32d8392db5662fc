"""Every template of every example DAG renders for the runs Airflow really creates.

Airflow 3 creates runs without a logical date (REST API, ``airflow dags trigger``, asset events): ``ds``,
``ts_nodash``, ``logical_date`` and the data interval are then absent from the context. On Airflow 3 each task is
rendered with the context the task runner builds (``RuntimeTaskInstance.get_template_context``) from the run
the API server hands a worker, once with ``logical_date=None`` and once with one; on Airflow 2.11 with the
context of a ``TaskInstance`` of a real ``DagRun``. Fields that pull XComs cannot render without the upstream
task's result: for those every name the template uses must be in the context (jinja2's own analysis).
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import jinja2
import pytest
from jinja2 import meta

from airflow_provider_lytics.macros import http_url, run_day, run_slug, run_stamp

DAGS = Path(__file__).resolve().parents[2] / "dags"
RUN_AFTER = datetime(2026, 3, 8, 6, 30, 5, tzinfo=timezone.utc)
LOGICAL = datetime(2026, 3, 7, 11, 0, 0, tzinfo=timezone.utc)


def _airflow3() -> bool:
    import airflow

    return airflow.__version__.startswith("3.")


@pytest.fixture(scope="module")
def dagbag() -> Any:
    try:
        from airflow.dag_processing.dagbag import DagBag
    except ImportError:  # Airflow 2.11
        from airflow.models.dagbag import DagBag
    bag = DagBag(dag_folder=str(DAGS), safe_mode=False)
    assert not bag.import_errors, bag.import_errors
    assert len(bag.dags) >= 12
    return bag


@pytest.fixture(autouse=True)
def webhook_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    """The realtime setup DAG reads its webhook URL from this connection when it renders."""
    conn = {"conn_type": "http", "host": "hooks.example.com", "schema": "https", "port": 8443}
    monkeypatch.setenv("AIRFLOW_CONN_LYTICS_AUDIENCE_WEBHOOK", json.dumps(conn))


def _uses_xcom(value: Any) -> bool:
    from airflow.providers.common.compat.sdk import XComArg

    if isinstance(value, XComArg):
        return True
    if isinstance(value, str):
        return "xcom_pull" in value
    if isinstance(value, dict):
        return any(_uses_xcom(v) for v in value.values())
    if isinstance(value, (list, tuple, set)):
        return any(_uses_xcom(v) for v in value)
    return False


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, (list, tuple, set)):
        return [s for v in value for s in _strings(v)]
    return []


def _render_all(dag: Any, context_for: Any) -> dict[str, Any]:
    """Render every template field of every task; returns ``task_id.field -> rendered value``."""
    env = dag.get_template_env()
    rendered: dict[str, Any] = {}
    for task in dag.tasks:
        context = context_for(task)
        for field in task.template_fields:
            value = getattr(task, field)
            key = f"{task.task_id}.{field}"
            if _uses_xcom(value):
                known = set(context) | set(env.globals)
                for text in _strings(value):
                    missing = meta.find_undeclared_variables(env.parse(text)) - known
                    assert not missing, f"{dag.dag_id} {key}: {sorted(missing)} not in the context"
                continue
            try:
                out = task.render_template(value, context, env)
            except jinja2.UndefinedError as err:
                pytest.fail(f"{dag.dag_id} {key} does not render: {err}")
            assert "{{" not in json.dumps(out, default=str), f"{dag.dag_id} {key} left a template: {out!r}"
            rendered[key] = out
    return rendered


def _airflow3_context(dag: Any, task: Any, logical_date: datetime | None) -> Any:
    from airflow.sdk.api.datamodels._generated import DagRun, DagRunState, DagRunType, TIRunContext
    from airflow.sdk.execution_time.task_runner import RuntimeTaskInstance

    run_id = f"manual__{(logical_date or RUN_AFTER).isoformat()}"
    dag_run = DagRun(
        dag_id=dag.dag_id, run_id=run_id, logical_date=logical_date,
        data_interval_start=logical_date, data_interval_end=logical_date, run_after=RUN_AFTER,
        start_date=RUN_AFTER, end_date=None, run_type=DagRunType.MANUAL, state=DagRunState.RUNNING, conf={},
        consumed_asset_events=[], partition_key=None,
    )  # fmt: skip
    ti = RuntimeTaskInstance.model_construct(
        id=uuid.uuid4(), task_id=task.task_id, dag_id=dag.dag_id, run_id=run_id, try_number=1, map_index=-1,
        dag_version_id=uuid.uuid4(), task=task, bundle_instance=None, start_date=RUN_AFTER, max_tries=0,
    )  # fmt: skip
    ti._ti_context_from_server = TIRunContext(dag_run=dag_run, max_tries=0)
    ti._cached_template_context = None
    return ti.get_template_context()


@pytest.mark.skipif(not _airflow3(), reason="runs without a logical date exist on Airflow 3 only")
def test_every_template_renders_for_a_run_without_logical_date(dagbag: Any) -> None:
    seen = {}
    for dag in dagbag.dags.values():
        ctx = _airflow3_context(dag, dag.tasks[0], None)
        assert "ds" not in ctx and "logical_date" not in ctx  # the context Airflow really gives such runs
        seen[dag.dag_id] = _render_all(dag, lambda task, dag=dag: _airflow3_context(dag, task, None))
    slug = run_slug(f"manual__{RUN_AFTER.isoformat()}")
    assert slug == "manual__2026-03-08T06_30_05_00_00"
    assert seen["lytics_import_one_time"]["load.quarantine_path"].endswith(f"/{slug}-customers.ndjson")
    quarantine = seen["lytics_import_continuous_sftp_pgp"]["load.quarantine_path"]
    assert quarantine == "/imports/customers/quarantine/20260308T063005.ndjson"  # run_after, fixed for every try
    results = seen["lytics_enrichment_round_trip"]["enrich.results_path"]
    assert results == f"/tmp/lytics-enrichment/{slug}/results.ndjson"
    alerts = seen["lytics_go_template_alerts"]
    assert alerts["send_alerts.extra_data"] == {"campaign": "spring", "run_date": "2026-03-08"}
    spec = seen["lytics_realtime_audience_setup"]["sync_webhook_job.spec"]
    assert spec["config"]["webhook_url"] == "https://hooks.example.com:8443/lytics-audience"


@pytest.mark.skipif(not _airflow3(), reason="the Airflow 2.11 pass has its own test below")
def test_every_template_renders_for_a_run_with_logical_date(dagbag: Any) -> None:
    seen = {
        dag.dag_id: _render_all(dag, lambda task, dag=dag: _airflow3_context(dag, task, LOGICAL))
        for dag in dagbag.dags.values()
    }
    assert seen["lytics_go_template_alerts"]["send_alerts.extra_data"]["run_date"] == "2026-03-07"  # as {{ ds }}
    quarantine = seen["lytics_import_continuous_sftp_pgp"]["load.quarantine_path"]
    assert quarantine == "/imports/customers/quarantine/20260307T110000.ndjson"  # as {{ ts_nodash }}


@pytest.mark.skipif(_airflow3(), reason="Airflow 2.11 only")
def test_every_template_renders_on_airflow_2(dagbag: Any) -> None:
    from airflow.models.dagrun import DagRun
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.db import initdb
    from airflow.utils.types import DagRunType

    initdb()  # Airflow 2.11 builds the context with queries (previous successful runs): a migrated DB
    seen = {}
    for dag in dagbag.dags.values():
        interval = dag.timetable.infer_manual_data_interval(run_after=LOGICAL)  # as a triggered run gets
        run = DagRun(dag_id=dag.dag_id, run_id="manual__2026-03-07T11:00:00+00:00", execution_date=LOGICAL,
                     run_type=DagRunType.MANUAL, conf={}, data_interval=interval)  # fmt: skip

        def context_for(task: Any, dag: Any = dag, run: Any = run) -> Any:
            ti = TaskInstance(task, run_id=run.run_id)
            ti.dag_run = run
            return ti.get_template_context(ignore_param_exceptions=False)

        seen[dag.dag_id] = _render_all(dag, context_for)
    alerts = seen["lytics_go_template_alerts"]["send_alerts.extra_data"]
    assert alerts == {"campaign": "spring", "run_date": "2026-03-07"}
    quarantine = seen["lytics_import_continuous_sftp_pgp"]["load.quarantine_path"]
    assert quarantine == "/imports/customers/quarantine/20260307T110000.ndjson"


class _Run:
    def __init__(self, **attrs: Any) -> None:
        self.__dict__.update(attrs)


def test_run_macros_prefer_logical_date_then_run_after() -> None:
    assert run_day(_Run(logical_date=LOGICAL, run_after=RUN_AFTER)) == "2026-03-07"
    assert run_stamp(_Run(logical_date=None, run_after=RUN_AFTER)) == "20260308T063005"
    assert run_day(_Run(logical_date=None, start_date=RUN_AFTER)) == "2026-03-08"  # neither: the start
    with pytest.raises(ValueError, match="no logical date, run_after or start date"):
        run_day(_Run(run_id="r1", logical_date=None))
    assert run_slug("scheduled__2026-03-07T11:00:00+00:00") == "scheduled__2026-03-07T11_00_00_00_00"
    with pytest.raises(ValueError, match="no character usable"):
        run_slug("::")


def test_http_url_reads_the_connection_when_called(monkeypatch: pytest.MonkeyPatch) -> None:
    assert http_url("lytics_audience_webhook", "hook") == "https://hooks.example.com:8443/hook"
    monkeypatch.setenv("AIRFLOW_CONN_FULL_URL_HOOK", json.dumps({"conn_type": "http", "host": "http://h:1/base/"}))
    assert http_url("full_url_hook", "/x") == "http://h:1/base/x"
    monkeypatch.setenv("AIRFLOW_CONN_NO_HOST", json.dumps({"conn_type": "http"}))
    with pytest.raises(ValueError, match="'no_host' has no Host"):
        http_url("no_host")
