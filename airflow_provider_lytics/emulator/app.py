"""The emulator's ASGI application: middlewares, account routes, admin routes and error envelopes.

Request path, outermost first: request stats -> fault injection -> auth -> router (Lytics routes + ``/_emulator/``).
All middlewares are pure ASGI so large uploads and streamed scans pass through without buffering.
The admin surface under ``/_emulator/`` needs no token and is never faulted; it is not part of the Lytics API.
"""

from __future__ import annotations

import json
import threading
import urllib.parse
from collections.abc import Sequence
from email.utils import formatdate
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Match, Mount, Route

from airflow_provider_lytics.emulator.clock import ClockError, EmulatorClock, parse_instant
from airflow_provider_lytics.emulator.clock import using as using_clock
from airflow_provider_lytics.emulator.envelope import error_for_path, v1_ok
from airflow_provider_lytics.emulator.faults import (
    ASGIApp,
    FaultMiddleware,
    FaultRuleError,
    Message,
    Receive,
    Scope,
    Send,
)

if TYPE_CHECKING:
    from airflow_provider_lytics.emulator.backend import Account, Backend

ADMIN_PREFIX = "/_emulator/"
MAX_SEED_USERS = 2_000_000
_RAW_TOKEN_HINT = (
    "Not authorized: Lytics expects the raw API token in the Authorization header, without a 'Bearer ' prefix"
)
_MISSING_TOKEN = (
    "Not authorized: no API token; send it raw in the Authorization header or as the access_token= or key= "
    "query parameter"
)
_V2_CODES = {401: "UNAUTHORIZED-017", 404: "NOTFOUND-003", 405: "BADREQ-001", 500: "INTERNAL-019"}


# -- request statistics ----------------------------------------------------------------------------------------


class RequestStats:
    """Thread-safe counters: requests by method + route template + status, and events received per stream.

    Status is the HTTP status sent, or ``"dropped"`` when a fault closed the connection without a response.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: dict[tuple[str, str, int | str], int] = {}
        self._events: dict[str, dict[str, int]] = {}
        self._total = 0

    def record_request(self, method: str, template: str, status: int | str) -> None:
        key = (method, template, status)
        with self._lock:
            self._total += 1
            self._requests[key] = self._requests.get(key, 0) + 1

    def record_events(self, stream: str, received: int, rejected: int) -> None:
        with self._lock:
            counts = self._events.setdefault(stream, {"received": 0, "rejected": 0, "batches": 0})
            counts["received"] += received
            counts["rejected"] += rejected
            counts["batches"] += 1

    def snapshot(self) -> dict[str, Any]:
        """``{"total", "requests": [{"method", "route", "status", "count"}], "events": {stream: {...}}}``."""
        with self._lock:
            rows = [
                {"method": method, "route": route, "status": status, "count": count}
                for (method, route, status), count in self._requests.items()
            ]
            events = {stream: dict(counts) for stream, counts in sorted(self._events.items())}
            total = self._total
        rows.sort(key=lambda r: (r["route"], r["method"], str(r["status"])))
        return {"total": total, "requests": rows, "events": events}

    def clear(self) -> None:
        with self._lock:
            self._requests.clear()
            self._events.clear()
            self._total = 0


def _template_for(routes: Sequence[BaseRoute], scope: Scope) -> str:
    """The route template a request maps to (``<unmatched>`` when none), without running the route."""
    partial: str | None = None
    for route in routes:
        match, child = route.matches(scope)
        if match is Match.NONE:
            continue
        if isinstance(route, Mount):
            inner = _template_for(route.routes, {**scope, **child})
            template = route.path + inner
        else:
            template = getattr(route, "path", "<unmatched>")
        if match is Match.FULL:
            return template
        partial = partial or template
    return partial or "<unmatched>"


class ClockMiddleware:
    """Makes the backend's clock the one every helper reads while serving a request (error stamps, date math),
    and the one the ``Date`` response header tells (the server adds none itself: see ``EmulatorServer``)."""

    def __init__(self, app: ASGIApp, clock: EmulatorClock) -> None:
        self.app = app
        self.clock = clock

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def dated(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [h for h in message.get("headers", []) if h[0].lower() != b"date"]
                stamp = formatdate(self.clock.time(), usegmt=True).encode("latin-1")
                message = {**message, "headers": [*headers, (b"date", stamp)]}
            await send(message)

        with using_clock(self.clock):
            await self.app(scope, receive, dated)


class StatsMiddleware:
    """Counts every Lytics request once, including faulted, unauthorised and dropped ones (status ``dropped``).

    Admin calls (``/_emulator/``) are not counted, so polling the stats does not change them.
    """

    def __init__(
        self, app: ASGIApp, stats: RequestStats, routes: Sequence[BaseRoute], skip_prefix: str = ADMIN_PREFIX
    ) -> None:
        self.app = app
        self.stats = stats
        self.routes = routes
        self.skip_prefix = skip_prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(self.skip_prefix):
            await self.app(scope, receive, send)
            return
        status: int | str = "dropped"

        async def tap(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, tap)
        except BaseException:
            if status == "dropped":
                status = 500
            raise
        finally:
            route = scope.get("route")
            if route is not None and not isinstance(route, Mount):
                template = getattr(route, "path", "<unmatched>")
            else:
                template = _template_for(self.routes, scope)
            self.stats.record_request(scope["method"], template, status)


class IngestTapMiddleware:
    """Reads ``message_count``/``rejected_count`` from successful ``/collect/*`` answers into the stats.

    It sits inside fault injection, so a batch whose response is later dropped still counts as received.
    """

    def __init__(self, app: ASGIApp, stats: RequestStats) -> None:
        self.app = app
        self.stats = stats

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/collect/"):
            await self.app(scope, receive, send)
            return
        ok = False
        body = bytearray()

        async def tap(message: Message) -> None:
            nonlocal ok
            if message["type"] == "http.response.start":
                ok = message["status"] < 300
            elif message["type"] == "http.response.body" and ok and len(body) < 65536:
                body.extend(message.get("body", b""))
            await send(message)

        await self.app(scope, receive, tap)
        if ok:
            self._count(scope["path"], bytes(body))

    def _count(self, path: str, body: bytes) -> None:
        try:
            data = json.loads(body).get("data") or {}
        except (ValueError, AttributeError):
            return
        if not isinstance(data, dict) or data.get("dryrun") is True:
            return
        stream = urllib.parse.unquote(path.rstrip("/").rsplit("/", 1)[-1])
        received = data.get("message_count")
        rejected = data.get("rejected_count")
        self.stats.record_events(
            stream,
            received if isinstance(received, int) else 0,
            rejected if isinstance(rejected, int) else 0,
        )


# -- authentication --------------------------------------------------------------------------------------------


class AuthMiddleware:
    """Resolves the caller's token to an account and puts it in ``scope["state"]["account"]``.

    Token sources, first present wins: ``Authorization`` header (raw token), ``access_token=``, ``key=``.
    ``account_id=`` picks one of the accounts the token reaches (by string id or integer aid).
    """

    def __init__(self, app: ASGIApp, backend: Backend, skip_prefix: str = ADMIN_PREFIX) -> None:
        self.app = app
        self.backend = backend
        self.skip_prefix = skip_prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(self.skip_prefix):
            await self.app(scope, receive, send)
            return
        query = urllib.parse.parse_qs(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
        token = _header(scope, b"authorization")
        if token is not None and token[:7].lower() == "bearer ":
            await _error(scope, receive, send, 401, _RAW_TOKEN_HINT)
            return
        if not token:
            token = (query.get("access_token") or query.get("key") or [""])[0]
        if not token:
            await _error(scope, receive, send, 401, _MISSING_TOKEN)
            return
        account = self.backend.account_for_token(token)
        if account is None:
            await _error(scope, receive, send, 401, "Not authorized")
            return
        wanted = (query.get("account_id") or [""])[0]
        if wanted:
            selected = next((a for a in _reachable(self.backend, account) if wanted in (a.id, str(a.aid))), None)
            if selected is None:
                await _error(scope, receive, send, 404, f"Account {wanted!r} not found", "ACCOUNT-NOTFOUND-021")
                return
            account = selected
        state = scope.setdefault("state", {})
        state["account"] = account
        state["token"] = token
        await self.app(scope, receive, send)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return value.decode("latin-1").strip()
    return None


def _reachable(backend: Backend, account: Account) -> list[Account]:
    """Accounts a token may select with ``account_id``: its own account (one account per token today)."""
    return [account]


async def _error(scope: Scope, receive: Receive, send: Send, status: int, message: str, code: str = "") -> None:
    response = error_for_path(scope["path"], status, message, code or _V2_CODES.get(status, "UNKNOWN-000"))
    await response(scope, receive, send)


# -- error handlers ----------------------------------------------------------------------------------------------


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    status = exc.status_code
    if status == 404:
        message = f"Not found: no Lytics route {request.method} {request.url.path}"
    elif status == 405:
        allowed = (exc.headers or {}).get("Allow", "")
        message = f"Method {request.method} not allowed on {request.url.path}; allowed: {allowed}"
    else:
        message = str(exc.detail)
    response = error_for_path(request.url.path, status, message, _V2_CODES.get(status, "UNKNOWN-000"))
    for key, value in (exc.headers or {}).items():
        response.headers[key] = value
    return response


async def _server_error(request: Request, exc: Exception) -> Response:
    message = f"Internal emulator error ({type(exc).__name__}); see the emulator log"
    return error_for_path(request.url.path, 500, message, "INTERNAL-019")


# -- Lytics account routes ----------------------------------------------------------------------------------------


async def list_accounts(request: Request) -> Response:
    account: Account = request.state.account
    return v1_ok([a.as_api() for a in _reachable(request.app.state.backend, account)])


async def current_account(request: Request) -> Response:
    return v1_ok(request.state.account.as_api())


async def get_account(request: Request) -> Response:
    wanted = request.path_params["account_id"]
    account: Account = request.state.account
    if wanted == "current":
        return v1_ok(account.as_api())
    for candidate in _reachable(request.app.state.backend, account):
        if wanted in (candidate.id, str(candidate.aid)):
            return v1_ok(candidate.as_api())
    return error_for_path(request.url.path, 404, f"Account {wanted!r} not found", "ACCOUNT-NOTFOUND-021")


def account_routes() -> list[BaseRoute]:
    return [
        Route("/api/account", list_accounts, methods=["GET"]),
        Route("/api/account/current", current_account, methods=["GET"]),
        Route("/api/account/{account_id}", get_account, methods=["GET"]),
    ]


# -- admin routes (/_emulator/) ---------------------------------------------------------------------------------


def _admin_error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"status": status, "message": message}, status_code=status)


async def health(request: Request) -> Response:
    return JSONResponse({"status": "ok", "faults": len(request.app.state.backend.faults)})


async def get_faults(request: Request) -> Response:
    return JSONResponse({"faults": request.app.state.backend.faults.list()})


async def add_faults(request: Request) -> Response:
    """Body: one rule object or a list of them; all are validated before any is added."""
    from airflow_provider_lytics.emulator.faults import FaultRule

    try:
        payload = json.loads(await request.body() or b"null")
    except ValueError as exc:
        return _admin_error(400, f"fault rules must be JSON: {exc}")
    raw_rules = payload if isinstance(payload, list) else [payload]
    try:
        rules = [FaultRule.from_dict(raw) for raw in raw_rules]
    except FaultRuleError as exc:
        return _admin_error(400, str(exc))
    injector = request.app.state.backend.faults
    return JSONResponse({"ids": [injector.add(rule) for rule in rules]}, status_code=201)


async def clear_faults(request: Request) -> Response:
    request.app.state.backend.faults.clear()
    return JSONResponse({"faults": []})


async def delete_fault(request: Request) -> Response:
    fault_id = request.path_params["fault_id"]
    if not request.app.state.backend.faults.remove(fault_id):
        return _admin_error(404, f"no fault rule {fault_id!r}; GET /_emulator/faults lists the active ones")
    return Response(status_code=204)


async def get_stats(request: Request) -> Response:
    return JSONResponse(request.app.state.stats.snapshot())


async def reset(request: Request) -> Response:
    backend: Backend = request.app.state.backend
    await run_in_threadpool(reset_backend, backend)
    request.app.state.stats.clear()
    return JSONResponse({"status": "reset"})


def reset_backend(backend: Backend) -> None:
    """Forget all data, jobs and faults (the SQLite file is emptied too)."""
    backend.faults.clear()
    backend.jobs.reset()
    backend.store.reset()
    backend.db.clear()


async def seed(request: Request) -> Response:
    try:
        users = int(request.query_params.get("users", ""))
        seed_value = int(request.query_params.get("seed", "0"))
    except ValueError:
        return _admin_error(400, "seed needs integer query parameters: ?users=N (1..2000000) and optional &seed=S")
    if not 1 <= users <= MAX_SEED_USERS:
        return _admin_error(400, f"users must be between 1 and {MAX_SEED_USERS}, got {users}")
    from airflow_provider_lytics.emulator.seed import seed_population

    counts = await run_in_threadpool(seed_population, request.app.state.backend.store, users, seed=seed_value)
    return JSONResponse({"status": "seeded", "counts": counts})


async def get_clock(request: Request) -> Response:
    return JSONResponse(request.app.state.backend.clock.snapshot())


async def set_clock(request: Request) -> Response:
    """``{"now": iso}`` jumps, ``{"advance_seconds": n}`` moves forward, ``{"frozen": bool}`` stops/starts it.

    Keys combine and apply in that order; jobs are brought up to the new time before answering, so a client that
    advanced a frozen clock past a transition sees the job in its new state on its next read.
    """
    try:
        body = await request.json()
    except ValueError:
        body = None
    known = {"now", "advance_seconds", "frozen"}
    if not isinstance(body, dict) or not body or set(body) - known:
        extra = sorted(set(body) - known) if isinstance(body, dict) else []
        hint = f"unknown key(s) {extra}; " if extra else ""
        return _admin_error(
            400,
            f"{hint}send a JSON object with 'now' (ISO 8601 with offset, e.g. 2026-03-08T03:00:00-05:00), "
            "'advance_seconds' (number >= 0) and/or 'frozen' (true/false)",
        )
    if "frozen" in body and not isinstance(body["frozen"], bool):
        return _admin_error(400, f"'frozen' must be true or false, got {body['frozen']!r}")
    backend: Backend = request.app.state.backend
    clock = backend.clock
    try:
        target = parse_instant(body["now"]) if "now" in body else None
        if "advance_seconds" in body:
            clock.check_advance(body["advance_seconds"])
    except ClockError as exc:
        return _admin_error(400, str(exc))
    if target is not None:
        clock.set(target)
    if "advance_seconds" in body:
        clock.advance(body["advance_seconds"])
    if "frozen" in body:
        clock.freeze(body["frozen"])
    await run_in_threadpool(backend.jobs.advance_all)
    return JSONResponse(clock.snapshot())


def admin_routes() -> list[BaseRoute]:
    return [
        Route("/_emulator/health", health, methods=["GET"]),
        Route("/_emulator/faults", get_faults, methods=["GET"]),
        Route("/_emulator/faults", add_faults, methods=["POST"]),
        Route("/_emulator/faults", clear_faults, methods=["DELETE"]),
        Route("/_emulator/faults/{fault_id}", delete_fault, methods=["DELETE"]),
        Route("/_emulator/reset", reset, methods=["POST"]),
        Route("/_emulator/stats", get_stats, methods=["GET"]),
        Route("/_emulator/seed", seed, methods=["POST"]),
        Route("/_emulator/clock", get_clock, methods=["GET"]),
        Route("/_emulator/clock", set_clock, methods=["POST"]),
    ]


def lytics_routes(backend: Backend) -> list[BaseRoute]:
    """The Lytics data plane and jobs API, each from its own module."""
    from airflow_provider_lytics.emulator import jobs_routes, routes_data, routes_metrics, routes_queries

    # metrics first: /api/segment/attribution must win over the segment routes' /api/segment/{id}
    surface = [*routes_metrics.routes(backend), *routes_data.routes(backend), *jobs_routes.routes(backend),
               *routes_queries.routes(backend)]  # fmt: skip
    # segment collections (/api/segmentcollection)
    from airflow_provider_lytics.emulator import segment_collections

    surface.extend(segment_collections.routes(backend))
    # raw events of a stream by event-time range (/v2/stream/{stream}/events)
    from airflow_provider_lytics.emulator import raw_events

    surface.extend(raw_events.routes(backend))
    # the content API (corpus, documents, topics, recommendations)
    from airflow_provider_lytics.emulator import routes_content

    surface.extend(routes_content.routes(backend))
    return surface


def create_app(backend: Backend, *, routes: Sequence[BaseRoute] | None = None) -> Starlette:
    """Build the emulator app over ``backend``.

    ``routes`` replaces the data-plane and jobs routes (to test the shell alone); admin and account routes stay.
    """
    surface = list(routes) if routes is not None else lytics_routes(backend)
    all_routes = [*admin_routes(), *account_routes(), *surface]
    stats = RequestStats()
    app = Starlette(
        routes=all_routes,
        middleware=[
            Middleware(ClockMiddleware, clock=backend.clock),
            Middleware(StatsMiddleware, stats=stats, routes=all_routes),
            Middleware(FaultMiddleware, injector=backend.faults, skip_prefix=ADMIN_PREFIX),
            Middleware(IngestTapMiddleware, stats=stats),
            Middleware(AuthMiddleware, backend=backend, skip_prefix=ADMIN_PREFIX),
        ],
        exception_handlers={HTTPException: _http_error, Exception: _server_error},
    )
    app.state.backend = backend
    app.state.stats = stats
    return app
