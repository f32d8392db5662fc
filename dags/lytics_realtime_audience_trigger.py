"""Real-time audience triggers, two ways.

1. Lytics pushes: a ``webhook_triggers`` job (declared in code) sends enter/exit events for an audience to a
   webhook URL you run (the emulator really delivers them, see docs/jobs.md).
2. Airflow watches: on Airflow 3, an asset watcher runs ``lytics_audience_changed`` whenever members enter the
   audience, using ``LyticsAudienceChangeEventTrigger`` in the triggerer.

Needs a ``lytics_default`` connection, an audience with slug ``demo_high_value`` (and its hex id for the job) and
an ``http`` connection ``lytics_audience_webhook`` to your receiver (Host, e.g. ``https://hooks.example.com``;
the path is the ``webhook_endpoint`` param).
"""

from __future__ import annotations

import logging
from datetime import datetime

from airflow.providers.common.compat.sdk import DAG, Param, task

from airflow_provider_lytics.macros import RUN_MACROS
from airflow_provider_lytics.operators.jobs import LyticsCreateOrUpdateJobOperator
from airflow_provider_lytics.sensors.audience import LyticsAudienceSizeSensor

AUDIENCE_SLUG = "demo_high_value"
WEBHOOK_SPEC = {
    "workflow": "webhook_triggers",
    "name": "airflow: high value enter/exit webhook",
    "config": {
        "segment_ids": ["{{ params.segment_id }}"],
        # Read when the task runs, from an http connection every worker sees (not the parse-time environment).
        "webhook_url": "{{ http_url(params.webhook_conn_id, params.webhook_endpoint) }}",
        "withbackfill": True,
        "user_fields": ["email", "plan"],
        "do_not_retry": [409],
    },
}

with DAG(
    dag_id="lytics_realtime_audience_setup",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    params={
        "segment_id": Param(
            "", type="string", description="Hex id of the demo_high_value audience the webhook job watches."
        ),
        "webhook_conn_id": Param(
            "lytics_audience_webhook",
            type="string",
            minLength=1,
            description="http connection of the receiver Lytics posts enter/exit events to.",
        ),
        "webhook_endpoint": Param(
            "/lytics-audience", type="string", description="Path on that receiver, appended to the connection's URL."
        ),
    },
    user_defined_macros=RUN_MACROS,
    tags=["lytics", "example"],
    doc_md=__doc__,
):
    audience_ready = LyticsAudienceSizeSensor(
        task_id="audience_ready", segment=AUDIENCE_SLUG, threshold=1, mode="reschedule", poke_interval=60
    )
    audience_ready >> LyticsCreateOrUpdateJobOperator(task_id="sync_webhook_job", spec=WEBHOOK_SPEC)

try:  # Airflow 3: event-driven scheduling from an asset watcher
    from airflow.sdk import Asset, AssetWatcher

    from airflow_provider_lytics.triggers.audience import LyticsAudienceChangeEventTrigger

    audience_asset = Asset(
        "lytics://audience/demo_high_value",
        watchers=[
            AssetWatcher(
                name="high_value_enters",
                trigger=LyticsAudienceChangeEventTrigger(segment=AUDIENCE_SLUG, change="enter", poll_interval=60),
            )
        ],
    )

    with DAG(
        dag_id="lytics_audience_changed",
        schedule=[audience_asset],
        start_date=datetime(2026, 1, 1),
        catchup=False,
        tags=["lytics", "example"],
    ):

        @task
        def react(triggering_asset_events=None) -> dict:
            """Each event carries entered/left/size counts for the audience."""
            events = [e.extra for evs in (triggering_asset_events or {}).values() for e in evs]
            logging.getLogger(__name__).info("audience changes: %s", events)
            return {"events": len(events)}

        react()
except ImportError:  # Airflow 2.11 has no asset watchers
    pass
