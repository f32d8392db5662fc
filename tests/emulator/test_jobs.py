"""The emulator's jobs engine (state machine on an injected clock) and its HTTP routes (through a real ASGI app)."""

from __future__ import annotations

import json
import re
import threading
from datetime import datetime, timezone
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.testclient import TestClient

from airflow_provider_lytics.emulator.backend import DEFAULT_ACCOUNT
from airflow_provider_lytics.emulator.catalog import PROVIDERS, WORKFLOWS
from airflow_provider_lytics.emulator.clock import EmulatorClock
from airflow_provider_lytics.emulator.job_errors import JobError, JobNotFound, RateLimited, WorkflowNotFound
from airflow_provider_lytics.emulator.job_time import parse_duration, quiet_window_end
from airflow_provider_lytics.emulator.jobs import JobEngine, JobTimings
from airflow_provider_lytics.emulator.jobs_routes import routes
from airflow_provider_lytics.emulator.persistence import StateDB

ACCOUNT = DEFAULT_ACCOUNT.id
T0 = datetime(2026, 3, 2, 12, 0, tzinfo=timezone.utc).timestamp()


class FakeClock:
    def __init__(self, start: float = T0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def timings(**overrides: Any) -> JobTimings:
    base = {
        "initializing": 1.0,
        "running": 2.0,
        "sleep_between_runs": 5.0,
        "fault_backoff": 10.0,
        "fault_backoff_max": 40.0,
        "max_faults": 3,
        "creations_per_hour": None,
    }
    base.update(overrides)
    return JobTimings(**base)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def engine(clock: FakeClock):
    eng = JobEngine(StateDB(None), timings=timings(), clock=clock, background=False)
    yield eng
    eng.close()


def new_job(engine: JobEngine, workflow: str = "sftp_import", **body: Any) -> dict:
    payload = {"name": "job", "config": {}, **body}
    return engine.create(ACCOUNT, payload, workflow, run_job=body.pop("run_job", True))


def status(engine: JobEngine, job_id: str) -> str:
    job = engine.get(ACCOUNT, job_id)
    assert job is not None
    return job["status"]


# -- state machine ------------------------------------------------------------------------------------------------


def test_one_shot_job_runs_once_then_completes(engine: JobEngine, clock: FakeClock) -> None:
    job = new_job(engine, "lytics_simple_csv_export", config={"segment_id": "abc"})
    assert re.fullmatch(r"[0-9a-f]{32}", job["id"])
    assert job["status"] == "initializing"
    assert job["workflow_id"] == WORKFLOWS["lytics_simple_csv_export"].id
    clock.advance(1.0)
    assert status(engine, job["id"]) == "running"
    clock.advance(1.9)
    assert status(engine, job["id"]) == "running"
    clock.advance(0.1)
    assert status(engine, job["id"]) == "completed"
    clock.advance(100)
    assert status(engine, job["id"]) == "completed"
    messages = [e["message"] for e in engine.logs(ACCOUNT, job["id"])]
    assert messages == ["job created", "run 1 started", "run 1 completed", "job completed"]
    assert engine.list(ACCOUNT) == []
    assert [j["id"] for j in engine.list(ACCOUNT, show_completed=True)] == [job["id"]]


def test_continuous_job_sleeps_between_runs(engine: JobEngine, clock: FakeClock) -> None:
    job = new_job(engine, "sftp_import")
    clock.advance(3.0)  # 1 s initializing + 2 s running
    got = engine.get(ACCOUNT, job["id"], show_state=True)
    assert got["status"] == "sleeping"
    assert got["sleep_until"] == datetime.fromtimestamp(T0 + 8, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    assert got["state"]["runs"] == 1
    clock.advance(5.0)
    assert status(engine, job["id"]) == "running"
    clock.advance(2.0)
    got = engine.get(ACCOUNT, job["id"], show_state=True)
    assert (got["status"], got["state"]["runs"]) == ("sleeping", 2)


def test_config_overrides_workflow_default_continuity(engine: JobEngine, clock: FakeClock) -> None:
    once = new_job(engine, "sftp_import", config={"continuous": False})
    forever = new_job(engine, "lytics_simple_csv_export", config={"continuous_update": True})
    clock.advance(3.0)
    assert status(engine, once["id"]) == "completed"
    assert status(engine, forever["id"]) == "sleeping"


def test_missed_runs_collapse_after_a_long_gap(engine: JobEngine, clock: FakeClock) -> None:
    job = new_job(engine, "sftp_import")
    clock.advance(86_400)
    assert status(engine, job["id"]) == "running"
    clock.advance(2.0)
    got = engine.get(ACCOUNT, job["id"], show_state=True)
    assert got["state"]["runs"] == 1  # one run now, not 12,000 catch-up runs
    clock.advance(86_400)
    assert status(engine, job["id"]) == "running"
    started = [e for e in engine.logs(ACCOUNT, job["id"]) if e["message"].endswith("started")]
    assert len(started) == 2


def test_pause_and_resume(engine: JobEngine, clock: FakeClock) -> None:
    job = new_job(engine)
    clock.advance(3.0)
    paused = engine.command(ACCOUNT, job["id"], "pause")
    assert paused["status"] == "paused"
    clock.advance(60)
    assert status(engine, job["id"]) == "paused"
    assert engine.command(ACCOUNT, job["id"], "pause")["status"] == "paused"  # idempotent
    assert engine.command(ACCOUNT, job["id"], "resume")["status"] == "initializing"
    clock.advance(1.0)
    assert status(engine, job["id"]) == "running"
    with pytest.raises(JobError, match="not paused"):
        engine.command(ACCOUNT, job["id"], "resume")


def test_pause_for_a_duration_resumes_by_itself(engine: JobEngine, clock: FakeClock) -> None:
    job = new_job(engine)
    got = engine.command(ACCOUNT, job["id"], "pause", duration=parse_duration("1m"))
    assert got["status"] == "paused" and got["sleep_until"] is not None
    clock.advance(59)
    assert status(engine, job["id"]) == "paused"
    clock.advance(1)
    assert status(engine, job["id"]) == "initializing"


def test_run_job_false_waits_until_resumed_or_released(engine: JobEngine, clock: FakeClock) -> None:
    job = new_job(engine, run_job=False)
    assert job["status"] == "paused"
    clock.advance(100)
    assert status(engine, job["id"]) == "paused"
    assert engine.command(ACCOUNT, job["id"], "release")["status"] == "running"


def test_release_starts_a_sleeping_job_now(engine: JobEngine, clock: FakeClock) -> None:
    job = new_job(engine)
    clock.advance(3.0)
    assert status(engine, job["id"]) == "sleeping"
    assert engine.command(ACCOUNT, job["id"], "release")["status"] == "running"


def test_faults_back_off_then_recover(engine: JobEngine, clock: FakeClock) -> None:
    job = new_job(engine)
    engine.inject(job["id"], faults=2)
    clock.advance(3.0)
    got = engine.get(ACCOUNT, job["id"])
    assert got["status"] == "fault-1"
    assert got["sleep_until"] == datetime.fromtimestamp(T0 + 13, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    clock.advance(10.0)
    assert status(engine, job["id"]) == "fault-1"  # the retry run is under way, still erroring
    clock.advance(2.0)
    assert status(engine, job["id"]) == "fault-2"  # back-off doubles: 20 s
    clock.advance(19.9)
    assert status(engine, job["id"]) == "fault-2"
    clock.advance(0.1 + 2.0)
    assert status(engine, job["id"]) == "sleeping"
    plain = engine.logs(ACCOUNT, job["id"])
    detailed = engine.logs(ACCOUNT, job["id"], include_errors=True)
    assert all(entry["level"] != "error" for entry in plain)
    errors = [entry for entry in detailed if entry["level"] == "error"]
    assert [e["context"]["consecutive_errors"] for e in errors] == [1, 2]
    assert {e["code"] for e in errors} == {"JOB-FAULT-022"}
    stamps = [e["timestamp"] for e in detailed]
    assert stamps == sorted(stamps)


def test_too_many_faults_fail_the_job_and_bounce_restarts_it(engine: JobEngine, clock: FakeClock) -> None:
    job = new_job(engine)
    engine.inject(job["id"], faults=5)
    clock.advance(3.0)  # error 1, back-off 10
    clock.advance(12.0)
    assert status(engine, job["id"]) == "fault-2"  # back-off 20
    clock.advance(22.0)
    assert status(engine, job["id"]) == "failed"  # max_faults = 3
    logs = engine.logs(ACCOUNT, job["id"], include_errors=True)
    assert logs[-1]["message"] == "job failed after 3 consecutive errors"
    with pytest.raises(JobError, match="failed"):
        engine.command(ACCOUNT, job["id"], "pause")
    assert engine.command(ACCOUNT, job["id"], "bounce")["status"] == "initializing"
    clock.advance(3.0)  # two injected faults are still pending
    assert status(engine, job["id"]) == "fault-1"


def test_injected_failure_fails_at_once(engine: JobEngine, clock: FakeClock) -> None:
    job = new_job(engine)
    engine.inject(job["id"], fail=True)
    clock.advance(3.0)
    assert status(engine, job["id"]) == "failed"
    with pytest.raises(JobNotFound):
        engine.inject("0" * 32, faults=1)


def test_kill_soft_deletes(engine: JobEngine, clock: FakeClock) -> None:
    job = new_job(engine)
    killed = engine.command(ACCOUNT, job["id"], "kill")
    assert (killed["status"], killed["deleted"]) == ("deleted", True)
    clock.advance(100)
    assert status(engine, job["id"]) == "deleted"
    assert engine.list(ACCOUNT) == []
    assert engine.list(ACCOUNT, show_deleted=True) == []
    assert engine.list(ACCOUNT, show_completed=True) == []
    assert len(engine.list(ACCOUNT, show_deleted=True, show_completed=True)) == 1
    assert len(engine.list(ACCOUNT, show_all=True)) == 1
    assert engine.logs(ACCOUNT) == []  # the account-wide log leaves killed jobs out
    assert engine.command(ACCOUNT, job["id"], "kill")["status"] == "deleted"
    for cmd in ("pause", "resume", "bounce", "release"):
        with pytest.raises(JobError, match="killed"):
            engine.command(ACCOUNT, job["id"], cmd)


def test_spec_vocabulary(clock: FakeClock) -> None:
    eng = JobEngine(StateDB(None), timings=timings(vocabulary="spec"), clock=clock, background=False)
    try:
        job = new_job(eng)
        assert job["status"] == "runnable"
        eng.inject(job["id"], faults=1)
        clock.advance(3.0)
        assert eng.get(ACCOUNT, job["id"])["status"] == "fault"
        assert eng.command(ACCOUNT, job["id"], "kill")["status"] == "killed"
    finally:
        eng.close()
    with pytest.raises(ValueError, match="vocabulary"):
        JobTimings(vocabulary="colloquial")


def test_quiet_window_delays_runs(engine: JobEngine, clock: FakeClock) -> None:
    clock.now = datetime(2026, 3, 2, 2, 30, tzinfo=timezone.utc).timestamp()
    job = new_job(engine, quiet_time_of_day="02:00", quiet_timezone="UTC", quiet_period=2)
    clock.advance(1.0)
    got = engine.get(ACCOUNT, job["id"])
    assert (got["status"], got["sleep_until"]) == ("sleeping", "2026-03-02T04:00:00.000Z")
    clock.now = datetime(2026, 3, 2, 4, 0, tzinfo=timezone.utc).timestamp()
    assert status(engine, job["id"]) == "running"


def test_quiet_window_end_handles_midnight_and_time_zones() -> None:
    at = datetime(2026, 7, 1, 1, 0, tzinfo=timezone.utc).timestamp()
    end = quiet_window_end(at, "23:00", "UTC", 3)
    assert end == datetime(2026, 7, 1, 2, 0, tzinfo=timezone.utc).timestamp()
    assert quiet_window_end(at, "23:00", "UTC", 1) is None
    # 02:00 New York (EDT, UTC-4) for 1 h is 06:00-07:00 UTC
    ny = datetime(2026, 7, 1, 6, 30, tzinfo=timezone.utc).timestamp()
    assert (
        quiet_window_end(ny, "02:00", "America/New_York", 1)
        == datetime(2026, 7, 1, 7, 0, tzinfo=timezone.utc).timestamp()
    )
    assert quiet_window_end(ny, "02:00", "UTC", 1) is None


def test_expires_at_completes_the_job(engine: JobEngine, clock: FakeClock) -> None:
    expires = datetime.fromtimestamp(T0 + 20, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    job = new_job(engine, expires_at=expires)
    clock.advance(19)
    assert status(engine, job["id"]) != "completed"
    clock.advance(1)
    assert status(engine, job["id"]) == "completed"


def test_runner_counts_land_in_the_log(engine: JobEngine, clock: FakeClock) -> None:
    seen: list[dict] = []

    def runner(job: dict) -> dict:
        seen.append(job)
        return {"added": 5, "omitted": 2, "removed": 1, "files": 3}

    engine.register_runner("sftp-import", runner)
    job = new_job(engine, config={"stream": "s"})
    clock.advance(1.0)
    assert status(engine, job["id"]) == "running"
    assert engine.wait_for_runners(5)
    clock.advance(2.0)
    assert status(engine, job["id"]) == "sleeping"
    assert seen[0]["id"] == job["id"] and seen[0]["config"] == {"stream": "s"}
    done = [e for e in engine.logs(ACCOUNT, job["id"]) if e["message"] == "run 1 completed"]
    assert done[0]["context"] == {"added": 5, "omitted": 2, "removed": 1, "files": 3}
    assert engine.get(ACCOUNT, job["id"], show_state=True)["state"]["last_run_counts"]["added"] == 5


def test_slow_runner_keeps_the_job_running_and_errors_become_faults(engine: JobEngine, clock: FakeClock) -> None:
    gate = threading.Event()
    calls = []

    def runner(job: dict) -> dict:
        calls.append(job["id"])
        if len(calls) == 1:
            gate.wait(5)
            return {"added": 1}
        raise RuntimeError("destination refused the upload")

    engine.register_runner("sftp_export", runner)
    job = new_job(engine, "sftp_export")
    clock.advance(10.0)  # far past the nominal run length
    assert status(engine, job["id"]) == "running"
    gate.set()
    assert engine.wait_for_runners(5)
    assert status(engine, job["id"]) == "sleeping"
    clock.advance(5.0)
    assert status(engine, job["id"]) == "running"
    assert engine.wait_for_runners(5)
    clock.advance(2.0)
    assert status(engine, job["id"]) == "fault-1"
    errors = [e for e in engine.logs(ACCOUNT, job["id"], include_errors=True) if e["level"] == "error"]
    assert "RuntimeError: destination refused the upload" in errors[0]["message"]


def test_pause_while_a_runner_works_reports_pausing(engine: JobEngine, clock: FakeClock) -> None:
    gate = threading.Event()
    engine.register_runner("sftp_import", lambda job: gate.wait(5) and {"added": 1})
    job = new_job(engine)
    clock.advance(1.0)
    assert status(engine, job["id"]) == "running"
    assert engine.command(ACCOUNT, job["id"], "pause")["status"] == "pausing"
    gate.set()
    assert engine.wait_for_runners(5)
    assert status(engine, job["id"]) == "paused"
    messages = [e["message"] for e in engine.logs(ACCOUNT, job["id"])]
    assert "interrupted run finished; its result was discarded" in messages


def test_creation_rate_limit(clock: FakeClock) -> None:
    eng = JobEngine(StateDB(None), timings=timings(creations_per_hour=3), clock=clock, background=False)
    try:
        for _ in range(3):
            new_job(eng)
        with pytest.raises(RateLimited, match="3 jobs may be created per hour") as caught:
            new_job(eng)
        assert caught.value.status == 429
        assert eng.create("another-account", {"name": "x", "config": {}}, "sftp_import")["status"] == "initializing"
        clock.advance(3601)
        new_job(eng)
    finally:
        eng.close()
    assert JobTimings().creations_per_hour == 10


def test_state_survives_a_restart(tmp_path, clock: FakeClock) -> None:
    path = str(tmp_path / "state.db")
    db = StateDB(path)
    eng = JobEngine(db, timings=timings(), clock=clock, background=False)
    auth = eng.auths.create(ACCOUNT, "u", {"label": "sftp", "provider_slug": "sftp", "config": {"password": "pw"}})
    job = new_job(eng, auth_ids=[auth["id"]])
    gone = new_job(eng)
    eng.command(ACCOUNT, gone["id"], "kill")
    clock.advance(3.0)
    before = eng.get(ACCOUNT, job["id"], show_state=True)
    logs_before = eng.logs(ACCOUNT, job["id"])
    eng.close()
    db.close()

    db2 = StateDB(path)
    eng2 = JobEngine(db2, timings=timings(), clock=clock, background=False)
    try:
        assert eng2.get(ACCOUNT, job["id"], show_state=True) == before
        assert eng2.logs(ACCOUNT, job["id"]) == logs_before
        assert eng2.get(ACCOUNT, gone["id"])["status"] == "deleted"
        assert eng2.auths.get(ACCOUNT, auth["id"])["label"] == "sftp"  # the public part survives...
        with pytest.raises(JobError, match="secrets are kept in memory only"):  # ...the secret does not
            eng2.auths.secret_config(ACCOUNT, auth["id"])
        assert b'"pw"' not in Path(path).read_bytes()
        clock.advance(5.0)
        assert eng2.get(ACCOUNT, job["id"])["status"] == "running"
        clock.advance(2.0)
        assert eng2.get(ACCOUNT, job["id"], show_state=True)["state"]["runs"] == 2
        assert eng2.logs(ACCOUNT, job["id"])[-1]["message"] == "run 2 completed"
    finally:
        eng2.close()
        db2.close()


def test_log_retention_and_reset(clock: FakeClock) -> None:
    db = StateDB(None)
    eng = JobEngine(db, timings=timings(log_retention=5, sleep_between_runs=1.0), clock=clock, background=False)
    try:
        job = new_job(eng)
        eng.auths.create(ACCOUNT, "u", {"label": "a", "provider_slug": "sftp", "config": {"password": "pw"}})
        for _ in range(10):
            clock.advance(1.0)
            eng.get(ACCOUNT, job["id"])
        logs = eng.logs(ACCOUNT, job["id"])
        assert len(logs) == 5 and logs[0]["message"] != "job created"
        assert len(db.load("joblog")) == 5
        eng.reset()
        assert eng.list(ACCOUNT, show_all=True) == [] and eng.auths.list(ACCOUNT) == []
        assert db.load("job") == {} and db.load("joblog") == {} and db.load("auth") == {}
        assert new_job(eng)["status"] == "initializing"
    finally:
        eng.close()


def test_put_replaces_the_whole_job(engine: JobEngine) -> None:
    job = new_job(engine, config={"stream": "a", "folder": "/in"}, description="first", tag="t1", meta={"k": 1})
    got = engine.replace(ACCOUNT, job["id"], {"name": "renamed", "config": {"stream": "b"}}, "sftp_import")
    assert got["name"] == "renamed"
    assert got["config"] == {"stream": "b"}
    assert (got["description"], got["tag"], got["meta"]) == ("", "", {})
    assert got["id"] == job["id"] and got["created"] == job["created"]
    with pytest.raises(JobError, match="belongs to workflow sftp_import"):
        engine.replace(ACCOUNT, job["id"], {"name": "x", "config": {}}, "sftp_export")
    with pytest.raises(JobError, match="config is required"):
        engine.replace(ACCOUNT, job["id"], {"name": "x"}, "sftp_import")
    with pytest.raises(JobNotFound):
        engine.replace("other", job["id"], {"name": "x", "config": {}}, "sftp_import")
    engine.command(ACCOUNT, job["id"], "kill")
    with pytest.raises(JobError, match="killed"):
        engine.replace(ACCOUNT, job["id"], {"name": "x", "config": {}}, "sftp_import")


@pytest.mark.parametrize(
    ("body", "workflow", "match"),
    [
        ({"config": {}}, "sftp_import", "name is required"),
        ({"name": "  ", "config": {}}, "sftp_import", "name is required"),
        ({"name": "x"}, "sftp_import", "config is required"),
        ({"name": "x", "config": []}, "sftp_import", "config is required"),
        ({"name": "x", "config": {}}, None, "workflow is required"),
        ({"name": "x", "config": {}}, "no_such_flow", "unknown workflow 'no_such_flow'"),
        ({"name": "x", "config": {"segment_ids": ["a"]}}, "webhook_triggers", "missing required field.*webhook_url"),
        ({"name": "x", "config": {}, "auth_ids": "a"}, "sftp_import", "auth_ids must be a list"),
        ({"name": "x", "config": {}, "auth_ids": ["nope"]}, "sftp_import", "auth_ids: authorization nope not found"),
        ({"name": "x", "config": {}, "hidden": "yes"}, "sftp_import", "hidden must be true or false"),
        ({"name": "x", "config": {}, "expires_at": "soon"}, "sftp_import", "expires_at must be an RFC3339"),
        ({"name": "x", "config": {}, "quiet_period": 2}, "sftp_import", "quiet_time_of_day must be HH:MM"),
        ({"name": "x", "config": {}, "quiet_time_of_day": "02:00", "quiet_period": 30}, "sftp_import", "quiet_period"),
        (
            {"name": "x", "config": {}, "quiet_time_of_day": "02:00", "quiet_period": 1, "quiet_timezone": "Mars/Base"},
            "sftp_import",
            "IANA time zone",
        ),
        ({"name": "x", "config": {}, "workflow": "sftp_export"}, "sftp_import", "differs from the path"),
    ],
)
def test_bad_job_requests_say_what_to_fix(engine: JobEngine, body: dict, workflow: str | None, match: str) -> None:
    with pytest.raises(JobError, match=match):
        engine.create(ACCOUNT, body, workflow)
    assert engine.list(ACCOUNT, show_all=True) == []


def test_unknown_workflow_code(engine: JobEngine) -> None:
    with pytest.raises(WorkflowNotFound) as caught:
        engine.create(ACCOUNT, {"name": "x", "config": {}}, "nope")
    assert (caught.value.status, caught.value.code) == (400, "WF-NOTFOUND-005")


def test_jobs_are_scoped_to_their_account(engine: JobEngine) -> None:
    job = new_job(engine)
    assert engine.get("someone-else", job["id"]) is None
    assert engine.list("someone-else") == []
    with pytest.raises(JobNotFound):
        engine.command("someone-else", job["id"], "pause")
    with pytest.raises(JobNotFound):
        engine.logs("someone-else", job["id"])


def test_background_clock_moves_jobs_without_readers() -> None:
    """Nobody reads the job: only the background thread can move it, at the times the emulator's clock sets."""
    clock = EmulatorClock(datetime(2026, 3, 8, 12, tzinfo=timezone.utc), frozen=True)
    db = StateDB(None)
    eng = JobEngine(db, timings=timings(tick=0.01), clock=clock.time, background=True)
    try:
        started, finished = threading.Event(), threading.Event()
        release = threading.Event()

        def runner(job: dict) -> dict:
            started.set()
            release.wait(60)
            return {"added": 1}

        eng.register_runner("sftp_import", runner)
        job = new_job(eng)
        assert not started.wait(0.1)  # the clock stands still: the job stays initializing
        clock.advance(1.0)  # past initializing: the background thread starts the run and its runner
        assert started.wait(60), "the background thread never started the run"
        clock.advance(2.0)  # past the run's minimum duration; the run ends when the runner returns
        release.set()

        def stored_status() -> str:  # read from the state DB, which does not advance the job
            return db.load("job")[job["id"]]["status"]

        for _ in range(6000):
            if stored_status() == "sleeping":
                finished.set()
                break
            finished.wait(0.01)
        assert stored_status() == "sleeping"
    finally:
        eng.close()


# -- HTTP routes ---------------------------------------------------------------------------------------------------


class StandInAuth:
    """Sets ``request.state.account`` the way the emulator's auth middleware does."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            scope.setdefault("state", {})["account"] = DEFAULT_ACCOUNT
        await self.app(scope, receive, send)


@pytest.fixture
def client(engine: JobEngine):
    app = Starlette(routes=routes(SimpleNamespace(jobs=engine)), middleware=[Middleware(StandInAuth)])
    with TestClient(app) as test_client:
        yield test_client


def v2_code(response) -> str:
    return response.json()["errors"][0]["code"]


def test_http_create_get_and_lifecycle(client: TestClient, clock: FakeClock) -> None:
    created = client.post("/v2/job/sftp-import", json={"name": "nightly", "config": {"stream": "s"}})
    assert created.status_code == 201
    body = created.json()
    assert body["status"] == 201 and "request_id" in body and body["_meta"] == {}
    job = body["data"]
    assert job["workflow"] == "sftp_import" and job["status"] == "initializing"
    job_id = job["id"]
    assert client.get(f"/v2/job/{job_id}").json()["data"]["id"] == job_id
    assert client.get(f"/v2/job/sftp_import/{job_id}").json()["data"]["id"] == job_id
    wrong = client.get(f"/v2/job/sftp_export/{job_id}")
    assert (wrong.status_code, v2_code(wrong)) == (404, "JOB-NOTFOUND-004")
    missing = client.get("/v2/job/" + "0" * 32)
    assert missing.status_code == 404 and "not found" in missing.json()["message"]
    clock.advance(1.0)
    assert client.get(f"/v2/job/{job_id}").json()["data"]["status"] == "running"
    assert client.post(f"/v2/job/{job_id}/pause").json()["data"]["status"] == "paused"
    assert client.post(f"/v2/job/{job_id}/resume").json()["data"]["status"] == "initializing"
    assert client.post(f"/v2/job/{job_id}/bounce").json()["data"]["status"] == "initializing"
    bad = client.post(f"/v2/job/{job_id}/explode")
    assert bad.status_code == 400 and "pause, resume, bounce, kill, release" in bad.json()["message"]
    assert client.post(f"/v2/job/{job_id}/kill").json()["data"]["status"] == "deleted"
    again = client.post(f"/v2/job/{job_id}/resume")
    assert (again.status_code, v2_code(again)) == (400, "JOB-BADREQ-002")


def test_http_create_with_workflow_in_body_and_run_job_false(client: TestClient) -> None:
    body = {"workflow": "webhook_triggers", "name": "t", "config": {"segment_ids": ["s"], "webhook_url": "https://x"}}
    created = client.post("/v2/job?run_job=false", json=body)
    assert created.status_code == 201
    assert created.json()["data"]["status"] == "paused"


def test_http_bad_requests(client: TestClient) -> None:
    broken = client.post("/v2/job/sftp_import", content=b"{not json", headers={"content-type": "application/json"})
    assert (broken.status_code, v2_code(broken)) == (400, "JSON-BADREQ-025")
    nameless = client.post("/v2/job/sftp_import", json={"config": {}})
    assert nameless.status_code == 400 and "name" in nameless.json()["message"]
    unknown = client.post("/v2/job/nope", json={"name": "x", "config": {}})
    assert (unknown.status_code, v2_code(unknown)) == (400, "WF-NOTFOUND-005")
    flag = client.get("/v2/job?show_all=maybe")
    assert (flag.status_code, v2_code(flag)) == (400, "BADREQ-001")
    assert "show_all" in flag.json()["message"]
    assert client.delete("/v2/job").status_code == 405


def test_http_list_filters_and_put(client: TestClient, clock: FakeClock) -> None:
    a = client.post("/v2/job/sftp_import", json={"name": "a", "config": {}}).json()["data"]
    b = client.post("/v2/job/sftp_export", json={"name": "b", "config": {}, "hidden": True}).json()["data"]
    c = client.post("/v2/job/sample_export", json={"name": "c", "config": {}}).json()["data"]
    clock.advance(3.0)

    def ids(query: str) -> set[str]:
        response = client.get(f"/v2/job{query}")
        assert response.status_code == 200
        return {job["id"] for job in response.json()["data"]}

    assert ids("") == {a["id"]}
    assert ids("?show_hidden=true") == {a["id"], b["id"]}
    assert ids("?show_completed=true") == {a["id"], c["id"]}
    assert ids("?show_all=true&workflow=sftp_export") == {b["id"]}
    assert "state" in client.get("/v2/job?show_state=true").json()["data"][0]

    put = client.put(f"/v2/job/sftp_import/{a['id']}", json={"name": "a2", "config": {"stream": "z"}})
    assert put.status_code == 200 and put.json()["data"]["config"] == {"stream": "z"}
    wrong = client.put(f"/v2/job/sftp_export/{a['id']}", json={"name": "a2", "config": {}})
    assert wrong.status_code == 400
    gone = client.put(f"/v2/job/sftp_import/{'f' * 32}", json={"name": "a2", "config": {}})
    assert (gone.status_code, v2_code(gone)) == (404, "JOB-NOTFOUND-004")


def test_http_logs(client: TestClient, clock: FakeClock, engine: JobEngine) -> None:
    job = client.post("/v2/job/sftp_import", json={"name": "a", "config": {}}).json()["data"]
    engine.inject(job["id"], faults=1)
    clock.advance(3.0)
    account = client.get("/v2/job/logs")
    assert account.status_code == 200
    assert [e["message"] for e in account.json()["data"]] == ["job created", "run 1 started"]
    one = client.get(f"/v2/job/{job['id']}/logs?include_errors=true").json()["data"]
    assert one[-1]["level"] == "error" and one[-1]["code"] == "JOB-FAULT-022"
    assert set(one[-1]) == {"job_id", "level", "message", "code", "context", "timestamp"}
    scoped = client.get(f"/v2/job/sftp_import/{job['id']}/logs?include_errors=true").json()["data"]
    assert scoped == one
    assert client.get(f"/v2/job/{'0' * 32}/logs").status_code == 404
    assert client.get(f"/v2/job/sftp_export/{job['id']}/logs").status_code == 404


def test_http_rate_limit(clock: FakeClock) -> None:
    eng = JobEngine(StateDB(None), timings=timings(creations_per_hour=1), clock=clock, background=False)
    app = Starlette(routes=routes(SimpleNamespace(jobs=eng)), middleware=[Middleware(StandInAuth)])
    try:
        with TestClient(app) as client:
            assert client.post("/v2/job/sftp_import", json={"name": "a", "config": {}}).status_code == 201
            limited = client.post("/v2/job/sftp_import", json={"name": "b", "config": {}})
            assert limited.status_code == 429 and "per hour" in limited.json()["message"]
            v1 = client.post("/api/work", json={"workflow": "sftp_import", "config": {}})
            assert v1.status_code == 429 and v1.json()["status"] == 429
    finally:
        eng.close()


def test_http_v1_work_mirror(client: TestClient, clock: FakeClock) -> None:
    created = client.post("/api/work", json={"workflow": "sample_export", "config": {}})
    assert created.status_code == 201
    body = created.json()
    assert body["status"] == 201 and body["message"] == "success"
    work = body["data"]
    assert work["statuscode"] == "initializing" and work["aid"] == DEFAULT_ACCOUNT.aid
    assert work["workflow"] == "sample_export" and isinstance(work["created_ms"], int)
    work_id = work["id"]
    paused = client.post(f"/api/work/{work_id}/pause?for=1h").json()["data"]
    assert paused["statuscode"] == "paused" and paused["sleep_until"] is not None
    assert client.post(f"/api/work/{work_id}/pause?for=soon").status_code == 400
    assert [w["id"] for w in client.get("/api/work").json()["data"]] == [work_id]
    assert [w["id"] for w in client.get("/api/work?state=paused").json()["data"]] == [work_id]
    assert client.get("/api/work?state=running").json()["data"] == []
    assert [w["id"] for w in client.get("/api/work/_status?status=paused").json()["data"]] == [work_id]
    assert client.get("/api/work/_status?status=sideways").status_code == 400
    assert client.delete(f"/api/work/{work_id}").status_code == 204
    assert client.get(f"/api/work/{work_id}").json()["data"]["statuscode"] == "deleted"
    assert client.get("/api/work").json()["data"] == []
    listed = client.get("/api/work?showdeleted=true&showcompleted=true").json()["data"]
    assert [w["id"] for w in listed] == [work_id]
    assert [w["id"] for w in client.get("/api/work/_status?status=killed").json()["data"]] == [work_id]
    missing = client.get(f"/api/work/{'0' * 32}")
    assert missing.status_code == 404 and missing.json()["data"] is None
    no_wf = client.post("/api/work", json={"config": {}})
    assert no_wf.status_code == 400 and "workflow" in no_wf.json()["message"]


def test_http_catalog(client: TestClient) -> None:
    workflows = client.get("/api/workflow").json()["data"]
    slugs = {w["slug"] for w in workflows}
    required = {"lytics_simple_csv_export", "sftp_import", "sftp_export", "webhook_triggers", "webhook_enrichment"}
    assert required | {"sample_export", "eventscopy", "csv_import", "gcs_import", "s3_import"} <= slugs
    providers = client.get("/api/provider").json()["data"]
    provider_ids = {p["id"] for p in providers}
    assert all(w["provider_id"] in provider_ids for w in workflows)
    assert client.get("/api/provider/sftp").json()["data"]["id"] == PROVIDERS["sftp"].id
    assert client.get("/api/provider/nope").status_code == 404
    assert client.get("/api/workflow/sftp-export").json()["data"]["slug"] == "sftp_export"
    assert len(client.get("/v2/provider").json()["data"]) == len(PROVIDERS)


def test_http_auths_never_return_secrets(client: TestClient, engine: JobEngine) -> None:
    secret = "s3cr3t-Passw0rd"
    created = client.post(
        "/v2/auth",
        json={"label": "sftp", "provider_slug": "sftp", "type": "sftp_password", "config": {"password": secret}},
    )
    assert created.status_code == 201
    auth = created.json()["data"]
    assert auth["provider_id"] == PROVIDERS["sftp"].id and auth["status"] == "healthy" and auth["unhealthy"] is False
    v1 = client.post(
        "/api/auth", json={"name": "hook", "provider_id": "webhook", "config": [{"name": "token", "value": secret}]}
    )
    assert v1.status_code == 201 and set(v1.json()["data"]) >= {"id", "aid", "provider_name", "name"}
    typed = client.post("/v2/auth/header-param-auth", json={"label": "h", "provider_slug": "webhook", "config": {}})
    assert typed.json()["data"]["type"] == "header-param-auth"
    for path in ("/v2/auth", f"/v2/auth/{auth['id']}", "/api/auth", f"/api/auth/{auth['id']}"):
        response = client.get(path)
        assert response.status_code == 200
        assert secret not in response.text and "config" not in json.dumps(response.json()["data"])
    assert engine.auths.secret_config(ACCOUNT, auth["id"]) == {"password": secret}
    assert client.post("/v2/auth", json={"provider_slug": "sftp", "config": {}}).status_code == 400
    nope = client.post("/v2/auth", json={"label": "x", "provider_slug": "nowhere", "config": {}})
    assert (nope.status_code, v2_code(nope)) == (400, "PROVIDER-NOTFOUND-016")

    job = client.post("/v2/job/sftp_import", json={"name": "j", "config": {}, "auth_ids": [auth["id"]]}).json()["data"]
    assert job["auth_ids"] == [auth["id"]]
    assert [j["id"] for j in client.get(f"/v2/job?auth_ids=[{auth['id']},other]").json()["data"]] == [job["id"]]
    assert client.get("/v2/job?auth_ids=other").json()["data"] == []
    unknown = client.post("/v2/job/sftp_import", json={"name": "j", "config": {}, "auth_ids": ["f" * 32]})
    assert (unknown.status_code, v2_code(unknown)) == (400, "AUTH-NOTFOUND-006")
    assert client.delete(f"/v2/auth/{auth['id']}").status_code == 200
    after = client.get(f"/v2/job/{job['id']}").json()["data"]
    assert (after["status"], after["auth_ids"]) == ("paused", [])
    missing = client.get(f"/v2/auth/{auth['id']}")
    assert (missing.status_code, v2_code(missing)) == (404, "AUTH-NOTFOUND-006")
    assert client.delete(f"/api/auth/{v1.json()['data']['id']}").status_code == 204
