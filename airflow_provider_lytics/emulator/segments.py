"""Saved segments (audiences): validation, slug rules, upsert semantics and persistence.

Membership is evaluated by :class:`~airflow_provider_lytics.emulator.store.ProfileStore`; this module only owns
the segment documents. v1 ``POST`` upserts by slug, v2 ``POST`` renames a taken slug to ``slug_1``, ``slug_2``...,
and v2 ``PUT`` refuses a taken slug, as the live API does.
"""

from __future__ import annotations

import builtins
import re
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from typing import Any

from airflow_provider_lytics.emulator.persistence import StateDB

MAX_SEGMENTS = 500
MAX_NAME_LENGTH = 64
KINDS = ("segment", "aspect", "goal", "list", "conversion", "metric", "managed", "candidate")
TABLES = ("user", "content")
_SLUG_OK = re.compile(r"^[A-Za-z0-9_\-]{1,128}$")
_JSON_FIELDS: dict[str, type | tuple[type, ...]] = {
    "name": str, "segment_ql": str, "slug_name": str, "description": str, "table": str, "tags": list,
    "is_public": bool, "kind": str, "save_hist": bool, "emit_trigger": bool, "category": str,
    "public_name": str, "ast": (dict, list), "id": str, "groups": list,
}  # fmt: skip


class SegmentError(ValueError):
    """A request the segment API refuses; ``status`` is the HTTP status to answer with."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def _now(clock: Callable[[], float] = time.time) -> str:
    return datetime.fromtimestamp(clock(), timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def slugify(name: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")
    return slug or "segment"


def spec_from_json(body: Any) -> dict[str, Any]:
    """Validate a JSON segment body and return its known fields."""
    if not isinstance(body, Mapping):
        raise SegmentError('segment body must be a JSON object such as {"name": ..., "segment_ql": ...}')
    spec: dict[str, Any] = {}
    for key, value in body.items():
        expected = _JSON_FIELDS.get(key)
        if expected is None or value is None:
            continue
        if not isinstance(value, expected):
            kind = expected.__name__ if isinstance(expected, type) else "object"
            raise SegmentError(f"segment field {key!r} must be a {kind}, got {type(value).__name__}")
        spec[key] = value
    if "tags" in spec and not all(isinstance(t, str) for t in spec["tags"]):
        raise SegmentError("segment field 'tags' must be a list of strings")
    return spec


def spec_from_text(text: str) -> dict[str, Any]:
    """A segment spec from a ``text/plain`` FilterQL body (slug from ``ALIAS``, name from ``WITH name``)."""
    parsed = parse(text)
    spec: dict[str, Any] = {"segment_ql": text}
    if parsed.alias:
        spec["slug_name"] = parsed.alias
    if parsed.name:
        spec["name"] = parsed.name
    if parsed.description:
        spec["description"] = parsed.description
    return spec


def _filterql() -> Any:
    from airflow_provider_lytics.emulator import filterql

    return filterql


def _ql_from_ast(spec: Mapping[str, Any]) -> str | None:
    """FilterQL text for a segment posted with a JSON ``ast`` instead of ``segment_ql``."""
    tree = spec.get("ast")
    if not tree:
        return None
    fql = _filterql()
    try:
        return fql.format_ast(tree, table=spec.get("table"), alias=spec.get("slug_name"))
    except (fql.FilterQLError, TypeError, KeyError, ValueError) as exc:
        raise SegmentError(f"segment ast is not a valid FilterQL AST: {exc}") from None


def parse(text: str) -> Any:
    """Parse FilterQL, turning a syntax error into a 400 :class:`SegmentError` with the parser's message."""
    fql = _filterql()
    try:
        return fql.parse(text)
    except fql.FilterQLError as exc:
        raise SegmentError(str(exc)) from None


class SegmentRegistry:
    """Segment documents keyed by 32-hex id, written through to the ``segment`` kind of the state DB."""

    def __init__(
        self, db: StateDB, lock: threading.RLock | None = None, clock: Callable[[], float] = time.time
    ) -> None:
        """``clock`` (epoch seconds) stamps ``created``/``updated``: the emulator's clock when it has one."""
        self.db = db
        self.clock = clock
        self._lock = lock or threading.RLock()
        loaded = sorted(db.load("segment").values(), key=lambda s: s["created"])
        self.segments: dict[str, dict[str, Any]] = {s["id"]: s for s in loaded}
        self._parsed: dict[str, tuple[str, Any]] = {}
        #: Bumped on every change, so cached segment sizes (which depend on INCLUDEs) can be invalidated.
        self.version = 0

    # -- reads -------------------------------------------------------------------------------------------
    def get(self, id_or_slug: str) -> dict[str, Any] | None:
        with self._lock:
            seg = self.segments.get(id_or_slug)
            if seg is not None:
                return seg
            for seg in self.segments.values():
                if seg["slug_name"] == id_or_slug:
                    return seg
            return None

    def require(self, id_or_slug: str) -> dict[str, Any]:
        with self._lock:
            seg = self.get(id_or_slug)
            if seg is None:
                raise SegmentError(f"segment {id_or_slug!r} not found (use a segment id or slug_name)", 404)
            return seg

    def list(self, table: str | None = None, valid: str | None = None, kind: str | None = None) -> list[dict]:
        with self._lock:
            out = []
            for seg in self.segments.values():
                if table and seg["table"] != table:
                    continue
                if kind and seg["kind"] != kind:
                    continue
                state = self.refresh_validity(seg)
                if valid in ("true", "1") and state:
                    continue
                if valid in ("false", "0") and not state:
                    continue
                out.append(seg)
            return out  # creation order (documents are kept in insertion order, reloaded by creation time)

    def parsed(self, seg: Mapping[str, Any]) -> Any:
        cached = self._parsed.get(seg["id"])
        if cached is None or cached[0] != seg["segment_ql"]:
            cached = (seg["segment_ql"], parse(seg["segment_ql"]))
            self._parsed[seg["id"]] = cached
        return cached[1]

    def resolve_include(self, name: str) -> Any:
        """The parsed filter of an INCLUDEd segment (by slug or id), or ``None`` when it does not exist."""
        seg = self.get(name)
        return self.parsed(seg) if seg is not None else None

    def refresh_validity(self, seg: dict[str, Any]) -> bool:
        """Mark ``invalid`` when an INCLUDEd segment is missing; returns the invalid flag."""
        missing = [n for n in self.parsed(seg).includes() if self.get(n) is None]
        seg["invalid"] = bool(missing)
        seg["invalid_reason"] = f"included segment(s) not found: {', '.join(missing)}" if missing else ""
        return seg["invalid"]

    # -- writes ------------------------------------------------------------------------------------------
    def create(self, spec: Mapping[str, Any], account: Any, *, rename_taken_slug: bool) -> tuple[dict, bool]:
        """Create a segment, or (v1 upsert) update the one owning an explicit slug. Returns ``(doc, created)``."""
        with self._lock:
            ql = spec.get("segment_ql") or _ql_from_ast(spec)
            spec = {**spec, "segment_ql": ql} if ql else spec
            if not ql or not str(ql).strip():
                raise SegmentError("segment_ql is required: send FilterQL text such as 'FILTER * FROM user ALIAS all'")
            parsed = parse(ql)
            explicit = spec.get("slug_name") or parsed.alias
            slug = explicit or slugify(spec.get("name") or parsed.name or "segment")
            existing = self.get(slug) if slug else None
            if existing is not None and explicit and not rename_taken_slug:
                return self.update(existing["id"], {**spec, "slug_name": slug}, account, taken_slug_error=False), False
            if existing is not None:
                slug = self._free_slug(slug)
            if len(self.segments) >= MAX_SEGMENTS:
                raise SegmentError(f"the account already has {MAX_SEGMENTS} audiences (the limit); delete some first")
            now = _now(self.clock)
            seg_id = uuid.uuid4().hex
            doc: dict[str, Any] = {
                "id": seg_id, "account_id": getattr(account, "id", ""), "aid": getattr(account, "aid", 0),
                "name": "", "slug_name": slug, "description": "", "kind": "segment", "table": "user",
                "segment_ql": "", "ast": None, "is_public": False, "tags": [], "author_id": getattr(account, "id", ""),
                "created": now, "updated": now, "invalid": False, "invalid_reason": "", "short_id": seg_id[:8],
                "public_name": "", "category": "", "save_hist": False, "expires_at": None, "emit_trigger": False,
                "schedule_exit": None, "groups": [],
            }  # fmt: skip
            self._apply(doc, {**spec, "slug_name": slug}, parsed)
            self._check_cycles(doc)
            self.segments[seg_id] = doc
            self.version += 1
            self.db.put("segment", seg_id, doc)
            return doc, True

    def update(
        self, id_or_slug: str, spec: Mapping[str, Any], account: Any, *, taken_slug_error: bool = True
    ) -> dict[str, Any]:
        with self._lock:
            seg = self.require(id_or_slug)
            parsed = parse(spec["segment_ql"]) if spec.get("segment_ql") else None
            slug = spec.get("slug_name") or (parsed.alias if parsed else None)
            if slug and slug != seg["slug_name"]:
                owner = self.get(slug)
                if owner is not None and owner["id"] != seg["id"]:
                    if taken_slug_error:
                        raise SegmentError("Slug is already used.")
                    slug = self._free_slug(slug)
            doc = dict(seg)
            self._apply(doc, {**spec, **({"slug_name": slug} if slug else {})}, parsed)
            doc["updated"] = _now(self.clock)
            self._check_cycles(doc)
            self.segments[doc["id"]] = doc
            self.version += 1
            self.db.put("segment", doc["id"], doc)
            return doc

    def delete(self, ids: builtins.list[str]) -> builtins.list[str]:
        """Delete every named segment or none: an unknown id raises a 404 naming it."""
        with self._lock:
            found = [self.get(i) for i in ids]
            missing = [i for i, seg in zip(ids, found, strict=True) if seg is None]
            if missing:
                raise SegmentError(f"segment(s) not found: {', '.join(missing)}", 404)
            for seg in found:
                if seg is not None and seg["id"] in self.segments:
                    del self.segments[seg["id"]]
                    self._parsed.pop(seg["id"], None)
                    self.db.delete("segment", seg["id"])
            self.version += 1
            return [seg["id"] for seg in found if seg is not None]

    def clear(self) -> None:
        with self._lock:
            for seg_id in list(self.segments):
                self.db.delete("segment", seg_id)
            self.segments.clear()
            self._parsed.clear()
            self.version += 1

    # -- helpers -----------------------------------------------------------------------------------------
    def _free_slug(self, slug: str) -> str:
        n = 1
        while self.get(f"{slug}_{n}") is not None:
            n += 1
        return f"{slug}_{n}"

    def _apply(self, doc: dict[str, Any], spec: Mapping[str, Any], parsed: Any) -> None:
        if parsed is not None:
            doc["segment_ql"] = spec["segment_ql"]
            doc["ast"] = parsed.to_ast()
            doc["table"] = parsed.table or "user"
            if not spec.get("name") and parsed.name:
                doc["name"] = parsed.name
            if not spec.get("description") and parsed.description:
                doc["description"] = parsed.description
        for key in ("name", "slug_name", "description", "tags", "is_public", "kind", "save_hist",
                    "emit_trigger", "category", "public_name", "groups"):  # fmt: skip
            if key in spec and spec[key] is not None:
                doc[key] = spec[key]
        if "table" in spec and parsed is None:
            doc["table"] = spec["table"]
        if not doc["name"]:
            doc["name"] = doc["slug_name"]
        if len(doc["name"]) > MAX_NAME_LENGTH:
            raise SegmentError(f"segment name is {len(doc['name'])} characters; the limit is {MAX_NAME_LENGTH}")
        if not _SLUG_OK.match(doc["slug_name"]):
            raise SegmentError(
                f"slug_name {doc['slug_name']!r} is invalid: use letters, digits, '_' or '-' (max 128 characters)"
            )
        if doc["kind"] not in KINDS:
            raise SegmentError(f"kind {doc['kind']!r} is not one of {', '.join(KINDS)}")
        if doc["table"] not in TABLES:
            raise SegmentError(f"table {doc['table']!r} is not one of {', '.join(TABLES)}")
        self.refresh_validity_doc(doc, parsed)

    def refresh_validity_doc(self, doc: dict[str, Any], parsed: Any) -> None:
        parsed = parsed or parse(doc["segment_ql"])
        missing = [n for n in parsed.includes() if self.get(n) is None and n not in (doc["slug_name"], doc["id"])]
        doc["invalid"] = bool(missing)
        doc["invalid_reason"] = f"included segment(s) not found: {', '.join(missing)}" if missing else ""

    def _check_cycles(self, doc: Mapping[str, Any]) -> None:
        """Refuse INCLUDE chains that lead back to ``doc`` (they could never be evaluated)."""

        def includes_of(seg: Mapping[str, Any]) -> list[str]:
            return (
                list(parse(seg["segment_ql"]).includes())
                if seg["id"] != doc["id"]
                else list(parse(doc["segment_ql"]).includes())
            )

        stack, seen = includes_of(doc), set()
        while stack:
            name = stack.pop()
            if name in (doc["id"], doc["slug_name"]):
                raise SegmentError(f"segment {doc['slug_name']!r} INCLUDEs itself (directly or through {name!r})")
            target = self.get(name)
            if target is None or target["id"] in seen:
                continue
            seen.add(target["id"])
            stack.extend(includes_of(target))
