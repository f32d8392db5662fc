"""Resumed scan pages: served on the event loop when the store is free, in a worker thread while it is busy."""

from __future__ import annotations

import threading

from starlette.testclient import TestClient

from airflow_provider_lytics.emulator.backend import Backend

CSV = {"Content-Type": "application/csv"}
TEXT = {"Content-Type": "text/plain"}


def test_resumed_page_waits_for_a_busy_store_without_blocking_other_requests(
    client: TestClient, backend: Backend
) -> None:
    body = "email,user_id\n" + "".join(f"user{i}@example.com,u{i}\n" for i in range(50))
    client.post("/collect/bulk/crm", content=body, headers=CSV)
    first = client.post("/api/segment/scan?limit=20", content="FILTER *", headers=TEXT).json()
    resume = f"/api/segment/scan?limit=20&start={first['_next']}"
    in_place = client.post(resume, content="FILTER *", headers=TEXT)
    assert in_place.status_code == 200 and len(in_place.json()["data"]) == 20
    result: dict = {}
    waiter = threading.Thread(target=lambda: result.update(page=client.post(resume, content="FILTER *", headers=TEXT)))
    with backend.store.locked_if_free() as held:  # this thread holds the store, as a long commit would
        assert held
        waiter.start()
        waiter.join(0.2)
        assert waiter.is_alive() and "page" not in result  # the page waits for the store ...
        assert client.get("/api/schema/content").status_code == 200  # ... and the event loop still answers
        with backend.store.locked_if_free() as again:
            assert again  # re-entrant for the holder
    waiter.join(60)
    page = result["page"].json()
    assert result["page"].status_code == 200 and page == {**in_place.json(), "request_id": page["request_id"]}
