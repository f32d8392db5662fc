"""The synchronous Lytics transport (requests): one retried call, and the scan page loop.

Kept free of Airflow so that the same code serves :class:`~airflow_provider_lytics.hooks.lytics.LyticsHook`
on a worker and the light scan process an export runs beside it (:mod:`airflow_provider_lytics.exports.scan_worker`),
which must start in a fraction of a second and not import Airflow.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import IO, TYPE_CHECKING, Any, cast

from airflow_provider_lytics import __version__
from airflow_provider_lytics.client.catalogue import LyticsApi
from airflow_provider_lytics.client.config import LyticsSettings
from airflow_provider_lytics.client.endpoints import SCAN_PAGE_LIMIT, Endpoint, ScanPage, quote_path
from airflow_provider_lytics.client.envelope import Envelope, build_error, parse_success
from airflow_provider_lytics.client.errors import LyticsConfigError, LyticsTransportError, attempts_note
from airflow_provider_lytics.client.retry import Failure, RetryPolicy, RetryTracker, parse_retry_after, raising

if TYPE_CHECKING:
    import requests

__all__ = ["SCAN_PAGE_LIMIT", "USER_AGENT", "ScanPage", "iter_scan", "new_session", "page_requests", "quote_path",
           "scan_requests", "send"]  # fmt: skip

USER_AGENT = f"airflow-provider-lytics/{__version__}"


def new_session(settings: LyticsSettings) -> requests.Session:
    """A requests session carrying the raw token (Lytics expects no ``Bearer``) and our user agent."""
    import requests

    session = requests.Session()
    session.headers.update({"Authorization": settings.token, "User-Agent": USER_AGENT, "Accept": "application/json"})
    return session


def send(
    session: requests.Session,
    settings: LyticsSettings,
    policy: RetryPolicy,
    method: str,
    path: str,
    *,
    params: Mapping[str, Any] | None = None,
    json_body: Any = None,
    data: bytes | str | IO[bytes] | Iterable[bytes] | None = None,
    headers: Mapping[str, str] | None = None,
    bulk: bool = False,
    safe: bool = True,
    log: logging.Logger | logging.LoggerAdapter,
    sleep: Callable[[float], Any],
    clock: Callable[[], float],
    raw: bool = False,
) -> Envelope | bytes:
    """Send one logical request with retries and return the parsed envelope (raises typed errors).

    ``safe`` says whether repeating the request is harmless. A file-like ``data`` body is rewound before
    each retry; an iterator body cannot be replayed, so it is sent once. ``raw`` returns the 2xx body
    undecoded (the scan process forwards page bodies as they came).
    """
    import requests

    url = settings.base_url(bulk) + path
    query = {k: v for k, v in (params or {}).items() if v is not None}
    if settings.account_id and "account_id" not in query:
        query["account_id"] = settings.account_id
    body = json.dumps(json_body).encode() if json_body is not None else data
    send_headers = dict(headers or {})
    if json_body is not None:
        send_headers.setdefault("Content-Type", "application/json")
    start_pos = body.tell() if body is not None and hasattr(body, "seek") and hasattr(body, "tell") else None  # type: ignore[union-attr]
    replayable = body is None or isinstance(body, bytes | str) or start_pos is not None
    tracker = RetryTracker(policy, method=method, path=path, safe=safe and replayable, log=log, clock=clock)

    def attempt(n: int) -> Envelope | bytes | Failure:
        if start_pos is not None:
            body.seek(start_pos)  # type: ignore[union-attr]
        try:
            response = session.request(
                method, url, params=query, data=body, headers=send_headers, timeout=settings.timeout
            )
        except requests.RequestException as err:
            connect_phase = _connect_phase(err)
            failed = LyticsTransportError(
                f"Lytics {method} {path} failed: {_describe_transport_error(err)}{attempts_note(n)}",
                method=method,
                path=path,
                attempts=n,
                connect_phase=connect_phase,
            )
            return tracker.transport_failure(err, connect_phase=connect_phase, give_up=raising(failed))
        if response.status_code < 300:
            return response.content if raw else parse_success(response.status_code, response.content)
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        error = build_error(
            response.status_code,
            response.content,
            method=method,
            path=path,
            header_request_id=response.headers.get("X-Request-Id"),
            retry_after=retry_after,
            attempts=n,
        )
        return tracker.status_failure(response.status_code, retry_after, raising(error))

    return cast("Envelope | bytes", tracker.run(attempt, sleep=sleep))


def scan_requests(
    segment: str | None,
    filter_ql: str | None,
    *,
    fields: Iterable[str] | None = None,
    limit: int = SCAN_PAGE_LIMIT,
    sortfield: str | None = None,
    sortorder: str | None = None,
    table: str | None = None,
) -> Callable[[str | None], tuple[str, str, dict[str, Any], dict[str, Any]]]:
    """Validate scan arguments and return ``cursor -> (method, path, params, request kwargs)`` for each page.

    The pages are the catalogue's ``scan_page`` (a saved segment, id or slug) or ``scan_audience_page`` (an
    ad-hoc FilterQL audience) endpoints.
    """
    if (segment is None) == (filter_ql is None):
        raise LyticsConfigError("Pass exactly one of segment (id or slug) or filter_ql to scan")
    options: dict[str, Any] = {"fields": fields, "limit": limit, "sortfield": sortfield, "sortorder": sortorder,
                               "table": table}  # fmt: skip
    if segment is not None:
        return page_requests(LyticsApi.scan_page, segment, **options)
    return page_requests(LyticsApi.scan_audience_page, str(filter_ql), **options)


def page_requests(
    endpoint: Endpoint, *args: Any, cursor_arg: str = "start", **options: Any
) -> Callable[[str | None], tuple[str, str, dict[str, Any], dict[str, Any]]]:
    """``cursor -> (method, path, params, request kwargs)`` for each page of a paged catalogue endpoint, its
    cursor passed as ``cursor_arg``. The arguments are checked now, not at the first page."""
    endpoint.prepare(*args, **options)

    def page(cursor: str | None) -> tuple[str, str, dict[str, Any], dict[str, Any]]:
        prepared = endpoint.prepare(*args, **{**options, cursor_arg: cursor})
        kwargs = {k: v for k, v in (("data", prepared.data), ("headers", prepared.headers)) if v is not None}
        return prepared.method, prepared.path, dict(prepared.params or {}), kwargs

    return page


def iter_scan(
    request: Callable[..., Envelope], page_request: Callable[[str | None], tuple], start: str | None = None
) -> Iterator[ScanPage]:
    """Follow ``_next`` from ``start`` until a page has no cursor or no rows."""
    cursor = start
    while True:
        method, path, params, kwargs = page_request(cursor)
        env = request(method, path, params=params, **kwargs)
        records = env.data if isinstance(env.data, list) else []
        yield ScanPage(records=records, next_cursor=env.next_cursor, total=env.total)
        if not env.next_cursor or not records:
            return
        cursor = env.next_cursor


def _connect_phase(err: BaseException) -> bool:
    """True when the request never left this machine (refused, DNS failure, connect timeout)."""
    import requests

    if isinstance(err, requests.exceptions.ConnectTimeout):
        return True
    if isinstance(err, requests.exceptions.ConnectionError):
        text = repr(err.args[0]) if err.args else ""
        return any(s in text for s in ("NewConnectionError", "ConnectionRefused", "NameResolution"))
    return False


def _describe_transport_error(err: BaseException) -> str:
    import requests

    if isinstance(err, requests.exceptions.Timeout):
        return "timed out"
    if _connect_phase(err):
        return "could not connect"
    return "connection dropped before a response arrived"
