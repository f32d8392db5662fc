"""The emulator's clock: modes, the ``/_emulator/clock`` control surface, and every stamp following it."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
import requests

from airflow_provider_lytics.emulator.clock import ClockError, EmulatorClock, current_time, parse_instant, using
from airflow_provider_lytics.emulator.jobs import JobTimings
from airflow_provider_lytics.emulator.server import EmulatorServer

#: 2026-03-08T03:00:00-05:00 (= 08:00 UTC, 04:00 New York daylight time: the clocks sprang forward at 02:00).
T0 = datetime(2026, 3, 8, 3, 0, tzinfo=timezone(timedelta(hours=-5)))


class Wall:
    """A hand-driven stand-in for time.time, so the modes are checked without sleeping."""

    def __init__(self, start: float = 1_000_000.0) -> None:
        self.t = start

    def __call__(self) -> float:
        return self.t


def test_real_mode_follows_the_wall():
    wall = Wall()
    clock = EmulatorClock(wall=wall)
    assert clock.mode == "real" and clock.time() == wall.t
    wall.t += 5
    assert clock.time() == wall.t


def test_offset_mode_starts_at_the_instant_then_runs_at_the_real_rate():
    wall = Wall()
    clock = EmulatorClock(T0, wall=wall)
    assert clock.mode == "offset" and clock.time() == T0.timestamp()
    wall.t += 90
    assert clock.time() == T0.timestamp() + 90
    clock.advance(3600)
    assert clock.time() == T0.timestamp() + 90 + 3600


def test_frozen_mode_moves_only_when_advanced_and_can_run_on():
    wall = Wall()
    clock = EmulatorClock("2026-03-08T03:00:00-05:00", frozen=True, wall=wall)
    wall.t += 1000
    assert clock.mode == "frozen" and clock.time() == T0.timestamp()
    clock.advance(2.5)
    assert clock.time() == T0.timestamp() + 2.5
    clock.set(T0 + timedelta(hours=9))
    assert clock.mode == "frozen" and clock.time() == (T0 + timedelta(hours=9)).timestamp()
    clock.freeze(False)
    wall.t += 7
    assert clock.mode == "offset" and clock.time() == (T0 + timedelta(hours=9)).timestamp() + 7
    clock.reset()
    assert clock.mode == "real" and clock.time() == wall.t


@pytest.mark.parametrize(
    ("value", "complaint"),
    [
        ("2026-03-08T03:00:00", "needs a UTC offset"),
        ("tomorrow", "ISO 8601 instant"),
        (12, "ISO 8601 string"),
    ],
)
def test_bad_instants_say_what_to_send(value, complaint):
    with pytest.raises(ClockError, match=complaint):
        parse_instant(value)


@pytest.mark.parametrize("seconds", [-1, float("nan"), float("inf"), "10", True])
def test_bad_advances_are_refused_and_leave_the_clock_alone(seconds):
    clock = EmulatorClock(T0, frozen=True)
    with pytest.raises(ClockError, match="advance_seconds"):
        clock.advance(seconds)
    assert clock.time() == T0.timestamp()


def test_current_time_is_the_clock_in_use_else_the_wall():
    clock = EmulatorClock(T0, frozen=True)
    with using(clock):
        assert current_time() == T0.timestamp()
    assert abs(current_time() - datetime.now(timezone.utc).timestamp()) < 60


# -- over HTTP ------------------------------------------------------------------------------------------------------

TIMINGS = JobTimings(initializing=1.0, running=2.0, sleep_between_runs=10.0, creations_per_hour=None)


@pytest.fixture
def frozen_emulator():
    with EmulatorServer(job_timings=TIMINGS, clock=EmulatorClock(T0, frozen=True), bulk_port=None) as server:
        yield server


def _clock(server, **body):
    if body:
        return requests.post(f"{server.url}/_emulator/clock", json=body, timeout=10)
    return requests.get(f"{server.url}/_emulator/clock", timeout=10)


def test_get_and_post_clock(frozen_emulator):
    got = _clock(frozen_emulator).json()
    assert got["mode"] == "frozen" and got["now"] == "2026-03-08T08:00:00.000Z"
    moved = _clock(frozen_emulator, advance_seconds=90).json()
    assert moved["now"] == "2026-03-08T08:01:30.000Z"
    jumped = _clock(frozen_emulator, now="2026-11-01T01:30:00-04:00", advance_seconds=60).json()
    assert jumped["now"] == "2026-11-01T05:31:00.000Z" and jumped["mode"] == "frozen"
    running = _clock(frozen_emulator, frozen=False).json()
    assert running["mode"] == "offset"
    assert _clock(frozen_emulator, frozen=True).json()["mode"] == "frozen"


@pytest.mark.parametrize(
    ("body", "complaint"),
    [
        ({}, "send a JSON object"),
        ({"when": "now"}, "unknown key(s) ['when']"),
        ({"now": "2026-03-08 03:00"}, "UTC offset"),
        ({"advance_seconds": -5}, ">= 0"),
        ({"frozen": "yes"}, "'frozen' must be true or false"),
        ({"now": "2026-03-08T12:00:00Z", "advance_seconds": "x"}, "advance_seconds"),
    ],
)
def test_bad_clock_requests_are_400_and_change_nothing(frozen_emulator, body, complaint):
    response = (
        _clock(frozen_emulator, **body)
        if body
        else requests.post(f"{frozen_emulator.url}/_emulator/clock", json={}, timeout=10)
    )
    assert response.status_code == 400
    assert complaint in response.text
    assert _clock(frozen_emulator).json()["now"] == "2026-03-08T08:00:00.000Z"


def test_date_header_tells_the_emulators_time(frozen_emulator):
    for path in ("/_emulator/health", "/api/account", "/v2/job"):
        response = requests.get(f"{frozen_emulator.url}{path}", timeout=10)
        assert response.headers["Date"] == "Sun, 08 Mar 2026 08:00:00 GMT", path  # one header (requests joins dups)


def test_clock_answers_even_with_a_fault_on_every_path(frozen_emulator):
    requests.post(f"{frozen_emulator.url}/_emulator/faults", json={"path": "*", "status": 503}, timeout=10)
    assert _clock(frozen_emulator).status_code == 200


def test_advancing_a_frozen_clock_moves_a_job_step_by_step(frozen_emulator):
    """No sleeping anywhere: the job moves exactly when (and only when) the clock is advanced."""
    headers = {"Authorization": frozen_emulator.token}
    body = {"name": "clocked", "config": {"continuous": True}}
    created = requests.post(f"{frozen_emulator.url}/v2/job/eventscopy", json=body, headers=headers, timeout=10)
    assert created.status_code in (200, 201), created.text
    job = created.json()["data"]
    assert job["status"] == "initializing" and job["created"] == "2026-03-08T08:00:00.000Z"

    def status() -> dict:
        return requests.get(f"{frozen_emulator.url}/v2/job/{job['id']}", headers=headers, timeout=10).json()["data"]

    assert status()["status"] == "initializing"
    _clock(frozen_emulator, advance_seconds=1)
    assert status()["status"] == "running"
    _clock(frozen_emulator, advance_seconds=1.999)
    assert status()["status"] == "running"  # a run lasts TIMINGS.running on the emulator's clock
    _clock(frozen_emulator, advance_seconds=0.001)
    slept = status()
    assert slept["status"] == "sleeping" and slept["sleep_until"] == "2026-03-08T08:00:13.000Z"
    assert slept["updated"] == "2026-03-08T08:00:03.000Z"


def test_data_plane_stamps_follow_the_clock(frozen_emulator):
    headers = {"Authorization": frozen_emulator.token}
    url = frozen_emulator.url
    sent = requests.post(f"{url}/collect/json/web", json={"user_id": "u1"}, headers=headers, timeout=10)
    assert sent.status_code == 200, sent.text
    segment = {"segment_ql": 'FILTER _created > "now-1h" FROM user ALIAS fresh'}
    created = requests.post(f"{url}/api/segment", json=segment, headers=headers, timeout=10).json()["data"]
    assert created["created"] == "2026-03-08T08:00:00Z"
    assert requests.get(f"{url}/api/segment/fresh/size", headers=headers, timeout=10).json()["data"]["size"] == 1
    _clock(frozen_emulator, advance_seconds=7200)
    requests.post(f"{url}/collect/json/web", json={"user_id": "u2"}, headers=headers, timeout=10)
    sized = requests.get(f"{url}/api/segment/fresh/size", headers=headers, timeout=10).json()["data"]
    assert sized["size"] == 1  # u1 arrived two emulated hours ago; only u2 is fresh
    assert sized["timestamp"] == "2026-03-08T10:00:00Z"
    members = requests.get(f"{url}/api/segment/fresh/scan", headers=headers, timeout=10).json()["data"]
    assert [m["user_id"] for m in members] == ["u2"]  # scans anchor date math on the emulator's clock too
    error = requests.get(f"{url}/v2/job/nope", headers=headers, timeout=10).json()
    assert error["errors"][0]["timestamp"] == "2026-03-08T10:00:00Z"


# -- the CLI ----------------------------------------------------------------------------------------------------------


def test_serve_now_and_frozen_clock_flags():
    from tests.emulator.test_cli import Served

    server = Served("--now", "2026-03-08T03:00:00-05:00", "--frozen-clock")
    try:
        assert _clock(server).json() == {"now": "2026-03-08T08:00:00.000Z", "mode": "frozen", "epoch": T0.timestamp()}
        assert _clock(server, advance_seconds=60).json()["now"] == "2026-03-08T08:01:00.000Z"
        code, _out, err = server.stop()
        assert code == 0, err
    finally:
        if server.proc.poll() is None:
            server.proc.kill()
            server.proc.wait()


def test_serve_refuses_a_naive_now():
    import subprocess

    from tests.emulator.test_cli import CLI

    result = subprocess.run([*CLI, "serve", "--now", "2026-03-08T03:00"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert "--now needs a UTC offset or Z" in result.stderr


def test_sandbox_refuses_a_naive_now(tmp_path):
    from airflow_provider_lytics.emulator.sandbox import LyticsSandbox

    with pytest.raises(ValueError, match="timezone-aware"):
        LyticsSandbox(tmp_path, now=datetime(2026, 3, 8, 3, 0))
    assert LyticsSandbox(tmp_path, now=T0).now == T0  # nothing starts until start()


def test_sandbox_now_pins_the_emulators_time_of_day(tmp_path):
    import time

    from airflow_provider_lytics.emulator.sandbox import LyticsSandbox

    before = time.time()
    with LyticsSandbox(tmp_path / "out", users=20, now=T0) as sandbox:
        got = requests.get(f"{sandbox.lytics.url}/_emulator/clock", timeout=10).json()
        elapsed = time.time() - before
        assert got["mode"] == "offset"
        assert T0.timestamp() <= got["epoch"] <= T0.timestamp() + elapsed  # runs on from T0 at the real rate
        seeded = sandbox.lytics.backend.store.segments.get("demo_high_value")
        assert seeded["created"].startswith("2026-03-08T08:")
