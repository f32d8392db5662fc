"""Job operators and the job sensor against the emulator over HTTP."""

from __future__ import annotations

import pytest
from airflow.providers.common.compat.sdk import AirflowException, AirflowFailException, TaskDeferred

from airflow_provider_lytics.hooks.lytics import LyticsHook
from airflow_provider_lytics.operators.jobs import (
    LyticsCreateOrUpdateJobOperator,
    LyticsJobCommandOperator,
    LyticsRunJobOperator,
)
from airflow_provider_lytics.sensors.jobs import LyticsJobSensor
from airflow_provider_lytics.triggers.jobs import LyticsJobTrigger
from tests.jobs.helpers import FakeTI, context

SPEC = {
    "workflow": "sftp_import",
    "name": "nightly import",
    "config": {"path": "/in", "delimiter": ","},
    "quiet_time_of_day": "02:00",
    "quiet_period": 1,
    "quiet_timezone": "UTC",
}


def _op(**kwargs):
    kwargs.setdefault("task_id", "job")
    kwargs.setdefault("poll_interval", 0.05)
    return LyticsCreateOrUpdateJobOperator(**kwargs)


def test_create_then_second_run_changes_nothing(lytics_conn_env, emulator):
    ti = FakeTI()
    job_id = _op(spec=SPEC).execute(context(ti))
    assert ti.xcoms["lytics_job_action"] == "created"
    assert ti.xcoms["lytics_job_id"] == job_id and ti.xcoms["lytics_job_url"].endswith(f"/sftp_import/{job_id}")
    before = LyticsHook().get_job(job_id)
    puts_before = emulator.stats.snapshot()
    ti2 = FakeTI()
    assert _op(spec=SPEC).execute(context(ti2)) == job_id
    assert ti2.xcoms["lytics_job_action"] == "unchanged" and ti2.xcoms["lytics_job_drift"] == []
    # status (and with it "updated") moves on its own as the job runs; the definition must not change
    volatile = {"updated", "status", "sleep_until", "state"}
    after = LyticsHook().get_job(job_id)
    assert {k: v for k, v in after.items() if k not in volatile} == {
        k: v for k, v in before.items() if k not in volatile
    }
    writes = [r for r in emulator.stats.snapshot()["requests"] if r["method"] in ("PUT", "POST")]
    assert writes == [r for r in puts_before["requests"] if r["method"] in ("PUT", "POST")]


def test_drift_is_repaired_without_resetting_unspecified_fields(lytics_conn_env):
    hook = LyticsHook()
    job_id = _op(spec=SPEC).execute(context())
    job = hook.get_job(job_id)
    # someone edits the job outside the DAG: changes a managed key and adds settings the DAG does not own
    edited = {k: job[k] for k in ("name", "auth_ids", "quiet_time_of_day", "quiet_timezone", "quiet_period")}
    edited.update(
        description="set in the UI", verbose_logging=True, config={**job["config"], "delimiter": "|", "ui_only": 7}
    )
    hook.update_job("sftp_import", job_id, edited)
    ti = FakeTI()
    assert _op(spec=SPEC).execute(context(ti)) == job_id
    assert ti.xcoms["lytics_job_action"] == "updated"
    assert ti.xcoms["lytics_job_drift"] == ["config.delimiter: '|' -> ','"]
    after = hook.get_job(job_id)
    assert after["config"] == {"path": "/in", "delimiter": ",", "ui_only": 7}
    assert after["description"] == "set in the UI" and after["verbose_logging"] is True
    assert after["quiet_time_of_day"] == "02:00"
    ti3 = FakeTI()
    _op(spec=SPEC).execute(context(ti3))
    assert ti3.xcoms["lytics_job_action"] == "unchanged"


def test_run_job_false_creates_paused_and_tag_identifies(lytics_conn_env):
    spec = {**SPEC, "tag": "dag:nightly"}
    job_id = _op(spec=spec, run_job=False).execute(context())
    assert LyticsHook().get_job(job_id)["status"] == "paused"
    renamed = {**spec, "name": "nightly import v2"}
    ti = FakeTI()
    assert _op(spec=renamed, run_job=False).execute(context(ti)) == job_id
    assert ti.xcoms["lytics_job_drift"] == ["name: 'nightly import' -> 'nightly import v2'"]
    with pytest.raises(ValueError, match="run_job=True"):
        _op(spec=spec, run_job=False, wait_for_completion=True).execute(context())


def test_duplicate_jobs_are_an_error_not_a_guess(lytics_conn_env):
    hook = LyticsHook()
    body = {k: v for k, v in SPEC.items() if k != "workflow"}
    ids = [hook.create_job("sftp_import", body, run_job=False)["id"] for _ in range(2)]
    with pytest.raises(AirflowException, match="2 Lytics jobs match") as err:
        _op(spec=SPEC).execute(context())
    assert all(i in str(err.value) for i in ids)


def test_wait_for_completion_sync_returns_after_a_fresh_run(lytics_conn_env, emulated_time):
    spec = {"workflow": "lytics_simple_csv_export", "name": "export", "config": {"segment_id": "s"}}
    job_id = _op(spec=spec, wait_for_completion=True, wait_timeout=20).execute(context())
    assert LyticsHook().get_job(job_id)["status"] == "completed"


def test_wait_fails_with_log_lines_on_job_failure(lytics_conn_env, emulator, emulated_time):
    hook = LyticsHook()
    job = hook.create_job("lytics_simple_csv_export", {"name": "e", "config": {}}, run_job=False)
    emulator.backend.jobs.inject(job["id"], fail=True)
    op = LyticsJobCommandOperator(
        task_id="t", job_id=job["id"], command="resume", wait_for_completion=True, poll_interval=0.05, wait_timeout=20
    )
    with pytest.raises(AirflowException, match=r"(?s)is failed.*Last job log lines:.*injected failure"):
        op.execute(context())


def test_sync_wait_timeout_cancels_the_job(lytics_conn_env, emulated_time):
    hook = LyticsHook()
    job = hook.create_job("sftp_import", {"name": "slow", "config": {}}, run_job=False)
    op = LyticsJobCommandOperator(
        task_id="t",
        job_id=job["id"],
        command="resume",
        wait_for_completion=True,
        poll_interval=0.02,
        wait_timeout=0.05,
        cancel_on_kill="pause",
    )
    with pytest.raises(AirflowException, match="did not finish a new run within"):
        op.execute(context())
    assert hook.get_job(job["id"])["status"] == "paused"


def test_commands_and_bad_input(lytics_conn_env):
    hook = LyticsHook()
    job = hook.create_job("sftp_import", {"name": "c", "config": {}})
    assert LyticsJobCommandOperator(task_id="p", job_id=job["id"], command="pause").execute(context()) == job["id"]
    assert hook.get_job(job["id"])["status"] == "paused"
    LyticsJobCommandOperator(task_id="r", job_id=job["id"], command="resume").execute(context())
    assert hook.get_job(job["id"])["status"] != "paused"
    with pytest.raises(ValueError, match="command must be one of"):
        LyticsJobCommandOperator(task_id="x", job_id=job["id"], command="explode").execute(context())
    with pytest.raises(ValueError, match="only applies to resume and bounce"):
        LyticsJobCommandOperator(task_id="x", job_id=job["id"], command="kill", wait_for_completion=True).execute(
            context()
        )
    LyticsJobCommandOperator(task_id="k", job_id=job["id"], command="kill").execute(context())
    assert hook.get_job(job["id"])["status"] == "deleted"


def test_run_operator_defers_then_completes(lytics_conn_env, emulated_time):
    hook = LyticsHook()
    job = hook.create_job("lytics_simple_csv_export", {"name": "e", "config": {}})
    op = LyticsRunJobOperator(task_id="run", job_id=job["id"], deferrable=True, poll_interval=0.05, wait_timeout=30)
    ti = FakeTI(emulated_time.now())
    with pytest.raises(TaskDeferred) as deferred:  # the clock stands still: the restarted job is still initializing
        op.execute(context(ti))
    trigger = deferred.value.trigger
    assert isinstance(trigger, LyticsJobTrigger) and trigger.cancel_action == "pause"
    assert deferred.value.timeout.total_seconds() == pytest.approx(30.1)
    assert ti.xcoms["lytics_job_id"] == job["id"]
    assert op.execute_complete(context(ti), {"status": "success", "job_id": job["id"]}) == job["id"]
    with pytest.raises(AirflowException, match="failing closed"):
        op.execute_complete(context(ti), {"status": "mystery"})
    with pytest.raises(AirflowException, match="boom"):
        op.execute_complete(context(ti), {"status": "failed", "message": "boom"})
    with pytest.raises(AirflowException, match="late"):
        op.execute_complete(context(ti), {"status": "timeout", "job_id": job["id"], "message": "late"})
    assert hook.get_job(job["id"])["status"] == "paused"  # timeout cancelled (paused) the job


def test_on_kill_pauses_the_job_while_waiting(lytics_conn_env):
    hook = LyticsHook()
    job = hook.create_job("sftp_import", {"name": "k", "config": {}})
    op = LyticsJobCommandOperator(task_id="t", job_id=job["id"], command="bounce")
    op.job_id, op._waiting = job["id"], True
    op.on_kill()
    assert hook.get_job(job["id"])["status"] == "paused"


class _TaskStateStore(dict):
    """Airflow 3.3's ``context["task_state_store"]``, in memory: survives between tries like the real one."""

    def set(self, key, value, *, retention=None):
        self[key] = value

    def delete(self, key):
        self.pop(key, None)


def _commands(emulator) -> int:
    """Job commands received (this test sends no command but bounce)."""
    return sum(r["count"] for r in emulator.stats.snapshot()["requests"]
               if r["method"] == "POST" and r["route"] == "/v2/job/{job_id}/{cmd}")  # fmt: skip


def test_a_retry_after_a_lost_worker_waits_for_the_run_instead_of_restarting_it(
    lytics_conn_env, emulator, emulated_time
):
    hook = LyticsHook()
    job = hook.create_job("lytics_simple_csv_export", {"name": "e", "config": {}}, run_job=False)
    store = _TaskStateStore()
    emulator.stats.clear()

    class LostWorker(BaseException):
        pass

    crashing = LyticsRunJobOperator(task_id="run", job_id=job["id"], poll_interval=0.05, wait_timeout=30)
    crashing._wait = lambda *a, **k: (_ for _ in ()).throw(LostWorker())  # the worker dies while waiting
    with pytest.raises(LostWorker):
        crashing.execute({**context(), "task_state_store": store})
    assert _commands(emulator) == 1 and store["lytics_job_pending_command"]["command"] == "bounce"

    retry = LyticsRunJobOperator(task_id="run", job_id=job["id"], poll_interval=0.05, wait_timeout=30)
    assert retry.execute({**context(), "task_state_store": store}) == job["id"]
    assert _commands(emulator) == 1  # the run the first try started was awaited, not restarted
    assert "lytics_job_pending_command" not in store  # the verdict was reached: a later try sends again
    LyticsRunJobOperator(task_id="run", job_id=job["id"], poll_interval=0.05, wait_timeout=30).execute(
        {**context(), "task_state_store": store}
    )
    assert _commands(emulator) == 2


# -- sensor ---------------------------------------------------------------------------------------------------


def test_sensor_poke_waits_for_a_run_after_the_watermark(lytics_conn_env, emulated_time):
    hook = LyticsHook()
    job = hook.create_job("sftp_import", {"name": "s", "config": {}})
    sensor = LyticsJobSensor(task_id="s", job_id=job["id"], poke_interval=0.05, timeout=30)
    ti = FakeTI(emulated_time.now())
    assert sensor.poke(context(ti)).is_done is False  # initializing (0.05 s), then running (0.2 s)
    emulated_time.advance(0.1)
    assert sensor.poke(context(ti)).is_done is False
    emulated_time.advance(0.2)
    result = sensor.poke(context(ti))
    assert result.is_done and result.xcom_value == job["id"]
    # a watermark after that run: not done until the next run (the job sleeps 2 s between runs)
    later = LyticsJobSensor(task_id="s2", job_id=job["id"], completed_after=str(emulated_time.time() + 0.5), timeout=30)
    assert later.poke(context(FakeTI(emulated_time.now()))).is_done is False
    emulated_time.advance(2.0 + 0.05 + 0.2)
    assert later.poke(context(FakeTI(emulated_time.now()))).is_done is True


def test_sensor_fails_early_on_faults_with_logs(lytics_conn_env, emulator, emulated_time):
    hook = LyticsHook()
    job = hook.create_job("sftp_import", {"name": "f", "config": {}})
    emulator.backend.jobs.inject(job["id"], faults=2)
    sensor = LyticsJobSensor(task_id="s", job_id=job["id"], max_faults=2, timeout=30)
    ti = FakeTI(emulated_time.now())
    emulated_time.advance(0.3)  # the first run (0.05 s + 0.2 s) ends in an error: fault-1, retried after 0.5 s
    assert sensor.poke(context(ti)).is_done is False
    assert hook.get_job(job["id"])["status"] == "fault-1"
    emulated_time.advance(0.8)  # the retry (0.2 s) errors too: fault-2 reaches max_faults
    with pytest.raises(AirflowFailException, match=r"(?s)fault-2.*2 consecutive errors.*injected fault"):
        sensor.poke(context(ti))


def test_sensor_fails_on_stale_completed_one_shot(lytics_conn_env, emulated_time):
    hook = LyticsHook()
    job = hook.create_job("lytics_simple_csv_export", {"name": "done", "config": {}})
    emulated_time.advance(0.3)
    assert hook.get_job(job["id"])["status"] == "completed"
    sensor = LyticsJobSensor(task_id="s", job_id=job["id"], completed_after=str(emulated_time.time() + 1), timeout=30)
    with pytest.raises(AirflowFailException, match="will not run again"):
        sensor.poke(context())


def test_sensor_deferrable_pokes_once_then_defers(lytics_conn_env):
    hook = LyticsHook()
    job = hook.create_job("sftp_import", {"name": "d", "config": {}}, run_job=False)
    hook.resume_job(job["id"])
    sensor = LyticsJobSensor(task_id="s", job_id=job["id"], deferrable=True, poke_interval=5, timeout=60)
    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute(context())
    kwargs = deferred.value.trigger.serialize()[1]
    assert kwargs["poll_interval"] == 5 and kwargs["job_id"] == job["id"] and kwargs["cancel_action"] is None
    assert sensor.execute_complete(context(), {"status": "success", "job_id": job["id"]}) == job["id"]
    with pytest.raises(AirflowFailException, match="failing closed"):
        sensor.execute_complete(context(), None)
