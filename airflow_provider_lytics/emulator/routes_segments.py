"""Starlette routes for segments (v1 and v2), segment sizes and scans (saved and ad-hoc)."""

from __future__ import annotations

import json
import threading
from typing import TYPE_CHECKING, Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from airflow_provider_lytics.emulator.envelope import v1_error, v1_ok, v2_error, v2_ok
from airflow_provider_lytics.emulator.http_params import ParamError, account_of, bool_param, int_param, list_param
from airflow_provider_lytics.emulator.scan import CursorError
from airflow_provider_lytics.emulator.segments import SegmentError, parse, spec_from_json, spec_from_text
from airflow_provider_lytics.emulator.values import rfc3339

if TYPE_CHECKING:
    from airflow_provider_lytics.emulator.backend import Backend

#: Ad-hoc ``POST /api/segment/size`` is throttled to one request per this many seconds (per account).
ADHOC_SIZE_INTERVAL = 10.0
MAX_QL_BYTES = 1024 * 1024


async def _text_body(request: Request) -> str:
    body = await request.body()
    if len(body) > MAX_QL_BYTES:
        raise SegmentError(f"FilterQL body is larger than {MAX_QL_BYTES} bytes")
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        raise SegmentError("FilterQL body must be UTF-8 text") from None


async def _segment_spec(request: Request) -> dict[str, Any]:
    """The segment spec of a POST/PUT body: JSON object, or ``text/plain`` FilterQL."""
    text = await _text_body(request)
    ctype = (request.headers.get("content-type") or "").split(";", 1)[0].strip().lower()
    if ctype.endswith("json") or (not ctype and text.lstrip().startswith("{")):
        try:
            body = json.loads(text)
        except ValueError as exc:
            raise SegmentError(f"body is not valid JSON: {exc}") from None
        return spec_from_json(body)
    if not text.strip():
        raise SegmentError("body is empty: send FilterQL text (Content-Type: text/plain) or a JSON segment")
    return spec_from_text(text)


def _v1_fail(exc: Exception) -> Response:
    status = getattr(exc, "status", 400)
    return v1_error(status, str(exc))


def _v2_fail(exc: Exception) -> Response:
    status = getattr(exc, "status", 400)
    return v2_error(status, "NOTFOUND-003" if status == 404 else "BADREQ-001", str(exc))


def routes(backend: Backend, *, adhoc_size_interval: float = ADHOC_SIZE_INTERVAL) -> list[BaseRoute]:
    store = backend.store
    registry = store.segments
    throttle: dict[str, float] = {}
    throttle_lock = threading.Lock()

    def size_entry(seg: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": seg["id"], "name": seg["name"], "slug_name": seg["slug_name"],
            "size": store.segment_size(seg["id"]), "timestamp": rfc3339(store.wall_clock() * 1000),
        }  # fmt: skip

    # -- v1 CRUD -----------------------------------------------------------------------------------------
    async def list_v1(request: Request) -> Response:
        table = request.query_params.get("table") or "user"
        valid = request.query_params.get("valid") or "all"
        return v1_ok([dict(s) for s in registry.list(table=table, valid=valid)])

    async def get_v1(request: Request) -> Response:
        seg = registry.get(request.path_params["id"])
        if seg is None:
            return v1_error(404, f"segment {request.path_params['id']!r} not found")
        registry.refresh_validity(seg)
        return v1_ok(dict(seg))

    async def create_v1(request: Request) -> Response:
        try:
            spec = await _segment_spec(request)
            doc, created = registry.create(spec, account_of(request), rename_taken_slug=False)
        except SegmentError as exc:
            return _v1_fail(exc)
        return v1_ok(dict(doc), status=201 if created else 200)

    async def update_v1(request: Request) -> Response:
        try:
            spec = await _segment_spec(request)
            doc = registry.update(request.path_params["id"], spec, account_of(request))
        except SegmentError as exc:
            return _v1_fail(exc)
        return v1_ok(dict(doc))

    async def delete_v1(request: Request) -> Response:
        try:
            registry.delete([request.path_params["id"]])
        except SegmentError as exc:
            return _v1_fail(exc)
        return Response(status_code=204)

    async def delete_many_v1(request: Request) -> Response:
        ids = list_param(request, "ids")
        if not ids:
            return v1_error(400, "pass the segments to delete as ids=a,b (or ids=a&ids=b)")
        try:
            registry.delete(ids)
        except SegmentError as exc:
            return _v1_fail(exc)
        return Response(status_code=204)

    async def validate(request: Request) -> Response:
        try:
            text = await _text_body(request)
            if not text.strip():
                raise SegmentError("Failed parsing segment QL: the body is empty; send FilterQL text")
            parse(text)
        except SegmentError as exc:
            return _v1_fail(exc)
        return v1_ok(None)

    # -- sizes -------------------------------------------------------------------------------------------
    async def size_one(request: Request) -> Response:
        seg = registry.get(request.path_params["id"])
        if seg is None:
            return v1_error(404, f"segment {request.path_params['id']!r} not found")
        return v1_ok(await run_in_threadpool(size_entry, seg))

    async def sizes(request: Request) -> Response:
        ids = list_param(request, "ids")
        segs = [registry.get(i) for i in ids] if ids else registry.list(table=None)
        missing = [i for i, s in zip(ids, segs, strict=False) if s is None] if ids else []
        if missing:
            return v1_error(404, f"segment(s) not found: {', '.join(missing)}")
        return v1_ok(await run_in_threadpool(lambda: [size_entry(s) for s in segs if s is not None]))

    async def adhoc_size(request: Request) -> Response:
        key = getattr(account_of(request), "id", "")
        with throttle_lock:
            now = store.wall_clock()  # the emulator clock: tests advance it instead of waiting
            last = throttle.get(key)
            if last is not None and 0 <= now - last < adhoc_size_interval:  # a clock set back does not throttle
                wait = adhoc_size_interval - (now - last)
                return v1_error(
                    429,
                    f"Too many requests: ad-hoc segment size is limited to 1 request every "
                    f"{adhoc_size_interval:g} seconds; retry in {wait:.1f} s or save the segment and use its size",
                )
            throttle[key] = now
        try:
            text = await _text_body(request)
            parsed = parse(text)
            size = await run_in_threadpool(store.adhoc_size, text)
        except SegmentError as exc:
            return _v1_fail(exc)
        return v1_ok({"id": "", "name": parsed.name or "", "slug_name": parsed.alias or "", "size": size})

    # -- scan --------------------------------------------------------------------------------------------
    async def _scan(request: Request, segment: str | None, segment_ql: str | None) -> Response:
        q = request.query_params
        try:
            limit = int_param(request, "limit", None)
            recent = bool_param(request, "recent", False)
            start = q.get("start") or q.get("next") or None

            def one_page() -> Any:
                return store.scan(
                    segment=segment, segment_ql=segment_ql, start=start, limit=limit,
                    fields=list_param(request, "fields") or None, sortfield=q.get("sortfield") or None,
                    sortorder=(q.get("sortorder") or "asc").lower(), recent=recent,
                )  # fmt: skip

            page: Any = None
            if start:  # a later page is a slice of the snapshot: cheaper than the hop to a worker thread
                with store.locked_if_free() as free:
                    page = one_page() if free else None
            if page is None:  # a first page evaluates the segment; or the store is busy: never block the loop
                page = await run_in_threadpool(one_page)
        except (CursorError, ParamError, SegmentError, ValueError) as exc:
            return _v1_fail(exc)
        return v1_ok(page.data, total=page.total, _next=page.next)

    async def scan_saved(request: Request) -> Response:
        return await _scan(request, request.path_params["id"], None)

    async def scan_adhoc(request: Request) -> Response:
        try:
            text = (await _text_body(request)).strip()
        except SegmentError as exc:
            return _v1_fail(exc)
        table = request.query_params.get("table")
        if text and table and " FROM " not in f" {text.upper()} ":
            text = f"{text} FROM {table}"
        return await _scan(request, None, text or None)

    # -- v2 ----------------------------------------------------------------------------------------------
    def v2_doc(seg: dict[str, Any], with_size: bool) -> dict[str, Any]:
        doc = dict(seg)
        if with_size:
            doc["size"] = store.segment_size(seg["id"])
        return doc

    async def list_v2(request: Request) -> Response:
        q = request.query_params
        try:
            with_size = bool_param(request, "sizes", False)
        except ParamError as exc:
            return _v2_fail(exc)
        segs = registry.list(table=q.get("table") or None, valid=q.get("valid") or "all", kind=q.get("kind") or None)
        return v2_ok(await run_in_threadpool(lambda: [v2_doc(s, with_size) for s in segs]))

    async def get_v2(request: Request) -> Response:
        seg = registry.get(request.path_params["id"])
        if seg is None:
            return v2_error(404, "NOTFOUND-003", f"segment {request.path_params['id']!r} not found")
        try:
            with_size = bool_param(request, "sizes", False)
        except ParamError as exc:
            return _v2_fail(exc)
        registry.refresh_validity(seg)
        return v2_ok(await run_in_threadpool(v2_doc, seg, with_size))

    async def create_v2(request: Request) -> Response:
        try:
            spec = await _segment_spec(request)
            doc, _ = registry.create(spec, account_of(request), rename_taken_slug=True)
        except SegmentError as exc:
            return _v2_fail(exc)
        return v2_ok(dict(doc), status=201)

    async def update_v2(request: Request) -> Response:
        try:
            spec = await _segment_spec(request)
            doc = registry.update(request.path_params["id"], spec, account_of(request), taken_slug_error=True)
        except SegmentError as exc:
            return _v2_fail(exc)
        return v2_ok(dict(doc))

    async def delete_v2(request: Request) -> Response:
        try:
            registry.delete([request.path_params["id"]])
        except SegmentError as exc:
            return _v2_fail(exc)
        return v2_ok(None)

    return [
        Route("/api/segment", list_v1, methods=["GET"]),
        Route("/api/segment", create_v1, methods=["POST"]),
        Route("/api/segment", delete_many_v1, methods=["DELETE"]),
        Route("/api/segment/validate", validate, methods=["POST"]),
        Route("/api/segment/sizes", sizes, methods=["GET"]),
        Route("/api/segment/size", adhoc_size, methods=["POST"]),
        Route("/api/segment/scan", scan_adhoc, methods=["POST"]),
        Route("/api/segment/{id}", get_v1, methods=["GET"]),
        Route("/api/segment/{id}", update_v1, methods=["PUT"]),
        Route("/api/segment/{id}", delete_v1, methods=["DELETE"]),
        Route("/api/segment/{id}/size", size_one, methods=["GET"]),
        Route("/api/segment/{id}/sizes", size_one, methods=["GET"]),
        Route("/api/segment/{id}/scan", scan_saved, methods=["GET"]),
        Route("/v2/segment", list_v2, methods=["GET"]),
        Route("/v2/segment", create_v2, methods=["POST"]),
        Route("/v2/segment/{id}", get_v2, methods=["GET"]),
        Route("/v2/segment/{id}", update_v2, methods=["PUT"]),
        Route("/v2/segment/{id}", delete_v2, methods=["DELETE"]),
    ]
