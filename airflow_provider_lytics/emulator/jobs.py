"""The emulator's Lytics jobs engine: job documents, a clock-driven state machine, job logs and authorizations.

A job moves ``initializing -> running -> completed`` (one-shot) or ``initializing -> running -> sleeping -> running
...`` (continuous). Errors put it in ``fault-N`` with a doubling back-off and, after ``max_faults`` consecutive errors,
in ``failed``. State is derived from the clock whenever a job is read, and a small background thread keeps jobs
moving (and starts registered runners) when nobody is reading. Everything is written through to the StateDB so a
restarted emulator resumes where it stopped. No HTTP here: ``jobs_routes`` maps this onto ``/v2/job`` and
``/api/work``.

The workflow/provider catalog (``catalog``), authorizations (``auths``), the errors (``job_errors``), time helpers
(``job_time``) and JobRequest validation (``job_requests``) live in their own modules; import them from there.
"""

from __future__ import annotations

import builtins
import copy
import logging
import secrets
import threading
import time
from collections.abc import Callable
from concurrent.futures import CancelledError, Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_lytics.emulator.auths import AuthRegistry
from airflow_provider_lytics.emulator.catalog import WORKFLOWS, Workflow, _stable_id, resolve_workflow
from airflow_provider_lytics.emulator.job_errors import JobError, JobNotFound, RateLimited, WorkflowNotFound
from airflow_provider_lytics.emulator.job_requests import validate_job_body
from airflow_provider_lytics.emulator.job_time import parse_rfc3339, quiet_window_end, rfc3339
from airflow_provider_lytics.emulator.persistence import StateDB

__all__ = [
    "JobEngine",
    "JobTimings",
    "Runner",
    "spec_status",
    "user_id_for",
]

Runner = Callable[[dict[str, Any]], dict[str, Any]]

log = logging.getLogger(__name__)

# ----------------------------------------------------------------------------------------------------------------
# Timings and status vocabularies.
# ----------------------------------------------------------------------------------------------------------------


@dataclass
class JobTimings:
    """How fast jobs move, in seconds. Tests use tiny values, the demo realistic ones."""

    initializing: float = 1.0
    running: float = 3.0  # minimum duration of one run (a runner that takes longer extends it)
    sleep_between_runs: float = 10.0  # continuous jobs sleep this long, then run again
    vocabulary: str = "live"  # "live": running/sleeping/fault-N/deleted...; "spec": runnable/fault/killed...
    fault_backoff: float = 60.0  # first retry delay after an error; doubles with each consecutive error
    fault_backoff_max: float = 3600.0
    max_faults: int = 8  # consecutive errors before the job is failed (~2 h with the default back-off)
    creations_per_hour: int | None = 10  # per account, like Lytics; None disables the limit
    log_retention: int = 1000  # newest log entries kept per job
    tick: float | None = None  # background advance interval; None picks one from the timings
    runner_workers: int = 4

    def __post_init__(self) -> None:
        if self.vocabulary not in ("live", "spec"):
            raise ValueError(f"vocabulary must be 'live' or 'spec', got {self.vocabulary!r}")
        for name in ("initializing", "running", "sleep_between_runs", "fault_backoff", "fault_backoff_max"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0")
        if self.max_faults < 1:
            raise ValueError("max_faults must be >= 1")


#: Live status -> the v2 OpenAPI enum (runnable, sleeping, paused, completed, fault, failed, killed, deleted, unknown).
_SPEC_STATUS = {
    "initializing": "runnable",
    "running": "runnable",
    "sleeping": "sleeping",
    "paused": "paused",
    "pausing": "paused",
    "completed": "completed",
    "failed": "failed",
    "deleted": "killed",
}

_TERMINAL = ("completed", "failed", "killed")
_WAITING = ("initializing", "sleeping", "backoff")


def spec_status(live: str) -> str:
    if live.startswith("fault-"):
        return "fault"
    return _SPEC_STATUS.get(live, "unknown")


# ----------------------------------------------------------------------------------------------------------------
# The engine.
# ----------------------------------------------------------------------------------------------------------------


def user_id_for(account_id: str) -> str:
    """The emulator's single user per account (tokens carry no user identity)."""
    return _stable_id("user", account_id)


@dataclass
class _RunHandle:
    gen: int
    future: Future[Any] | None = None
    done_ts: float | None = None
    counts: dict[str, Any] | None = None
    error: str | None = None

    @property
    def done(self) -> bool:
        return self.done_ts is not None


@dataclass
class _Log:
    ts: float
    seq: int
    entry: dict[str, Any] = field(default_factory=dict)


_COMMANDS = ("pause", "resume", "bounce", "kill", "release")


class JobEngine:
    """Jobs for every account. Thread-safe; all public methods return copies."""

    def __init__(
        self,
        db: StateDB,
        timings: JobTimings | None = None,
        clock: Callable[[], float] = time.time,
        *,
        background: bool | None = None,
    ) -> None:
        self.db = db
        self.timings = timings or JobTimings()
        self.clock = clock
        self.auths = AuthRegistry(db, clock)
        self._lock = threading.RLock()
        self._jobs: dict[str, dict[str, Any]] = {}
        self._rt: dict[str, dict[str, Any]] = {}
        self._logs: dict[str, list[_Log]] = {}
        self._runs: dict[str, _RunHandle] = {}
        self._runners: dict[str, Runner] = {}
        self._seq = 0
        self._closed = False
        self._pool = ThreadPoolExecutor(max_workers=self.timings.runner_workers, thread_name_prefix="lytics-job")
        self._load()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if background if background is not None else clock is time.time:
            self._thread = threading.Thread(target=self._tick_loop, name="lytics-job-clock", daemon=True)
            self._thread.start()

    # -- persistence -------------------------------------------------------------------------------------------
    def _load(self) -> None:
        for job_id, doc in self.db.load("job").items():
            rt = doc.pop("_engine", None)
            if rt is None:
                continue
            self._jobs[job_id] = doc
            self._rt[job_id] = rt
        for doc in self.db.load("joblog").values():
            ts, seq = doc.pop("_ts"), doc.pop("_seq")
            self._logs.setdefault(doc["job_id"], []).append(_Log(ts, seq, doc))
            self._seq = max(self._seq, seq)
        for entries in self._logs.values():
            entries.sort(key=lambda log: log.seq)

    def _save(self, job_id: str) -> None:
        self.db.put("job", job_id, {**self._jobs[job_id], "_engine": self._rt[job_id]})

    def _log(self, job_id: str, ts: float, level: str, message: str, code: str | None = None, **context: Any) -> None:
        self._seq += 1
        entry: dict[str, Any] = {"job_id": job_id, "level": level, "message": message}
        if code:
            entry["code"] = code
        entry["context"] = context
        entry["timestamp"] = rfc3339(ts)
        entries = self._logs.setdefault(job_id, [])
        entries.append(_Log(ts, self._seq, entry))
        self.db.put("joblog", f"{job_id}/{self._seq:012d}", {**entry, "_ts": ts, "_seq": self._seq})
        while len(entries) > self.timings.log_retention:
            old = entries.pop(0)
            self.db.delete("joblog", f"{job_id}/{old.seq:012d}")

    # -- public API ----------------------------------------------------------------------------------------------
    def register_runner(self, workflow: str, runner: Runner) -> None:
        """Have ``runner(job)`` do the real work of each run of ``workflow`` jobs (called in a worker thread)."""
        wf = resolve_workflow(workflow)
        with self._lock:
            self._runners[wf.slug] = runner

    def create(
        self, account_id: str, body: dict[str, Any], workflow: str | None, run_job: bool = True
    ) -> dict[str, Any]:
        """Validate a JobRequest and create the job; it starts at once unless ``run_job`` is false."""
        if not isinstance(body, dict):
            raise JobError("request body must be a JSON object describing the job", code="JSON-BADREQ-025")
        wf = self._workflow_for(body, workflow)
        fields = validate_job_body(body, wf)
        with self._lock:
            now = self.clock()
            self._check_auths(account_id, fields["auth_ids"])
            self._check_rate(account_id, now)
            job_id = secrets.token_hex(16)
            stamp = rfc3339(now)
            doc: dict[str, Any] = {
                "id": job_id,
                "account_id": account_id,
                "user_id": user_id_for(account_id),
                "workflow": wf.slug,
                "workflow_id": wf.id,
                **fields,
                "status": "",
                "sleep_until": None,
                "created": stamp,
                "updated": stamp,
                "deleted": False,
                "api_token_auth_id": None,
            }
            rt = {
                "phase": "initializing" if run_job else "paused",
                "until": now + self.timings.initializing if run_job else None,
                "created_ts": now,
                "expires_ts": parse_rfc3339(fields["expires_at"], "expires_at") if fields["expires_at"] else None,
                "gen": 0,
                "errors": 0,
                "runs": 0,
                "attempts": 0,
                "pending_faults": 0,
                "fail_next": False,
                "run_start": None,
                "runner_used": False,
                "last_run_started": None,
                "last_run_ended": None,
                "last_counts": None,
            }
            self._jobs[job_id], self._rt[job_id] = doc, rt
            self._set_status(job_id, now)
            note = "" if run_job else " (not started: run_job=false)"
            self._log(job_id, now, "info", f"job created{note}", user_id=doc["user_id"])
            self._advance(job_id, now)
            self._save(job_id)
            return self._view(job_id)

    def get(self, account_id: str, job_id: str, *, show_state: bool = False) -> dict[str, Any] | None:
        with self._lock:
            if not self._owned(account_id, job_id):
                return None
            self._advance(job_id, self.clock())
            return self._view(job_id, with_state=show_state)

    def list(
        self,
        account_id: str,
        *,
        workflow: str | None = None,
        auth_ids: list[str] | None = None,
        show_completed: bool = False,
        show_deleted: bool = False,
        show_hidden: bool = False,
        show_all: bool = False,
        show_state: bool = False,
        status: str | None = None,
    ) -> list[dict[str, Any]]:
        """Jobs of an account, filtered like ``GET /v2/job`` (killed jobs need show_all, or deleted+completed)."""
        wf_slug = resolve_workflow(workflow).slug if workflow else None
        if show_all:
            show_completed = show_deleted = show_hidden = True
        out = []
        with self._lock:
            now = self.clock()
            for job_id in sorted(self._jobs, key=lambda j: (self._rt[j]["created_ts"], j)):
                doc = self._jobs[job_id]
                if doc["account_id"] != account_id:
                    continue
                self._advance(job_id, now)
                phase = self._rt[job_id]["phase"]
                if wf_slug and doc["workflow"] != wf_slug:
                    continue
                if auth_ids and not set(auth_ids) & set(doc["auth_ids"]):
                    continue
                if doc["hidden"] and not show_hidden:
                    continue
                if phase == "killed" and not (show_deleted and show_completed):
                    continue
                if phase in ("completed", "failed") and not show_completed:
                    continue
                if status and doc["status"] != status:
                    continue
                out.append(self._view(job_id, with_state=show_state))
        return out

    def replace(self, account_id: str, job_id: str, body: dict[str, Any], workflow: str | None) -> dict[str, Any]:
        """PUT: replace every writable field; omitted optional fields reset, ``config`` is replaced wholesale."""
        with self._lock:
            if not self._owned(account_id, job_id):
                raise JobNotFound(f"job {job_id} not found in this account")
            doc, rt = self._jobs[job_id], self._rt[job_id]
            if workflow is not None and resolve_workflow(workflow).slug != doc["workflow"]:
                raise JobError(f"job {job_id} belongs to workflow {doc['workflow']}, not {workflow}")
            body_wf = body.get("workflow") if isinstance(body, dict) else None
            if body_wf not in (None, "") and resolve_workflow(body_wf).slug != doc["workflow"]:
                raise JobError("workflow cannot be changed by an update; create a new job instead")
            if rt["phase"] == "killed":
                raise JobError(f"job {job_id} was killed; killed jobs cannot be updated")
            fields = validate_job_body(body, WORKFLOWS[doc["workflow"]])
            self._check_auths(account_id, fields["auth_ids"])
            now = self.clock()
            self._advance(job_id, now)
            doc.update(fields)
            rt["expires_ts"] = parse_rfc3339(fields["expires_at"], "expires_at") if fields["expires_at"] else None
            doc["updated"] = rfc3339(now)
            self._log(job_id, now, "info", "job updated", user_id=doc["user_id"])
            self._advance(job_id, now)
            self._save(job_id)
            return self._view(job_id)

    def command(self, account_id: str, job_id: str, cmd: str, duration: float | None = None) -> dict[str, Any]:
        """Apply ``pause`` (optionally for ``duration`` seconds), ``resume``, ``bounce``, ``kill`` or ``release``."""
        if cmd == "delete":
            cmd = "kill"
        if cmd not in _COMMANDS:
            raise JobError(f"unknown job command {cmd!r}; use one of {', '.join(_COMMANDS)}")
        with self._lock:
            if not self._owned(account_id, job_id):
                raise JobNotFound(f"job {job_id} not found in this account")
            now = self.clock()
            self._advance(job_id, now)
            rt, doc = self._rt[job_id], self._jobs[job_id]
            phase, user = rt["phase"], doc["user_id"]
            if phase == "killed" and cmd != "kill":
                raise JobError(f"job {job_id} was killed; a killed job cannot be {cmd}d (kill is irreversible)")
            if cmd == "pause":
                if phase in ("completed", "failed"):
                    raise JobError(f"job {job_id} is {phase}; only an active job can be paused")
                if phase != "paused":
                    rt["gen"] += 1
                    self._set_phase(job_id, "paused", now + duration if duration else None)
                    self._log(job_id, now, "info", "job paused", user_id=user)
                elif duration:
                    rt["until"] = now + duration
            elif cmd == "resume":
                if phase != "paused":
                    raise JobError(f"job {job_id} is {doc['status']}, not paused; only a paused job can be resumed")
                self._set_phase(job_id, "initializing", now + self.timings.initializing)
                self._log(job_id, now, "info", "job resumed", user_id=user)
            elif cmd == "bounce":
                rt["gen"] += 1
                rt["errors"] = 0
                self._set_phase(job_id, "initializing", now + self.timings.initializing)
                self._log(job_id, now, "info", "job bounced (restarted)", user_id=user)
            elif cmd == "kill":
                if phase != "killed":
                    rt["gen"] += 1
                    self._set_phase(job_id, "killed", None)
                    doc["deleted"] = True
                    self._log(job_id, now, "info", "job killed", user_id=user)
            elif cmd == "release":
                if phase in ("completed", "failed"):
                    raise JobError(f"job {job_id} is {phase}; bounce it to run it again")
                if phase in ("paused", "sleeping", "backoff", "initializing"):
                    self._set_phase(job_id, "initializing" if phase == "paused" else phase, now)
                    self._log(job_id, now, "info", "job released to run now", user_id=user)
            self._set_status(job_id, now)
            self._advance(job_id, now)
            self._save(job_id)
            return self._view(job_id)

    def logs(
        self, account_id: str, job_id: str | None = None, include_errors: bool = False
    ) -> builtins.list[dict[str, Any]]:
        """Log entries sorted by time: one job since creation, or the account's last 24 h (killed jobs excluded)."""
        with self._lock:
            now = self.clock()
            if job_id is not None:
                if not self._owned(account_id, job_id):
                    raise JobNotFound(f"job {job_id} not found in this account")
                self._advance(job_id, now)
                picked = list(self._logs.get(job_id, []))
            else:
                picked = []
                for jid, doc in self._jobs.items():
                    if doc["account_id"] != account_id:
                        continue
                    self._advance(jid, now)
                    if self._rt[jid]["phase"] == "killed":
                        continue
                    picked.extend(log for log in self._logs.get(jid, []) if log.ts >= now - 86400)
            picked.sort(key=lambda log: (log.ts, log.seq))
            return [copy.deepcopy(log.entry) for log in picked if include_errors or log.entry["level"] != "error"]

    def inject(self, job_id: str, *, faults: int = 0, fail: bool = False) -> None:
        """Make the job's next ``faults`` runs error (fault-N), and/or its next run fail outright."""
        if faults < 0:
            raise ValueError("faults must be >= 0")
        with self._lock:
            if job_id not in self._rt:
                raise JobNotFound(f"job {job_id} not found")
            rt = self._rt[job_id]
            rt["pending_faults"] += faults
            rt["fail_next"] = rt["fail_next"] or fail
            self._save(job_id)

    def delete_auth(self, account_id: str, auth_id: str) -> dict[str, Any]:
        """Delete an authorization; jobs using it lose it and active ones are paused (as Lytics stops them)."""
        with self._lock:
            view = self.auths.delete(account_id, auth_id)
            now = self.clock()
            for job_id, doc in self._jobs.items():
                if doc["account_id"] != account_id or auth_id not in doc["auth_ids"]:
                    continue
                self._advance(job_id, now)
                doc["auth_ids"] = [a for a in doc["auth_ids"] if a != auth_id]
                doc["updated"] = rfc3339(now)
                rt = self._rt[job_id]
                if rt["phase"] not in (*_TERMINAL, "paused"):
                    rt["gen"] += 1
                    self._set_phase(job_id, "paused", None)
                self._log(job_id, now, "warn", f"authorization {auth_id} was deleted; job stopped", "AUTH-NOTFOUND-006")
                self._set_status(job_id, now)
                self._save(job_id)
            return view

    def reset(self) -> None:
        """Forget every job, log entry and authorization (in memory and in the StateDB)."""
        with self._lock:
            for job_id in self._jobs:
                self.db.delete("job", job_id)
                for log in self._logs.get(job_id, []):
                    self.db.delete("joblog", f"{job_id}/{log.seq:012d}")
            for auth in self.auths.list_all():
                self.db.delete("auth", auth)
            self.auths.clear()
            self._jobs.clear()
            self._rt.clear()
            self._logs.clear()
            self._runs.clear()  # in-flight runners finish into a job that no longer exists and are dropped

    def advance_all(self) -> None:
        """Bring every job up to the clock (the background thread calls this)."""
        with self._lock:
            if self._closed:
                return
            now = self.clock()
            for job_id in list(self._jobs):
                self._advance(job_id, now)

    def wait_for_runners(self, timeout: float = 10.0) -> bool:
        """Block until no runner is in flight (tests and shutdown); False on timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                busy = [h.future for h in self._runs.values() if not h.done and h.future is not None]
            if not busy:
                return True
            try:
                busy[0].exception(timeout=max(0.0, deadline - time.monotonic()))
            except (FutureTimeout, CancelledError):
                pass
        return False

    def close(self) -> None:
        with self._lock:
            self._closed = True
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
        self._pool.shutdown(wait=False, cancel_futures=True)

    # -- internals -------------------------------------------------------------------------------------------------
    def _workflow_for(self, body: dict[str, Any], path_workflow: str | None) -> Workflow:
        body_wf = body.get("workflow")
        if path_workflow:
            wf = resolve_workflow(path_workflow)
            if body_wf not in (None, "") and resolve_workflow(body_wf).slug != wf.slug:
                raise JobError(f"workflow in the body ({body_wf}) differs from the path ({path_workflow})")
            return wf
        if body_wf in (None, ""):
            raise WorkflowNotFound("workflow is required: POST /v2/job/{workflow} or put workflow in the body")
        return resolve_workflow(body_wf)

    def _check_auths(self, account_id: str, auth_ids: builtins.list[str]) -> None:
        for auth_id in auth_ids:
            if not self.auths.exists(account_id, auth_id):
                raise JobError(
                    f"auth_ids: authorization {auth_id} not found in this account; create it with POST /v2/auth",
                    code="AUTH-NOTFOUND-006",
                )

    def _check_rate(self, account_id: str, now: float) -> None:
        limit = self.timings.creations_per_hour
        if limit is None:
            return
        recent = sum(
            1
            for jid, doc in self._jobs.items()
            if doc["account_id"] == account_id and self._rt[jid]["created_ts"] > now - 3600
        )
        if recent >= limit:
            raise RateLimited(
                f"job creation limit reached: at most {limit} jobs may be created per hour per account; "
                "retry later or reuse an existing job (bounce/update it)"
            )

    def _owned(self, account_id: str, job_id: str) -> bool:
        doc = self._jobs.get(job_id)
        return doc is not None and doc["account_id"] == account_id

    def _view(self, job_id: str, with_state: bool = False) -> dict[str, Any]:
        out = copy.deepcopy(self._jobs[job_id])
        if with_state:
            out["state"] = self.work_state(job_id)
        return out

    def work_state(self, job_id: str) -> dict[str, Any]:
        """Run bookkeeping exposed as v1 ``state`` / v2 ``show_state``."""
        rt = self._rt[job_id]
        return {
            "runs": rt["runs"],
            "consecutive_errors": rt["errors"],
            "last_run_started": rfc3339(rt["last_run_started"]),
            "last_run_completed": rfc3339(rt["last_run_ended"]),
            "last_run_counts": copy.deepcopy(rt["last_counts"]),
        }

    def _is_one_shot(self, doc: dict[str, Any]) -> bool:
        config = doc["config"]
        for key in ("continuous", "continuous_update"):
            if isinstance(config.get(key), bool):
                return not config[key]
        return WORKFLOWS[doc["workflow"]].one_shot

    def _busy(self, job_id: str) -> bool:
        handle = self._runs.get(job_id)
        return handle is not None and not handle.done

    def _set_phase(self, job_id: str, phase: str, until: float | None) -> None:
        rt = self._rt[job_id]
        rt["phase"], rt["until"] = phase, until

    def _set_status(self, job_id: str, now: float) -> None:
        doc, rt = self._jobs[job_id], self._rt[job_id]
        phase = rt["phase"]
        if phase == "backoff" or (phase in ("running", "initializing") and rt["errors"]):
            live = f"fault-{rt['errors']}"
        elif phase == "paused" and self._busy(job_id):
            live = "pausing"
        elif phase == "killed":
            live = "deleted"
        else:
            live = phase
        status = live if self.timings.vocabulary == "live" else spec_status(live)
        sleep_until = rfc3339(rt["until"]) if phase in ("sleeping", "backoff", "paused") else None
        if doc["status"] != status or doc["sleep_until"] != sleep_until:
            doc["status"], doc["sleep_until"] = status, sleep_until
            doc["updated"] = rfc3339(now)

    def _advance(self, job_id: str, now: float) -> bool:
        """Apply every transition due by ``now``; True when something changed."""
        changed = False
        for _ in range(100):  # bounded: missed cycles collapse, so a handful of steps is the norm
            if not self._step(job_id, now):
                break
            changed = True
        self._set_status(job_id, now)
        if changed:
            self._save(job_id)  # logs are already written; the job must match them if the emulator restarts
        return changed

    def _step(self, job_id: str, now: float) -> bool:
        rt, doc = self._rt[job_id], self._jobs[job_id]
        phase = rt["phase"]
        if phase in _TERMINAL:
            return False
        expires = rt.get("expires_ts")
        if expires is not None and now >= expires:
            rt["gen"] += 1
            self._set_phase(job_id, "completed", None)
            self._log(job_id, expires, "info", "job expired (expires_at reached)")
            return True
        if phase == "paused":
            if rt["until"] is not None and now >= rt["until"]:
                self._log(job_id, rt["until"], "info", "job resumed (pause period ended)")
                self._set_phase(job_id, "initializing", rt["until"] + self.timings.initializing)
                return True
            return False
        if phase in _WAITING:
            if rt["until"] is None or now < rt["until"] or self._busy(job_id):
                return False
            start = rt["until"]
            cycle = self.timings.running + self.timings.sleep_between_runs + self.timings.initializing
            if now - start > max(10 * cycle, 1.0):
                start = now  # the emulator was stopped (or nobody looked) for long: missed runs collapse into one
            quiet_end = quiet_window_end(start, doc["quiet_time_of_day"], doc["quiet_timezone"], doc["quiet_period"])
            if quiet_end is not None:
                if phase != "sleeping" or rt["until"] != quiet_end:
                    self._log(job_id, start, "info", f"quiet window: sleeping until {rfc3339(quiet_end)}")
                self._set_phase(job_id, "sleeping", quiet_end)
                return True
            self._start_run(job_id, start)
            return True
        if phase == "running":
            end = rt["run_start"] + self.timings.running
            handle = self._runs.get(job_id)
            if rt["runner_used"]:
                if handle is None or handle.gen != rt["gen"]:
                    self._submit(job_id)  # restarted emulator: the run was in flight, do it again
                    return False
                if not handle.done:
                    return False
                end = max(end, handle.done_ts or end)
            if now < end:
                return False
            self._finish_run(job_id, end, handle if rt["runner_used"] else None)
            return True
        return False

    def _start_run(self, job_id: str, start: float) -> None:
        rt, doc = self._rt[job_id], self._jobs[job_id]
        rt["run_start"] = rt["last_run_started"] = start
        self._set_phase(job_id, "running", None)
        rt["runner_used"] = doc["workflow"] in self._runners
        rt["attempts"] += 1
        self._log(job_id, start, "info", f"run {rt['attempts']} started")
        if rt["runner_used"]:
            self._submit(job_id)

    def _submit(self, job_id: str) -> None:
        runner = self._runners.get(self._jobs[job_id]["workflow"])
        if runner is None or self._closed:
            self._rt[job_id]["runner_used"] = False
            return
        handle = _RunHandle(gen=self._rt[job_id]["gen"])
        self._runs[job_id] = handle
        job = self._view(job_id)
        handle.future = self._pool.submit(self._run_runner, job_id, handle, runner, job)

    def _run_runner(self, job_id: str, handle: _RunHandle, runner: Runner, job: dict[str, Any]) -> None:
        counts: dict[str, Any] | None = None
        error: str | None = None
        try:
            result = runner(job)
            counts = dict(result) if isinstance(result, dict) else {}
        except Exception as exc:  # a runner failure is a job fault, never an engine crash
            error = f"{type(exc).__name__}: {exc}"[:500]
        with self._lock:
            handle.counts, handle.error, handle.done_ts = counts, error, self.clock()
            if self._closed or job_id not in self._rt:
                return
            now = self.clock()
            if handle.gen != self._rt[job_id]["gen"]:
                context = {"error": error} if error else _counts(counts)
                self._log(job_id, now, "info", "interrupted run finished; its result was discarded", **context)
            self._advance(job_id, now)
            self._save(job_id)

    def _finish_run(self, job_id: str, end: float, handle: _RunHandle | None) -> None:
        rt, doc = self._rt[job_id], self._jobs[job_id]
        rt["last_run_ended"] = end
        run_no = rt["attempts"]
        error = None
        if rt["pending_faults"] > 0:
            rt["pending_faults"] -= 1
            error = "injected fault"
        elif rt["fail_next"]:
            rt["fail_next"] = False
            rt["gen"] += 1
            self._set_phase(job_id, "failed", None)
            self._log(job_id, end, "error", f"run {run_no} failed: injected failure; job failed", "JOB-FAULT-022")
            return
        elif handle is not None and handle.error:
            error = handle.error
        if error is not None:
            rt["errors"] += 1
            n = rt["errors"]
            self._log(job_id, end, "error", f"run {run_no} errored: {error}", "JOB-FAULT-022", consecutive_errors=n)
            if n >= self.timings.max_faults:
                self._set_phase(job_id, "failed", None)
                self._log(job_id, end, "error", f"job failed after {n} consecutive errors", "JOB-FAULT-022")
                return
            delay = min(self.timings.fault_backoff * 2 ** (n - 1), self.timings.fault_backoff_max)
            self._set_phase(job_id, "backoff", end + delay)
            return
        counts = _counts(handle.counts if handle else None)
        rt["errors"] = 0
        rt["runs"] += 1
        rt["last_counts"] = counts
        self._log(job_id, end, "info", f"run {run_no} completed", **counts)
        if self._is_one_shot(doc):
            self._set_phase(job_id, "completed", None)
            self._log(job_id, end, "info", "job completed")
        else:
            self._set_phase(job_id, "sleeping", end + self.timings.sleep_between_runs)

    def _tick_loop(self) -> None:
        t = self.timings
        interval = t.tick or max(0.02, min(0.25, t.initializing / 4 or 0.25, t.running / 4 or 0.25))
        while not self._stop.wait(interval):
            try:
                self.advance_all()
            except Exception:  # keep the clock alive: one bad job must not freeze every other job
                if self._closed:
                    return
                log.exception("job clock tick failed; retrying on the next tick")


def _counts(counts: dict[str, Any] | None) -> dict[str, Any]:
    """Runner counts for the log context: added/omitted/removed always present, extra JSON scalars kept."""
    out: dict[str, Any] = {"added": 0, "omitted": 0, "removed": 0}
    for key, value in (counts or {}).items():
        if isinstance(value, (int, float, str, bool)) or value is None:
            out[str(key)] = value
    return out
