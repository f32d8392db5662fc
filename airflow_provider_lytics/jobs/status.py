"""What a Lytics job status means for a DAG: done, failed, still working, or never going to finish.

Lytics reports two vocabularies: the live one (``running``, ``sleeping``, ``fault-N``, ``deleted``...) and the v2
OpenAPI enum (``runnable``, ``fault``, ``killed``...). Both are understood here. The run-completion rule pins a
watermark so a sensor waits for a run that *started after* it, not one that finished earlier.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

SUCCESS_STATUSES = frozenset({"completed"})
FAILURE_STATUSES = frozenset({"failed", "killed", "deleted", "deleting"})
PAUSED_STATUSES = frozenset({"paused", "pausing"})
SLEEPING_STATUSES = frozenset({"sleeping"})
RUNNING_STATUSES = frozenset({"running", "runnable", "initializing"})

_FAULT = re.compile(r"^fault(?:-(\d+))?$")


class JobPhase(str, enum.Enum):
    """A Lytics status reduced to what a waiter has to do about it."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"
    PAUSED = "paused"
    SLEEPING = "sleeping"
    RUNNING = "running"
    FAULT = "fault"
    UNKNOWN = "unknown"


def classify(status: str | None) -> JobPhase:
    """The phase of a raw status string (either vocabulary); unknown strings stay ``UNKNOWN`` (keep waiting)."""
    value = (status or "").strip().lower()
    if value in SUCCESS_STATUSES:
        return JobPhase.SUCCEEDED
    if value in FAILURE_STATUSES:
        return JobPhase.FAILED
    if value in PAUSED_STATUSES:
        return JobPhase.PAUSED
    if value in SLEEPING_STATUSES:
        return JobPhase.SLEEPING
    if value in RUNNING_STATUSES:
        return JobPhase.RUNNING
    if _FAULT.match(value):
        return JobPhase.FAULT
    return JobPhase.UNKNOWN


def fault_count(status: str | None) -> int:
    """N of ``fault-N`` (1 for the spec's bare ``fault``), 0 for any other status."""
    match = _FAULT.match((status or "").strip().lower())
    if not match:
        return 0
    return int(match.group(1) or 1)


def parse_time(value: Any) -> float | None:
    """RFC3339 text, epoch seconds or epoch milliseconds to epoch seconds; None when absent or unparseable."""
    if value in (None, ""):
        return None
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=timezone.utc)).timestamp()
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value) / 1000 if value > 1e11 else float(value)
    text = str(value).strip()
    try:
        return parse_time(float(text))
    except ValueError:
        pass
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)).timestamp()


class Outcome(str, enum.Enum):
    DONE = "done"
    FAILED = "failed"
    WAIT = "wait"


@dataclass(frozen=True)
class RunVerdict:
    """The decision for one look at a job: ``outcome`` plus a message that explains it."""

    outcome: Outcome
    message: str
    status: str = ""


def judge_run(
    job: Mapping[str, Any],
    *,
    watermark: float,
    max_faults: int = 3,
    deadline: float | None = None,
    fail_on_paused: bool = True,
) -> RunVerdict:
    """Decide whether a run that started at or after ``watermark`` has completed.

    ``job`` is a v2 job, ideally fetched with ``show_state=true`` (its ``state.last_run_started`` /
    ``last_run_completed`` / ``consecutive_errors``). Fails on failed/killed/deleted, on ``fault-N`` with
    N >= ``max_faults``, on a pause, on a one-shot job that completed before the watermark (it will not run
    again) and on a job that sleeps past ``deadline``: waiting would never end in time.
    """
    job_id = job.get("id", "?")
    status = str(job.get("status") or "")
    phase = classify(status)
    raw_state = job.get("state")
    state: Mapping[str, Any] = raw_state if isinstance(raw_state, Mapping) else {}
    started = parse_time(state.get("last_run_started"))
    completed = parse_time(state.get("last_run_completed"))
    errors = int(state.get("consecutive_errors") or 0)
    fresh_run_done = (
        started is not None and completed is not None and started >= watermark and completed >= started and not errors
    )
    if phase is JobPhase.FAILED:
        return RunVerdict(Outcome.FAILED, f"Lytics job {job_id} is {status}", status)
    faults = fault_count(status) or (errors if phase is JobPhase.FAULT else 0)
    if phase is JobPhase.FAULT and faults >= max_faults:
        return RunVerdict(
            Outcome.FAILED, f"Lytics job {job_id} is {status}: {faults} consecutive errors (limit {max_faults})", status
        )
    if fresh_run_done and phase is not JobPhase.FAULT:
        return RunVerdict(Outcome.DONE, f"Lytics job {job_id} finished a run started after the watermark", status)
    if phase is JobPhase.SUCCEEDED:
        if not state:  # no run bookkeeping: trust a completion that happened after the watermark
            updated = parse_time(job.get("updated"))
            if updated is not None and updated >= watermark:
                return RunVerdict(Outcome.DONE, f"Lytics job {job_id} completed", status)
        return RunVerdict(
            Outcome.FAILED,
            f"Lytics job {job_id} completed before the watermark and will not run again; bounce it to run it anew",
            status,
        )
    if phase is JobPhase.PAUSED and fail_on_paused:
        return RunVerdict(Outcome.FAILED, f"Lytics job {job_id} is {status}: it will not run until resumed", status)
    if deadline is not None and phase in (JobPhase.SLEEPING, JobPhase.FAULT, JobPhase.PAUSED):
        wake = parse_time(job.get("sleep_until"))
        if wake is not None and wake > deadline:
            return RunVerdict(
                Outcome.FAILED,
                f"Lytics job {job_id} is {status} until {job.get('sleep_until')}, after this wait's deadline "
                f"({_iso(deadline)}): raise the wait's timeout past the wake-up (a quiet window can last hours) "
                "or move the job's quiet window",
                status,
            )
    return RunVerdict(Outcome.WAIT, f"Lytics job {job_id} is {status or 'unknown'}; waiting", status)


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def format_logs(entries: Sequence[Mapping[str, Any]], limit: int = 10) -> str:
    """The last ``limit`` job log entries as text lines for an error message."""
    lines = []
    for entry in entries[-limit:]:
        context = entry.get("context") or {}
        counts = ", ".join(f"{k}={context[k]}" for k in ("added", "omitted", "removed") if k in context)
        code = f" [{entry['code']}]" if entry.get("code") else ""
        lines.append(
            f"  {entry.get('timestamp', '')} {str(entry.get('level', '')).upper()}{code} {entry.get('message', '')}"
            + (f" ({counts})" if counts else "")
        )
    return "\n".join(lines)
