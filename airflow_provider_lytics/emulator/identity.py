"""Identity resolution: stitch events into profiles by identifier fields, latest value wins by event time.

A profile document (persisted as is) looks like::

    {"id": "<32 hex>", "seq": n, "created": ms, "modified": ms, "events": n, "streams": (...),
     "keys": ((field, value), ...), "fields": {name: value}, "ft": ms, "times": {name: event ms}}

In memory ``streams`` is a tuple (shared between the profiles of a single stream) and ``keys`` a tuple of the
same key tuples the identifier index uses; both are stored as JSON arrays. Tuples (not lists) let the garbage
collector stop tracking a profile whose values are all strings and numbers, so its full collections do not walk
every profile again.

``times`` records the event time that set each field, so an event that arrives late never overwrites a newer
value; fields set by the first event and never changed since are not listed and carry the time ``ft`` (this
keeps the common one-event profile small to store). List values are merged as sets (multi-value fields).
``_uid`` values accumulate into ``_uids``. ``seq`` is the creation order, used as the storage key so that
bulk inserts append to the database index instead of landing at random places in it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from hashlib import blake2b
from typing import Any

from airflow_provider_lytics.emulator.values import rfc3339

#: Identifier values longer than this are refused (Lytics platform limit).
MAX_IDENTIFIER_BYTES = 256
#: Multi-value fields keep at most this many distinct values.
MAX_LIST_VALUES = 1000
#: Identity field whose values accumulate into the ``_uids`` list rather than a scalar field.
UID_FIELD = "_uid"
#: The ``times`` of every profile whose fields all carry its first event's time, shared to save memory.
#: Never written to: code that records a field time first gives the profile its own dict.
NO_TIMES: dict[str, int] = {}


def column_name(field: str) -> str:
    """The profile column holding an identity field (``_uid`` is surfaced as ``_uids``)."""
    return "_uids" if field == UID_FIELD else field


def _profile_id(field: str, value: str) -> str:
    return blake2b(f"{field}\x00{value}".encode(), digest_size=16).hexdigest()


def _union(old: list, new: Iterable) -> list:
    if not old and type(new) in (list, tuple):  # a first value list: order-preserving dedupe in C
        try:
            return list(dict.fromkeys(new))[:MAX_LIST_VALUES]
        except TypeError:
            pass
    merged = list(old)
    seen = set(map(_hashable, merged))
    for item in new:
        key = _hashable(item)
        if key not in seen and len(merged) < MAX_LIST_VALUES:
            seen.add(key)
            merged.append(item)
    return merged


def _hashable(item: Any) -> Any:
    return item if isinstance(item, (str, int, float, bool, type(None))) else repr(item)


class IdentityGraph:
    """Profiles plus the identifier index (``(field, value) -> profile id``); not thread-safe by itself."""

    def __init__(self, identity_fields: Sequence[str]) -> None:
        fields = tuple(identity_fields)
        if not fields:
            raise ValueError("identity_fields must name at least one identifier field (e.g. 'email')")
        self.identity_fields = fields
        self.profiles: dict[str, dict[str, Any]] = {}
        self.index: dict[tuple[str, str], str] = {}
        self._merged: dict[str, str] = {}
        #: Persistence sequence of merged-away profiles (their storage slot receives a tombstone).
        self.merged_seq: dict[str, int] = {}
        self._next_seq = 0
        #: One shared ``(stream,)`` tuple per stream for the many profiles seen on a single stream.
        self._streams: dict[str, tuple[str, ...]] = {}

    # -- identifiers -------------------------------------------------------------------------------------
    def normalise(self, field: str, value: Any) -> str:
        """The index form of an identifier value (``email`` is trimmed and lower-cased)."""
        text = value if isinstance(value, str) else str(value)
        if field == "email":
            text = text.strip().lower()
        return text

    def keys_for(self, record: Mapping[str, Any]) -> list[tuple[str, str]]:
        """Distinct identifier keys carried by ``record``; raises ``ValueError`` naming an oversized identifier."""
        keys: list[tuple[str, str]] = []
        multi = False  # only a list value can repeat a key
        get = record.get
        for field in self.identity_fields:
            raw = get(field)
            if raw is None or raw == "":
                continue
            if type(raw) is str:  # the common case: one plain string identifier
                value = raw.strip().lower() if field == "email" else raw
                if len(value) > MAX_IDENTIFIER_BYTES // 4 and len(value.encode()) > MAX_IDENTIFIER_BYTES:
                    raise ValueError(f"identifier {field!r} is longer than {MAX_IDENTIFIER_BYTES} bytes")
                if value:
                    keys.append((field, value))
                continue
            multi = multi or type(raw) is list
            for item in raw if type(raw) is list else (raw,):
                if type(item) is str:
                    value = item.strip().lower() if field == "email" else item
                elif item is None or item == "" or isinstance(item, (dict, list)):
                    continue
                else:
                    value = self.normalise(field, item)
                if len(value) > MAX_IDENTIFIER_BYTES // 4 and len(value.encode()) > MAX_IDENTIFIER_BYTES:
                    raise ValueError(f"identifier {field!r} is longer than {MAX_IDENTIFIER_BYTES} bytes")
                if value:
                    keys.append((field, value))
        return list(dict.fromkeys(keys)) if multi else keys

    def redirect(self, pid: str) -> str:
        """The surviving profile id of a (possibly merged-away) profile id."""
        seen = 0
        while pid in self._merged and seen < 64:
            pid, seen = self._merged[pid], seen + 1
        return pid

    def lookup(self, field: str, value: Any) -> dict[str, Any] | None:
        field = UID_FIELD if field == "_uids" else field
        pid = self.index.get((field, self.normalise(field, value)))
        if pid is None and field == "_id":
            return self.profiles.get(str(value))
        return self.profiles.get(pid) if pid else None

    # -- merging -----------------------------------------------------------------------------------------
    def merge_batch(
        self,
        records: Sequence[Mapping[str, Any]],
        stream: str,
        stamps: Iterable[int],
        plain: bool,
        touched: dict[str, None],
        gone: list[str],
    ) -> None:
        """Merge a batch of events in order (``stamps``: the event time of each record), as :meth:`apply` would.

        Records without identifiers are skipped. Ids of changed profiles go into ``touched``; ids merged away
        leave it and are appended to ``gone``. The bulk-load case (string identifiers not seen before) creates
        the profile without going through :meth:`apply`; the identity fields no record carries are not looked
        at. ``plain``: see :meth:`apply`.
        """
        carried = set().union(*records) if len(records) > 1 else set(records[0]) if records else set()
        fields = [f for f in self.identity_fields if f in carried]
        if not fields:
            return
        index, keys_for, apply, create = self.index, self.keys_for, self.apply, self._create
        longest = MAX_IDENTIFIER_BYTES // 4  # longer values may exceed the byte limit: keys_for says so
        for record, ts in zip(records, stamps, strict=True):
            get = record.get
            keys = []
            for field in fields:
                raw = get(field)
                if raw is None:
                    continue
                if type(raw) is not str or len(raw) > longest:
                    keys = keys_for(record)  # lists, numbers, long values: the general rules
                    break
                value = raw.strip().lower() if field == "email" else raw
                if value:
                    keys.append((field, value))
            if not keys:
                continue
            for key in keys:
                if key in index:
                    break
            else:  # no profile carries any of them yet
                touched[create(record, keys, stream, ts, plain)] = None
                continue
            pid, merged_away = apply(record, keys, stream, ts, plain)
            touched[pid] = None
            for other in merged_away:
                touched.pop(other, None)
                gone.append(other)

    def apply(
        self, record: Mapping[str, Any], keys: list[tuple[str, str]], stream: str, ts: int, plain: bool = False
    ) -> tuple[str, list[str]]:
        """Merge one event into its profile; returns ``(profile id, ids of profiles merged away)``.

        ``plain=True`` promises a flat record of non-empty strings under names without a leading ``_`` (a CSV
        row without metafield columns), which a new profile can copy as is.
        """
        index = self.index
        found: list[str] = []
        for key in keys:
            pid = index.get(key)
            if pid is not None and pid not in found:
                found.append(pid)
        merged_away: list[str] = []
        if not found:
            return self._create(record, keys, stream, ts, plain), merged_away
        if len(found) == 1:
            pid = found[0]
            profile = self.profiles[pid]
        else:
            ranked = sorted((self.profiles[p] for p in found), key=lambda p: (p["created"], p["id"]))
            profile = ranked[0]
            pid = profile["id"]
            for other in ranked[1:]:
                self._absorb(profile, other)
                merged_away.append(other["id"])
                self._merged[other["id"]] = pid
                self.merged_seq[other["id"]] = other["seq"]
        self._apply_event(profile, record, keys, stream, ts)
        return pid, merged_away

    def _create(
        self, record: Mapping[str, Any], keys: list[tuple[str, str]], stream: str, ts: int, plain: bool = False
    ) -> str:
        """A new profile from its first event (the hot path of bulk loads, so it skips time comparisons).

        ``keys`` are distinct, as :meth:`keys_for` returns them.
        """
        pid = _profile_id(*keys[0])
        if plain:
            fields = dict(record)
        else:
            fields = {n: v for n, v in record.items() if v is not None and v != "" and n[:1] != "_"}
        email = fields.get("email")
        if type(email) is str:  # share the identifier's normalised string when there is one
            for name, value in keys:
                if name == "email":
                    fields["email"] = value
                    break
            else:
                fields["email"] = email.strip().lower()
        if not plain and list in map(type, fields.values()):  # multi-value fields: distinct values, capped
            for name in [n for n, v in fields.items() if type(v) is list]:
                fields[name] = _union([], fields[name])
        unique = tuple(keys)
        streams = self._streams.get(stream)
        if streams is None:
            streams = self._streams[stream] = (stream,)
        self._next_seq += 1
        self.profiles[pid] = {
            "id": pid, "seq": self._next_seq, "created": ts, "modified": ts, "events": 1, "streams": streams,
            "keys": unique, "fields": fields, "ft": ts, "times": NO_TIMES,
        }  # fmt: skip
        index = self.index
        for key in unique:
            index[key] = pid
        return pid

    def _absorb(self, into: dict[str, Any], other: dict[str, Any]) -> None:
        into["created"] = min(into["created"], other["created"])
        into["modified"] = max(into["modified"], other["modified"])
        into["events"] += other["events"]
        into["streams"] = tuple(_union(list(into["streams"]), other["streams"]))
        fields = into["fields"]
        times = into["times"]
        if times is NO_TIMES:
            times = into["times"] = {}
        for name, value in other["fields"].items():
            ts = field_time(other, name)
            if isinstance(value, list) and isinstance(fields.get(name), list):
                fields[name] = _union(fields[name], value)
                times[name] = max(ts, field_time(into, name))
            elif ts >= field_time(into, name):
                fields[name] = value
                times[name] = ts
        known = set(into["keys"])
        added = []
        for key in other["keys"]:
            self.index[key] = into["id"]
            if key not in known:
                known.add(key)
                added.append(key)
        if added:
            into["keys"] = (*into["keys"], *added)
        del self.profiles[other["id"]]

    def _apply_event(
        self, profile: dict[str, Any], record: Mapping[str, Any], keys: list[tuple[str, str]], stream: str, ts: int
    ) -> None:
        index, pid = self.index, profile["id"]
        for key in keys:
            if index.get(key) != pid:
                index[key] = pid
                profile["keys"] = (*profile["keys"], key)
        profile["events"] += 1
        if ts < profile["created"]:
            profile["created"] = ts
        if ts > profile["modified"]:
            profile["modified"] = ts
        if stream not in profile["streams"]:
            profile["streams"] = (*profile["streams"], stream)
        fields, times, ft = profile["fields"], profile["times"], profile["ft"]
        if times is NO_TIMES:
            times = profile["times"] = {}
        for name, value in record.items():
            if name[:1] == "_" or value is None or value == "":
                continue
            current = times.get(name)
            if current is None:
                current = ft if name in fields else -1
            if type(value) is list:
                old = fields.get(name)
                fields[name] = _union(old if isinstance(old, list) else [], value)
                if ts > current:
                    times[name] = ts
            elif ts >= current:
                fields[name] = value.strip().lower() if name == "email" and type(value) is str else value
                times[name] = ts

    # -- views -------------------------------------------------------------------------------------------
    def load(self, docs: Iterable[dict[str, Any]]) -> None:
        """Add stored profile documents (as persisted: lists where memory holds tuples)."""
        for doc in docs:
            doc.setdefault("ft", -1)
            if "seq" not in doc:
                self._next_seq += 1
                doc["seq"] = self._next_seq
            self._next_seq = max(self._next_seq, doc["seq"])
            streams = tuple(doc["streams"])
            doc["streams"] = self._streams.setdefault(streams[0], streams) if len(streams) == 1 else streams
            doc["keys"] = keys = tuple((field, value) for field, value in doc["keys"])
            if not doc.get("times"):
                doc["times"] = NO_TIMES
            self.profiles[doc["id"]] = doc
            for key in keys:
                self.index[key] = doc["id"]

    def clear(self) -> None:
        self.profiles.clear()
        self.index.clear()
        self._merged.clear()
        self.merged_seq.clear()
        self._streams.clear()
        self._next_seq = 0


def field_time(profile: Mapping[str, Any], name: str) -> int:
    """Event time of the value ``profile`` holds for ``name`` (-1 when the field is not set)."""
    ts = profile["times"].get(name)
    if ts is None:
        return profile["ft"] if name in profile["fields"] else -1
    return ts


_MISSING = object()
_META: dict[str, Callable[[Mapping[str, Any]], Any]] = {
    "_id": lambda p: p["id"],
    "_created": lambda p: rfc3339(p["created"]),
    "_modified": lambda p: rfc3339(p["modified"]),
    "_num_events": lambda p: p["events"],
    "_streamnames": lambda p: list(p["streams"]),
    "_uids": lambda p: [v for f, v in p["keys"] if f == UID_FIELD],
}


class ProfileView(Mapping[str, Any]):
    """Read-only, zero-copy mapping over a stored profile: its fields plus the ``_``-metafields on demand.

    Segment evaluation reads a handful of fields per profile; this avoids copying every profile to do so.
    """

    __slots__ = ("_profile",)

    def __init__(self, profile: Mapping[str, Any]) -> None:
        self._profile = profile

    def get(self, key: str, default: Any = None) -> Any:
        value = self._profile["fields"].get(key, _MISSING)
        if value is not _MISSING:
            return value
        meta = _META.get(key)
        return meta(self._profile) if meta is not None else default

    def __getitem__(self, key: str) -> Any:
        value = self.get(key, _MISSING)
        if value is _MISSING:
            raise KeyError(key)
        return value

    def __contains__(self, key: object) -> bool:
        return key in self._profile["fields"] or key in _META

    def __iter__(self) -> Iterator[str]:
        yield from self._profile["fields"]
        yield from _META

    def __len__(self) -> int:
        return len(self._profile["fields"]) + len(_META)


def materialise(profile: dict[str, Any]) -> dict[str, Any]:
    """The public profile: field values plus ``_id``, ``_created``, ``_modified``, ``_num_events``,
    ``_streamnames`` and ``_uids`` metafields (native types; see :func:`values.render` for API output)."""
    view = dict(profile["fields"])
    view["_id"] = profile["id"]
    view["_created"] = rfc3339(profile["created"])
    view["_modified"] = rfc3339(profile["modified"])
    view["_num_events"] = profile["events"]
    view["_streamnames"] = list(profile["streams"])
    view["_uids"] = [v for f, v in profile["keys"] if f == UID_FIELD]
    return view
