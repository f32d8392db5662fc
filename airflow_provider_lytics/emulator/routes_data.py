"""Starlette routes of the data plane: collect (ingest), entity/identity lookup, schema and streams.

Segment and scan routes live in :mod:`routes_segments`; :func:`routes` returns both sets for the app to mount.
Ingest bodies are streamed: the event loop hands request chunks to a worker thread that decodes and stores them
batch by batch, so neither a large upload nor SQLite writes block other requests.
"""

from __future__ import annotations

import itertools
import tempfile
import zlib
from collections.abc import Iterator
from typing import IO, TYPE_CHECKING, Any

import anyio
import anyio.to_thread
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from airflow_provider_lytics.emulator import routes_segments
from airflow_provider_lytics.emulator.envelope import v1_error, v1_ok, v2_error, v2_ok
from airflow_provider_lytics.emulator.http_params import ParamError, bool_param, list_param
from airflow_provider_lytics.emulator.ingest import (
    API_HOST_BODY_LIMIT,
    BadInput,
    IngestOptions,
    parse_append,
    parse_delimiter,
    run_ingest,
)
from airflow_provider_lytics.emulator.store import check_stream_name
from airflow_provider_lytics.emulator.values import rfc3339

if TYPE_CHECKING:
    from airflow_provider_lytics.emulator.backend import Backend

CSV_TYPES = {"application/csv", "text/csv", "text/plain+csv", "application/vnd.ms-excel", "text/tab-separated-values"}
JSON_TYPES = {"application/json", "application/x-ndjson", "application/ndjson", "application/jsonl",
              "application/x-jsonlines", "application/jsonlines", "text/json", "application/json-seq"}  # fmt: skip
_SPOOL_CHUNK = 256 * 1024


def _is_bulk_host(request: Request) -> bool:
    host = (request.headers.get("host") or "").lower()
    return (request.headers.get("x-lytics-host") or "").strip().lower() == "bulk" or host.startswith("bulk")


def _content_type(request: Request) -> str:
    return (request.headers.get("content-type") or "").split(";", 1)[0].strip().lower()


async def _spool(request: Request, limit: int | None) -> IO[bytes]:
    """The whole request body, buffered (in memory up to 8 MB, then on disk) BEFORE anything is applied.

    Lytics applies an upload only once it has all of it: a body that ends early (the client closed the
    connection, or sent fewer bytes than its Content-Length) is refused with nothing stored. ``limit`` caps the
    size (the API host's 10 MB); ``None``: no cap (the bulk host).
    """
    spool = tempfile.SpooledTemporaryFile(max_size=8 << 20)  # noqa: SIM115 (closed by _file_chunks)
    total = 0
    try:
        async for chunk in request.stream():
            total += len(chunk)
            if limit is not None and total > limit:
                raise BadInput(_too_large_message(), status=413)
            spool.write(chunk)
    except ClientDisconnect:
        spool.close()
        raise BadInput(
            f"the request body ended after {total} bytes, before it was complete: nothing was stored"
        ) from None
    except BaseException:
        spool.close()
        raise
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) != total:
        spool.close()
        raise BadInput(f"the request body has {total} bytes but Content-Length says {length}: nothing was stored")
    spool.seek(0)
    return spool


def _too_large_message() -> str:
    return (
        f"request body exceeds {API_HOST_BODY_LIMIT // (1024 * 1024)} MB, the limit of the API host; "
        "upload large files to the bulk host (https://bulk.lytics.io/collect/bulk/{stream})"
    )


def _file_chunks(handle: IO[bytes]) -> Iterator[bytes]:
    try:
        while chunk := handle.read(_SPOOL_CHUNK):
            yield chunk
    finally:
        handle.close()


def _options(request: Request, fmt: str) -> IngestOptions:
    q = request.query_params
    headers = list_param(request, "headers") or None
    return IngestOptions(
        fmt=fmt,
        dryrun=bool_param(request, "dryrun", False),
        droperrors=bool_param(request, "droperrors", False),
        timestamp_field=q.get("timestamp_field") or None,
        filename=q.get("filename") or None,
        headers=headers,
        delimiter=parse_delimiter(q.get("delimiter")),
        append=parse_append(q.get("append")),
    )


async def _collect(request: Request, backend: Backend, bulk_endpoint: bool) -> Response:
    stream = request.path_params["stream"]
    ctype = _content_type(request)
    if not bulk_endpoint:
        fmt = "json"
    elif ctype in CSV_TYPES:
        fmt = "csv"
    elif ctype in JSON_TYPES:
        fmt = "json"
    elif ctype in ("", "application/octet-stream", "application/gzip", "application/x-gzip"):
        fmt = "sniff"
    else:
        return v1_error(
            415,
            f"Content-Type {ctype!r} is not supported here: send CSV as application/csv (or text/csv), "
            "or JSON / newline-delimited JSON as application/json",
        )
    try:
        check_stream_name(stream)
        options = _options(request, "json" if fmt == "sniff" else fmt)
    except (BadInput, ParamError, ValueError) as exc:
        return v1_error(400, str(exc))
    gzipped = "gzip" in (request.headers.get("content-encoding") or "").lower()
    length = request.headers.get("content-length")
    on_api_host = not _is_bulk_host(request)
    try:
        if on_api_host and length and length.isdigit() and int(length) > API_HOST_BODY_LIMIT:
            raise BadInput(_too_large_message(), status=413)
        spool = await _spool(request, API_HOST_BODY_LIMIT if on_api_host else None)

        def work() -> Any:
            chunks = _file_chunks(spool)
            if fmt == "sniff":
                options.fmt, chunks = _sniff(chunks)
            return run_ingest(backend.store, stream, chunks, options, gzipped)

        summary = await anyio.to_thread.run_sync(work)
    except BadInput as exc:
        data = {"message_count": exc.accepted} if exc.accepted else None
        return v1_error(exc.status, str(exc), data)
    return v1_ok(
        {
            "message_count": summary.message_count,
            "rejected_count": summary.rejected_count,
            "content-type": ctype or ("application/csv" if options.fmt == "csv" else "application/json"),
            "droperrors": options.droperrors,
            "dryrun": options.dryrun,
            "timestamp_field": options.timestamp_field or "",
            "filename": options.filename or "",
        }
    )


def _sniff(chunks: Iterator[bytes]) -> tuple[str, Iterator[bytes]]:
    """Format of a bulk body sent without Content-Type: JSON when it starts with '{' or '[', else CSV.

    Reads the first chunk (gunzipping a little of it when it is gzip) and returns it with the rest.
    """
    first = next(chunks, b"")
    head = first
    if first[:2] == b"\x1f\x8b":
        try:
            head = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(first, 256)
        except zlib.error:
            head = b""  # not really gzip: the decoder reports it
    fmt = "json" if head.lstrip()[:1] in (b"{", b"[") else "csv"
    return fmt, itertools.chain([first], chunks)


# -- entity / identity ---------------------------------------------------------------------------------------
_NOT_FOUND_DATA = {"segments": ["not_found", "all"]}


async def _entity(request: Request, backend: Backend, field: str) -> Response:
    table = request.path_params["table"]
    value = request.path_params["value"]
    try:
        segments = bool_param(request, "segments", True)
        allsegments = bool_param(request, "allsegments", False)
        with_meta = bool_param(request, "meta", True)
        download = bool_param(request, "download", False)
    except ParamError as exc:
        return v1_error(400, str(exc))
    fields = list_param(request, "fields") or None
    store = backend.store
    data = None
    if table == "user":
        data = await run_in_threadpool(
            store.entity, field, value, fields=fields, segments=segments, allsegments=allsegments
        )
    if data is None:
        return v1_ok(dict(_NOT_FOUND_DATA, segments=list(_NOT_FOUND_DATA["segments"])), message="Not Found")
    extra: dict[str, Any] = {}
    if with_meta:
        extra["meta"] = {"name": table, "format": "json", "by_fields": store.by_fields(), "conflicts": None}
    response = v1_ok(data, **extra)
    if download:
        response.headers["Content-Disposition"] = f'attachment; filename="entity_{table}.json"'
    return response


def _data_routes(backend: Backend) -> list[BaseRoute]:
    store = backend.store

    async def collect_json(request: Request) -> Response:
        return await _collect(request, backend, bulk_endpoint=False)

    async def collect_bulk(request: Request) -> Response:
        return await _collect(request, backend, bulk_endpoint=True)

    async def entity(request: Request) -> Response:
        return await _entity(request, backend, request.path_params["field"])

    async def entity_by_uid(request: Request) -> Response:
        return await _entity(request, backend, "_uid")

    async def identity(request: Request) -> Response:
        return await _identity(request.path_params["table"], request.path_params["field"], request.path_params["value"])

    async def identity_lookup(request: Request) -> Response:
        try:
            body = await request.json()
        except ValueError:
            body = None
        if not isinstance(body, dict) or not all(isinstance(body.get(k), str) for k in ("field", "value")):
            return v2_error(400, "JSON-BADREQ-025", 'body must be JSON {"table":"user","field":"email","value":"..."}')
        return await _identity(body.get("table") or "user", body["field"], body["value"])

    async def _identity(table: str, field: str, value: str) -> Response:
        if table != "user":
            return v2_error(404, "TABLE-NOTFOUND-009", f"table {table!r} not found (use 'user')")
        data = await run_in_threadpool(store.identity, field, value)
        if data is None:
            return v2_error(404, "ENTITY-NOTFOUND-012", f"no {table} entity with {field} = {value!r}")
        return v2_ok(data)

    async def schema_all(request: Request) -> Response:
        return v1_ok({name: store.schema(name) for name in ("user", "content")})

    async def schema_table(request: Request) -> Response:
        table = request.path_params["table"]
        data = store.schema(table)
        if data is None:
            return v1_error(404, f"table {table!r} not found; known tables are 'user' and 'content'")
        return v1_ok(data)

    async def schema_streams(request: Request) -> Response:
        return v1_ok([stats.as_v1() for stats in store.stream_list()])

    async def v2_schema_fields(request: Request) -> Response:
        table = request.path_params["table"]
        data = store.schema(table)
        if data is None:
            return v2_error(404, "TABLE-NOTFOUND-009", f"table {table!r} not found (use 'user')")
        return v2_ok(
            [
                {
                    "Field": c["as"], "Type": c["type"], "ShortDesc": c["shortdesc"], "MergeOp": c["op"],
                    "IsIdentifier": c["is_by"], "IsPII": c["as"] in ("email", "phone", "name", "first_name",
                                                                      "last_name", "address"),
                }
                for c in data["columns"]
            ]
        )  # fmt: skip

    async def v2_streams(request: Request) -> Response:
        return v2_ok([stats.as_v2() for stats in store.stream_list()])

    async def v2_stream_names(request: Request) -> Response:
        return v2_ok([stats.name for stats in store.stream_list()])

    async def v2_stream(request: Request) -> Response:
        name = request.path_params["stream"]
        stats = store.streams.get(name)
        if stats is None:
            return v2_error(404, "STREAM-NOTFOUND-014", f"stream {name!r} not found; list streams at /v2/stream")
        doc = stats.as_v2()
        doc["fields"] = stats.as_v1()["fields"]
        doc["last_event"] = rfc3339(stats.last_msg)
        return v2_ok(doc)

    return [
        Route("/collect/json/{stream}", collect_json, methods=["POST"]),
        Route("/collect/bulk/{stream}", collect_bulk, methods=["POST"]),
        Route("/api/entity/{table}/{field}/{value:path}", entity, methods=["GET"]),
        Route("/api/entity/{table}/{value}", entity_by_uid, methods=["GET"]),
        Route("/v2/identity/lookup", identity_lookup, methods=["POST"]),
        Route("/v2/identity/{table}/{field}/{value:path}", identity, methods=["GET"]),
        Route("/api/schema", schema_all, methods=["GET"]),
        Route("/api/schema/_streams", schema_streams, methods=["GET"]),
        Route("/api/schema/{table}", schema_table, methods=["GET"]),
        Route("/v2/schema/{table}/field", v2_schema_fields, methods=["GET"]),
        Route("/v2/stream", v2_streams, methods=["GET"]),
        Route("/v2/stream/names", v2_stream_names, methods=["GET"]),
        Route("/v2/stream/{stream}", v2_stream, methods=["GET"]),
    ]


def routes(backend: Backend, *, adhoc_size_interval: float = routes_segments.ADHOC_SIZE_INTERVAL) -> list[BaseRoute]:
    """Every data-plane route (collect, entity, identity, schema, streams, segments, scan) bound to ``backend``."""
    return [*_data_routes(backend), *routes_segments.routes(backend, adhoc_size_interval=adhoc_size_interval)]
