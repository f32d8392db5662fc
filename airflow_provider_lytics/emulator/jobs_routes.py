"""HTTP routes of the emulator's jobs surface: v2 ``/v2/job`` and ``/v2/auth``, v1 ``/api/work``, ``/api/auth``,
``/api/workflow`` and ``/api/provider``.

Handlers are thin: parse and check the request, call the :class:`~.jobs.JobEngine` on ``backend.jobs`` and wrap the
result in the family's envelope. The caller's account comes from ``request.state.account`` (set by the auth
middleware). Route order matters: literal segments (``/v2/job/logs``, ``/api/work/_status``) come before the
``{id}`` patterns they would otherwise be taken for.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from airflow_provider_lytics.emulator.auths import AuthRegistry
from airflow_provider_lytics.emulator.catalog import PROVIDERS, WORKFLOWS, resolve_provider, resolve_workflow
from airflow_provider_lytics.emulator.envelope import v1_error, v1_ok, v2_error, v2_ok
from airflow_provider_lytics.emulator.job_errors import JobError, JobNotFound
from airflow_provider_lytics.emulator.job_time import parse_duration
from airflow_provider_lytics.emulator.jobs import JobEngine, user_id_for

if TYPE_CHECKING:
    from airflow_provider_lytics.emulator.backend import Account, Backend

Handler = Callable[[Request], Awaitable[Response]]

_TRUE = ("true", "1", "yes", "t")
_FALSE = ("false", "0", "no", "f", "")


# -- request helpers ----------------------------------------------------------------------------------------------


def _bool_param(request: Request, name: str, default: bool = False) -> bool:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise JobError(f"query parameter {name} must be true or false, got {raw!r}", code="BADREQ-001")


def _list_param(request: Request, name: str) -> list[str]:
    """A list-valued query parameter in any documented form: ``a,b``, ``[a,b]``, repeated, or ``name[]=``."""
    out: list[str] = []
    for raw in [*request.query_params.getlist(name), *request.query_params.getlist(f"{name}[]")]:
        out.extend(part.strip() for part in raw.strip().strip("[]").split(",") if part.strip())
    return out


async def _json_body(request: Request) -> Any:
    raw = await request.body()
    if not raw.strip():
        raise JobError("request body is empty; send a JSON object", code="JSON-BADREQ-025")
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise JobError(f"request body is not valid JSON: {exc}", code="JSON-BADREQ-025") from None


def _engine(backend: Backend) -> JobEngine:
    return backend.jobs


def _account(request: Request) -> Account:
    return request.state.account


def _v2(handler: Handler) -> Handler:
    """Turn engine errors into v2 error envelopes."""

    async def wrapped(request: Request) -> Response:
        try:
            return await handler(request)
        except JobError as exc:
            return v2_error(exc.status, exc.code, exc.message)

    wrapped.__name__ = handler.__name__
    return wrapped


def _v1(handler: Handler) -> Handler:
    """Turn engine errors into v1 error envelopes."""

    async def wrapped(request: Request) -> Response:
        try:
            return await handler(request)
        except JobError as exc:
            return v1_error(exc.status, exc.message)

    wrapped.__name__ = handler.__name__
    return wrapped


def _epoch_ms(stamp: str | None) -> int | None:
    if not stamp:
        return None
    return int(datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp() * 1000)


def work_view(job: dict[str, Any], aid: int, state: dict[str, Any] | None = None) -> dict[str, Any]:
    """A v2 job document in the v1 Work shape (``statuscode``, ``aid``, ``state``, ``*_ms``)."""
    out = dict(job)
    out.pop("state", None)
    out.update(
        {
            "aid": aid,
            "statuscode": job["status"],
            "state": state if state is not None else job.get("state", {}),
            "runtime": "",
            "work_state_version": (state or job.get("state") or {}).get("runs", 0),
            "created_ms": _epoch_ms(job["created"]),
            "modified_ms": _epoch_ms(job["updated"]),
        }
    )
    return out


# v1 ``/api/work/_status?status=`` classes over the live status of a job.
def _v1_status_class(status: str) -> str:
    if status.startswith("fault"):
        return "errorwait"
    if status in ("paused", "pausing"):
        return "paused"
    if status in ("deleted", "killed"):
        return "killed"
    if status in ("completed", "failed"):
        return status
    return "runnable"


def _not_found(job_id: str) -> JobNotFound:
    return JobNotFound(f"job {job_id} not found in this account; GET /v2/job?show_all=true lists every job")


# -- routes -------------------------------------------------------------------------------------------------------


def routes(backend: Backend) -> list[BaseRoute]:
    """Every jobs, work, workflow, provider and auth route, ordered so no literal path is shadowed."""
    engine = _engine(backend)

    # ---- v2 jobs ------------------------------------------------------------------------------------------------
    @_v2
    async def list_jobs(request: Request) -> Response:
        jobs = engine.list(
            _account(request).id,
            workflow=request.query_params.get("workflow") or None,
            auth_ids=_list_param(request, "auth_ids") or None,
            show_completed=_bool_param(request, "show_completed"),
            show_deleted=_bool_param(request, "show_deleted"),
            show_hidden=_bool_param(request, "show_hidden"),
            show_all=_bool_param(request, "show_all"),
            show_state=_bool_param(request, "show_state"),
        )
        return v2_ok(jobs)

    async def _create(request: Request, workflow: str | None) -> Response:
        run_job = _bool_param(request, "run_job", default=True)
        body = await _json_body(request)
        job = engine.create(_account(request).id, body, workflow, run_job=run_job)
        return v2_ok(job, status=201)

    @_v2
    async def create_job(request: Request) -> Response:
        return await _create(request, None)

    @_v2
    async def create_job_for_workflow(request: Request) -> Response:
        return await _create(request, request.path_params["workflow"])

    def _get(request: Request, workflow: str | None = None) -> dict[str, Any]:
        job_id = request.path_params["job_id"]
        job = engine.get(_account(request).id, job_id, show_state=_bool_param(request, "show_state"))
        if job is None or (workflow is not None and job["workflow"] != resolve_workflow(workflow).slug):
            raise _not_found(job_id)
        return job

    @_v2
    async def get_job(request: Request) -> Response:
        return v2_ok(_get(request))

    @_v2
    async def get_job_for_workflow(request: Request) -> Response:
        return v2_ok(_get(request, request.path_params["workflow"]))

    @_v2
    async def put_job(request: Request) -> Response:
        workflow, job_id = request.path_params["workflow"], request.path_params["job_id"]
        resolve_workflow(workflow)
        body = await _json_body(request)
        return v2_ok(engine.replace(_account(request).id, job_id, body, workflow))

    @_v2
    async def job_command(request: Request) -> Response:
        job_id, cmd = request.path_params["job_id"], request.path_params["cmd"]
        duration = request.query_params.get("for")
        seconds = parse_duration(duration) if duration else None
        return v2_ok(engine.command(_account(request).id, job_id, cmd, duration=seconds))

    @_v2
    async def account_logs(request: Request) -> Response:
        logs = engine.logs(_account(request).id, None, include_errors=_bool_param(request, "include_errors"))
        return v2_ok(logs)

    @_v2
    async def job_logs(request: Request) -> Response:
        _get(request, request.path_params.get("workflow"))
        job_id = request.path_params["job_id"]
        logs = engine.logs(_account(request).id, job_id, include_errors=_bool_param(request, "include_errors"))
        return v2_ok(logs)

    # ---- v1 work ------------------------------------------------------------------------------------------------
    def _work(request: Request, job_id: str) -> dict[str, Any]:
        job = engine.get(_account(request).id, job_id, show_state=True)
        if job is None:
            raise JobNotFound(f"work {job_id} not found in this account")
        return work_view(job, _account(request).aid)

    @_v1
    async def list_work(request: Request) -> Response:
        jobs = engine.list(
            _account(request).id,
            show_completed=_bool_param(request, "showcompleted"),
            show_deleted=_bool_param(request, "showdeleted"),
            show_hidden=_bool_param(request, "showhidden"),
            show_state=True,
            status=request.query_params.get("state") or None,
        )
        return v1_ok([work_view(job, _account(request).aid) for job in jobs])

    @_v1
    async def work_status(request: Request) -> Response:
        wanted = request.query_params.get("status", "")
        classes = ("runnable", "errorwait", "paused", "killed", "completed", "failed")
        if wanted not in classes:
            raise JobError(f"status must be one of {', '.join(classes)}, got {wanted!r}")
        jobs = engine.list(_account(request).id, show_all=True, show_state=True)
        picked = [job for job in jobs if _v1_status_class(job["status"]) == wanted]
        return v1_ok([work_view(job, _account(request).aid) for job in picked])

    @_v1
    async def create_work(request: Request) -> Response:
        body = await _json_body(request)
        if not isinstance(body, dict):
            raise JobError("request body must be a JSON object describing the work")
        workflow = body.get("workflow") or body.get("workflow_id")
        if not workflow:
            raise JobError("workflow (slug) or workflow_id is required")
        wf = resolve_workflow(workflow)
        request_body = {k: v for k, v in body.items() if k not in ("workflow", "workflow_id")}
        request_body.setdefault("name", f"{wf.name} work")
        job = engine.create(_account(request).id, request_body, wf.slug)
        state = engine.get(_account(request).id, job["id"], show_state=True)
        return v1_ok(work_view(state or job, _account(request).aid), status=201)

    @_v1
    async def get_work(request: Request) -> Response:
        return v1_ok(_work(request, request.path_params["job_id"]))

    @_v1
    async def delete_work(request: Request) -> Response:
        job_id = request.path_params["job_id"]
        _work(request, job_id)
        engine.command(_account(request).id, job_id, "kill")
        return Response(status_code=204)

    @_v1
    async def work_command(request: Request) -> Response:
        job_id, cmd = request.path_params["job_id"], request.path_params["cmd"]
        _work(request, job_id)
        duration = request.query_params.get("for")
        seconds = parse_duration(duration) if duration else None
        engine.command(_account(request).id, job_id, cmd, duration=seconds)
        return v1_ok(_work(request, job_id))

    # ---- catalog ------------------------------------------------------------------------------------------------
    async def list_workflows(request: Request) -> Response:
        return v1_ok([wf.as_api() for wf in WORKFLOWS.values()])

    @_v1
    async def get_workflow(request: Request) -> Response:
        return v1_ok(resolve_workflow(request.path_params["workflow"]).as_api())

    async def list_providers(request: Request) -> Response:
        return v1_ok([p.as_api() for p in PROVIDERS.values()])

    async def list_providers_v2(request: Request) -> Response:
        return v2_ok([p.as_api() for p in PROVIDERS.values()])

    @_v1
    async def get_provider(request: Request) -> Response:
        ref = request.path_params["provider"]
        provider = resolve_provider(ref)
        if provider is None:
            raise JobError(f"provider {ref!r} not found; GET /api/provider lists them", status=404)
        return v1_ok(provider.as_api())

    # ---- auths --------------------------------------------------------------------------------------------------
    def _auth_or_404(request: Request) -> dict[str, Any]:
        auth_id = request.path_params["auth_id"]
        auth = engine.auths.get(_account(request).id, auth_id)
        if auth is None:
            raise JobError(f"authorization {auth_id} not found in this account", status=404, code="AUTH-NOTFOUND-006")
        return auth

    async def _create_auth(request: Request, auth_type: str | None) -> dict[str, Any]:
        account = _account(request)
        body = await _json_body(request)
        return engine.auths.create(account.id, user_id_for(account.id), body, auth_type)

    @_v2
    async def list_auths(request: Request) -> Response:
        return v2_ok(engine.auths.list(_account(request).id))

    @_v2
    async def create_auth(request: Request) -> Response:
        return v2_ok(await _create_auth(request, None), status=201)

    @_v2
    async def create_auth_typed(request: Request) -> Response:
        return v2_ok(await _create_auth(request, request.path_params["auth_type"]), status=201)

    @_v2
    async def get_auth(request: Request) -> Response:
        return v2_ok(_auth_or_404(request))

    @_v2
    async def delete_auth(request: Request) -> Response:
        _auth_or_404(request)
        return v2_ok(engine.delete_auth(_account(request).id, request.path_params["auth_id"]))

    @_v1
    async def list_auths_v1(request: Request) -> Response:
        aid = _account(request).aid
        return v1_ok([AuthRegistry.v1_view(a, aid) for a in engine.auths.list(_account(request).id)])

    @_v1
    async def create_auth_v1(request: Request) -> Response:
        return v1_ok(AuthRegistry.v1_view(await _create_auth(request, None), _account(request).aid), status=201)

    @_v1
    async def get_auth_v1(request: Request) -> Response:
        return v1_ok(AuthRegistry.v1_view(_auth_or_404(request), _account(request).aid))

    @_v1
    async def delete_auth_v1(request: Request) -> Response:
        _auth_or_404(request)
        engine.delete_auth(_account(request).id, request.path_params["auth_id"])
        return Response(status_code=204)

    return [
        # v2 jobs: literal "logs" before the {job_id} patterns
        Route("/v2/job", list_jobs, methods=["GET"]),
        Route("/v2/job", create_job, methods=["POST"]),
        Route("/v2/job/logs", account_logs, methods=["GET"]),
        Route("/v2/job/{job_id}/logs", job_logs, methods=["GET"]),
        Route("/v2/job/{job_id}", get_job, methods=["GET"]),
        Route("/v2/job/{workflow}", create_job_for_workflow, methods=["POST"]),
        Route("/v2/job/{workflow}/{job_id}/logs", job_logs, methods=["GET"]),
        Route("/v2/job/{job_id}/{cmd}", job_command, methods=["POST"]),
        Route("/v2/job/{workflow}/{job_id}", get_job_for_workflow, methods=["GET"]),
        Route("/v2/job/{workflow}/{job_id}", put_job, methods=["PUT"]),
        # v2 auths and providers
        Route("/v2/auth", list_auths, methods=["GET"]),
        Route("/v2/auth", create_auth, methods=["POST"]),
        Route("/v2/auth/{auth_id}", get_auth, methods=["GET"]),
        Route("/v2/auth/{auth_id}", delete_auth, methods=["DELETE"]),
        Route("/v2/auth/{auth_type}", create_auth_typed, methods=["POST"]),
        Route("/v2/provider", list_providers_v2, methods=["GET"]),
        # v1 work: literal "_status" before {job_id}
        Route("/api/work", list_work, methods=["GET"]),
        Route("/api/work", create_work, methods=["POST"]),
        Route("/api/work/_status", work_status, methods=["GET"]),
        Route("/api/work/{job_id}", get_work, methods=["GET"]),
        Route("/api/work/{job_id}", delete_work, methods=["DELETE"]),
        Route("/api/work/{job_id}/{cmd}", work_command, methods=["POST"]),
        # v1 catalog and auths
        Route("/api/workflow", list_workflows, methods=["GET"]),
        Route("/api/workflow/{workflow}", get_workflow, methods=["GET"]),
        Route("/api/provider", list_providers, methods=["GET"]),
        Route("/api/provider/{provider}", get_provider, methods=["GET"]),
        Route("/api/auth", list_auths_v1, methods=["GET"]),
        Route("/api/auth", create_auth_v1, methods=["POST"]),
        Route("/api/auth/{auth_id}", get_auth_v1, methods=["GET"]),
        Route("/api/auth/{auth_id}", delete_auth_v1, methods=["DELETE"]),
    ]
