"""The emulator's content engine: the document corpus, topics, users' topic affinities and recommendations.

Documents are upserted by ``POST /api/content/corpus`` and classified at once (see :mod:`.content_docs`); they
are written through to the ``content`` kind of the state DB. Profiles meet content through events: every event
with a ``url`` field adds the URL's hash to the profile's ``hashedurls`` (a multi-value field, so identity merges
keep the union). A profile that visited at least one known document carries ``lytics_content``, a map of topic
to affinity (0..1): the mean, over the distinct known documents it visited, of each document's relevance to the
topic. Affinities are recomputed when the profile visits content and when a visited document is (re)classified,
so documents and events may arrive in either order. The engine shares the profile store's lock.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow_provider_lytics.emulator.content_docs import (
    KNOWN_FIELDS,
    ContentError,
    check_body,
    classify,
    hashed_url,
    try_hashed_url,
)
from airflow_provider_lytics.emulator.identity import _union
from airflow_provider_lytics.emulator.values import parse_time_ms, rfc3339

if TYPE_CHECKING:
    from airflow_provider_lytics.emulator.store import ProfileStore

#: Profile field holding the hashes of the content URLs a profile visited.
VISITS_FIELD = "hashedurls"
#: Profile field holding the topic -> affinity map (as Lytics names its content affinity field).
AFFINITY_FIELD = "lytics_content"
DEFAULT_DOC_LIMIT = 10
MAX_DOC_LIMIT = 1000
RANKS = ("affinity", "recent", "popular")
_PUBLIC = ("id", "url", "title", "description", "topics", "topic_relevances", "primary_image", "author",
           "created", "updated", "fetched", "sitename", "stream", "path", "aspects", "language", "meta")  # fmt: skip


class ContentEngine:
    """Documents by id (hashed URL) plus the profile-side affinity bookkeeping; thread-safe via the store lock."""

    def __init__(self, store: ProfileStore) -> None:
        self.store = store
        self._lock = store._lock
        self._docs: dict[str, dict[str, Any]] = {}
        self._visitors: dict[str, set[str]] | None = None  # doc id -> profile ids, built on first need
        self.version = 0
        for _, entry in store.db.iter_docs("content"):
            self._docs[entry["doc"]["id"]] = entry

    # -- documents ---------------------------------------------------------------------------------------
    def upsert(self, body: Any) -> tuple[dict[str, Any], bool]:
        """Create or update one document from a corpus body; returns ``(document, created)``."""
        spec = check_body(body)
        with self._lock:
            doc_id = self._id_for(spec)
            old = self._docs.get(doc_id)
            now = int(self.store.wall_clock() * 1000)
            entry = _merge(old, spec, doc_id, now)
            self._docs[doc_id] = entry
            self.store.db.put("content", doc_id, entry)
            self.version += 1
            self._refresh_visitors(doc_id)
            self.store.version += 1  # content segment sizes and affinity audiences change
        return dict(entry["doc"]), old is None

    def _id_for(self, spec: Mapping[str, Any]) -> str:
        if "url" in spec:
            doc_id = hashed_url(spec["url"])
            if spec.get("id") not in (None, "") and str(spec["id"]) != doc_id:
                raise ContentError(f'"id" {spec["id"]!r} is not the hashed id of "url" ({doc_id}); leave it out')
            return doc_id
        doc_id = str(spec["id"])
        if doc_id not in self._docs:
            raise ContentError(f'no document with id {doc_id!r}; send its "url" to create it', status=404)
        return doc_id

    def documents(self, *, urls: Sequence[str] = (), ids: Sequence[str] = (), limit: int | None = None) -> list[dict]:
        """Documents by URL and/or id (unknown ones are left out), else the most recently updated ones."""
        limit = _clamp(limit)
        with self._lock:
            if urls or ids:
                wanted = [try_hashed_url(u) for u in urls] + [str(i) for i in ids]
                found = [self._docs[i]["doc"] for i in dict.fromkeys(wanted) if i in self._docs]
            else:
                found = sorted((e["doc"] for e in self._docs.values()), key=_recent_key)
            return [dict(doc) for doc in found[:limit]]

    def classify_text(self, text: str = "", url: str | None = None) -> dict[str, Any]:
        """What classifying ``text`` (and the URL's path words) would give, stored nowhere."""
        from airflow_provider_lytics.emulator.content_docs import normalise_url

        path = normalise_url(url) if url else ""
        relevances = classify(text, path)
        return {"url": path, "topics": list(relevances), "topic_relevances": relevances}

    def count(self) -> int:
        return len(self._docs)

    # -- the content table (FROM content) ----------------------------------------------------------------
    def member_ids(self, matches: Callable[[Mapping[str, Any]], bool]) -> list[str]:
        """Ids of the documents a FilterQL predicate matches, oldest first (caller holds the store lock)."""
        ordered = sorted(self._docs.values(), key=lambda e: (e["doc"]["created"], e["doc"]["id"]))
        return [e["doc"]["id"] for e in ordered if matches(e["doc"])]

    def sorted_ids(self, ids: list[str], field: str, order: str) -> list[str]:
        if order not in ("asc", "desc"):
            raise ValueError(f"sortorder must be 'asc' or 'desc', not {order!r}")
        present = [i for i in ids if self._docs[i]["doc"].get(field) not in (None, "", [])]
        present.sort(key=lambda i: _sort_value(self._docs[i]["doc"][field]), reverse=order == "desc")
        return present + [i for i in ids if i not in set(present)]

    def rows(self, ids: Iterable[str], wanted: set[str] | None) -> list[dict[str, Any]]:
        """Scan rows of content documents (the document as ``/api/content/doc`` shows it, projected)."""
        out = []
        for doc_id in ids:
            entry = self._docs.get(doc_id)
            if entry is not None:
                doc = entry["doc"]
                out.append(dict(doc) if wanted is None else {k: v for k, v in doc.items() if k in wanted})
        return out

    # -- topics ------------------------------------------------------------------------------------------
    def topics(self, limit: int | None = None) -> list[dict[str, Any]]:
        """Every topic with its document count, mean relevance and number of profiles that viewed it."""
        with self._lock:
            summary = self._topic_summary()
        ranked = sorted(summary.values(), key=lambda t: (-t["doc_count"], t["label"]))
        return ranked[: _clamp(limit, default=MAX_DOC_LIMIT)]

    def topic(self, label: str, limit: int | None = None) -> dict[str, Any]:
        with self._lock:
            summary = self._topic_summary().get(label.lower())
            if summary is None:
                raise ContentError(f"topic {label!r} not found; GET /api/content/topic lists the topics", 404)
            docs = [e["doc"] for e in self._docs.values() if label.lower() in e["doc"]["topic_relevances"]]
        docs.sort(key=lambda d: (-d["topic_relevances"][label.lower()], *_recent_key(d)))
        return {**summary, "documents": [dict(d) for d in docs[: _clamp(limit)]]}

    def _topic_summary(self) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        users: dict[str, set[str]] = {}
        for doc_id, entry in self._docs.items():
            viewers = self._viewers(doc_id)
            for topic, relevance in entry["doc"]["topic_relevances"].items():
                item = out.setdefault(topic, {"label": topic, "doc_count": 0, "relevance_sum": 0.0})
                item["doc_count"] += 1
                item["relevance_sum"] += relevance
                users.setdefault(topic, set()).update(viewers)
        for topic, item in out.items():
            item["avg_relevance"] = round(item.pop("relevance_sum") / item["doc_count"], 3)
            item["user_count"] = len(users.get(topic, ()))
        return out

    # -- profiles ----------------------------------------------------------------------------------------
    def after_commit(self, batch: Sequence[Mapping[str, Any]], pending: dict[str, None]) -> None:
        """Record content visits of a committed batch and refresh the affinities of the profiles it touched.

        Called by the store under its lock, after the batch was merged into profiles.
        """
        graph = self.store.graph
        for record in batch:
            url = record.get("url")
            if url is None or url == "":
                continue
            doc_id = try_hashed_url(url)
            if doc_id is None:
                continue
            try:
                keys = graph.keys_for(record)
            except ValueError:
                continue
            pid = next((graph.index[k] for k in keys if k in graph.index), None)
            profile = graph.profiles.get(pid) if pid else None
            if profile is None:
                continue
            fields = profile["fields"]
            seen = fields.get(VISITS_FIELD)
            if not isinstance(seen, list):
                seen = []
            if doc_id not in seen:
                fields[VISITS_FIELD] = _union(seen, [doc_id])
            pending[profile["id"]] = None
            if self._visitors is not None:
                self._visitors.setdefault(doc_id, set()).add(profile["id"])
        if self._docs:
            profiles = graph.profiles
            for pid in list(pending):
                profile = profiles.get(pid)
                if profile is not None and VISITS_FIELD in profile["fields"]:
                    self._apply_affinity(profile, pending)

    def _refresh_visitors(self, doc_id: str) -> None:
        pending = self.store._pending
        profiles = self.store.graph.profiles
        changed = False
        for pid in self._viewers(doc_id):
            changed = self._apply_affinity(profiles[pid], pending) or changed
        if changed and self.store._durable:
            self.store._start_writer()

    def _viewers(self, doc_id: str) -> set[str]:
        """Current ids of the profiles that visited ``doc_id`` (merged-away ids redirected)."""
        graph = self.store.graph
        if self._visitors is None:
            index: dict[str, set[str]] = {}
            for pid, profile in graph.profiles.items():
                seen = profile["fields"].get(VISITS_FIELD)
                if isinstance(seen, list):
                    for h in seen:
                        index.setdefault(str(h), set()).add(pid)
            self._visitors = index
        return {p for p in map(graph.redirect, self._visitors.get(doc_id, ())) if p in graph.profiles}

    def _apply_affinity(self, profile: dict[str, Any], pending: dict[str, None]) -> bool:
        fields = profile["fields"]
        scores = self.affinities(fields.get(VISITS_FIELD))
        if scores == fields.get(AFFINITY_FIELD) or (not scores and AFFINITY_FIELD not in fields):
            return False
        if scores:
            fields[AFFINITY_FIELD] = scores
        else:
            del fields[AFFINITY_FIELD]
        pending[profile["id"]] = None
        return True

    def affinities(self, visited: Any) -> dict[str, float]:
        """``{topic: affinity}`` for a list of visited document ids (highest first, four decimals)."""
        rels = [self._docs[h]["doc"]["topic_relevances"] for h in (visited or ()) if h in self._docs]
        if not rels:
            return {}
        totals: dict[str, float] = {}
        for relevances in rels:
            for topic, value in relevances.items():
                totals[topic] = totals.get(topic, 0.0) + value
        scores = {t: round(v / len(rels), 4) for t, v in totals.items()}
        return dict(sorted(scores.items(), key=lambda kv: (-kv[1], kv[0])))

    # -- recommendations ---------------------------------------------------------------------------------
    def recommend(
        self,
        field: str,
        value: str,
        *,
        limit: int | None = None,
        visited: bool = False,
        topics: Sequence[str] = (),
        rank: str = "affinity",
        matches: Callable[[Mapping[str, Any]], bool] | None = None,
    ) -> list[dict[str, Any]]:
        """Documents for the profile ``field=value``, each with ``confidence`` (0..1) and ``visited``.

        ``affinity`` ranks by the profile's topic affinities weighted by each document's relevances, ``recent``
        by last update, ``popular`` by how many profiles viewed it. Visited documents are left out unless
        ``visited``; ``topics`` keeps documents on any of those topics; ``matches`` (a content segment) filters.
        """
        if rank not in RANKS:
            raise ContentError(f"rank {rank!r} is not supported; use one of {', '.join(RANKS)}")
        wanted_topics = {t.lower() for t in topics}
        with self._lock:
            profile = self.store.graph.lookup(field, value)
            if profile is None:
                raise ContentError(f"no user profile with {field}={value!r}", status=404)
            seen = set(profile["fields"].get(VISITS_FIELD) or ())
            affinity = profile["fields"].get(AFFINITY_FIELD) or {}
            out = []
            for doc_id, entry in self._docs.items():
                doc = entry["doc"]
                was_visited = doc_id in seen
                if (was_visited and not visited) or (wanted_topics and not wanted_topics & set(doc["topics"])):
                    continue
                if matches is not None and not matches(doc):
                    continue
                popularity = len(self._viewers(doc_id)) if rank == "popular" else 0
                out.append((doc, _confidence(affinity, doc["topic_relevances"]), was_visited, popularity))
        if rank == "affinity":
            out.sort(key=lambda item: (-item[1], *_recent_key(item[0])))
        elif rank == "recent":
            out.sort(key=lambda item: _recent_key(item[0]))
        else:
            out.sort(key=lambda item: (-item[3], *_recent_key(item[0])))
        return [{**doc, "confidence": conf, "visited": was} for doc, conf, was, _ in out[: _clamp(limit)]]

    def clear(self) -> None:
        with self._lock:
            self._docs.clear()
            self._visitors = None
            self.version += 1


def _merge(old: dict[str, Any] | None, spec: Mapping[str, Any], doc_id: str, now: int) -> dict[str, Any]:
    """The stored entry ``{"doc": public document, "text": body text, "explicit": named topics}``."""
    prev = dict(old["doc"]) if old else {}
    text = str(spec.get("text", old["text"] if old else ""))
    explicit = spec["topics"] if spec.get("topics") else (old["explicit"] if old else [])
    doc = {**prev, **{k: v for k, v in spec.items() if k not in ("text", "topics", "id")}}
    url = doc.get("url", "")
    host, _, path = url.partition("/")
    relevances = classify(str(doc.get("title", "")), str(doc.get("description", "")), text, path.replace("-", " "),
                          explicit=explicit)  # fmt: skip
    created = prev.get("created")
    if created is None:
        given = parse_time_ms(spec.get("created")) if spec.get("created") is not None else None
        created = rfc3339(given if given is not None else now)
    doc.update({
        "id": doc_id, "url": url, "topics": list(relevances), "topic_relevances": relevances,
        "created": created, "updated": rfc3339(now), "fetched": rfc3339(now),
        "sitename": doc.get("sitename") or host, "path": [p for p in path.split("/") if p],
        "aspects": doc.get("aspects") or ["article"], "language": doc.get("language") or "en",
        "stream": doc.get("stream") or "default", "meta": doc.get("meta") or [],
    })  # fmt: skip
    public = {k: doc[k] for k in _PUBLIC if k in doc}
    public.update({k: v for k, v in doc.items() if k not in _PUBLIC and k not in KNOWN_FIELDS})  # custom attrs
    return {"doc": public, "text": text, "explicit": list(explicit)}


def _confidence(affinity: Mapping[str, Any], relevances: Mapping[str, float]) -> float:
    """The relevance-weighted mean of the profile's affinity over a document's topics (0..1)."""
    weight = sum(relevances.values())
    if not weight:
        return 0.0
    total = 0.0
    for topic, relevance in relevances.items():
        try:
            total += float(affinity.get(topic, 0) or 0) * relevance
        except (TypeError, ValueError):
            continue
    return round(total / weight, 4)


def _recent_key(doc: Mapping[str, Any]) -> tuple[int, str]:
    """Newest update first, then id (a stable order for equal stamps)."""
    return (-(parse_time_ms(doc.get("updated")) or 0), str(doc.get("id")))


def _sort_value(value: Any) -> tuple[int, float, str]:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return (0, float(value), "")
    return (1, 0.0, str(value))


def _clamp(limit: int | None, default: int = DEFAULT_DOC_LIMIT) -> int:
    if limit is None or limit < 1:
        return default
    return min(limit, MAX_DOC_LIMIT)
