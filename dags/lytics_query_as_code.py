"""LQL query as code: ship the query with the import, so the imported rows become profile fields.

``sync_query`` validates ``queries/web_orders.lql``, runs the sample tests written in the file (``-- @test``
lines) and upserts it by its ALIAS only when its text changed (a second run sends nothing). ``load_orders``
imports the orders CSV into the stream ``web_orders``; the query turns each row into fields such as ``orders``
(count), ``total_spent`` (sum), ``categories`` (set) and ``first_order`` (oldest). ``verify_profile`` reads one
shopper's profile back and checks the mapped fields are there and the raw columns are not.

Needs ``lytics_default``. No logical date is used (runs triggered through the REST API have none): the run is
identified by ``run_id``, which the import stamps on every row.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from airflow.providers.common.compat.sdk import Param, dag, task

from airflow_provider_lytics.operators.imports import LocalFilesToLyticsOperator
from airflow_provider_lytics.operators.queries import LyticsQuerySyncOperator

ORDERS_CSV = str(Path(__file__).parent / "data" / "web_orders.csv")


@dag(
    dag_id="lytics_query_as_code",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    params={
        "orders_csv": Param(ORDERS_CSV, type="string", description="CSV of orders (Email, Plan, amount, ...)"),
        "check_email": Param(
            "shopper3@example.com",
            type="string",
            description="a shopper in the CSV whose profile is read back to verify the mapping",
        ),
    },
    tags=["lytics", "import", "lql"],
    doc_md=__doc__,
)
def lytics_query_as_code() -> None:
    sync_query = LyticsQuerySyncOperator(task_id="sync_query", queries=["queries/web_orders.lql"])
    load_orders = LocalFilesToLyticsOperator(
        task_id="load_orders",
        paths="{{ params.orders_csv }}",
        stream="web_orders",
        timestamp_field="ordered_at",
        constant_fields={"import_run": "{{ run_id }}"},
        max_rejected_rows=0,
    )

    @task
    def verify_profile(params: dict | None = None, run_id: str | None = None) -> dict:
        """The shopper's profile carries the query's fields, stamped by this run, and none of the raw columns."""
        import csv

        from airflow_provider_lytics.hooks.lytics import LyticsHook

        email = str(params["check_email"]).lower()
        with open(params["orders_csv"], newline="") as handle:
            rows = [r for r in csv.DictReader(handle) if r["Email"].strip().lower() == email]
        if not rows:
            raise ValueError(f"check_email {email!r} has no rows in {params['orders_csv']}: pick a shopper from it")
        profile = LyticsHook().get_entity("email", email)
        if profile is None:
            raise ValueError(f"no profile for {email}: the query did not map the imported rows")
        problems = []
        if profile.get("last_import_run") != run_id:
            problems.append(f"last_import_run is {profile.get('last_import_run')!r}, expected this run {run_id!r}")
        orders = int(profile.get("orders") or 0)
        if orders < len(rows) or orders % len(rows):  # each run of the DAG adds the file's orders again
            problems.append(f"orders is {orders}, expected a multiple of the {len(rows)} rows in the file")
        raw = sorted({"Email", "Plan", "amount", "category"} & set(profile))
        if raw:
            problems.append(f"raw columns reached the profile: {raw}")
        if problems:
            raise ValueError("the LQL mapping is not what the query says: " + "; ".join(problems))
        return {"email": email, "orders": orders, "total_spent": profile.get("total_spent"),
                "categories": profile.get("categories"), "first_order": profile.get("first_order")}  # fmt: skip

    sync_query >> load_orders >> verify_profile()


lytics_query_as_code()
