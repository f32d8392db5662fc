"""The emulator's data plane: profiles built from ingested events, segments over them, scans and schema.

:class:`ProfileStore` composes the identity graph, per-stream statistics, the segment registry and scan cursors,
serialises writers with one lock and writes every change through to :class:`StateDB`, so a reopened database
comes back with the same profiles, segments, streams and raw events.
"""

from __future__ import annotations

import contextlib
import gc
import itertools
import logging
import operator
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from airflow_provider_lytics.emulator.identity import (
    MAX_IDENTIFIER_BYTES,
    UID_FIELD,
    IdentityGraph,
    ProfileView,
    column_name,
    materialise,
)
from airflow_provider_lytics.emulator.ingest import structure_error
from airflow_provider_lytics.emulator.metrics import MetricStore
from airflow_provider_lytics.emulator.persistence import StateDB, encode
from airflow_provider_lytics.emulator.queries import QueryRegistry, apply_queries
from airflow_provider_lytics.emulator.scan import DEFAULT_TTL_SECONDS, ScanRegistry
from airflow_provider_lytics.emulator.segments import SegmentError, SegmentRegistry, parse
from airflow_provider_lytics.emulator.streams import StreamStats, table_columns
from airflow_provider_lytics.emulator.values import parse_time_ms, render, rfc3339

DEFAULT_IDENTITY_FIELDS = ("_uid", "email", "user_id", "external_id")
SCAN_DEFAULT_LIMIT = 20
SCAN_MAX_LIMIT = 100
_COMMIT_BATCH = 5000
#: Seconds between background writes of changed profiles (the most a hard crash can lose).
WRITE_INTERVAL = 0.5
#: Seconds a long collect request may hold background writes back before they run anyway.
MAX_DEFER = 30.0
_STREAM_NAME = re.compile(r"^[A-Za-z0-9_\-.]{1,128}$")
_DATA_KINDS = ("profile", "stream", "segment", "query", "content")
#: What ingest does with rows of a stream no LQL query reads: merge every field (``profile``) or keep them raw.
UNMAPPED_MODES = ("profile", "raw")
_log = logging.getLogger(__name__)
_NUMERIC = re.compile(r"^-?\d+(\.\d+)?([eE][-+]?\d+)?$")


@dataclass
class IngestResult:
    """Outcome of :meth:`ProfileStore.ingest`: accepted and rejected counts, rejections as ``(index, reason)``."""

    message_count: int = 0
    rejected_count: int = 0
    rejections: list[tuple[int, str]] = field(default_factory=list)


@dataclass
class ScanPage:
    total: int
    next: str
    data: list[dict[str, Any]]


class ProfileStore:
    """Profiles, identity graph, streams, segments and scans for one emulator; safe to share between threads.

    Raw events are written to the database with every ingest batch. Changed profiles and stream statistics are
    written behind: a writer thread flushes them every ``write_interval`` seconds (held back while a collect
    request is still streaming in), :meth:`flush` does it on demand and closing the database does it a last
    time, so a clean shutdown keeps everything. A hard crash (``kill -9``, power loss) loses the profile changes
    not yet flushed: those of a request still in progress and of the last ``write_interval`` seconds; the raw
    events of every stored batch are already on disk. With an in-memory database (``StateDB(None)``) profile
    and stream documents are not written at all, since nothing could read them back.
    """

    def __init__(
        self,
        db: StateDB,
        identity_fields: Sequence[str] = DEFAULT_IDENTITY_FIELDS,
        *,
        scan_ttl: float = DEFAULT_TTL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        write_interval: float = WRITE_INTERVAL,
        wall_clock: Callable[[], float] = time.time,
        unmapped: str = "profile",
    ) -> None:
        """``clock`` times scan cursors and write batching (monotonic); ``wall_clock`` (epoch seconds, the
        emulator's clock) stamps arrivals and anchors segment date math."""
        if unmapped not in UNMAPPED_MODES:
            raise ValueError(f"unmapped must be one of {', '.join(UNMAPPED_MODES)}, not {unmapped!r}")
        self.db = db
        self.wall_clock = wall_clock
        self.unmapped = unmapped
        self.graph = IdentityGraph(identity_fields)
        self.identity_fields = self.graph.identity_fields
        self._lock = threading.RLock()
        self.segments = SegmentRegistry(db, self._lock, wall_clock)
        self.queries = QueryRegistry(db, self._lock, self.identity_fields)
        self.metrics = MetricStore()
        self.scans = ScanRegistry(scan_ttl, clock)
        self.streams: dict[str, StreamStats] = {}
        self.version = 0
        self.write_interval = write_interval
        self._pending: dict[str, None] = {}
        self._tombstones: list[str] = []
        self._dirty_streams: dict[str, None] = {}
        self._flush_lock = threading.Lock()
        self._writer: threading.Thread | None = None
        self._defer_depth = 0
        self._defer_since = 0.0
        self._durable = db.durable
        self._sizes: dict[str, tuple[tuple[int, int], int]] = {}
        self._seg_matchers: tuple[tuple[int, int], list[tuple[str, Callable[[Any], bool]]]] | None = None
        with gc_paused():  # a restart decodes every stored profile: collect once afterwards, not repeatedly
            self.graph.load(doc for _, doc in db.iter_docs("profile") if "merged_into" not in doc)
        for doc in db.load("stream").values():
            self.streams[doc["name"]] = StreamStats.from_doc(doc)
        from airflow_provider_lytics.emulator.content import ContentEngine

        self.content = ContentEngine(self)  # documents, topics and the profiles' content affinities
        db.on_close(self.flush)

    # -- ingest ------------------------------------------------------------------------------------------
    def check_record(self, record: Any, *, flat: bool = False) -> str | None:
        """Why ``record`` cannot be ingested (not an object, objects inside arrays, oversized id), or ``None``.

        ``flat=True`` (CSV rows: string keys and values only) checks the identifiers alone.
        """
        if flat:  # cheap identifier length check; full keys are computed once, at commit
            get = record.get
            for name in self.identity_fields:
                value = get(name)
                if value is None:
                    continue
                text = value if isinstance(value, str) else str(value)
                if len(text) > 64 and len(text.encode()) > MAX_IDENTIFIER_BYTES:
                    return f"identifier {name!r} is longer than {MAX_IDENTIFIER_BYTES} bytes"
            return None
        problem = structure_error(record)
        if problem:
            return problem
        if not all(isinstance(k, str) for k in record):
            return "field names must be strings"
        try:
            self.graph.keys_for(record)
        except ValueError as exc:
            return str(exc)
        return None

    def ingest(
        self,
        stream: str,
        records: Iterable[Mapping[str, Any]],
        *,
        timestamp_field: str | None = None,
        dryrun: bool = False,
        filename: str | None = None,
        validated: bool = False,
        plain: bool = False,
    ) -> IngestResult:
        """Store raw events for ``stream`` and merge them into profiles; ``dryrun`` only validates and counts.

        ``filename`` is bookkeeping only (as in Lytics). ``validated=True`` skips per-record checks already done
        by the caller; ``plain=True`` (with it) also promises flat records of non-empty strings under names
        without a leading ``_``, which lets new profiles copy them as they are. Records are committed in
        batches, so any iterable size keeps memory flat.
        """
        check_stream_name(stream)
        result = IngestResult()
        plain = plain and validated
        if validated and isinstance(records, list):  # already checked and in memory: commit slices directly
            for i in range(0, len(records), _COMMIT_BATCH):
                part = records[i : i + _COMMIT_BATCH]
                self._commit(stream, part, timestamp_field, dryrun, plain)
                result.message_count += len(part)
            return result
        batch: list[Mapping[str, Any]] = []
        for index, record in enumerate(records):
            if not validated:
                problem = self.check_record(record)
                if problem:
                    result.rejected_count += 1
                    result.rejections.append((index, problem))
                    continue
            batch.append(record)
            if len(batch) >= _COMMIT_BATCH:
                self._commit(stream, batch, timestamp_field, dryrun)
                result.message_count += len(batch)
                batch = []
        if batch:
            self._commit(stream, batch, timestamp_field, dryrun)
            result.message_count += len(batch)
        return result

    def _commit(
        self, stream: str, batch: list[Mapping[str, Any]], ts_field: str | None, dryrun: bool, plain: bool = False
    ) -> None:
        if dryrun:
            return
        arrival = int(self.wall_clock() * 1000)
        ts_field = ts_field or "_ts"
        graph = self.graph
        with self._lock, gc_paused():
            stamps = _event_times(batch, ts_field, arrival)  # a list when events carry times, else a repeat
            span = (min(stamps), max(stamps)) if isinstance(stamps, list) and stamps else (arrival, arrival)
            self.db.append_events(stream, batch, arrival=arrival, ts_field=ts_field, span=span)
            queries = self.queries.for_stream(stream)
            if queries:  # LQL maps the rows onto profile fields
                apply_queries(graph, queries, batch, stream, stamps, self._pending, self._tombstones)
            elif self.unmapped == "profile":
                graph.merge_batch(batch, stream, stamps, plain, self._pending, self._tombstones)
            stats = self.streams.get(stream)
            if stats is None:
                stats = self.streams[stream] = StreamStats(stream)
            stats.observe(batch, arrival)
            self._dirty_streams[stream] = None
            if queries or self.unmapped == "profile":  # rows that reached profiles: content visits and affinities
                self.content.after_commit(batch, self._pending)
            self.version += 1
            if self._durable:
                self._start_writer()
            else:  # nothing can ever read profile documents back from an in-memory database: keep them in memory only
                for pid in self._tombstones:
                    graph.merged_seq.pop(pid, None)
                self._pending.clear()
                self._tombstones.clear()
                self._dirty_streams.clear()

    @contextlib.contextmanager
    def deferred_writes(self) -> Iterator[None]:
        """Hold background profile writes back while the block runs (a whole collect request, a seeding run).

        Writing while a bulk upload is being merged would only compete with it for the interpreter; the
        profiles changed inside the block are written within ``write_interval`` after it ends (or after
        :data:`MAX_DEFER` seconds of a very long block), coalesced to one write per profile.
        """
        with self._lock:
            if not self._defer_depth:
                self._defer_since = time.monotonic()
            self._defer_depth += 1
        try:
            yield
        finally:
            with self._lock:
                self._defer_depth -= 1
                if self._pending or self._tombstones or self._dirty_streams:
                    self._start_writer()

    @contextlib.contextmanager
    def locked_if_free(self) -> Iterator[bool]:
        """Hold the store lock for the block if no other thread holds it now; yields whether it is held.

        Lets the event loop serve a cheap read (a resumed scan page) in place, without ever waiting behind a
        commit or a segment evaluation running in a worker thread.
        """
        held = self._lock.acquire(blocking=False)
        try:
            yield held
        finally:
            if held:
                self._lock.release()

    # -- write-behind ------------------------------------------------------------------------------------
    def flush(self) -> None:
        """Write every changed profile, merge tombstone and stream document to the database now.

        Profiles are encoded in batches under the store lock (so each document is a consistent snapshot) and
        written outside it, so ingest continues while SQLite works. Profiles are stored under their creation
        sequence (``profile_key``), so bulk loads append to the index.
        """
        with self._flush_lock:
            if self.db.closed:
                return
            with self._lock:
                pids = list(self._pending)
                self._pending.clear()
                names = list(self._dirty_streams)
                self._dirty_streams.clear()
                stream_rows = [(n, encode(self.streams[n].to_doc())) for n in names if n in self.streams]
            try:
                self._write_profiles(pids)
                with self._lock:
                    graph = self.graph
                    tombstones = [
                        (
                            profile_key(graph.merged_seq.pop(pid)),
                            encode({"id": pid, "merged_into": graph.redirect(pid)}),
                        )
                        for pid in self._tombstones
                        if pid in graph.merged_seq
                    ]
                    self._tombstones.clear()
                self.db.put_encoded("profile", tombstones)
                self.db.put_encoded("stream", stream_rows)
            except BaseException:
                with self._lock:  # written again by the next flush
                    self._pending.update(dict.fromkeys(pids))
                    self._dirty_streams.update(dict.fromkeys(names))
                raise

    def _write_profiles(self, pids: list[str]) -> None:
        profiles = self.graph.profiles
        for i in range(0, len(pids), _COMMIT_BATCH):
            with self._lock, gc_paused():
                rows = []
                for pid in pids[i : i + _COMMIT_BATCH]:
                    profile = profiles.get(pid)
                    if profile is not None:  # merged away since: its tombstone follows
                        rows.append((profile_key(profile["seq"]), encode(profile)))
            with gc_paused():
                self.db.put_encoded("profile", rows)

    def _start_writer(self) -> None:
        """Start the background writer unless it runs (caller holds the lock)."""
        if self._writer is None and not self.db.closed:
            self._writer = threading.Thread(target=self._write_behind, name="lytics-emulator-writer", daemon=True)
            self._writer.start()

    def _write_behind(self) -> None:
        """Flush every ``write_interval`` seconds; exit after two idle intervals (restarted by the next change)."""
        idle = 0
        while True:
            time.sleep(self.write_interval)
            with self._lock:
                changed = bool(self._pending or self._tombstones or self._dirty_streams)
                if self.db.closed or (not changed and idle >= 1):
                    self._writer = None
                    return
                held = self._defer_depth and time.monotonic() - self._defer_since < MAX_DEFER
            if not changed or held:
                idle = 0 if held else idle + 1
                continue
            idle = 0
            try:
                self.flush()
            except Exception:  # keep the data in memory and retry; say why the database refused it
                _log.exception("writing emulator profiles to %s failed; retrying", self.db.path or "memory")

    def stream_event_count(self, stream: str) -> int:
        """Raw events received on ``stream`` (dry runs excluded)."""
        stats = self.streams.get(stream)
        return stats.count if stats else 0

    def reset(self) -> None:
        """Forget every profile, stream, segment, open scan and raw event (memory and database)."""
        with self._flush_lock, self._lock:
            self.graph.clear()
            self.streams.clear()
            self.segments.clear()
            self.queries.clear()
            self.metrics.clear()
            self.content.clear()
            self.scans.clear()
            self._sizes.clear()
            self._seg_matchers = None
            self._pending.clear()
            self._tombstones.clear()
            self._dirty_streams.clear()
            self.version += 1
            _purge(self.db, _DATA_KINDS)

    # -- profiles ----------------------------------------------------------------------------------------
    def profiles(self) -> Iterator[dict[str, Any]]:
        """Current materialised profiles (fresh dicts with native values and ``_``-metafields)."""
        with self._lock:
            snapshot = list(self.graph.profiles.values())
        for profile in snapshot:
            with self._lock:  # a concurrent ingest may be updating this profile
                view = materialise(profile)
            yield view

    def profile_count(self) -> int:
        return len(self.graph.profiles)

    def lookup(self, field: str, value: str) -> dict[str, Any] | None:
        """The materialised profile holding identifier ``field=value`` (``_uid``/``_uids``/``_id`` accepted)."""
        with self._lock:
            profile = self.graph.lookup(field, value)
            return materialise(profile) if profile else None

    @staticmethod
    def _view(profile: dict[str, Any]) -> ProfileView:
        """A zero-copy read view for FilterQL evaluation and sorting."""
        return ProfileView(profile)

    # -- segments ----------------------------------------------------------------------------------------
    def _matches(self, parsed: Any) -> Callable[[Any], bool]:
        """One predicate per evaluation: date math anchored once, INCLUDEs resolved once."""
        now = datetime.fromtimestamp(self.wall_clock(), timezone.utc)
        return parsed.matcher(now=now, include=self.segments.resolve_include)

    def _member_ids(self, parsed: Any) -> list[str]:
        table = parsed.table or "user"
        if table == "content":  # a content collection: documents, not profiles
            with self._lock:
                return self.content.member_ids(self._matches(parsed))
        if table != "user":
            return []
        matches = self._matches(parsed)
        with self._lock:
            try:
                return [p["id"] for p in list(self.graph.profiles.values()) if matches(self._view(p))]
            except ValueError as exc:  # FilterQLError at evaluation time, e.g. INCLUDE of an unknown segment
                raise SegmentError(str(exc)) from None

    def segment_size(self, id_or_slug: str) -> int:
        """Members of a saved segment now (cached until the next ingest or segment change)."""
        with self._lock:
            seg = self.segments.require(id_or_slug)
            stamp = (self.version, self.segments.version)
            cached = self._sizes.get(seg["id"])
            if cached and cached[0] == stamp:
                return cached[1]
            # An invalid segment (INCLUDE of a deleted segment) has no members until it is fixed.
            size = 0 if self.segments.refresh_validity(seg) else len(self._member_ids(self.segments.parsed(seg)))
            self._sizes[seg["id"]] = (stamp, size)
            self.metrics.record_size(seg["id"], seg["slug_name"], size)  # audience size history, on the clock
            return size

    def adhoc_size(self, segment_ql: str) -> int:
        return len(self._member_ids(parse(segment_ql)))

    def segment_members(self, id_or_slug: str) -> Iterator[dict[str, Any]]:
        """Materialised profiles of a saved segment (membership snapshot taken when iteration starts)."""
        with self._lock:
            ids = self._member_ids(self.segments.parsed(self.segments.require(id_or_slug)))
        for pid in ids:
            with self._lock:
                profile = self.graph.profiles.get(pid)
                view = materialise(profile) if profile else None
            if view is not None:
                yield view

    def profile_segments(self, view: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Saved ``user`` segments the materialised profile ``view`` belongs to."""
        out = []
        include = self.segments.resolve_include
        now = datetime.fromtimestamp(self.wall_clock(), timezone.utc)
        with self._lock:
            for seg in self.segments.list(table="user"):
                if seg["invalid"]:
                    continue
                if self.segments.parsed(seg).matches(view, now=now, include=include):
                    out.append(seg)
        return out

    # -- scan --------------------------------------------------------------------------------------------
    def scan(
        self,
        *,
        segment: str | None = None,
        segment_ql: str | None = None,
        start: str | None = None,
        limit: int | None = None,
        fields: Sequence[str] | None = None,
        sortfield: str | None = None,
        sortorder: str = "asc",
        recent: bool = False,
    ) -> ScanPage:
        """One page of a scan over a saved segment or ad-hoc FilterQL.

        Without ``start`` the member ids are snapshotted; ``start`` resumes from a previous page's ``next``.
        Raises :class:`scan.CursorError` for an expired/unknown cursor and ``SegmentError`` for a bad segment.
        """
        limit = SCAN_DEFAULT_LIMIT if not limit or limit < 1 else min(limit, SCAN_MAX_LIMIT)
        if segment is not None:
            seg = self.segments.require(segment)
            if self.segments.refresh_validity(seg):
                raise SegmentError(f"segment {seg['slug_name']!r} is invalid: {seg['invalid_reason']}")
            key: str | None = seg["id"]
        else:
            seg, key = None, None  # an ad-hoc cursor alone identifies its scan (clients may resend the body)
        if start:
            state, offset = self.scans.resume(start, key)
            cursor = start
        else:
            if seg is None and not segment_ql:
                raise ValueError("an ad-hoc scan needs a FilterQL body such as 'FILTER * FROM user'")
            parsed = self.segments.parsed(seg) if seg is not None else parse(segment_ql or "")
            table = parsed.table or "user"
            with self._lock:
                ids = self._member_ids(parsed)
                if recent:
                    sortfield, sortorder = ("updated" if table == "content" else "_modified"), "desc"
                if sortfield and table == "content":
                    ids = self.content.sorted_ids(ids, sortfield, sortorder)
                elif sortfield:
                    ids = self._sorted(ids, sortfield, sortorder)
            cursor = self.scans.open(ids, key or "adhoc", list(fields) if fields else None, table=table)
            state, offset = self.scans.resume(cursor)
        wanted = set(fields) if fields else (set(state.fields) if state.fields else None)
        page_ids = state.ids[offset : offset + limit]
        rows = []
        with self._lock:
            content = state.table == "content"
            if content:
                rows = self.content.rows(page_ids, wanted)
            profiles = self.graph.profiles
            memberships = self._segment_matchers() if not content and (wanted is None or "segments" in wanted) else None
            for pid in () if content else page_ids:
                profile = profiles.get(pid)
                if profile is not None:
                    row = render_profile(profile, wanted)
                    if memberships is not None:  # as Lytics's scan rows: slugs of the audiences it is in
                        view = self._view(profile)
                        row["segments"] = ["all", *(slug for slug, matches in memberships if matches(view))]
                    rows.append(row)
        end = offset + len(page_ids)
        if end >= state.total:
            self.scans.close(cursor)
            nxt = ""
        else:
            nxt = self.scans.next_cursor(cursor, end)
        return ScanPage(state.total, nxt, rows)

    def _segment_matchers(self) -> list[tuple[str, Callable[[Any], bool]]]:
        """``(slug, predicate)`` of every valid saved ``user`` segment, rebuilt when data or segments change.

        Caller holds the store lock (the predicates keep per-scan state and are used under it only).
        """
        stamp = (self.version, self.segments.version)
        if self._seg_matchers is None or self._seg_matchers[0] != stamp:
            built = []
            for seg in self.segments.list(table="user"):
                if not self.segments.refresh_validity(seg):
                    built.append((seg["slug_name"], self._matches(self.segments.parsed(seg))))
            self._seg_matchers = (stamp, built)
        return self._seg_matchers[1]

    def _sorted(self, ids: list[str], sortfield: str, sortorder: str) -> list[str]:
        if sortorder not in ("asc", "desc"):
            raise ValueError(f"sortorder must be 'asc' or 'desc', not {sortorder!r}")
        profiles = self.graph.profiles

        def key(pid: str) -> tuple:
            value = self._view(profiles[pid]).get(sortfield)
            if value is None:
                return (1, 0, 0.0, "")
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                return (0, 0, float(value), "")
            text = str(value)
            if _NUMERIC.match(text):  # numbers ingested as text (CSV) sort numerically, as typed fields do
                return (0, 0, float(text), "")
            return (0, 1, 0.0, text)

        keyed = [(key(pid), pid) for pid in ids]
        present = sorted((kp for kp in keyed if kp[0][0] == 0), key=lambda kp: kp[0], reverse=sortorder == "desc")
        return [pid for _, pid in present] + [pid for k, pid in keyed if k[0] == 1]  # profiles without it go last

    # -- entity ------------------------------------------------------------------------------------------
    def entity(
        self, field: str, value: str, *, fields: Sequence[str] | None = None, segments: bool = True,
        allsegments: bool = False,
    ) -> dict[str, Any] | None:  # fmt: skip
        """The ``/api/entity`` data for a profile: rendered values plus ``segments`` (slugs, ``all`` first)."""
        view = self.lookup(field, value)
        if view is None:
            return None
        data = render_row(view, set(fields) if fields else None)
        if segments or allsegments:
            member_of = self.profile_segments(view)
            if segments:
                data["segments"] = ["all", *(s["slug_name"] for s in member_of)]
            if allsegments:
                data["segments_all"] = [s["id"] for s in member_of]
        return data

    def identity(self, field: str, value: str) -> dict[str, Any] | None:
        """The v2 ``IdentityResponse`` (entity, keys, fragments) for a profile, or ``None``."""
        with self._lock:
            profile = self.graph.lookup(field, value)
            if profile is None:
                return None
            keys = [{"key": column_name(f), "value": v} for f, v in profile["keys"]]
            return {
                "entity": materialise(profile),
                "keys": keys,
                "fragments": [
                    {
                        "keys": keys, "neighbors": [], "conflict": False, "conflicts_with": [],
                        "created": rfc3339(profile["created"]), "modified": rfc3339(profile["modified"]),
                        "streams": list(profile["streams"]), "neighbor_limit": 50,
                    }
                ],
            }  # fmt: skip

    def by_fields(self) -> list[str]:
        return [column_name(f) for f in self.identity_fields]

    # -- schema ------------------------------------------------------------------------------------------
    def schema(self, table: str = "user") -> dict[str, Any] | None:
        """``/api/schema/{table}`` data from observed fields; ``None`` for an unknown table."""
        if table == "content":
            return {"name": "content", "by_fields": ["url"], "columns": []}
        if table != "user":
            return None
        with self._lock:
            mapped = self.queries.streams()
            keep_raw = self.unmapped == "raw"  # unmapped streams then add no profile columns
            unmapped = [s for s in self.streams.values() if s.name not in mapped and not keep_raw]
            columns = {c["as"]: c for c in table_columns(unmapped, self.identity_fields)}
            for name, column in self.queries.columns().items():
                if name in columns:
                    column = {**column, "froms": [*columns[name]["froms"], *column["froms"]]}
                columns[name] = column
        return {"name": "user", "by_fields": self.by_fields(), "columns": [columns[c] for c in sorted(columns)]}

    def stream_list(self) -> list[StreamStats]:
        with self._lock:
            return [self.streams[name] for name in sorted(self.streams)]


_gc_lock = threading.Lock()
_gc_pauses = 0
_gc_resume = False


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Pause automatic garbage collection for one ingest batch (re-entrant and thread-safe).

    Merging a batch allocates many small objects; each allocation burst would otherwise trigger collections
    that traverse the whole (large, long-lived) profile graph again and again, which costs more than the
    merge itself. Collection resumes when the last concurrent batch ends, and the objects of the batch are
    collected then as usual.
    """
    global _gc_pauses, _gc_resume
    with _gc_lock:
        if _gc_pauses == 0:
            _gc_resume = gc.isenabled()
            gc.disable()
        _gc_pauses += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_pauses -= 1
            if _gc_pauses == 0 and _gc_resume:
                gc.enable()


def _event_times(batch: list[Mapping[str, Any]], ts_field: str, arrival: int) -> Iterable[int]:
    """The event time of each record: its ``ts_field`` when that parses as a time, else the arrival time."""
    if not any(map(operator.contains, batch, itertools.repeat(ts_field))):  # the common case: no event times
        return itertools.repeat(arrival, len(batch))
    stamps = []
    for record in batch:
        raw_ts = record.get(ts_field)
        stamps.append((parse_time_ms(raw_ts) if raw_ts is not None else None) or arrival)
    return stamps


def profile_key(seq: int) -> str:
    """Storage key of a profile document: its zero-padded creation sequence."""
    return f"{seq:012d}"


def check_stream_name(stream: Any) -> None:
    """Raise ``ValueError`` unless ``stream`` is a usable stream name."""
    if not isinstance(stream, str) or not _STREAM_NAME.match(stream):
        raise ValueError(f"stream name {stream!r} is invalid: use 1-128 letters, digits, '_', '-' or '.'")


def render_profile(profile: dict[str, Any], wanted: set[str] | None) -> dict[str, Any]:
    """Scan output for one stored profile, rendered straight from it (no intermediate materialised copy).

    With a projection only the wanted fields are built.
    """
    if wanted is None:
        out = {k: v if type(v) is str else render(v) for k, v in profile["fields"].items()}
        out["_id"] = profile["id"]
        out["_created"] = rfc3339(profile["created"])
        out["_modified"] = rfc3339(profile["modified"])
        out["_num_events"] = str(profile["events"])
        out["_streamnames"] = list(profile["streams"])
        out["_uids"] = [v for f, v in profile["keys"] if f == UID_FIELD]
        return out
    view = ProfileView(profile)
    out = {}
    for name in wanted:
        value = view.get(name)
        if value is not None:
            out[name] = render(value)
    return out


def render_row(view: Mapping[str, Any], wanted: set[str] | None) -> dict[str, Any]:
    """A profile as scan/entity output shows it: projected to ``wanted`` fields, values rendered as strings."""
    if wanted is None:
        return {k: v if type(v) is str else render(v) for k, v in view.items()}
    return {k: v if type(v) is str else render(v) for k, v in view.items() if k in wanted}


def _purge(db: StateDB, kinds: Sequence[str]) -> None:
    """Delete this store's documents and the raw event log without touching other components' documents."""
    delete_kind = getattr(db, "delete_kind", None)
    clear_events = getattr(db, "clear_events", None)
    if delete_kind is not None and clear_events is not None:
        for kind in kinds:
            delete_kind(kind)
        clear_events()
        return
    # StateDB offers no bulk delete yet; use its connection under its own lock (one transaction).
    with db._lock:
        conn = db._conn
        conn.execute("BEGIN")
        try:
            conn.executemany("DELETE FROM docs WHERE kind = ?", [(k,) for k in kinds])
            conn.execute("DELETE FROM events")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
