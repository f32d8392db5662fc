"""The lease on an incremental export's state: one run at a time, clear errors naming the holder, safe takeover
of a stale lease; over the local file system and the emulator's real SFTP server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading

import pytest

from airflow_provider_lytics.exports.destinations import LocalDestination
from airflow_provider_lytics.exports.errors import ExportLeaseError
from airflow_provider_lytics.exports.lease import ExportLease, LeaseInfo

NAME = ".lytics_export_state/weekly.lease.json"


def _lease(dest, **kw) -> ExportLease:
    return ExportLease(dest, NAME, export_name="weekly", **kw)


def test_second_holder_fails_naming_the_first(tmp_path) -> None:
    dest = LocalDestination(str(tmp_path))
    holder_says = rf"already running \(host .*, pid {os.getpid()}, run run-1"
    with _lease(dest, run="run-1"), pytest.raises(ExportLeaseError, match=holder_says):
        _lease(dest).acquire()
    with _lease(dest) as again:  # released: the next run gets it
        assert again.info is not None
    assert not (tmp_path / NAME).exists()


def test_waiting_is_bounded_by_the_injected_clock(tmp_path) -> None:
    dest = LocalDestination(str(tmp_path))
    now = [1000.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    with _lease(dest):
        waiter = _lease(dest, wait=5.0, clock=lambda: now[0], sleep=sleep)
        with pytest.raises(ExportLeaseError, match="already running"):
            waiter.acquire()
    assert 4.0 <= sum(slept) <= 6.0


def test_only_one_of_many_racing_runs_gets_it(tmp_path) -> None:
    dest = LocalDestination(str(tmp_path))
    barrier = threading.Barrier(8)
    won: list[ExportLease] = []
    lost: list[Exception] = []

    def contend() -> None:
        lease = _lease(dest)
        barrier.wait()
        try:
            lease.acquire()
            won.append(lease)
        except ExportLeaseError as exc:
            lost.append(exc)

    threads = [threading.Thread(target=contend) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(won) == 1 and len(lost) == 7
    won[0].release()


def _write(dest_dir, info: LeaseInfo) -> None:
    path = dest_dir / NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(info.dump())


def test_expired_lease_of_another_host_is_taken_over(tmp_path) -> None:
    dest = LocalDestination(str(tmp_path))
    _write(tmp_path, LeaseInfo("old", "other-host", 1, 0.0, 10.0, "dead run"))
    with _lease(dest, clock=lambda: 1000.0) as lease:
        assert json.loads((tmp_path / NAME).read_text())["token"] == lease.token
    assert sorted(p.name for p in (tmp_path / ".lytics_export_state").iterdir()) == []


def test_lease_of_a_dead_process_on_this_host_is_taken_over(tmp_path) -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = int(dead.stdout)
    dest = LocalDestination(str(tmp_path))
    lease = _lease(dest, clock=lambda: 1000.0)
    _write(tmp_path, LeaseInfo("old", lease.host, pid, 990.0, 5000.0, ""))
    lease.acquire()
    lease.release()


def test_takeover_gives_back_a_fresh_lease_created_meanwhile(tmp_path) -> None:
    """A judged the lease stale; before A moved it aside, B took it over and created a fresh one: A must not
    remove B's lease."""
    dest = LocalDestination(str(tmp_path))
    stale = LeaseInfo("old", "other-host", 1, 0.0, 10.0, "")
    b = _lease(dest, clock=lambda: 1000.0)
    b.acquire()  # nothing there yet: B holds a fresh lease
    a = _lease(dest, clock=lambda: 1000.0)
    a._take_over(stale)  # A acts on its outdated read
    assert json.loads((tmp_path / NAME).read_text())["token"] == b.token
    b.check()
    b.release()


def test_a_lost_lease_stops_the_state_from_being_stored(tmp_path) -> None:
    dest = LocalDestination(str(tmp_path))
    lease = _lease(dest)
    lease.acquire()
    (tmp_path / NAME).write_bytes(LeaseInfo("thief", "h", 1, 0.0, 1e12, "").dump())
    with pytest.raises(ExportLeaseError, match="lost its lease"):
        lease.check()
    lease.release()
    assert json.loads((tmp_path / NAME).read_text())["token"] == "thief"  # not ours: left alone
