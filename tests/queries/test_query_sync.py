"""LQL queries over real HTTP: the emulator's /api/query routes, the hook's methods and LyticsQuerySyncOperator."""

from __future__ import annotations

import pytest
import requests
from airflow.providers.common.compat.sdk import AirflowException

from airflow_provider_lytics.client.errors import LyticsBadRequestError
from airflow_provider_lytics.errors import LyticsArgumentError
from airflow_provider_lytics.hooks.lytics import LyticsHook
from airflow_provider_lytics.operators.queries import LyticsQuerySyncOperator
from tests.integration.task_fakes import TI

QUERY = """-- crm rows onto profiles
-- @test {"record": {"Email": "A@X.io", "Plan": "PRO"}, "expect": {"email": "a@x.io", "plan": "pro", "orders": 1}}
SELECT
    email(Email)   AS email,
    tolower(Plan)  AS plan,
    count(*)       AS orders,
    sum(amount)    AS total_spent
FROM crm_orders INTO user BY email
ALIAS crm_orders
"""


@pytest.fixture
def hook(lytics_conn_env):
    hook = LyticsHook()
    yield hook
    hook.close()


def route_hits(emulator, method: str, route: str) -> int:
    stats = requests.get(f"{emulator.url}/_emulator/stats", timeout=5).json()
    return sum(e["count"] for e in stats["requests"] if e["method"] == method and e["route"] == route)


def test_hook_round_trip_and_rows_become_fields(hook, emulator):
    hook.validate_query(QUERY)
    assert hook.test_query(QUERY, {"Email": "B@x.io", "amount": 3}) == {"email": "b@x.io", "orders": "1",
                                                                       "total_spent": "3"}  # fmt: skip
    saved = hook.upsert_query(QUERY)
    assert (
        saved["alias"] == "crm_orders" and saved["from"] == "crm_orders" and saved["fields"]["orders"]["is_by"] is False
    )
    assert [q["alias"] for q in hook.list_queries()] == ["crm_orders"]
    assert hook.get_query("crm_orders")["id"] == saved["id"] == hook.get_query(saved["id"])["id"]
    hook.collect_json("crm_orders", [{"Email": "c@x.io", "Plan": "Gold", "amount": "5"},
                                     {"Email": "C@x.io", "amount": "7.5"}])  # fmt: skip
    entity = hook.get_entity("email", "c@x.io")
    assert (entity["plan"], entity["orders"], entity["total_spent"]) == ("gold", "2", "12.5")
    assert "Plan" not in entity and "amount" not in entity
    streams = {s["stream"]: s for s in hook.list_streams()}
    assert {f["name"] for f in streams["crm_orders"]["fields"]} >= {"Email", "Plan", "amount"}  # raw stays visible
    hook.delete_query("crm_orders")
    assert hook.get_query("crm_orders") is None


def test_invalid_queries_get_a_400_that_says_what_to_fix(hook):
    with pytest.raises(LyticsBadRequestError, match="function lower"):
        hook.validate_query("SELECT lower(a) AS a FROM s INTO user BY email ALIAS q")
    with pytest.raises(LyticsBadRequestError, match="needs ALIAS"):
        hook.upsert_query("SELECT email AS email FROM s INTO user BY email")
    assert hook.list_queries() == []


def test_raw_mode_stream_without_query_stays_off_profiles(hook, emulator):
    emulator.backend.store.unmapped = "raw"
    try:
        hook.collect_json("clicks", {"email": "d@x.io", "page": "/pricing"})
        assert hook.get_entity("email", "d@x.io") is None
        assert "clicks" in {s["stream"] for s in hook.list_streams()}
        hook.upsert_query("SELECT email AS email, page AS last_page FROM clicks INTO user BY email ALIAS clicks")
        hook.collect_json("clicks", {"email": "d@x.io", "page": "/signup"})
        assert hook.get_entity("email", "d@x.io")["last_page"] == "/signup"
    finally:
        emulator.backend.store.unmapped = "profile"


def _sync(tmp_path, **kwargs):
    return LyticsQuerySyncOperator(task_id="sync_queries", queries=["queries/*.lql"], **kwargs)


def test_operator_creates_then_sends_nothing_then_updates(lytics_conn_env, emulator, tmp_path, monkeypatch):
    (tmp_path / "queries").mkdir()
    lql = tmp_path / "queries" / "crm_orders.lql"
    lql.write_text(QUERY)
    dag = type("Dag", (), {"fileloc": str(tmp_path / "dag.py")})()
    ti = TI()
    first = _sync(tmp_path).execute({"ti": ti, "dag": dag})
    assert first["created"] == ["crm_orders"] and first["tests"] == 1
    assert ti.xcom["lytics_query_drift"] == [f"crm_orders: missing -> created from {lql}"]

    posts = route_hits(emulator, "POST", "/api/query")
    second = _sync(tmp_path).execute({"ti": TI(), "dag": dag})
    assert second["unchanged"] == ["crm_orders"] and second["created"] == second["updated"] == []
    assert route_hits(emulator, "POST", "/api/query") == posts  # the second run sends nothing

    lql.write_text(QUERY.replace("sum(amount)    AS total_spent", "max(amount)    AS largest"))
    ti3 = TI()
    third = _sync(tmp_path).execute({"ti": ti3, "dag": dag})
    assert third["updated"] == ["crm_orders"]
    assert "text differs (+1/-1 lines)" in ti3.xcom["lytics_query_drift"][0]
    assert "largest" in LyticsHook().get_query("crm_orders")["fields"]


def test_operator_changes_nothing_when_a_test_or_query_fails(lytics_conn_env, tmp_path):
    good = {"text": QUERY, "tests": [{"record": {"Email": "e@x.io"}, "expect": {"plan": "pro"}}]}
    bad = {"text": "SELECT nope(a) AS a FROM s INTO user BY email ALIAS broken"}
    with pytest.raises(AirflowException) as info:
        LyticsQuerySyncOperator(task_id="t", queries=[good, bad]).execute({"ti": TI()})
    message = str(info.value)
    assert "test 2: plan is None, expected 'pro'" in message and "broken): invalid LQL" in message
    assert "nothing was changed" in message
    assert LyticsHook().list_queries() == []


def test_operator_check_only_reports_drift_without_writing(lytics_conn_env):
    result = LyticsQuerySyncOperator(task_id="t", queries=[{"text": QUERY}], check_only=True).execute({"ti": TI()})
    assert result["created"] == ["crm_orders"] and result["check_only"] is True
    assert LyticsHook().list_queries() == []


def test_operator_rejects_unusable_sources(lytics_conn_env, tmp_path):
    with pytest.raises(LyticsArgumentError, match="no LQL file matches"):
        LyticsQuerySyncOperator(task_id="t", queries=[str(tmp_path / "none*.lql")]).execute({"ti": TI()})
    with pytest.raises(AirflowException, match="no ALIAS"):
        LyticsQuerySyncOperator(task_id="t", queries=[{"text": "SELECT a AS a FROM s BY a"}]).execute({"ti": TI()})
    twice = [{"text": QUERY}, {"text": QUERY}]
    with pytest.raises(AirflowException, match="share the ALIAS crm_orders"):
        LyticsQuerySyncOperator(task_id="t", queries=twice).execute({"ti": TI()})
