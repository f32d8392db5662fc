"""Starlette routes of the LQL query API (``/api/query``): list, upsert by ALIAS, get, delete, validate, test."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from airflow_provider_lytics.emulator.envelope import v1_error, v1_ok
from airflow_provider_lytics.emulator.lql import LQLError
from airflow_provider_lytics.emulator.queries import evaluate

if TYPE_CHECKING:
    from airflow_provider_lytics.emulator.backend import Backend

#: Largest LQL body accepted (queries are small text files).
MAX_QUERY_BYTES = 256 * 1024


async def _text(request: Request) -> str:
    body = await request.body()
    if len(body) > MAX_QUERY_BYTES:
        raise LQLError(f"the query body is {len(body)} bytes; the limit is {MAX_QUERY_BYTES}")
    try:
        return body.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise LQLError("the query body is not UTF-8 text: send the .lql file as text/plain") from None


def _sample(request: Request) -> dict[str, Any]:
    """The sample record of ``_test``: every query parameter, repeated names as lists."""
    record: dict[str, Any] = {}
    for name in request.query_params:
        values = request.query_params.getlist(name)
        record[name] = values if len(values) > 1 else values[0]
    return record


def routes(backend: Backend) -> list[BaseRoute]:
    store = backend.store
    registry = store.queries

    async def list_queries(request: Request) -> Response:
        return v1_ok(registry.list())

    async def upsert(request: Request) -> Response:
        try:
            text = await _text(request)
            doc, created = await run_in_threadpool(registry.upsert, text)
        except LQLError as exc:
            return v1_error(400, str(exc))
        if request.query_params.get("version") == "old":
            return v1_ok(doc, status=201 if created else 200)
        return v1_ok([doc], status=201 if created else 200)

    async def validate(request: Request) -> Response:
        try:
            registry.check(await _text(request))
        except LQLError as exc:
            return v1_error(400, str(exc))
        return v1_ok(None)

    async def test(request: Request) -> Response:
        try:
            query = registry.check(await _text(request))
        except LQLError as exc:
            return v1_error(400, str(exc))
        sample = _sample(request)
        if not sample:
            return v1_error(400, "_test needs a sample record as query parameters, e.g. ?email=a@b.com&plan=pro")
        return v1_ok(evaluate(query, [sample]))

    async def get_query(request: Request) -> Response:
        doc = registry.get(request.path_params["id"])
        if doc is None:
            return v1_error(404, f"query {request.path_params['id']!r} not found; list queries at /api/query")
        return v1_ok(doc)

    async def delete_query(request: Request) -> Response:
        if not registry.delete(request.path_params["id"]):
            return v1_error(404, f"query {request.path_params['id']!r} not found; list queries at /api/query")
        return Response(status_code=204)

    return [
        Route("/api/query", list_queries, methods=["GET"]),
        Route("/api/query", upsert, methods=["POST"]),
        Route("/api/query/_validate", validate, methods=["POST"]),
        Route("/api/query/_test", test, methods=["POST"]),
        Route("/api/query/{id}", get_query, methods=["GET"]),
        Route("/api/query/{id}", delete_query, methods=["DELETE"]),
    ]
