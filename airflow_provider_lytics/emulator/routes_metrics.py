"""Starlette routes of metrics: ``/api/metric`` (push, read) and audience size history (``attribution``)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from airflow_provider_lytics.emulator.envelope import v1_error, v1_ok
from airflow_provider_lytics.emulator.http_params import ParamError, int_param, list_param
from airflow_provider_lytics.emulator.metrics import ATTRIBUTION_LIMIT, MetricError
from airflow_provider_lytics.emulator.segments import SegmentError

if TYPE_CHECKING:
    from airflow_provider_lytics.emulator.backend import Backend

MAX_METRIC_BYTES = 5 * 1024 * 1024


def routes(backend: Backend) -> list[BaseRoute]:
    store = backend.store

    async def push(request: Request) -> Response:
        body = await request.body()
        if len(body) > MAX_METRIC_BYTES:
            return v1_error(413, f"metric body exceeds {MAX_METRIC_BYTES} bytes; send fewer metrics per request")
        try:
            doc = json.loads(body or b"null")
        except ValueError:
            return v1_error(
                400, 'body must be a JSON metric object or an array of them, e.g. {"name":"nps","value":42}'
            )
        docs = doc if isinstance(doc, list) else [doc]
        try:
            count = store.metrics.push(docs)
        except MetricError as exc:
            return v1_error(400, f"{exc}; nothing was stored")
        return v1_ok({"message_count": count})

    async def read(request: Request) -> Response:
        if request.query_params.get("dimension") in ("segsize", "segment"):
            await run_in_threadpool(_refresh_sizes, request.query_params.get("dimension_id"))
        try:
            return v1_ok(store.metrics.query(request.query_params))
        except MetricError as exc:
            return v1_error(400, str(exc))

    def _refresh_sizes(wanted: str | None) -> None:
        """Record the current size of the audiences asked about (their history ends at 'now')."""
        for seg in store.segments.list(table="user"):
            if wanted in (None, "", "all_segments", seg["id"], seg["slug_name"]):
                store.segment_size(seg["id"])

    async def attribution(request: Request) -> Response:
        ids = [request.path_params["id"]] if "id" in request.path_params else list_param(request, "ids")
        try:
            limit = int_param(request, "limit", ATTRIBUTION_LIMIT) or ATTRIBUTION_LIMIT
        except ParamError as exc:
            return v1_error(400, str(exc))
        if not ids:
            ids = [s["id"] for s in store.segments.list(table="user")]

        def work() -> list[dict]:
            out = []
            for ident in ids:
                seg = store.segments.require(ident)
                store.segment_size(seg["id"])
                out.append({"id": seg["id"], "metrics": store.metrics.size_history(seg["id"], max(1, limit))})
            return out

        try:
            return v1_ok(await run_in_threadpool(work))
        except SegmentError as exc:
            return v1_error(getattr(exc, "status", 404), str(exc))

    return [
        Route("/api/metric", read, methods=["GET"]),
        Route("/api/metric", push, methods=["POST"]),
        Route("/api/segment/attribution", attribution, methods=["GET"]),
        Route("/api/segment/{id}/attribution", attribution, methods=["GET"]),
    ]
