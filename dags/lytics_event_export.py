"""Hourly incremental export of a stream's raw events (the BigQuery-style event export), as gzip'd NDJSON.

``record_page_views`` stands in for the website: it sends a dozen page views to the ``web_events`` stream, stamped
(``_ts``) in the last minutes of this run's window, so every run has events to export. ``export_events`` exports
the events of ``web_events`` whose event time is in the run's data interval: the first run reads the interval
(or, for a run without one, the hour before the run), every later run continues from the previous run's
watermark minus a 15-minute look-back, so events that arrive up to 15 minutes late are exported exactly once and
a rerun writes nothing twice. The state lives next to the files; ``max_active_runs=1`` keeps runs from racing.

Needs ``lytics_default``. Uses the data interval, else ``dag_run.run_after`` (never ``ds``), so REST-triggered
runs without a logical date work.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from airflow.providers.common.compat.sdk import Param, dag, task

from airflow_provider_lytics.operators.event_exports import LyticsEventExportOperator

STREAM = "web_events"
WINDOW = timedelta(hours=1)
LOOKBACK = timedelta(minutes=15)


@dag(
    dag_id="lytics_event_export",
    schedule=timedelta(hours=1),
    start_date=datetime(2026, 1, 1, tzinfo=timezone.utc),
    catchup=False,
    max_active_runs=1,
    params={"results_dir": Param("/tmp/lytics-demo/events", type="string", description="where the files go")},
    tags=["lytics", "export", "events", "example"],
    doc_md=__doc__,
)
def lytics_event_export() -> None:
    @task
    def record_page_views(data_interval_end=None, dag_run=None) -> dict:
        """Send 12 page views stamped in the 5 minutes before this run's window ends (what a site would send)."""
        from airflow_provider_lytics.hooks.lytics import LyticsHook

        end = data_interval_end or dag_run.run_after
        views = [{"email": f"visitor{i}@example.com", "url": f"/pricing?v={i}",
                  "_ts": (end - timedelta(seconds=300 - 25 * i)).isoformat()} for i in range(12)]  # fmt: skip
        hook = LyticsHook()
        try:
            sent = hook.collect_json(STREAM, views)
        finally:
            hook.close()
        return {"sent": int(sent.get("message_count", len(views))), "window_end": end.isoformat()}

    export = LyticsEventExportOperator(
        task_id="export_events",
        streams=[STREAM],
        export_name="web_events_hourly",
        mode="incremental",
        lookback=LOOKBACK,
        # no start/end: the run's data interval; a run without one (REST, no logical date) ends at its run_after
        # and, on the first run, reads the WINDOW before it. Later runs continue from the watermark.
        window=WINDOW,
        compression="gzip",
        destination="local",
        path="{{ params.results_dir }}",
        file_name="web_events_{TIMESTAMP}",
        manifest=True,
    )
    record_page_views() >> export


lytics_event_export()
