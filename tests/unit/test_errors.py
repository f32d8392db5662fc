"""The error boundary: one event check for every ``execute_complete``, and one type for bad arguments."""

from __future__ import annotations

import pytest
from airflow.providers.common.compat.sdk import AirflowException, AirflowFailException

from airflow_provider_lytics.enrichment.base import EnrichmentConfigError
from airflow_provider_lytics.errors import LyticsArgumentError, validate_event
from airflow_provider_lytics.exports.errors import ExportConfigError, ExportError
from airflow_provider_lytics.operators.jobs import LyticsRunJobOperator
from airflow_provider_lytics.sensors.audience import LyticsAudienceMembershipSensor, LyticsAudienceSizeSensor
from airflow_provider_lytics.sensors.jobs import LyticsJobSensor
from airflow_provider_lytics.triggers.jobs import LyticsJobTrigger

UNUSABLE = [None, "success", {"status": "mystery"}, {"message": "no status"}, ["status", "success"]]


def test_success_event_is_returned():
    event = {"status": "success", "size": 3}
    assert validate_event(event, "t") is event


@pytest.mark.parametrize("status", ["failed", "timeout", "error"])
def test_failure_events_raise_with_their_message_or_say_what_ended(status):
    with pytest.raises(AirflowFailException, match="the job broke"):
        validate_event({"status": status, "message": "the job broke"}, "t")
    with pytest.raises(AirflowFailException, match=f"audience trigger: the wait ended with status '{status}'"):
        validate_event({"status": status}, "audience trigger")


@pytest.mark.parametrize("event", UNUSABLE)
def test_anything_else_fails_closed_with_the_chosen_exception(event):
    with pytest.raises(AirflowFailException, match="failing closed"):
        validate_event(event, "t")
    with pytest.raises(AirflowException, match="failing closed") as info:
        validate_event(event, "t", failure=AirflowException)
    assert type(info.value) is AirflowException


def _waiters():
    return [
        LyticsAudienceSizeSensor(task_id="size", segment="s", threshold=1),
        LyticsAudienceMembershipSensor(task_id="members", segment="s"),
        LyticsJobSensor(task_id="job_sensor", job_id="j1"),
        LyticsRunJobOperator(task_id="run", job_id="j1", cancel_on_kill=None),
    ]


@pytest.mark.parametrize("event", [*UNUSABLE, {"status": "timeout", "message": "late"}])
def test_every_execute_complete_fails_on_anything_but_success(event):
    for task in _waiters():
        with pytest.raises(AirflowException):  # AirflowFailException is one too
            task.execute_complete({}, event)


def test_every_execute_complete_returns_its_value_on_success():
    size, members, job_sensor, run = _waiters()
    assert size.execute_complete({}, {"status": "success", "size": 7}) == 7
    event = {"status": "success", "entered": 1, "left": 2, "size": 9, "segment": "s"}
    assert members.execute_complete({}, event) == {"entered": 1, "left": 2, "size": 9}
    assert job_sensor.execute_complete({}, {"status": "success", "job_id": "j1"}) == "j1"
    assert run.execute_complete({}, {"status": "success", "job_id": "j1"}) == "j1"


def test_argument_errors_are_one_type():
    assert issubclass(LyticsArgumentError, ValueError)
    assert issubclass(ExportConfigError, LyticsArgumentError) and issubclass(ExportConfigError, ExportError)
    assert issubclass(EnrichmentConfigError, LyticsArgumentError)
    for build in (
        lambda: LyticsAudienceMembershipSensor(task_id="m", segment="s", change="sideways"),
        lambda: LyticsJobSensor(task_id="j", job_id="j1", max_faults=0),
        lambda: LyticsRunJobOperator(task_id="r", job_id="j1", max_faults=0),
        lambda: LyticsAudienceSizeSensor(task_id="s", segment="s", threshold=1, comparison="~"),
        lambda: LyticsJobTrigger(job_id="j1", watermark=0.0, end_time=1.0, cancel_action="explode"),
    ):
        with pytest.raises(LyticsArgumentError):
            build()
