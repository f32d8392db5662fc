"""Starlette routes of the content API (v1): corpus upserts, documents, classification, topics, recommendations.

Content collections (segments ``FROM content``) are scanned through the segment scan routes; see
:mod:`airflow_provider_lytics.emulator.content` for the engine.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from airflow_provider_lytics.emulator.content_docs import MAX_DOCUMENT_BYTES, ContentError
from airflow_provider_lytics.emulator.envelope import v1_error, v1_ok
from airflow_provider_lytics.emulator.http_params import ParamError, bool_param, int_param, list_param
from airflow_provider_lytics.emulator.segments import SegmentError

if TYPE_CHECKING:
    from airflow_provider_lytics.emulator.backend import Backend


def _fail(exc: Exception) -> Response:
    return v1_error(getattr(exc, "status", 400), str(exc))


def routes(backend: Backend) -> list[BaseRoute]:
    store = backend.store
    engine = store.content

    async def corpus(request: Request) -> Response:
        body = await request.body()
        if len(body) > MAX_DOCUMENT_BYTES:
            return v1_error(413, f"document body exceeds {MAX_DOCUMENT_BYTES} bytes; send a shorter text")
        try:
            doc = json.loads(body or b"null")
        except ValueError:
            return v1_error(400, 'body must be one JSON document, e.g. {"url": "https://example.com/post"}')
        try:
            saved, created = await run_in_threadpool(engine.upsert, doc)
        except ContentError as exc:
            return _fail(exc)
        return v1_ok(saved, status=201 if created else 200)

    async def documents(request: Request) -> Response:
        try:
            limit = int_param(request, "limit", None)
        except ParamError as exc:
            return _fail(exc)
        docs = engine.documents(urls=list_param(request, "urls"), ids=list_param(request, "ids"), limit=limit)
        return v1_ok({"total": len(docs), "urls": docs})

    async def classify(request: Request) -> Response:
        text = request.query_params.get("text") or ""
        url = request.query_params.get("url") or None
        if request.method == "POST" and not text:
            raw = await request.body()
            text = raw.decode("utf-8", "replace")
        if not text and not url:
            return v1_error(400, "send text= (or a text body) and/or url= to classify")
        try:
            return v1_ok(engine.classify_text(text, url))
        except ContentError as exc:
            return _fail(exc)

    async def topics(request: Request) -> Response:
        try:
            limit = int_param(request, "limit", None)
        except ParamError as exc:
            return _fail(exc)
        return v1_ok(await run_in_threadpool(engine.topics, limit))

    async def topic(request: Request) -> Response:
        try:
            limit = int_param(request, "limit", None)
            return v1_ok(await run_in_threadpool(engine.topic, request.path_params["topic"], limit))
        except (ContentError, ParamError) as exc:
            return _fail(exc)

    async def recommend(request: Request) -> Response:
        q = request.query_params
        try:
            limit = int_param(request, "limit", None)
            visited = bool_param(request, "visited", False)
            matches = _segment_matcher(q.get("contentsegment") or q.get("ql"))
            docs = await run_in_threadpool(
                lambda: engine.recommend(
                    request.path_params["field"], request.path_params["value"], limit=limit, visited=visited,
                    topics=list_param(request, "topics"), rank=(q.get("rank") or "affinity").lower(), matches=matches,
                )
            )  # fmt: skip
        except (ContentError, ParamError, SegmentError) as exc:
            return _fail(exc)
        return v1_ok(docs)

    def _segment_matcher(ref: str | None) -> Callable[[Any], bool] | None:
        """A content segment (id/slug) or ad-hoc ``FROM content`` FilterQL as a document predicate."""
        if not ref:
            return None
        registry = store.segments
        seg = registry.get(ref)
        parsed = registry.parsed(seg) if seg is not None else None
        if parsed is None:
            from airflow_provider_lytics.emulator.segments import parse

            if not ref.lstrip().upper().startswith("FILTER"):
                raise ContentError(f"content segment {ref!r} not found", status=404)
            parsed = parse(ref)
        if (parsed.table or "user") != "content":
            raise ContentError(f"segment {ref!r} is not a content collection (its FilterQL must say FROM content)")
        return parsed.matcher(now=datetime.fromtimestamp(store.wall_clock(), timezone.utc),
                              include=registry.resolve_include)  # fmt: skip

    return [
        Route("/api/content/corpus", corpus, methods=["POST"]),
        Route("/api/content/doc", documents, methods=["GET"]),
        Route("/api/content/doc/classify", classify, methods=["GET", "POST"]),
        Route("/api/content/topic", topics, methods=["GET"]),
        Route("/api/content/topic/{topic}", topic, methods=["GET"]),
        Route("/api/content/recommend/user/{field}/{value:path}", recommend, methods=["GET"]),
    ]
