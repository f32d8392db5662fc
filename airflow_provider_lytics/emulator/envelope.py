"""Response envelopes of the Lytics API, shared by every emulator route.

v1 (``/api/*``, ``/collect/*``): ``{"status", "message", "data", "request_id", ...extra}``.
v2 (``/v2/*``): ``{"status", "data", "request_id", "_meta"}``; errors carry both ``message`` and ``errors[]``
because Lytics's published spec and its live behaviour disagree on which one is present.
"""

from __future__ import annotations

import uuid
from typing import Any

from starlette.responses import Response

from airflow_provider_lytics.emulator.clock import current_datetime
from airflow_provider_lytics.emulator.persistence import encode

#: The closed set of v2 error codes from the published v2 OpenAPI.
V2_ERROR_CODES = frozenset(
    {
        "UNKNOWN-000", "BADREQ-001", "JOB-BADREQ-002", "NOTFOUND-003", "JOB-NOTFOUND-004", "WF-NOTFOUND-005",
        "AUTH-NOTFOUND-006", "AUTHTYPE-NOTFOUND-007", "AUTH-BADREQ-008", "TABLE-NOTFOUND-009",
        "SCHEMA-NOTFOUND-010", "SCHEMAVERSION-NOTFOUND-011", "ENTITY-NOTFOUND-012", "QUERY-NOTFOUND-013",
        "STREAM-NOTFOUND-014", "PROVIDER-BADREQ-015", "PROVIDER-NOTFOUND-016", "UNAUTHORIZED-017",
        "SCHEMA-INVALID-018", "INTERNAL-019", "ROUTERULE-NOTFOUND-020", "ACCOUNT-NOTFOUND-021",
        "JOB-FAULT-022", "USER-NOTFOUND-023", "USER-BADREQ-024", "JSON-BADREQ-025", "FORBIDDEN-026",
    }
)  # fmt: skip


def new_request_id() -> str:
    return uuid.uuid4().hex


def _json(body: dict[str, Any], status: int, request_id: str) -> Response:
    return Response(
        encode(body),  # msgspec when installed: a scan page's largest server-side cost
        status_code=status,
        media_type="application/json",
        headers={"X-Request-Id": request_id},
    )


def v1_ok(data: Any, status: int = 200, message: str = "success", **extra: Any) -> Response:
    """A v1 success envelope; ``extra`` carries top-level keys such as ``_next``, ``total`` or ``meta``."""
    rid = new_request_id()
    body = {"status": status, "message": message, "data": data, "request_id": rid, **extra}
    return _json(body, status, rid)


def v1_error(status: int, message: str, data: Any = None) -> Response:
    rid = new_request_id()
    return _json({"status": status, "message": message, "data": data, "request_id": rid}, status, rid)


def v2_ok(data: Any, status: int = 200, meta: dict[str, Any] | None = None) -> Response:
    rid = new_request_id()
    return _json({"status": status, "data": data, "request_id": rid, "_meta": meta or {}}, status, rid)


def v2_error(status: int, code: str, message: str, level: str = "error") -> Response:
    if code not in V2_ERROR_CODES:
        raise ValueError(f"unknown v2 error code {code!r}")
    rid = new_request_id()
    now = current_datetime().strftime("%Y-%m-%dT%H:%M:%SZ")  # the serving emulator's clock
    body = {
        "status": status,
        "message": message,
        "request_id": rid,
        "errors": [{"code": code, "level": level, "message": message, "timestamp": now}],
    }
    return _json(body, status, rid)


def error_for_path(path: str, status: int, message: str, v2_code: str = "UNKNOWN-000") -> Response:
    """The error envelope matching the API family of ``path`` (v2 under ``/v2/``, else v1)."""
    if path.startswith("/v2/"):
        return v2_error(status, v2_code, message)
    return v1_error(status, message)
