"""Deferrable wait for a Lytics job run (``LyticsJobTrigger``), polled from the triggerer with the async hook.

The trigger only reads: it never creates or restarts jobs (a triggerer restart re-runs ``run()``, and a
repeated write could start a second job). It yields exactly one event: ``success``, ``failed``, ``timeout``
or ``error``; ``failed`` carries the job's last log lines.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_lytics.errors import LyticsArgumentError
from airflow_provider_lytics.jobs.status import Outcome, format_logs, judge_run

#: Consecutive failed polls (after the hook's own retries) before the trigger gives up with ``error``.
MAX_POLL_FAILURES = 5
CANCEL_ACTIONS = ("pause", "kill")


class LyticsJobTrigger(BaseTrigger):
    """Wait until a run of ``job_id`` that started at or after ``watermark`` completes.

    :param job_id: the Lytics job id.
    :param watermark: epoch seconds; runs that started earlier do not count.
    :param end_time: epoch seconds after which the trigger yields ``timeout`` (and stops polling).
    :param poll_interval: seconds between polls.
    :param max_faults: ``fault-N`` with N at or above this fails the wait.
    :param fail_on_paused: a paused job fails the wait instead of waiting for a resume that may never come.
    :param cancel_action: ``pause``, ``kill`` or None: what ``on_kill`` (Airflow 3.3 triggerer) does to the job.
    """

    def __init__(
        self,
        *,
        job_id: str,
        watermark: float,
        end_time: float,
        lytics_conn_id: str = "lytics_default",
        poll_interval: float = 30.0,
        max_faults: int = 3,
        fail_on_paused: bool = True,
        cancel_action: str | None = None,
        log_lines: int = 10,
    ) -> None:
        super().__init__()
        if cancel_action not in (None, *CANCEL_ACTIONS):
            raise LyticsArgumentError(f"cancel_action must be 'pause', 'kill' or None, got {cancel_action!r}")
        self.job_id = job_id
        self.watermark = float(watermark)
        self.end_time = float(end_time)
        self.lytics_conn_id = lytics_conn_id
        self.poll_interval = float(poll_interval)
        self.max_faults = int(max_faults)
        self.fail_on_paused = bool(fail_on_paused)
        self.cancel_action = cancel_action
        self.log_lines = int(log_lines)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "job_id": self.job_id,
                "watermark": self.watermark,
                "end_time": self.end_time,
                "lytics_conn_id": self.lytics_conn_id,
                "poll_interval": self.poll_interval,
                "max_faults": self.max_faults,
                "fail_on_paused": self.fail_on_paused,
                "cancel_action": self.cancel_action,
                "log_lines": self.log_lines,
            },
        )

    def _hook(self) -> Any:
        from airflow_provider_lytics.hooks.lytics_async import LyticsAsyncHook

        return LyticsAsyncHook(self.lytics_conn_id)

    async def run(self) -> AsyncIterator[TriggerEvent]:
        try:
            async with self._hook() as hook:
                event = await self._poll(hook)
        except Exception as err:  # one event whatever happens: the task must not hang on a silent trigger
            event = {"status": "error", "job_id": self.job_id, "message": f"{type(err).__name__}: {err}"}
        yield TriggerEvent(event)

    async def _poll(self, hook: Any) -> dict[str, Any]:
        from airflow_provider_lytics.client.errors import LyticsError, LyticsNotFoundError

        failures = 0
        while True:
            try:
                job = await hook.get_job_with_state(self.job_id)
                failures = 0
            except LyticsNotFoundError:
                return {"status": "failed", "job_id": self.job_id, "message": f"Lytics job {self.job_id} not found"}
            except LyticsError as err:
                failures += 1
                self.log.warning("Polling Lytics job %s failed (%d in a row): %s", self.job_id, failures, err)
                if failures >= MAX_POLL_FAILURES:
                    return {"status": "error", "job_id": self.job_id, "message": str(err)}
                job = None
            if job is not None:
                verdict = judge_run(
                    job,
                    watermark=self.watermark,
                    max_faults=self.max_faults,
                    deadline=self.end_time,
                    fail_on_paused=self.fail_on_paused,
                )
                if verdict.outcome is Outcome.DONE:
                    return {
                        "status": "success",
                        "job_id": self.job_id,
                        "job_status": verdict.status,
                        "message": verdict.message,
                    }
                if verdict.outcome is Outcome.FAILED:
                    logs = await self._last_logs(hook)
                    message = verdict.message + (f"\nLast job log lines:\n{logs}" if logs else "")
                    return {"status": "failed", "job_id": self.job_id, "job_status": verdict.status, "message": message}
                self.log.info("%s", verdict.message)
            remaining = self.end_time - time.time()
            if remaining <= 0:
                return {
                    "status": "timeout",
                    "job_id": self.job_id,
                    "message": f"Lytics job {self.job_id} did not finish a new run before the deadline",
                }
            await asyncio.sleep(min(self.poll_interval, remaining))

    async def _last_logs(self, hook: Any) -> str:
        try:
            return format_logs(await hook.job_logs(self.job_id, include_errors=True), self.log_lines)
        except Exception as err:  # logs only decorate the failure message
            self.log.warning("Could not read logs of Lytics job %s: %s", self.job_id, err)
            return ""

    async def on_kill(self) -> None:
        """Airflow 3.3+: the user marked the deferred task failed/success or cleared it; cancel the job."""
        if self.cancel_action is None:
            return
        try:
            async with self._hook() as hook:
                await hook.job_command(self.job_id, self.cancel_action)
            self.log.info("Lytics job %s: %s sent because the task was killed", self.job_id, self.cancel_action)
        except Exception as err:  # best effort: the task is already being stopped
            self.log.warning("Could not %s Lytics job %s: %s", self.cancel_action, self.job_id, err)
