"""Personalised alerts: Go templates rendered for every member of a Lytics audience, delivered to a webhook.

The title/subtitle/body use Lytics' Go-template syntax (``{{ .first_name | default "there" }}``). They are
passed in ``messages``, which Airflow never Jinja-renders, so ``{{ }}`` reaches the Go engine untouched;
run-specific values (``{{ run_day(dag_run) }}``, params) go through the templated ``extra_data`` and are read in the Go
templates as ``{{ .campaign }}`` / ``{{ .run_date }}``.

Needs a ``lytics_default`` connection, an audience (slug in ``params.audience_slug``) and an HTTP connection
``lytics_alerts_webhook`` to the receiver (host, schema, login/password, extra headers as JSON).
"""

from __future__ import annotations

from datetime import datetime

from airflow.providers.common.compat.sdk import DAG, Param, task

from airflow_provider_lytics.macros import RUN_MACROS
from airflow_provider_lytics.operators.messaging import LyticsProfileMessageOperator

ALERT_TEMPLATES = {
    "title": '{{ if .first_name }}Hey, {{ .first_name }}{{ else }}Hey, {{ .last_name | default "valued customer" }}'
    "{{ end }}",
    "subtitle": '{{ if eq .subscriber_status "subscribed" }}You are a subscriber!{{ else }}You should subscribe!'
    "{{ end }}",
    "body": (
        "{{- if and .first_name .last_name -}} {{ .first_name }} {{ .last_name }}, {{ else -}} Hello, {{ end -}}\n"
        "our {{ .campaign }} picks for you: {{ range $i, $t := .interests }}{{ if $i }}, {{ end }}{{ $t | title }}"
        "{{ else }}our bestsellers{{ end }}."
    ),
}

#: Rendered (and logged) when the task starts, before anything is sent; an error there stops the task.
SAMPLE_PROFILES = [
    {"email": "ada@example.com", "first_name": "Ada", "last_name": "Lovelace", "subscriber_status": "subscribed",
     "interests": ["analytics", "poetry"]},
    {"email": "anon@example.com"},
]  # fmt: skip

with DAG(
    dag_id="lytics_go_template_alerts",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    params={
        "audience_slug": Param(
            "demo_high_value",
            type="string",
            minLength=1,
            description="Slug or id of the Lytics audience whose members get an alert.",
        ),
        "campaign": Param(
            "spring", type="string", description="Campaign name, read by the Go templates as {{ .campaign }}."
        ),
        "results_dir": Param(
            "/tmp/lytics-alerts",
            type="string",
            minLength=1,
            description="Local folder for the delivery results (one sub-folder per run).",
        ),
    },
    user_defined_macros=RUN_MACROS,
    tags=["lytics", "example", "templating"],
    doc_md=__doc__,
) as dag:
    send_alerts = LyticsProfileMessageOperator(
        task_id="send_alerts",
        segment="{{ params.audience_slug }}",
        fields=["email", "first_name", "last_name", "subscriber_status", "interests"],
        messages=ALERT_TEMPLATES,
        extra_data={"campaign": "{{ params.campaign }}", "run_date": "{{ run_day(dag_run) }}"},
        preview_profiles=SAMPLE_PROFILES,
        delivery="webhook",
        http_conn_id="lytics_alerts_webhook",
        endpoint="/alerts",
        batch_size=50,
        rate_limit=5,
        results_path="{{ params.results_dir }}/{{ run_slug(run_id) }}/results.ndjson",
        max_failure_rate=0.05,
    )

    @task
    def report(summary: dict) -> str:
        """Downstream tasks get counts and the results file path, never the messages themselves."""
        line = f"{summary['delivered']} of {summary['profiles']} alerts delivered, {summary['failed']} failed"
        if summary.get("failures_sample"):
            line += f"; e.g. {summary['failures_sample'][0]['key']}: {summary['failures_sample'][0]['reason']}"
        return line

    report(send_alerts.output)
