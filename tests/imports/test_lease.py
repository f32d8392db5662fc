"""Checkpoint leases (issue 14 item 9): one run at a time; a live holder is named; a dead one is taken over.

A fake clock makes every case deterministic (no sleeping, no races); the file store is the real one."""

from __future__ import annotations

import pytest

from airflow_provider_lytics.imports.checkpoint import FileCheckpointStore
from airflow_provider_lytics.imports.lease import CheckpointLease, Holder, ImportLeaseError


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def _lease(store, clock, *, dag="dag_a", try_number=1, wait=10.0, ttl=120.0, host="worker-1") -> CheckpointLease:
    holder = Holder(dag_id=dag, task_id="imp", run_id="r1", try_number=try_number, host=host)
    return CheckpointLease(store, holder, ttl_seconds=ttl, wait_seconds=wait, settle_seconds=1.0, clock=clock,
                           sleep=clock.sleep)  # fmt: skip


@pytest.fixture
def store(tmp_path):
    return FileCheckpointStore(tmp_path / "shared" / "ckpt.json")


def test_second_run_fails_naming_the_live_holder(store):
    clock = Clock()
    first = _lease(store, clock)
    first.acquire()
    first._stop.set()  # the test drives heartbeats itself
    second = _lease(store, clock, dag="dag_b", host="worker-2")
    with pytest.raises(ImportLeaseError) as info:
        second.acquire()
    text = str(info.value)
    assert "dag 'dag_a' task 'imp' run 'r1' try 1 on host 'worker-1'" in text
    assert "Waited 10 s" in text and str(store.path) in text
    first.check()  # the holder keeps its lease
    assert first.store.lease_load()["token"] == first.token


def test_second_run_waits_for_release(store):
    clock = Clock()
    first = _lease(store, clock)
    first.acquire()
    second = _lease(store, clock, dag="dag_b", wait=300)
    waits = []

    def sleep(seconds):  # the first run finishes while the second waits
        waits.append(seconds)
        clock.sleep(seconds)
        if len(waits) == 2:
            first.release()

    second.sleep = sleep
    second.acquire()
    assert store.lease_load()["token"] == second.token
    second.release()
    assert store.lease_load() is None


def test_stale_lease_is_taken_over_and_the_old_holder_stops(store):
    clock = Clock()
    dead = _lease(store, clock)
    dead.acquire()
    dead._stop.set()  # no more heartbeats: the holder died
    clock.now += 121
    taker = _lease(store, clock, dag="dag_b", wait=0)
    taker.acquire()
    assert store.lease_load()["token"] == taker.token
    with pytest.raises(ImportLeaseError, match=r"lost the lease .* to dag 'dag_b'"):
        dead.check()  # were it only paused, it would stop before writing the checkpoint
    dead.heartbeat()  # a lost lease is never refreshed
    assert store.lease_load()["token"] == taker.token


def test_heartbeat_keeps_a_slow_holder_alive(store):
    clock = Clock()
    holder = _lease(store, clock)
    holder.acquire()
    holder._stop.set()
    for _ in range(5):
        clock.now += 100
        holder.heartbeat()
    other = _lease(store, clock, dag="dag_b", wait=0)
    with pytest.raises(ImportLeaseError):
        other.acquire()


def test_a_retry_takes_over_from_its_earlier_try(store):
    clock = Clock()
    _lease(store, clock, try_number=1).acquire()
    retry = _lease(store, clock, try_number=2, wait=0)
    retry.acquire()
    assert store.lease_load()["holder"]["try_number"] == 2
    retry.release()


def test_racing_claims_leave_one_holder(store):
    """Two runs read a free lease, then both write their claim: after settling only the last writer holds it."""
    clock = Clock()
    a, b = _lease(store, clock), _lease(store, clock, dag="dag_b", wait=0)

    def b_claims_during_a_settle(seconds):
        store.lease_save(b._claim())  # b read "free" before a wrote, and writes within a's settle time
        clock.sleep(seconds)

    a.sleep = b_claims_during_a_settle
    a.wait = 0
    with pytest.raises(ImportLeaseError, match="dag 'dag_b'"):
        a.acquire()
    assert store.lease_load()["token"] == b.token


def test_bad_settings_are_refused(store):
    with pytest.raises(ValueError, match="ttl"):
        CheckpointLease(store, Holder(), ttl_seconds=0)
