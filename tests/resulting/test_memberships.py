"""Audience memberships on profiles over real HTTP: scan rows carry ``segments`` as Lytics's do, and the entity
lookup's ``segments``/``allsegments``/``meta``/``fields`` options work through both hooks."""

from __future__ import annotations

import asyncio

import pytest

from airflow_provider_lytics.client.entity import entity_params
from airflow_provider_lytics.hooks.lytics import LyticsHook
from airflow_provider_lytics.hooks.lytics_async import LyticsAsyncHook


@pytest.fixture
def hook(lytics_conn_env):
    hook = LyticsHook()
    hook.collect_json("crm", [{"email": f"u{i}@example.com", "plan": "pro" if i < 3 else "free", "ltv": i * 100}
                              for i in range(6)])  # fmt: skip
    hook.create_segment('FILTER plan = "pro" ALIAS pro_users')
    hook.create_segment("FILTER ltv >= 400 ALIAS high_ltv")
    hook.create_segment("FILTER AND (INCLUDE pro_users, ltv >= 200) ALIAS pro_and_ltv")
    yield hook
    hook.close()


def test_scan_rows_carry_segment_slugs(hook):
    rows = {r["email"]: r for r in hook.scan(filter_ql="FILTER * FROM user")}
    assert rows["u0@example.com"]["segments"] == ["all", "pro_users"]
    assert rows["u2@example.com"]["segments"] == ["all", "pro_users", "pro_and_ltv"]
    assert rows["u5@example.com"]["segments"] == ["all", "high_ltv"]
    projected = list(hook.scan("pro_users", fields=["email"]))
    assert all(set(r) == {"email"} for r in projected)  # a projection without 'segments' leaves them out
    asked = {r["email"]: r["segments"] for r in hook.scan("high_ltv", fields=["email", "segments"])}
    assert asked == {"u4@example.com": ["all", "high_ltv"], "u5@example.com": ["all", "high_ltv"]}


def test_scan_segments_follow_data_changes(hook):
    hook.collect_json("crm", {"email": "u5@example.com", "plan": "pro"})
    row = next(r for r in hook.scan(filter_ql="FILTER * FROM user") if r["email"] == "u5@example.com")
    assert row["segments"] == ["all", "pro_users", "high_ltv", "pro_and_ltv"]


def test_entity_options_in_the_sync_hook(hook):
    ids = {s["slug_name"]: s["id"] for s in hook.list_segments()}
    default = hook.get_entity("email", "u2@example.com")
    assert default["segments"] == ["all", "pro_users", "pro_and_ltv"] and "segments_all" not in default
    assert "segments" not in hook.get_entity("email", "u2@example.com", segments=False)
    both = hook.get_entity("email", "u2@example.com", allsegments=True)
    assert both["segments_all"] == [ids["pro_users"], ids["pro_and_ltv"]]
    only = hook.get_entity("email", "u2@example.com", fields=["plan"], segments=False)
    assert only == {"plan": "pro"}
    profile, meta = hook.lookup_entity("email", "u2@example.com")
    assert profile["email"] == "u2@example.com" and "email" in meta["by_fields"]
    assert hook.lookup_entity("email", "u2@example.com", meta=False)[1] == {}
    assert hook.lookup_entity("email", "nobody@example.com") == (None, {})


def test_entity_options_in_the_async_hook(hook):
    async def run():
        async with LyticsAsyncHook() as ahook:
            found = await ahook.get_entity("email", "u4@example.com", allsegments=True, fields=["ltv"])
            profile, meta = await ahook.lookup_entity("email", "u4@example.com", segments=False)
            missing = await ahook.get_entity("email", "nobody@example.com")
            return found, profile, meta, missing

    found, profile, meta, missing = asyncio.run(run())
    assert found["ltv"] == "400" and found["segments"] == ["all", "high_ltv"] and len(found["segments_all"]) == 1
    assert "segments" not in profile and meta["name"] == "user"
    assert missing is None


def test_entity_params_refuse_a_bare_string():
    with pytest.raises(ValueError, match="list of field names"):
        entity_params("email")
    assert entity_params(["a", "b"], segments=False, meta=True) == {"fields": "a,b", "segments": "false",
                                                                     "meta": "true"}  # fmt: skip
