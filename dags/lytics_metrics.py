"""Metrics in and out: push third-party campaign metrics, read them back, and read an audience's size history.

``push_metrics`` sends the metrics file (checked row by row first: a bad row sends nothing). ``read_back`` reads
the pushed series from ``/api/metric`` into a CSV and ``check_read_back`` fails unless every pushed point came
back. ``ensure_audience`` upserts the audience ``metrics_known_users`` and ``size_history`` writes its size
history (``/api/segment/attribution``, recorded by Lytics as the audience changes) to a CSV.

Needs ``lytics_default``. Uses ``run_id`` and params only (no logical date), so REST-triggered runs work.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from airflow.providers.common.compat.sdk import Param, dag, task

from airflow_provider_lytics.operators.metrics import LyticsGetMetricsOperator, LyticsPushMetricsOperator

METRICS_CSV = str(Path(__file__).parent / "data" / "campaign_metrics.csv")
AUDIENCE = "metrics_known_users"


@dag(
    dag_id="lytics_metrics",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    params={
        "metrics_csv": Param(METRICS_CSV, type="string", description="CSV of metrics: name, value, ts, dimension..."),
        "results_dir": Param("/tmp/lytics-demo/metrics", type="string", description="where the read-back CSVs go"),
    },
    tags=["lytics", "metrics"],
    doc_md=__doc__,
)
def lytics_metrics() -> None:
    push = LyticsPushMetricsOperator(task_id="push_metrics", path="{{ params.metrics_csv }}", batch_size=100)
    read_back = LyticsGetMetricsOperator(
        task_id="read_back",
        query={"dimension": "campaign", "dimension_id": "black_friday"},
        output_path="{{ params.results_dir }}/black_friday.csv",
    )

    @task
    def check_read_back(params: dict | None = None) -> dict:
        """Every point of the file came back with its value (a rerun pushes them again: duplicates are fine)."""
        import csv

        with open(params["metrics_csv"], newline="") as handle:
            pushed = {(r["name"], r["ts"], float(r["value"])) for r in csv.DictReader(handle)
                      if r["dimension_id"] == "black_friday"}  # fmt: skip
        with open(Path(params["results_dir"]) / "black_friday.csv", newline="") as handle:
            read = {(r["name"], r["ts"], float(r["value"])) for r in csv.DictReader(handle)}
        missing = sorted(pushed - read)
        if missing:
            raise ValueError(f"{len(missing)} pushed metric points did not come back, e.g. {missing[:3]}")
        return {"pushed_points": len(pushed), "read_points": len(read)}

    @task
    def ensure_audience() -> str:
        from airflow_provider_lytics.hooks.lytics import LyticsHook

        hook = LyticsHook()
        hook.create_segment(f"FILTER EXISTS email FROM user ALIAS {AUDIENCE}")  # an upsert by ALIAS
        return AUDIENCE

    history = LyticsGetMetricsOperator(
        task_id="size_history", segments=[AUDIENCE], output_path="{{ params.results_dir }}/size_history.csv"
    )
    push >> read_back >> check_read_back()
    ensure_audience() >> history


lytics_metrics()
