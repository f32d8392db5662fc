"""LyticsAsyncHook against the emulator: same envelopes, same errors, same retry policy as the sync hook."""

from __future__ import annotations

import pytest
import requests

from airflow_provider_lytics.client import errors
from airflow_provider_lytics.client.retry import RetryPolicy
from airflow_provider_lytics.hooks.lytics import LyticsHook
from airflow_provider_lytics.hooks.lytics_async import LyticsAsyncHook

FAST = RetryPolicy(max_attempts=4, base_delay=0.01, max_delay=0.05, max_total=30)


@pytest.fixture
def sync_hook(lytics_conn_env):
    return LyticsHook(retry_policy=FAST)


async def test_job_size_scan_and_entity(sync_hook, emulator):
    sync_hook.collect_json("web", [{"email": f"a{i}@example.com", "plan": "pro"} for i in range(120)])
    seg = sync_hook.create_segment('FILTER plan = "pro" ALIAS pro')
    job = sync_hook.create_job("sftp_export", {"name": "export", "config": {"segment_id": seg["id"]}})
    async with LyticsAsyncHook(retry_policy=FAST) as hook:
        assert (await hook.get_job(job["id"]))["id"] == job["id"]
        assert await hook.segment_size(seg["id"]) == 120
        first = await hook.scan_page("pro", limit=100)
        second = await hook.scan_page("pro", start=first.next_cursor, limit=100)
        assert len(first.records) == 100 and len(second.records) == 20 and first.total == 120
        assert not second.next_cursor
        assert (await hook.get_entity("email", "a1@example.com"))["plan"] == "pro"
        assert await hook.get_entity("email", "zz@example.com") is None
        with pytest.raises(errors.LyticsNotFoundError):
            await hook.get_job("0" * 32)


async def test_async_hook_honours_retry_after(lytics_conn_env, emulator):
    requests.post(
        f"{emulator.url}/_emulator/faults",
        json={"route": "/api/account", "method": "GET", "kind": "status", "status": 429, "retry_after": 3, "times": 2},
        timeout=5,
    ).raise_for_status()
    waits: list[float] = []

    async def record(seconds: float) -> None:
        waits.append(seconds)

    async with LyticsAsyncHook(retry_policy=FAST) as hook:
        hook._sleep = record
        assert await hook.get_account()
    assert waits == [3.0, 3.0]


async def test_async_hook_gives_up_with_typed_error(lytics_conn_env, emulator):
    requests.post(
        f"{emulator.url}/_emulator/faults",
        json={"route": "/api/account", "method": "GET", "kind": "status", "status": 503},
        timeout=5,
    ).raise_for_status()

    async def no_sleep(seconds: float) -> None:
        return None

    async with LyticsAsyncHook(retry_policy=FAST) as hook:
        hook._sleep = no_sleep
        with pytest.raises(errors.LyticsServerError) as caught:
            await hook.get_account()
    assert caught.value.attempts == FAST.max_attempts
    assert emulator.token not in str(caught.value)
