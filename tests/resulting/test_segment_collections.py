"""Segment collections over real HTTP: the emulator's ``/api/segmentcollection`` routes through the sync hook."""

from __future__ import annotations

import pytest

from airflow_provider_lytics.client.errors import LyticsApiError, LyticsConfigError, LyticsNotFoundError
from airflow_provider_lytics.hooks.lytics import LyticsHook


@pytest.fixture
def hook(lytics_conn_env):
    hook = LyticsHook()
    hook.collect_json("crm", [{"email": f"u{i}@example.com", "plan": "pro" if i % 2 else "free"} for i in range(4)])
    hook.create_segment('FILTER plan = "pro" ALIAS pro_users')
    hook.create_segment('FILTER plan = "free" ALIAS free_users')
    yield hook
    hook.close()


def test_collection_lifecycle(hook):
    ids = {s["slug_name"]: s["id"] for s in hook.list_segments()}
    created = hook.create_segment_collection("Plans", ["free_users", ids["pro_users"]], description="by plan")
    assert created["name"] == "Plans" and created["slug_name"] == "plans" and created["description"] == "by plan"
    assert created["collection"] == [{"id": ids["free_users"], "order": 0}, {"id": ids["pro_users"], "order": 1}]
    assert [c["id"] for c in hook.list_segment_collections()] == [created["id"]]
    assert hook.get_segment_collection("plans")["id"] == created["id"]  # by slug too

    loaded = hook.get_segment_collection(created["id"], sideload=True)
    assert [item["segment"]["slug_name"] for item in loaded["collection"]] == ["free_users", "pro_users"]
    assert "segment" not in hook.get_segment_collection(created["id"])["collection"][0]

    updated = hook.update_segment_collection(created["id"], {"name": "Plans (pro first)",
                                                             "segments": ["pro_users", "free_users"]})  # fmt: skip
    assert updated["name"] == "Plans (pro first)" and updated["slug_name"] == "plans"
    assert [i["id"] for i in updated["collection"]] == [ids["pro_users"], ids["free_users"]]
    listed = hook.list_segment_collections(sideload=True)
    assert listed[0]["collection"][0]["segment"]["slug_name"] == "pro_users"

    hook.delete_segment_collection(created["id"])
    assert hook.list_segment_collections() == []
    with pytest.raises(LyticsNotFoundError, match="not found"):
        hook.get_segment_collection(created["id"])
    with pytest.raises(LyticsNotFoundError):
        hook.delete_segment_collection(created["id"])


def test_collection_refuses_bad_input(hook):
    with pytest.raises(LyticsApiError, match="does not exist") as err:
        hook.create_segment_collection("Bad", ["no_such_audience"])
    assert err.value.status == 400
    with pytest.raises(LyticsApiError, match="name is required"):
        hook.request("POST", "/api/segmentcollection", json_body={"collection": []}, safe=False)
    with pytest.raises(LyticsApiError, match="repeats segment"):
        hook.create_segment_collection("Twice", ["pro_users", "pro_users"])
    with pytest.raises(LyticsConfigError, match="not one string"):
        hook.create_segment_collection("One", "pro_users")
    hook.create_segment_collection("Plans", ["pro_users"])
    with pytest.raises(LyticsApiError, match="exists") as err:
        hook.create_segment_collection("Plans", ["free_users"])
    assert err.value.status == 409
    assert len(hook.list_segment_collections()) == 1


def test_deleted_segment_sideloads_as_none(hook):
    created = hook.create_segment_collection("Both", ["pro_users", "free_users"])
    hook.delete_segment(hook.get_segment("free_users")["id"])
    items = hook.get_segment_collection(created["id"], sideload=True)["collection"]
    assert items[0]["segment"]["slug_name"] == "pro_users" and items[1]["segment"] is None
