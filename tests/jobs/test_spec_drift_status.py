"""Pure helpers: spec validation, drift and the update body, status classification and the run verdict."""

from __future__ import annotations

import pytest

from airflow_provider_lytics.client.errors import LyticsConfigError
from airflow_provider_lytics.jobs.drift import find_drift, update_request
from airflow_provider_lytics.jobs.spec import LyticsJobSpec
from airflow_provider_lytics.jobs.status import JobPhase, Outcome, classify, fault_count, format_logs, judge_run


def test_spec_from_dict_round_trip():
    data = {
        "workflow": "sftp_import",
        "name": "nightly",
        "config": {"path": "/in"},
        "quiet_time_of_day": "02:00",
        "quiet_period": 2,
        "quiet_timezone": "Europe/Paris",
        "auth_ids": ["a1"],
    }
    spec = LyticsJobSpec.from_dict(data)
    assert spec.to_dict() == data
    assert spec.create_request() == {k: v for k, v in data.items() if k != "workflow"}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"workflow": "sftp_import"}, "missing name"),
        ({"workflow": "bad slug!", "name": "x"}, "workflow slug"),
        ({"workflow": "w", "name": "x", "schedule": "daily"}, "unknown job field 'schedule'"),
        ({"workflow": "w", "name": "x", "quiet_time_of_day": "25:00", "quiet_period": 1}, "HH:MM"),
        ({"workflow": "w", "name": "x", "quiet_time_of_day": "02:00"}, "go together"),
        ({"workflow": "w", "name": "x", "quiet_timezone": "Mars/Base"}, "IANA"),
        ({"workflow": "w", "name": "x", "quiet_period": True, "quiet_time_of_day": "01:00"}, "quiet_period must be"),
        ({"workflow": "w", "name": "x", "auth_ids": [""]}, "auth_ids"),
    ],
)
def test_spec_rejects_bad_input_with_a_clear_message(data, message):
    with pytest.raises(LyticsConfigError, match=message):
        LyticsJobSpec.from_dict(data)


def test_spec_matches_by_name_or_tag_and_skips_deleted():
    job = {"workflow": "sftp_import", "name": "nightly", "tag": "dag:x", "deleted": False}
    assert LyticsJobSpec("sftp_import", "nightly").matches(job)
    assert not LyticsJobSpec("sftp_export", "nightly").matches(job)
    assert LyticsJobSpec("sftp_import", "renamed", fields={"tag": "dag:x"}).matches(job)
    assert not LyticsJobSpec("sftp_import", "nightly", fields={"tag": "other"}).matches(job)
    assert not LyticsJobSpec("sftp_import", "nightly").matches({**job, "deleted": True})


def test_drift_only_on_managed_fields_and_update_keeps_the_rest():
    job = {
        "id": "j",
        "workflow": "sftp_import",
        "name": "nightly",
        "description": "kept",
        "config": {"path": "/in", "delimiter": ",", "owned_by_ui": 5},
        "auth_ids": ["a1"],
        "hidden": False,
        "quiet_time_of_day": None,
        "status": "sleeping",
    }
    spec = LyticsJobSpec(
        "sftp_import", "nightly", config={"path": "/in", "delimiter": "|"}, fields={"auth_ids": ["a1"]}
    )
    drift = find_drift(spec, job)
    assert [d.path for d in drift] == ["config.delimiter"]
    assert drift[0].describe() == "config.delimiter: ',' -> '|'"
    body = update_request(spec, job)
    assert body["config"] == {"path": "/in", "delimiter": "|", "owned_by_ui": 5}
    assert body["description"] == "kept" and body["auth_ids"] == ["a1"]
    assert "status" not in body and "id" not in body and "quiet_time_of_day" not in body
    assert find_drift(spec, {**job, "config": body["config"]}) == []


def test_drift_sees_missing_keys_and_type_changes():
    spec = LyticsJobSpec("w", "n", config={"limit": 10, "flag": True}, fields={"hidden": True})
    job = {"name": "n", "config": {"limit": 10.0, "flag": 1}}
    paths = {d.path for d in find_drift(spec, job)}
    assert paths == {"config.flag", "hidden"}


@pytest.mark.parametrize(
    ("status", "phase"),
    [
        ("completed", JobPhase.SUCCEEDED),
        ("failed", JobPhase.FAILED),
        ("killed", JobPhase.FAILED),
        ("deleted", JobPhase.FAILED),
        ("paused", JobPhase.PAUSED),
        ("pausing", JobPhase.PAUSED),
        ("sleeping", JobPhase.SLEEPING),
        ("running", JobPhase.RUNNING),
        ("runnable", JobPhase.RUNNING),
        ("initializing", JobPhase.RUNNING),
        ("fault-3", JobPhase.FAULT),
        ("fault", JobPhase.FAULT),
        ("weird", JobPhase.UNKNOWN),
        (None, JobPhase.UNKNOWN),
    ],
)
def test_classify_both_vocabularies(status, phase):
    assert classify(status) is phase


def test_fault_count():
    assert (fault_count("fault-4"), fault_count("fault"), fault_count("running")) == (4, 1, 0)


T0 = 1_800_000_000.0


def _job(status, started=None, completed=None, errors=0, **extra):
    from airflow_provider_lytics.emulator.job_time import rfc3339

    state = {
        "last_run_started": rfc3339(started),
        "last_run_completed": rfc3339(completed),
        "consecutive_errors": errors,
    }
    return {"id": "j1", "status": status, "state": state, **extra}


def test_judge_run_waits_for_a_run_started_after_the_watermark():
    assert judge_run(_job("sleeping", T0 - 10, T0 - 5), watermark=T0).outcome is Outcome.WAIT
    assert judge_run(_job("running", T0 + 1, T0 - 5), watermark=T0).outcome is Outcome.WAIT
    assert judge_run(_job("sleeping", T0 + 1, T0 + 2), watermark=T0).outcome is Outcome.DONE
    assert judge_run(_job("completed", T0 + 1, T0 + 2), watermark=T0).outcome is Outcome.DONE


def test_judge_run_fails_early():
    assert judge_run(_job("failed"), watermark=T0).outcome is Outcome.FAILED
    assert judge_run(_job("fault-2", T0 + 1, T0 + 2, errors=2), watermark=T0).outcome is Outcome.WAIT
    verdict = judge_run(_job("fault-3", T0 + 1, T0 + 2, errors=3), watermark=T0, max_faults=3)
    assert verdict.outcome is Outcome.FAILED and "3 consecutive errors" in verdict.message
    stale = judge_run(_job("completed", T0 - 10, T0 - 5), watermark=T0)
    assert stale.outcome is Outcome.FAILED and "bounce" in stale.message
    assert judge_run(_job("paused"), watermark=T0).outcome is Outcome.FAILED
    assert judge_run(_job("paused"), watermark=T0, fail_on_paused=False).outcome is Outcome.WAIT


def test_judge_run_does_not_wait_for_a_job_sleeping_past_the_deadline():
    from airflow_provider_lytics.emulator.job_time import rfc3339

    job = _job("sleeping", T0 - 10, T0 - 5, sleep_until=rfc3339(T0 + 7200))
    assert judge_run(job, watermark=T0, deadline=T0 + 3600).outcome is Outcome.FAILED
    assert judge_run(job, watermark=T0, deadline=T0 + 9000).outcome is Outcome.WAIT


def test_format_logs_keeps_the_last_lines_with_counts():
    entries = [{"timestamp": f"t{i}", "level": "info", "message": f"m{i}", "context": {"added": i}} for i in range(5)]
    entries.append({"timestamp": "t9", "level": "error", "code": "JOB-FAULT-022", "message": "boom", "context": {}})
    text = format_logs(entries, limit=2)
    assert text.splitlines() == ["  t4 INFO m4 (added=4)", "  t9 ERROR [JOB-FAULT-022] boom"]
