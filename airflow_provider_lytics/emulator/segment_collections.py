"""Segment collections (``/api/segmentcollection``): named, ordered lists of audiences.

A collection is ``{id, account_id, aid, name, slug_name, description, collection: [{id, order}], created,
updated}``. Items must name existing segments (by id or slug; stored by id). ``sideload=true`` on a read embeds
each item's segment document as ``segment``. Documents live in the state DB (kind ``segmentcollection``), read
on every request, so an emulator reset or restart needs no extra bookkeeping.
"""

from __future__ import annotations

import builtins
import json
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from airflow_provider_lytics.emulator.envelope import v1_error, v1_ok
from airflow_provider_lytics.emulator.http_params import ParamError, account_of, bool_param
from airflow_provider_lytics.emulator.segments import slugify
from airflow_provider_lytics.emulator.values import rfc3339

if TYPE_CHECKING:
    from airflow_provider_lytics.emulator.backend import Backend

KIND = "segmentcollection"
MAX_COLLECTION_BYTES = 256 * 1024


class CollectionError(ValueError):
    """A request the collection API refuses; ``status`` is the HTTP code."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


class CollectionRegistry:
    """Collection documents in the state DB; segment references are checked against ``segments``."""

    def __init__(self, backend: Backend) -> None:
        self.db = backend.db
        self.segments = backend.store.segments
        self.clock = backend.store.wall_clock

    def list(self) -> list[dict[str, Any]]:
        return sorted(self.db.load(KIND).values(), key=lambda d: (d["created"], d["id"]))

    def get(self, id_or_slug: str) -> dict[str, Any]:
        docs = self.db.load(KIND)
        doc = docs.get(id_or_slug) or next((d for d in docs.values() if d.get("slug_name") == id_or_slug), None)
        if doc is None:
            raise CollectionError(f"segment collection {id_or_slug!r} not found (use its id or slug_name)", 404)
        return doc

    def create(self, body: Any, account: Any) -> dict[str, Any]:
        spec = self._spec(body, creating=True)
        now = rfc3339(self.clock() * 1000)
        slug = spec.get("slug_name") or slugify(spec["name"])
        if any(d.get("slug_name") == slug for d in self.db.load(KIND).values()):
            raise CollectionError(f"a segment collection with slug_name {slug!r} exists: update it or use another", 409)
        doc = {
            "id": uuid.uuid4().hex, "account_id": getattr(account, "id", ""), "aid": getattr(account, "aid", 0),
            "name": spec["name"], "slug_name": slug, "description": spec.get("description", ""),
            "collection": spec.get("collection", []), "created": now, "updated": now,
        }  # fmt: skip
        self.db.put(KIND, doc["id"], doc)
        return doc

    def update(self, id_or_slug: str, body: Any) -> dict[str, Any]:
        doc = dict(self.get(id_or_slug))
        spec = self._spec(body, creating=False)
        slug = spec.get("slug_name")
        if slug and any(d.get("slug_name") == slug and d["id"] != doc["id"] for d in self.db.load(KIND).values()):
            raise CollectionError(f"slug_name {slug!r} is used by another segment collection", 409)
        doc.update(spec)
        doc["updated"] = rfc3339(self.clock() * 1000)
        self.db.put(KIND, doc["id"], doc)
        return doc

    def delete(self, id_or_slug: str) -> None:
        self.db.delete(KIND, self.get(id_or_slug)["id"])

    def sideloaded(self, doc: Mapping[str, Any]) -> dict[str, Any]:
        """``doc`` with each item's current segment document under ``segment`` (``None`` if deleted since)."""
        items = []
        for item in doc["collection"]:
            seg = self.segments.get(item["id"])
            items.append({**item, "segment": dict(seg) if seg is not None else None})
        return {**doc, "collection": items}

    def _spec(self, body: Any, *, creating: bool) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise CollectionError('body must be a JSON object such as {"name": "...", "collection": [{"id": "..."}]}')
        unknown = sorted(set(body) - {"name", "slug_name", "description", "collection", "id", "account_id", "aid",
                                      "created", "updated"})  # fmt: skip
        if unknown:
            fields = ", ".join(unknown)
            raise CollectionError(f"unknown field(s) {fields}: use name, slug_name, description, collection")
        spec: dict[str, Any] = {}
        name = body.get("name")
        if creating and (not isinstance(name, str) or not name.strip()):
            raise CollectionError("name is required (a non-empty string)")
        if name is not None:
            if not isinstance(name, str) or not name.strip():
                raise CollectionError("name must be a non-empty string")
            spec["name"] = name.strip()
        for key in ("slug_name", "description"):
            if body.get(key) is not None:
                if not isinstance(body[key], str):
                    raise CollectionError(f"{key} must be a string")
                spec[key] = body[key]
        if "collection" in body:
            spec["collection"] = self._items(body["collection"])
        return spec

    def _items(self, raw: Any) -> builtins.list[dict[str, Any]]:
        if not isinstance(raw, list):
            raise CollectionError('collection must be a list of {"id": "<segment id or slug>", "order": <int>}')
        items: builtins.list[dict[str, Any]] = []
        for position, item in enumerate(raw):
            if not isinstance(item, dict) or not isinstance(item.get("id"), str) or not item["id"]:
                raise CollectionError(f"collection[{position}] must be an object with a segment id: {{'id': '...'}}")
            order = item.get("order", position)
            if not isinstance(order, int) or isinstance(order, bool):
                raise CollectionError(f"collection[{position}].order must be an integer")
            seg = self.segments.get(item["id"])
            if seg is None:
                raise CollectionError(f"collection[{position}] names segment {item['id']!r}, which does not exist")
            if any(i["id"] == seg["id"] for i in items):
                raise CollectionError(f"collection[{position}] repeats segment {item['id']!r}")
            items.append({"id": seg["id"], "order": order})
        return sorted(items, key=lambda i: i["order"])


def routes(backend: Backend) -> list[BaseRoute]:
    """``GET/POST /api/segmentcollection`` and ``GET/PUT/DELETE /api/segmentcollection/{id}``."""
    registry = CollectionRegistry(backend)

    def render(request: Request, doc: Mapping[str, Any]) -> dict[str, Any]:
        return registry.sideloaded(doc) if bool_param(request, "sideload", False) else dict(doc)

    async def read_body(request: Request) -> Any:
        raw = await request.body()
        if len(raw) > MAX_COLLECTION_BYTES:
            raise CollectionError(f"body is larger than {MAX_COLLECTION_BYTES} bytes", 413)
        try:
            return json.loads(raw or b"null")
        except ValueError as exc:
            raise CollectionError(f"body is not valid JSON: {exc}") from None

    async def list_all(request: Request) -> Response:
        try:
            return v1_ok([render(request, d) for d in registry.list()])
        except ParamError as exc:
            return v1_error(400, str(exc))

    async def create(request: Request) -> Response:
        try:
            return v1_ok(registry.create(await read_body(request), account_of(request)), status=201)
        except CollectionError as exc:
            return v1_error(exc.status, str(exc))

    async def get_one(request: Request) -> Response:
        try:
            return v1_ok(render(request, registry.get(request.path_params["id"])))
        except (CollectionError, ParamError) as exc:
            return v1_error(getattr(exc, "status", 400), str(exc))

    async def update(request: Request) -> Response:
        try:
            return v1_ok(registry.update(request.path_params["id"], await read_body(request)))
        except CollectionError as exc:
            return v1_error(exc.status, str(exc))

    async def delete(request: Request) -> Response:
        try:
            registry.delete(request.path_params["id"])
        except CollectionError as exc:
            return v1_error(exc.status, str(exc))
        return Response(status_code=204)

    return [
        Route("/api/segmentcollection", list_all, methods=["GET"]),
        Route("/api/segmentcollection", create, methods=["POST"]),
        Route("/api/segmentcollection/{id}", get_one, methods=["GET"]),
        Route("/api/segmentcollection/{id}", update, methods=["PUT"]),
        Route("/api/segmentcollection/{id}", delete, methods=["DELETE"]),
    ]
