"""Triggers driven with an event loop against the emulator: serialize round trip, success, failure, timeout."""

from __future__ import annotations

import asyncio
import importlib
import time

import pytest

from airflow_provider_lytics.hooks.lytics import LyticsHook
from airflow_provider_lytics.triggers.audience import (
    LyticsAudienceChangeEventTrigger,
    LyticsAudienceMembershipTrigger,
    LyticsAudienceSizeTrigger,
)
from airflow_provider_lytics.triggers.jobs import LyticsJobTrigger


def _round_trip(trigger):
    path, kwargs = trigger.serialize()
    module, _, name = path.rpartition(".")
    clone = getattr(importlib.import_module(module), name)(**kwargs)
    assert clone.serialize() == (path, kwargs)
    return clone


async def _first_event(trigger, timeout=15):
    gen = trigger.run()
    try:
        return (await asyncio.wait_for(gen.__anext__(), timeout)).payload
    finally:
        await gen.aclose()


def _job_trigger(job_id, **kwargs):
    kwargs.setdefault("watermark", time.time() - 1)
    kwargs.setdefault("end_time", time.time() + 20)
    return _round_trip(LyticsJobTrigger(job_id=job_id, poll_interval=0.05, **kwargs))


async def test_job_trigger_success(lytics_conn_env):
    before = time.time()  # the watermark precedes the run whatever the machine's load: no race with a fast job
    job = await asyncio.to_thread(LyticsHook().create_job, "lytics_simple_csv_export", {"name": "e", "config": {}})
    event = await _first_event(_job_trigger(job["id"], watermark=before))
    assert event["status"] == "success" and event["job_id"] == job["id"] and event["job_status"] == "completed"


async def test_job_trigger_failure_carries_logs(lytics_conn_env, emulator):
    hook = LyticsHook()
    body = {"name": "e", "config": {}}
    job = await asyncio.to_thread(hook.create_job, "lytics_simple_csv_export", body, run_job=False)
    emulator.backend.jobs.inject(job["id"], fail=True)  # before the job starts: its first run is the failing one
    before = time.time()
    await asyncio.to_thread(hook.resume_job, job["id"])
    event = await _first_event(_job_trigger(job["id"], watermark=before))
    assert event["status"] == "failed" and "injected failure" in event["message"]


async def test_job_trigger_timeout_stops_polling(lytics_conn_env, emulator):
    job = await asyncio.to_thread(LyticsHook().create_job, "sftp_import", {"name": "s", "config": {}}, run_job=False)
    emulator.stats.clear()
    trigger = _job_trigger(job["id"], end_time=time.time() + 0.3, fail_on_paused=False)
    event = await _first_event(trigger)
    assert event["status"] == "timeout"
    polls = sum(r["count"] for r in emulator.stats.snapshot()["requests"] if r["method"] == "GET")
    await asyncio.sleep(0.3)
    assert sum(r["count"] for r in emulator.stats.snapshot()["requests"] if r["method"] == "GET") == polls


async def test_job_trigger_missing_job_and_bad_connection(lytics_conn_env, monkeypatch):
    event = await _first_event(_job_trigger("0" * 32))
    assert event["status"] == "failed" and "not found" in event["message"]
    monkeypatch.setenv("AIRFLOW_CONN_LYTICS_DEFAULT", '{"conn_type": "lytics", "host": "http://127.0.0.1:9"}')
    event = await _first_event(_job_trigger("x"))
    assert event["status"] == "error" and "token" in event["message"]


async def test_job_trigger_on_kill_pauses(lytics_conn_env):
    job = await asyncio.to_thread(LyticsHook().create_job, "sftp_import", {"name": "k", "config": {}})
    await _job_trigger(job["id"], cancel_action="pause").on_kill()
    assert (await asyncio.to_thread(LyticsHook().get_job, job["id"]))["status"] == "paused"
    with pytest.raises(ValueError, match="cancel_action"):
        LyticsJobTrigger(job_id="j", watermark=0, end_time=1, cancel_action="explode")


async def _polled(emulator, times=1):
    """Wait until the emulator has answered ``times`` more GET requests (a trigger's polls) than now.

    Synchronises on what the trigger did, not on a sleep: a slow machine only makes it wait longer.
    """

    def gets() -> int:
        return sum(r["count"] for r in emulator.stats.snapshot()["requests"] if r["method"] in ("GET", "POST"))

    target = gets() + times
    async with asyncio.timeout(60):
        while gets() < target:
            await asyncio.sleep(0.01)


def _ingest(emulator, records):
    emulator.backend.store.ingest("default", records)


def _segment(emulator, ql):
    from airflow_provider_lytics.emulator.backend import DEFAULT_ACCOUNT

    doc, _ = emulator.backend.store.segments.create({"segment_ql": ql}, DEFAULT_ACCOUNT, rename_taken_slug=False)
    return doc


async def test_size_trigger_success_and_timeout(lytics_conn_env, emulator):
    _ingest(emulator, [{"email": f"u{i}@x.com", "plan": "gold"} for i in range(3)])
    seg = _segment(emulator, 'FILTER plan = "gold" FROM user ALIAS gold')
    ok = _round_trip(
        LyticsAudienceSizeTrigger(segment="gold", threshold=3, end_time=time.time() + 10, poll_interval=0.05)
    )
    assert (await _first_event(ok))["size"] == 3
    late = _round_trip(
        LyticsAudienceSizeTrigger(segment=seg["id"], threshold=10, end_time=time.time() + 0.2, poll_interval=0.05)
    )
    event = await _first_event(late)
    assert event["status"] == "timeout" and event["size"] == 3


async def test_membership_trigger_counts_enters_and_exits(lytics_conn_env, emulator):
    _ingest(emulator, [{"email": f"u{i}@x.com", "plan": "gold"} for i in range(3)])
    _segment(emulator, 'FILTER plan = "gold" FROM user ALIAS gold')
    trigger = _round_trip(
        LyticsAudienceMembershipTrigger(segment="gold", end_time=time.time() + 10, min_changes=3, poll_interval=0.05)
    )
    task = asyncio.ensure_future(_first_event(trigger))
    await _polled(emulator, 2)  # the baseline is taken (first poll) and compared once (second)
    _ingest(
        emulator,
        [
            {"email": "u0@x.com", "plan": "free"},
            {"email": "n1@x.com", "plan": "gold"},
            {"email": "n2@x.com", "plan": "gold"},
        ],
    )
    event = await task
    assert event == {"status": "success", "segment": "gold", "entered": 2, "left": 1, "size": 4}


async def test_event_trigger_yields_once_per_change(lytics_conn_env, emulator):
    _ingest(emulator, [{"email": "a@x.com", "plan": "gold"}])
    _segment(emulator, 'FILTER plan = "gold" FROM user ALIAS gold')
    trigger = _round_trip(LyticsAudienceChangeEventTrigger(segment="gold", change="enter", poll_interval=0.05))
    gen = trigger.run()
    try:
        first = asyncio.ensure_future(gen.__anext__())
        await _polled(emulator, 2)  # baseline taken, then one unchanged poll
        assert not first.done()
        _ingest(emulator, [{"email": "b@x.com", "plan": "gold"}])
        assert (await asyncio.wait_for(first, 10)).payload["entered"] == 1
        _ingest(emulator, [{"email": "a@x.com", "plan": "free"}])  # an exit: not what this trigger watches
        _ingest(emulator, [{"email": "c@x.com", "plan": "gold"}])
        second = (await asyncio.wait_for(gen.__anext__(), 10)).payload
        assert second["entered"] == 1 and second["segment"] == "gold"
    finally:
        await gen.aclose()


def test_event_trigger_is_an_event_trigger_on_airflow_3():
    base = pytest.importorskip("airflow.triggers.base")
    if hasattr(base, "BaseEventTrigger"):
        assert issubclass(LyticsAudienceChangeEventTrigger, base.BaseEventTrigger)
