"""Saved LQL queries of the emulator and how rows of a queried stream become profile fields.

Queries are stored under their ``ALIAS`` (upsert by alias, as ``POST /api/query`` does) and written through to
the state database, so a reopened emulator maps streams the same way. :func:`apply_queries` is what ingest
calls for a stream with at least one query: every query projects each row onto profile fields, identity comes
from the query's ``BY`` fields, and each field merges with its operator (``latest`` by event time, ``oldest``,
``sum``, ``count``, ``min``, ``max``, ``set``, ``valuect``).
"""

from __future__ import annotations

import builtins
import hashlib
import threading
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow_provider_lytics.emulator.identity import NO_TIMES, field_time
from airflow_provider_lytics.emulator.lql import LQLError, Query, merge_value, parse_query
from airflow_provider_lytics.emulator.values import now_ms, render, rfc3339

if TYPE_CHECKING:
    from airflow_provider_lytics.emulator.identity import IdentityGraph
    from airflow_provider_lytics.emulator.persistence import StateDB

KIND = "query"


def _query_id(alias: str) -> str:
    return hashlib.blake2b(f"query\x00{alias}".encode(), digest_size=16).hexdigest()


class QueryRegistry:
    """Saved queries by alias, plus an index of the queries reading each stream; guarded by the store lock."""

    def __init__(self, db: StateDB, lock: threading.RLock, identity_fields: Sequence[str]) -> None:
        self.db = db
        self._lock = lock
        self.identity_fields = tuple(identity_fields)
        self.docs: dict[str, dict[str, Any]] = {}
        self._parsed: dict[str, Query] = {}
        for doc in db.load(KIND).values():
            try:
                self._add(doc, parse_query(doc["text"]))
            except LQLError:  # stored by an older emulator that accepted it: keep it listed, apply nothing
                self.docs[doc["alias"]] = doc

    def _add(self, doc: dict[str, Any], parsed: Query) -> None:
        self.docs[doc["alias"]] = doc
        self._parsed[doc["alias"]] = parsed

    def check(self, text: str) -> Query:
        """Parse ``text`` and check it against this emulator (``BY`` must name an identity field)."""
        query = parse_query(text)
        if not set(query.by) & set(self.identity_fields):
            raise LQLError(f"BY {' OR '.join(query.by)}: none of these is an identity field of this account; "
                           f"use one of {', '.join(self.identity_fields)}")  # fmt: skip
        return query

    def upsert(self, text: str) -> tuple[dict[str, Any], bool]:
        """Save a query by its ``ALIAS``; returns ``(query document, created)``. Raises :class:`LQLError`."""
        query = self.check(text)
        if not query.alias:
            raise LQLError("the query needs ALIAS <name>: saved queries are created and updated by alias")
        with self._lock:
            old = self.docs.get(query.alias)
            stamp = rfc3339(now_ms())
            doc = {
                "id": _query_id(query.alias), "alias": query.alias, "table": query.table, "from": query.stream,
                "text": text, "created": old["created"] if old else stamp,
                "updated": stamp if not old or old["text"] != text else old["updated"],
                "fields": query.fields_doc(), "by_fields": list(query.by),
            }  # fmt: skip
            self._add(doc, query)
            self.db.put(KIND, query.alias, doc)
        return doc, old is None

    def get(self, id_or_alias: str) -> dict[str, Any] | None:
        with self._lock:
            doc = self.docs.get(id_or_alias)
            if doc is None:
                doc = next((d for d in self.docs.values() if d["id"] == id_or_alias), None)
            return doc

    def delete(self, id_or_alias: str) -> bool:
        with self._lock:
            doc = self.get(id_or_alias)
            if doc is None:
                return False
            self.docs.pop(doc["alias"], None)
            self._parsed.pop(doc["alias"], None)
            self.db.delete(KIND, doc["alias"])
            return True

    def list(self) -> list[dict[str, Any]]:
        with self._lock:
            return [self.docs[a] for a in sorted(self.docs)]

    def for_stream(self, stream: str) -> builtins.list[Query]:
        """The parsed queries reading ``stream`` (empty: the stream is unmapped)."""
        return [q for q in self._parsed.values() if q.stream == stream] if self._parsed else []

    def streams(self) -> set[str]:
        """Streams at least one parsed query reads."""
        return {q.stream for q in self._parsed.values()}

    def clear(self) -> None:
        with self._lock:
            self.docs.clear()
            self._parsed.clear()
            self.db.delete_kind(KIND)

    def columns(self) -> dict[str, dict[str, Any]]:
        """``/api/schema/user`` columns the queries define (``froms`` lists every stream writing a field)."""
        out: dict[str, dict[str, Any]] = {}
        for query in self._parsed.values():
            for name, info in query.fields_doc().items():
                entry = out.setdefault(name, {
                    "as": name, "is_by": name in self.identity_fields, "type": info["type"], "op": info["mergeop"],
                    "shortdesc": info["shortdesc"] or name.replace("_", " ").strip().title(),
                    "longdesc": info["longdesc"], "froms": [], "identities": [],
                })  # fmt: skip
                if query.stream not in entry["froms"]:
                    entry["froms"].append(query.stream)
                for ident in info["identities"]:
                    if ident not in entry["identities"]:
                        entry["identities"].append(ident)
        return out


def evaluate(query: Query, rows: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """The entity ``rows`` make through ``query`` on an empty profile (``/api/query/_test``), values rendered."""
    ops = query.ops()
    fields: dict[str, Any] = {}
    for row in rows:
        out = query.project(row)
        for name, value in (out or {}).items():
            fields[name] = merge_value(ops[name], fields.get(name), value, newer=True)
    return {name: render(value) for name, value in fields.items()}


def apply_queries(
    graph: IdentityGraph,
    queries: Sequence[Query],
    batch: Sequence[Mapping[str, Any]],
    stream: str,
    stamps: Iterable[int],
    touched: dict[str, None],
    gone: list[str],
) -> None:
    """Merge the profile fields ``queries`` make of ``batch`` into ``graph`` (caller holds the store lock).

    Rows without any identity value after projection are kept as raw events only. ``latest`` fields go through
    the identity graph's own event-time merge; the other operators are folded into the profile afterwards.
    """
    plans = [(q, q.ops()) for q in queries]
    for row, ts in zip(batch, stamps, strict=True):
        for query, ops in plans:
            out = query.project(row)
            if not out:
                continue
            keyed = {n: v for n, v in out.items() if ops[n] == "latest" or n in query.by}
            try:
                keys = graph.keys_for(keyed)
            except ValueError:
                continue  # an oversized identifier: the raw event is kept, the profile is not touched
            if not keys:
                continue
            graph.merge_batch([keyed], stream, [ts], False, touched, gone)
            pid = graph.redirect(graph.index[keys[0]])
            profile = graph.profiles[pid]
            _fold(profile, {n: v for n, v in out.items() if n not in keyed}, ops, ts)
            touched[pid] = None


def _fold(profile: dict[str, Any], values: Mapping[str, Any], ops: Mapping[str, str], ts: int) -> None:
    """Apply the non-``latest`` merge operators of one row to a stored profile."""
    if not values:
        return
    fields = profile["fields"]
    times = profile["times"]
    if times is NO_TIMES:
        times = profile["times"] = {}
    for name, value in values.items():
        current = field_time(profile, name)
        newer = ts >= current
        fields[name] = merge_value(ops[name], fields.get(name), value, newer)
        if ops[name] == "oldest":
            times[name] = current if newer and current >= 0 else ts
        else:
            times[name] = max(ts, current)
