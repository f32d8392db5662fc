"""``LyticsJobSensor``: wait for a Lytics job run that started after a pinned watermark to complete.

Fails early with the job's last log lines on ``failed``/``killed``/``deleted``, on ``fault-N`` with N at or above
``max_faults``, on a paused job, on a one-shot job that completed before the watermark, and on a job sleeping
past the sensor's deadline. Works in poke, reschedule and deferrable modes.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from airflow.providers.common.compat.sdk import AirflowFailException, BaseSensorOperator, PokeReturnValue, conf

from airflow_provider_lytics.errors import LyticsArgumentError
from airflow_provider_lytics.links import LyticsJobLink
from airflow_provider_lytics.sensors._deferral import defer_to_trigger


def resolve_watermark(value: Any, context: Mapping[str, Any]) -> float:
    """``completed_after`` (ISO text, datetime or epoch) or, when unset, the task instance's first start."""
    from airflow_provider_lytics.jobs.status import parse_time

    if value not in (None, ""):
        parsed = parse_time(value)
        if parsed is None:
            raise LyticsArgumentError(f"completed_after must be an ISO 8601 timestamp or epoch seconds, got {value!r}")
        return parsed
    ti = context.get("ti") or context.get("task_instance")
    start = parse_time(getattr(ti, "start_date", None)) if ti is not None else None
    return start if start is not None else time.time()


class LyticsJobSensor(BaseSensorOperator):
    """Succeed when a run of ``job_id`` that started at or after ``completed_after`` has completed.

    :param job_id: Lytics job id (templated).
    :param completed_after: watermark (templated ISO timestamp); default: when this task instance first started.
    :param max_faults: fail once the job reports ``fault-N`` with N at or above this.
    :param fail_on_paused: fail on a paused job rather than wait for a resume.
    :param deferrable: wait in the triggerer (poke once first).
    :returns: the job id (XCom).
    """

    template_fields: Sequence[str] = ("job_id", "completed_after", "lytics_conn_id")
    operator_extra_links = (LyticsJobLink(),)
    ui_color = "#7B61FF"

    def __init__(
        self,
        *,
        job_id: str,
        completed_after: str | None = None,
        lytics_conn_id: str = "lytics_default",
        max_faults: int = 3,
        fail_on_paused: bool = True,
        log_lines: int = 10,
        deferrable: bool | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if max_faults < 1:
            raise LyticsArgumentError("max_faults must be at least 1")
        self.job_id = job_id
        self.completed_after = completed_after
        self.lytics_conn_id = lytics_conn_id
        self.max_faults = int(max_faults)
        self.fail_on_paused = fail_on_paused
        self.log_lines = int(log_lines)
        self._published = False
        self.deferrable = (
            conf.getboolean("operators", "default_deferrable", fallback=False) if deferrable is None else deferrable
        )

    def _deadline(self, context: Mapping[str, Any]) -> float:
        return resolve_watermark(None, context) + float(self.timeout)

    def poke(self, context: Mapping[str, Any]) -> PokeReturnValue:
        from airflow_provider_lytics.hooks.lytics import LyticsHook
        from airflow_provider_lytics.jobs.status import Outcome, format_logs, judge_run
        from airflow_provider_lytics.links import publish_job

        hook = LyticsHook(self.lytics_conn_id)
        watermark = resolve_watermark(self.completed_after, context)
        job = hook.get_job_with_state(self.job_id)
        if not self._published:
            publish_job(context, hook, self.lytics_conn_id, job, self.log)
            self._published = True
        verdict = judge_run(
            job,
            watermark=watermark,
            max_faults=self.max_faults,
            deadline=self._deadline(context),
            fail_on_paused=self.fail_on_paused,
        )
        if verdict.outcome is Outcome.FAILED:
            logs = format_logs(hook.job_logs(self.job_id, include_errors=True), self.log_lines)
            raise AirflowFailException(verdict.message + (f"\nLast job log lines:\n{logs}" if logs else ""))
        self.log.info("%s", verdict.message)
        return PokeReturnValue(is_done=verdict.outcome is Outcome.DONE, xcom_value=self.job_id)

    def execute(self, context: Any) -> Any:
        if not self.deferrable:
            return super().execute(context)
        result = self.poke(context)
        if result.is_done:
            return result.xcom_value
        from airflow_provider_lytics.triggers.jobs import LyticsJobTrigger

        defer_to_trigger(
            self,
            lambda end_time: LyticsJobTrigger(
                job_id=self.job_id,
                watermark=resolve_watermark(self.completed_after, context),
                end_time=end_time,
                lytics_conn_id=self.lytics_conn_id,
                poll_interval=float(self.poke_interval),
                max_faults=self.max_faults,
                fail_on_paused=self.fail_on_paused,
                log_lines=self.log_lines,
            ),
        )

    def execute_complete(self, context: Mapping[str, Any], event: Mapping[str, Any] | None = None) -> str:
        """Success returns the job id; failed, timeout, error and anything unrecognised fail the task."""
        from airflow_provider_lytics.errors import validate_event

        event = validate_event(event, f"Lytics job trigger for {self.job_id}")
        self.log.info("%s", event.get("message", ""))
        return str(event.get("job_id") or self.job_id)
