"""Asynchronous Lytics API hook (aiohttp) for triggers.

It shares the endpoint catalogue, settings, the retry driver, envelope parsing and the error model with
:class:`LyticsHook`, and resolves its connection without blocking the event loop (``get_async_connection``).
Use it as an async context manager so the HTTP session is closed when the trigger ends::

    async with LyticsAsyncHook("lytics_default") as hook:
        job = await hook.get_job(job_id)
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from airflow_provider_lytics.client.catalogue import LyticsApi
from airflow_provider_lytics.client.config import LyticsSettings
from airflow_provider_lytics.client.envelope import Envelope, build_error, parse_success
from airflow_provider_lytics.client.errors import LyticsTransportError, attempts_note
from airflow_provider_lytics.client.http import USER_AGENT
from airflow_provider_lytics.client.retry import Failure, RetryPolicy, RetryTracker, parse_retry_after, raising
from airflow_provider_lytics.hooks.base import LyticsBaseHook

if TYPE_CHECKING:
    import aiohttp


class LyticsAsyncHook(LyticsBaseHook, LyticsApi):
    """Async twin of :class:`~airflow_provider_lytics.hooks.lytics.LyticsHook` for polling from triggers.

    It has the same endpoint methods, from the same catalogue
    (:class:`~airflow_provider_lytics.client.catalogue.LyticsApi`), to be awaited.
    """

    def __init__(self, lytics_conn_id: str = LyticsBaseHook.default_conn_name, *,
                 retry_policy: RetryPolicy | None = None) -> None:  # fmt: skip
        super().__init__(lytics_conn_id, retry_policy=retry_policy)
        self._settings: LyticsSettings | None = None
        self._session: aiohttp.ClientSession | None = None
        self._lock = asyncio.Lock()
        self._sleep = asyncio.sleep
        self._clock = time.monotonic

    async def __aenter__(self) -> LyticsAsyncHook:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def get_settings(self) -> LyticsSettings:
        """Resolve the connection once, off the event loop's blocking path."""
        async with self._lock:
            if self._settings is None:
                conn, extra = await self._resolve_connection()
                self._settings = self._settings_from(conn, extra)
            return self._settings

    async def _resolve_connection(self) -> tuple[Any, dict[str, Any]]:
        """The connection and its extra, from wherever Airflow keeps it (env, secrets backend, metadata DB).

        ``airflow dags test`` / ``dag.test()`` run a deferred task's trigger in line with an in-process
        supervisor channel that has no ``asend``. Airflow's async lookup then asks the Execution API backend,
        which fails on the missing ``asend`` and answers "not found", so only ``AIRFLOW_CONN_*`` variables (the
        env backend comes first) were found: a connection stored in the metadata DB was not. On that channel
        the synchronous lookup works, so it runs in a worker thread; the real triggerer's channel has ``asend``
        and keeps the async path.
        """
        from asgiref.sync import sync_to_async

        if _supervisor_channel_is_sync_only():
            return await sync_to_async(self._sync_connection)()
        from airflow.providers.common.compat.connection import get_async_connection, get_async_extra_dejson

        conn = await get_async_connection(self.lytics_conn_id, hook=type(self))
        return conn, await get_async_extra_dejson(conn)

    def _sync_connection(self) -> tuple[Any, dict[str, Any]]:
        conn = self.get_connection(self.lytics_conn_id)
        return conn, conn.extra_dejson

    async def _get_session(self) -> aiohttp.ClientSession:
        import aiohttp

        settings = await self.get_settings()
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                headers={"Authorization": settings.token, "User-Agent": USER_AGENT, "Accept": "application/json"},
                timeout=aiohttp.ClientTimeout(total=settings.timeout),
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json_body: Any = None,
        data: bytes | str | None = None,
        headers: Mapping[str, str] | None = None,
        bulk: bool = False,
        safe: bool = True,
    ) -> Envelope:
        """Send one logical request with the shared retry policy; raises the same typed errors as the sync hook.

        ``bulk`` sends to the bulk host; a list parameter value repeats the parameter, as requests does.
        """
        import aiohttp

        settings = await self.get_settings()
        session = await self._get_session()
        url = settings.base_url(bulk) + path
        query = _query_pairs(params)
        if settings.account_id and not any(k == "account_id" for k, _ in query):
            query.append(("account_id", settings.account_id))
        send_headers = dict(headers or {})
        body = data
        if json_body is not None:
            body = json.dumps(json_body).encode()
            send_headers.setdefault("Content-Type", "application/json")
        tracker = RetryTracker(self.retry_policy, method=method, path=path, safe=safe, log=self.log, clock=self._clock)

        async def attempt(n: int) -> Envelope | Failure:
            try:
                async with session.request(method, url, params=query, data=body, headers=send_headers) as resp:
                    content = await resp.read()
                    status, resp_headers = resp.status, resp.headers
            except (aiohttp.ClientError, asyncio.TimeoutError) as err:
                connect_phase = isinstance(err, aiohttp.ClientConnectorError)
                what = "could not connect" if connect_phase else f"{type(err).__name__}"
                failed = LyticsTransportError(
                    f"Lytics {method} {path} failed: {what}{attempts_note(n)}",
                    method=method,
                    path=path,
                    attempts=n,
                    connect_phase=connect_phase,
                )
                return tracker.transport_failure(err, connect_phase=connect_phase, give_up=raising(failed))
            if status < 300:
                return parse_success(status, content)
            retry_after = parse_retry_after(resp_headers.get("Retry-After"))
            error = build_error(
                status,
                content,
                method=method,
                path=path,
                header_request_id=resp_headers.get("X-Request-Id"),
                retry_after=retry_after,
                attempts=n,
            )
            return tracker.status_failure(status, retry_after, raising(error))

        return await tracker.run_async(attempt, sleep=self._sleep)


def _query_pairs(params: Mapping[str, Any] | None) -> list[tuple[str, str]]:
    """aiohttp's query: string values only, ``None`` left out, a list as a repeated parameter."""
    pairs: list[tuple[str, str]] = []
    for key, value in (params or {}).items():
        for item in value if isinstance(value, list | tuple) else [value]:
            if item is not None:
                pairs.append((key, str(item)))
    return pairs


def _supervisor_channel_is_sync_only() -> bool:
    """True inside ``dag.test()``'s in-line trigger run (Airflow 3): a supervisor channel without ``asend``."""
    try:
        from airflow.sdk.execution_time import task_runner
    except ImportError:  # Airflow 2.11: no task SDK, the triggerer reads the metadata DB directly
        return False
    comms = getattr(task_runner, "SUPERVISOR_COMMS", None)
    return comms is not None and not hasattr(comms, "asend")
