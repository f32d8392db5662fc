"""Lytics jobs as code: create-or-update from a spec, run/pause/resume/bounce/kill, and wait (deferrable or not).

Every operator pushes ``lytics_job_id`` and ``lytics_job_url`` to XCom *before* waiting, returns the job id,
and cancels the remote job on task kill when ``cancel_on_kill`` says how (``pause`` keeps the job, ``kill``
deletes it for good).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import AirflowException, BaseOperator, conf

from airflow_provider_lytics.errors import LyticsArgumentError
from airflow_provider_lytics.links import LyticsJobLink, publish_job

if TYPE_CHECKING:
    from airflow_provider_lytics.hooks.lytics import LyticsHook
    from airflow_provider_lytics.jobs.spec import LyticsJobSpec

COMMANDS = ("pause", "resume", "bounce", "kill")
_WAITABLE_COMMANDS = ("resume", "bounce")
#: Seconds subtracted from the watermark to absorb clock differences between Airflow and Lytics.
CLOCK_SLACK = 1.0
#: task state store key (Airflow 3.3+) for a command sent but whose run the task has not seen end: a retry after
#: a lost worker waits for that run instead of restarting the job a second time
PENDING_KEY = "lytics_job_pending_command"


def _default_deferrable() -> bool:
    return conf.getboolean("operators", "default_deferrable", fallback=False)


class _LyticsJobWaiter(BaseOperator):
    """Shared wait logic: synchronous polling, or deferral to :class:`LyticsJobTrigger`, plus on_kill."""

    operator_extra_links = (LyticsJobLink(),)
    ui_color = "#7B61FF"

    def __init__(
        self,
        *,
        lytics_conn_id: str = "lytics_default",
        wait_for_completion: bool = False,
        deferrable: bool | None = None,
        poll_interval: float = 30.0,
        wait_timeout: float = 24 * 3600.0,
        max_faults: int = 3,
        cancel_on_kill: str | None = "pause",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if cancel_on_kill not in (None, "pause", "kill"):
            raise LyticsArgumentError(f"cancel_on_kill must be 'pause', 'kill' or None, got {cancel_on_kill!r}")
        if poll_interval <= 0 or wait_timeout <= 0:
            raise LyticsArgumentError("poll_interval and wait_timeout must be positive numbers of seconds")
        if max_faults < 1:
            raise LyticsArgumentError("max_faults must be at least 1")
        self.lytics_conn_id = lytics_conn_id
        self.wait_for_completion = wait_for_completion
        self.deferrable = _default_deferrable() if deferrable is None else deferrable
        self.poll_interval = float(poll_interval)
        self.wait_timeout = float(wait_timeout)
        self.max_faults = int(max_faults)
        self.cancel_on_kill = cancel_on_kill
        self.job_id: str | None = None
        self._waiting = False
        self._store: Any = None  # Airflow 3.3's task state store, when a command's wait can be resumed

    def hook(self) -> LyticsHook:
        from airflow_provider_lytics.hooks.lytics import LyticsHook

        return LyticsHook(self.lytics_conn_id)

    def _publish(self, context: Mapping[str, Any], hook: LyticsHook, job: Mapping[str, Any]) -> str:
        """Remember the job and push its id and UI link to XCom before anything can fail."""
        self.job_id = str(job["id"])
        return publish_job(context, hook, self.lytics_conn_id, job, self.log)

    def _wait(self, context: Mapping[str, Any], hook: LyticsHook, watermark: float) -> str:
        """Wait for a run started at or after ``watermark``; defers when ``deferrable``. Returns the job id."""
        from airflow_provider_lytics.jobs.status import Outcome, format_logs, judge_run

        assert self.job_id is not None
        end_time = time.time() + self.wait_timeout
        job = hook.get_job_with_state(self.job_id)
        verdict = judge_run(job, watermark=watermark, max_faults=self.max_faults, deadline=end_time)
        if verdict.outcome is Outcome.WAIT and self.deferrable:
            from airflow_provider_lytics.triggers.jobs import LyticsJobTrigger

            self.defer(
                trigger=LyticsJobTrigger(
                    job_id=self.job_id,
                    watermark=watermark,
                    end_time=end_time,
                    lytics_conn_id=self.lytics_conn_id,
                    poll_interval=self.poll_interval,
                    max_faults=self.max_faults,
                    cancel_action=self.cancel_on_kill,
                ),
                method_name="execute_complete",
                timeout=timedelta(seconds=self.wait_timeout + 2 * self.poll_interval),
            )
        self._waiting = True
        try:
            while verdict.outcome is Outcome.WAIT:
                if time.time() >= end_time:
                    self._forget_pending()
                    self._cancel(hook, "the wait timed out")
                    raise AirflowException(
                        f"Lytics job {self.job_id} did not finish a new run within {self.wait_timeout:g} s"
                    )
                self.log.info("%s", verdict.message)
                time.sleep(min(self.poll_interval, max(0.0, end_time - time.time())))
                job = hook.get_job_with_state(self.job_id)
                verdict = judge_run(job, watermark=watermark, max_faults=self.max_faults, deadline=end_time)
        finally:
            self._waiting = False
        self._forget_pending()
        if verdict.outcome is Outcome.FAILED:
            logs = format_logs(hook.job_logs(self.job_id, include_errors=True))
            raise AirflowException(verdict.message + (f"\nLast job log lines:\n{logs}" if logs else ""))
        self.log.info("%s", verdict.message)
        return self.job_id

    def execute_complete(self, context: Mapping[str, Any], event: Mapping[str, Any] | None = None) -> str:
        """Finish after the trigger: success returns the job id; anything else fails (unknown events too).

        Failures stay plain ``AirflowException`` (the task's retries run the job again); a timeout first
        cancels the job as ``cancel_on_kill`` says.
        """
        from airflow_provider_lytics.errors import validate_event

        self._store = context.get("task_state_store")
        self._forget_pending()
        if isinstance(event, Mapping):
            job_id = event.get("job_id") or self.job_id
            self.job_id = str(job_id) if job_id else None
            if event.get("status") == "timeout":
                self._cancel(self.hook(), "the wait timed out")
        event = validate_event(event, f"Lytics job trigger for {self.job_id}", failure=AirflowException)
        if not self.job_id:
            raise AirflowException(f"Lytics job trigger reported success without a job id: {dict(event)!r}")
        self.log.info("%s", event.get("message", ""))
        return self.job_id

    def _forget_pending(self) -> None:
        """The wait reached a verdict: a later try must send its command again (see ``PENDING_KEY``)."""
        if self._store is not None:
            self._store.delete(PENDING_KEY)

    def _cancel(self, hook: LyticsHook, why: str) -> None:
        if not self.cancel_on_kill or not self.job_id:
            return
        try:
            hook.job_command(self.job_id, self.cancel_on_kill)
            self.log.warning("Lytics job %s: sent %s because %s", self.job_id, self.cancel_on_kill, why)
        except Exception as err:  # best effort: we are already failing or being killed
            self.log.warning("Could not %s Lytics job %s: %s", self.cancel_on_kill, self.job_id, err)

    def on_kill(self) -> None:
        """Worker side: a task killed while it polls cancels the job it waits for (``cancel_on_kill``)."""
        if self._waiting:
            self._forget_pending()
            self._cancel(self.hook(), "the task was killed")


class LyticsCreateOrUpdateJobOperator(_LyticsJobWaiter):
    """Make a Lytics job match a declarative spec: create it, repair drift, or leave it alone.

    The job is found by workflow plus ``tag`` (when the spec sets one) or name. Only fields the spec names are
    compared and written; everything else on the job is carried over, because Lytics's update replaces the whole
    job. Returns the job id; pushes ``lytics_job_action`` (``created``/``updated``/``unchanged``) and
    ``lytics_job_drift`` (list of ``path: old -> new`` strings).

    :param spec: a :class:`LyticsJobSpec` or its dict form (``workflow``, ``name``, ``config``, optional fields).
    :param run_job: start a newly created job (False creates it paused, for review).
    :param bounce_on_update: restart the job after a drift repair so the new settings apply at once.
    :param wait_for_completion: wait for a run that starts after this task began.
    """

    template_fields: Sequence[str] = ("spec", "lytics_conn_id")
    template_fields_renderers = {"spec": "json"}

    def __init__(
        self,
        *,
        spec: LyticsJobSpec | Mapping[str, Any],
        run_job: bool = True,
        bounce_on_update: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.spec = spec
        self.run_job = run_job
        self.bounce_on_update = bounce_on_update

    def execute(self, context: Mapping[str, Any]) -> str:
        from airflow_provider_lytics.jobs.drift import find_drift, update_request
        from airflow_provider_lytics.jobs.spec import LyticsJobSpec

        spec = self.spec if isinstance(self.spec, LyticsJobSpec) else LyticsJobSpec.from_dict(dict(self.spec))
        if self.wait_for_completion and not self.run_job:
            raise LyticsArgumentError(
                "wait_for_completion needs run_job=True: a job created paused never completes a run"
            )
        hook = self.hook()
        watermark = time.time() - CLOCK_SLACK
        existing = [job for job in hook.list_jobs(workflow=spec.workflow, show_all=True) if spec.matches(job)]
        if len(existing) > 1:
            ids = ", ".join(str(job["id"]) for job in existing)
            raise AirflowException(
                f"{len(existing)} Lytics jobs match {spec.workflow}/{spec.fields.get('tag') or spec.name} ({ids}); "
                "kill the extras or give the spec a unique tag"
            )
        drift_lines: list[str] = []
        if not existing:
            job = hook.create_job(spec.workflow, spec.create_request(), run_job=self.run_job)
            action = "created"
            self.log.info("Created Lytics job %s for %s/%s", job["id"], spec.workflow, spec.name)
        else:
            job = existing[0]
            drift = find_drift(spec, job)
            drift_lines = [d.describe() for d in drift]
            if drift:
                self.log.info("Lytics job %s drifted:\n  %s", job["id"], "\n  ".join(drift_lines))
                job = hook.update_job(job["workflow"], job["id"], update_request(spec, job))
                action = "updated"
                if self.bounce_on_update and self.run_job:
                    job = hook.job_command(job["id"], "bounce") or job
            else:
                action = "unchanged"
                self.log.info("Lytics job %s already matches the spec", job["id"])
        self._publish(context, hook, job)
        ti = context.get("ti") or context.get("task_instance")
        if ti is not None:
            ti.xcom_push(key="lytics_job_action", value=action)
            ti.xcom_push(key="lytics_job_drift", value=drift_lines)
        if self.wait_for_completion:
            return self._wait(context, hook, watermark)
        return str(job["id"])


class LyticsJobCommandOperator(_LyticsJobWaiter):
    """Send ``pause``, ``resume``, ``bounce`` (restart) or ``kill`` to a Lytics job; optionally wait for its run.

    Waiting applies to ``resume`` and ``bounce``. ``kill`` is irreversible (Lytics soft-deletes the job).
    """

    template_fields: Sequence[str] = ("job_id_param", "command", "lytics_conn_id")

    def __init__(self, *, job_id: str, command: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.job_id_param = job_id
        self.command = command

    def execute(self, context: Mapping[str, Any]) -> str:
        if self.command not in COMMANDS:
            raise LyticsArgumentError(f"command must be one of {', '.join(COMMANDS)}, got {self.command!r}")
        if not isinstance(self.job_id_param, str) or not self.job_id_param.strip():
            raise LyticsArgumentError("job_id must be a Lytics job id (e.g. the XCom of a create-or-update task)")
        if self.wait_for_completion and self.command not in _WAITABLE_COMMANDS:
            raise LyticsArgumentError(f"wait_for_completion only applies to resume and bounce, not {self.command}")
        hook = self.hook()
        job_id = self.job_id_param.strip()
        self._store = context.get("task_state_store") if self.wait_for_completion else None
        watermark = self._pending_command(job_id)
        if watermark is not None:
            job = hook.get_job(job_id)
            self.log.info(
                "An earlier try sent %s to Lytics job %s and did not see that run end (worker lost?): waiting for "
                "it instead of sending %s again", self.command, job_id, self.command,
            )  # fmt: skip
        else:
            watermark = time.time() - CLOCK_SLACK
            job = hook.job_command(job_id, self.command)
            self.log.info("Sent %s to Lytics job %s; status now %s", self.command, job.get("id"), job.get("status"))
            if self._store is not None:  # Airflow 3.3+: a retry after a crash resumes this wait
                self._store.set(PENDING_KEY, {"job_id": job_id, "command": self.command, "watermark": watermark})
        self._publish(context, hook, job)
        if self.wait_for_completion:
            return self._wait(context, hook, watermark)
        return str(job["id"])

    def _pending_command(self, job_id: str) -> float | None:
        """The watermark of a command an earlier try sent and whose run it never saw end, if any."""
        if self._store is None:
            return None
        pending = self._store.get(PENDING_KEY)
        if isinstance(pending, dict) and pending.get("job_id") == job_id and pending.get("command") == self.command:
            return float(pending["watermark"])
        return None


class LyticsRunJobOperator(LyticsJobCommandOperator):
    """Run a Lytics job now (``bounce``) and wait for that run to complete (deferrable)."""

    def __init__(self, *, job_id: str, wait_for_completion: bool = True, **kwargs: Any) -> None:
        super().__init__(job_id=job_id, command="bounce", wait_for_completion=wait_for_completion, **kwargs)
