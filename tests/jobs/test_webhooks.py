"""The emulator's webhook_triggers workflow delivering to a real local HTTP receiver, and the audience sensors."""

from __future__ import annotations

import pytest

from airflow_provider_lytics.emulator.backend import DEFAULT_ACCOUNT
from airflow_provider_lytics.hooks.lytics import LyticsHook
from airflow_provider_lytics.sensors.audience import LyticsAudienceMembershipSensor, LyticsAudienceSizeSensor
from tests.jobs.helpers import Receiver, context


def _segment(emulator, ql):
    doc, _ = emulator.backend.store.segments.create({"segment_ql": ql}, DEFAULT_ACCOUNT, rename_taken_slug=False)
    return doc


def _gold(emulator, n=2):
    emulator.backend.store.ingest("default", [{"email": f"u{i}@x.com", "plan": "gold"} for i in range(n)])
    return _segment(emulator, 'FILTER plan = "gold" FROM user ALIAS gold')


def _wait(clock, predicate, limit=60.0):
    """Advance the emulator's frozen clock in small steps (runners finish before each step ends) until ``predicate``.

    Bounded in emulated seconds, not wall-clock time: a loaded machine cannot make it time out.
    """
    step, waited = 0.05, 0.0
    while not predicate():
        assert waited < limit, f"not reached after {limit:g} emulated seconds"
        clock.advance(step)
        waited += step


def _completed_runs(hook, job_id):
    return sum(
        1 for e in hook.job_logs(job_id) if e["message"].startswith("run ") and e["message"].endswith("completed")
    )


def _run_now(clock, hook, job_id):
    """Wait for the job to sleep between runs, release it so the next run starts at once, wait for that run."""
    _wait(clock, lambda: hook.get_job(job_id)["status"] == "sleeping")
    runs = _completed_runs(hook, job_id)
    hook.job_command(job_id, "release")
    _wait(clock, lambda: _completed_runs(hook, job_id) > runs)


def test_backfill_then_enter_and_exit_events(lytics_conn_env, emulator, emulated_time):
    seg = _gold(emulator)
    hook = LyticsHook()
    auth = hook.request(
        "POST",
        "/v2/auth",
        json_body={
            "label": "hook auth",
            "provider_slug": "webhook",
            "config": {"webhook_request_headers": "X-Secret: s3cr3t", "webhook_request_params": "key=k1"},
        },
    ).data
    with Receiver() as rx:
        job = hook.create_job(
            "webhook_triggers",
            {
                "name": "wh",
                "auth_ids": [auth["id"]],
                "config": {
                    "segment_ids": [seg["id"]],
                    "webhook_url": rx.url,
                    "withbackfill": True,
                    "user_fields": ["email"],
                },
            },
        )
        _wait(emulated_time, lambda: len(rx.events()) == 2)
        first = rx.events()[0]
        assert set(first) == {"id", "data", "meta"} and first["id"].isdigit()
        assert first["meta"]["subscription_id"] == job["id"] and first["meta"]["object"] == "user"
        assert set(first["data"]) == {"email", "segment_events"}
        assert first["data"]["segment_events"][0]["event"] == "enter"
        assert first["data"]["segment_events"][0]["slug"] == "gold" and "enter" in first["data"]["segment_events"][0]
        assert rx.requests[0]["headers"]["X-Secret"] == "s3cr3t" and rx.requests[0]["path"] == "/hook?key=k1"
        emulator.backend.store.ingest(
            "default", [{"email": "u0@x.com", "plan": "free"}, {"email": "new@x.com", "plan": "gold"}]
        )
        _run_now(emulated_time, hook, job["id"])
        kinds = sorted((e["data"]["email"], e["data"]["segment_events"][0]["event"]) for e in rx.events()[2:])
        assert kinds == [("new@x.com", "enter"), ("u0@x.com", "exit")]
        logs = hook.job_logs(job["id"])
        counts = [e["context"] for e in logs if e["message"].startswith("run") and "completed" in e["message"]]
        assert counts[0]["added"] == 2 and counts[1]["added"] == 1 and counts[1]["removed"] == 1
        assert "s3cr3t" not in str(logs) and "k1" not in str(logs)


def test_no_backfill_batched_cloudevents(lytics_conn_env, emulator, emulated_time):
    seg = _gold(emulator)
    hook = LyticsHook()
    with Receiver() as rx:
        job = hook.create_job(
            "webhook_triggers",
            {
                "name": "wh",
                "config": {
                    "segment_ids": [seg["id"]],
                    "webhook_url": rx.url,
                    "batch_requests": True,
                    "batch_size": 2,
                    "cloudevents": True,
                    "audience_events": "enters_only",
                    "http_method": "PUT",
                },
            },
        )
        _wait(emulated_time, lambda: any("run 1 completed" in e["message"] for e in hook.job_logs(job["id"])))
        assert rx.requests == []  # baseline only without withbackfill
        emulator.backend.store.ingest(
            "default",
            [{"email": f"n{i}@x.com", "plan": "gold"} for i in range(3)] + [{"email": "u1@x.com", "plan": "free"}],
        )
        _run_now(emulated_time, hook, job["id"])
        assert [len(r["body"]) for r in rx.requests] == [2, 1] and rx.requests[0]["method"] == "PUT"
        event = rx.requests[0]["body"][0]
        assert event["specversion"] == "1.0" and event["source"] == f"/work/{job['id']}"
        assert (
            event["type"] == "com.lytics.audience.user.event" and event["data"]["segment_events"][0]["event"] == "enter"
        )


def test_retry_after_and_do_not_retry(lytics_conn_env, emulator, emulated_time):
    seg = _gold(emulator, n=1)
    hook = LyticsHook()
    replies = {1: (503, {"Retry-After": "0.2"}), 2: (200, {})}
    with Receiver(lambda n: replies.get(n, (409, {}))) as rx:
        job = hook.create_job(
            "webhook_triggers",
            {
                "name": "wh",
                "config": {
                    "segment_ids": [seg["id"]],
                    "webhook_url": rx.url,
                    "withbackfill": True,
                    "do_not_retry": [409],
                },
            },
        )
        _wait(emulated_time, lambda: len(rx.requests) == 2)
        assert rx.requests[0]["body"]["id"] == rx.requests[1]["body"]["id"]  # the same event, retried
        emulator.backend.store.ingest("default", [{"email": "z@x.com", "plan": "gold"}])
        _run_now(emulated_time, hook, job["id"])
        assert len(rx.requests) == 3  # 409 is in do_not_retry: dropped, not retried
        last = [e for e in hook.job_logs(job["id"]) if "completed" in e["message"]][-1]
        assert last["context"]["omitted"] == 1


def test_ten_failed_requests_error_the_run_and_the_job_fails(lytics_conn_env, emulator, emulated_time):
    seg = _gold(emulator, n=1)
    timings = emulator.backend.jobs.timings
    old = timings.max_faults
    timings.max_faults = 1
    try:
        with Receiver(lambda n: (500, {})) as rx:
            job = LyticsHook().create_job(
                "webhook_triggers",
                {
                    "name": "wh",
                    "config": {"segment_ids": [seg["id"]], "webhook_url": rx.url + "?token=abc", "withbackfill": True},
                },
            )
            _wait(emulated_time, lambda: LyticsHook().get_job(job["id"])["status"] == "failed")
            assert len(rx.requests) == 10
        errors = [e["message"] for e in LyticsHook().job_logs(job["id"], include_errors=True) if e["level"] == "error"]
        assert any("failed 10 times (last: HTTP 500)" in m for m in errors)
        assert "token=abc" not in str(errors)
    finally:
        timings.max_faults = old


def test_audience_size_sensor_poke(lytics_conn_env, emulator):
    _gold(emulator, n=2)
    sensor = LyticsAudienceSizeSensor(task_id="s", segment="gold", threshold=3, mode="reschedule")
    assert sensor.poke(context()).is_done is False
    emulator.backend.store.ingest("default", [{"email": "c@x.com", "plan": "gold"}])
    result = sensor.poke(context())
    assert result.is_done and result.xcom_value == 3
    below = LyticsAudienceSizeSensor(task_id="b", segment="gold", threshold=5, comparison="<")
    assert below.poke(context()).is_done
    with pytest.raises(ValueError, match="comparison must be one of"):
        LyticsAudienceSizeSensor(task_id="x", segment="gold", threshold=1, comparison="=")


def test_audience_membership_sensor_poke(lytics_conn_env, emulator):
    _gold(emulator, n=2)
    sensor = LyticsAudienceMembershipSensor(task_id="m", segment="gold", change="exit")
    assert sensor.poke(context()).is_done is False  # pins the baseline
    emulator.backend.store.ingest("default", [{"email": "new@x.com", "plan": "gold"}])
    assert sensor.poke(context()).is_done is False  # an enter, but we watch exits
    emulator.backend.store.ingest("default", [{"email": "u0@x.com", "plan": "free"}])
    result = sensor.poke(context())
    assert result.is_done and result.xcom_value == {"entered": 1, "left": 1, "size": 2}
    from airflow_provider_lytics.sensors.baseline_store import task_state_store_available

    if not task_state_store_available():  # before Airflow 3.3 the baseline needs object storage
        with pytest.raises(ValueError, match="reschedule mode needs baseline_uri"):
            LyticsAudienceMembershipSensor(task_id="r", segment="gold", mode="reschedule")


class FakeTaskStateStore:
    """What Airflow 3.3 hands a task as ``context["task_state_store"]``: get/set/delete of JSON values."""

    def __init__(self) -> None:
        self.values: dict = {}

    def get(self, key, default=None):
        return self.values.get(key, default)

    def set(self, key, value, *, retention=None):
        assert isinstance(value, str | int | float | bool | list | dict)
        self.values[key] = value

    def delete(self, key):
        self.values.pop(key, None)


def test_audience_membership_sensor_reschedule_keeps_its_baseline_in_the_task_state_store(lytics_conn_env, emulator):
    from airflow_provider_lytics.sensors.baseline_store import STATE_KEY, task_state_store_available

    if not task_state_store_available():
        pytest.skip("the task state store arrived in Airflow 3.3")
    _gold(emulator, n=2)
    store = FakeTaskStateStore()
    ctx = {**context(), "task_state_store": store}

    def sensor():  # reschedule mode: every poke is a fresh task process
        return LyticsAudienceMembershipSensor(task_id="m", segment="gold", change="exit", mode="reschedule")

    assert sensor().poke(ctx).is_done is False and STATE_KEY in store.values
    emulator.backend.store.ingest("default", [{"email": "u0@x.com", "plan": "free"}])
    result = sensor().poke(ctx)
    assert result.is_done and result.xcom_value == {"entered": 0, "left": 1, "size": 1}
    assert STATE_KEY not in store.values  # removed once satisfied
    with pytest.raises(Exception, match="pass baseline_uri"):
        sensor().poke(context())  # no store in this context: says what to do


def test_audience_membership_sensor_reschedule_keeps_its_baseline_in_object_storage(
    lytics_conn_env, emulator, tmp_path
):
    from types import SimpleNamespace

    _gold(emulator, n=2)
    ti = SimpleNamespace(dag_id="d", run_id="scheduled__2026-11-28T00:00:00+00:00", task_id="m", map_index=-1)
    ctx = {"ti": ti, "task_instance": ti}

    def sensor():  # reschedule mode: every poke is a fresh task process
        return LyticsAudienceMembershipSensor(
            task_id="m", segment="gold", mode="reschedule", baseline_uri=f"file://{tmp_path}/baselines"
        )

    assert sensor().poke(ctx).is_done is False  # pins the baseline, on storage
    stored = list((tmp_path / "baselines").rglob("*"))
    files = [p for p in stored if p.is_file()]
    assert [p.name for p in files] == ["m.members"] and "scheduled__2026-11-28T00_00_00_00_00" in str(files[0])
    assert sensor().poke(ctx).is_done is False  # nothing changed: the stored baseline was read, not re-pinned
    emulator.backend.store.ingest("default", [{"email": "new@x.com", "plan": "gold"}])
    result = sensor().poke(ctx)
    assert result.is_done and result.xcom_value == {"entered": 1, "left": 0, "size": 3}
    assert not files[0].exists()  # cleaned up once satisfied
    assert not [p for p in (tmp_path / "baselines").rglob("*.part")]


def test_membership_baseline_round_trips_and_refuses_foreign_files():
    from airflow_provider_lytics.sensors.baseline_store import decode_baseline, encode_baseline
    from airflow_provider_lytics.triggers.audience import member_digest

    digests = {member_digest(f"id{i}") for i in range(10_000)}
    blob = encode_baseline(digests)
    assert decode_baseline(blob) == digests and len(blob) < 8 * 10_000 + 100
    with pytest.raises(ValueError, match="not a membership baseline"):
        decode_baseline(b"something else")
