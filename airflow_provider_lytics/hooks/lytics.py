"""Synchronous Lytics API hook (requests), used on workers by operators and sensors.

Every public method says whether it is safe to retry. Safe calls are retried on network errors, 429 and
5xx; unsafe calls (creating segments or jobs, job commands) only when the request certainly did not reach
Lytics. See :mod:`airflow_provider_lytics.client.retry`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator, Mapping
from functools import cached_property
from typing import IO, TYPE_CHECKING, Any

from airflow_provider_lytics.client.config import LyticsSettings
from airflow_provider_lytics.client.envelope import Envelope, entity_not_found
from airflow_provider_lytics.client.errors import LyticsAuthError, LyticsConfigError, LyticsError, LyticsTransportError
from airflow_provider_lytics.client.http import (
    SCAN_PAGE_LIMIT,
    USER_AGENT,
    ScanPage,
    iter_scan,
    new_session,
    quote_path,
    scan_requests,
    send,
)
from airflow_provider_lytics.client.raw_events import EVENT_PAGE_LIMIT
from airflow_provider_lytics.client.retry import RetryPolicy
from airflow_provider_lytics.hooks.base import LyticsBaseHook

if TYPE_CHECKING:
    import requests

__all__ = ["SCAN_PAGE_LIMIT", "USER_AGENT", "LyticsHook", "ScanPage", "quote_path"]


def _bool(value: bool) -> str:
    return "true" if value else "false"


def _ids_param(ids: Iterable[str]) -> str:
    return ",".join(str(i) for i in ids)


def _reach_hint(host: str | None, api_url: str) -> str:
    """What to change when the API URL could not be reached."""
    if host and "://" not in host and api_url.startswith("https://"):
        return (
            f"The Host field {host!r} has no scheme, so https:// was used; if the server speaks plain HTTP "
            f"(e.g. lytics-emulator serve), set Host to {api_url.replace('https://', 'http://', 1)}."
        )
    return (
        "Check the Host field (the API base URL with http:// or https://, default https://api.lytics.io) and "
        "that Airflow can reach it from where the test runs."
    )


class LyticsHook(LyticsBaseHook):
    """Talk to the Lytics REST API through an Airflow ``lytics`` connection (see :class:`LyticsBaseHook`)."""

    def __init__(self, lytics_conn_id: str = LyticsBaseHook.default_conn_name, *,
                 retry_policy: RetryPolicy | None = None) -> None:  # fmt: skip
        super().__init__(lytics_conn_id, retry_policy=retry_policy)
        self._sleep = time.sleep
        self._clock = time.monotonic

    # Airflow 2 looks for these in the connection type's own class ``__dict__``, so restate them here.
    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        return super().get_ui_field_behaviour()

    @classmethod
    def get_connection_form_widgets(cls) -> dict[str, Any]:
        return super().get_connection_form_widgets()

    @cached_property
    def settings(self) -> LyticsSettings:
        """Resolved once per hook; the token is registered with Airflow's secret masker."""
        conn = self.get_connection(self.lytics_conn_id)
        return self._settings_from(conn, conn.extra_dejson)

    @cached_property
    def session(self) -> requests.Session:
        return new_session(self.settings)

    def get_conn(self) -> requests.Session:
        return self.session

    def close(self) -> None:
        if "session" in self.__dict__:
            self.session.close()
            del self.__dict__["session"]

    def test_connection(self) -> tuple[bool, str]:
        """One cheap call (``GET /api/account``) that proves the URL and the token; never raises.

        A failure names the URL tried and the connection field to change.
        """
        try:
            conn = self.get_connection(self.lytics_conn_id)
            settings = self.settings
        except LyticsError as err:  # the connection itself is unusable; the message says which field
            return False, str(err)
        except Exception as err:  # the UI must get a message, whatever went wrong
            return False, f"{type(err).__name__}: {err}"
        url = f"{settings.api_url}/api/account"
        try:
            envelope = self.request("GET", "/api/account")
        except LyticsAuthError as err:
            return False, (
                f"Lytics at {url} refused the API token (HTTP {err.status}): put a valid token in the Password "
                "field (Lytics: Account > Security > Access Tokens), without a 'Bearer ' prefix."
            )
        except LyticsTransportError as err:
            return False, f"Could not reach Lytics at {url}: {err}. {_reach_hint(conn.host, settings.api_url)}"
        except LyticsError as err:
            return False, f"Lytics at {url} answered with an error: {err}"
        except Exception as err:
            return False, f"Testing Lytics at {url} failed: {type(err).__name__}: {err}"
        accounts = envelope.data if isinstance(envelope.data, list) else [envelope.data]
        names = ", ".join(str(a.get("name") or a.get("id")) for a in accounts if isinstance(a, dict))
        return True, f"Connected to Lytics at {settings.api_url}" + (f" (account: {names})" if names else "")

    # -- transport ----------------------------------------------------------------------------------------
    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json_body: Any = None,
        data: bytes | str | IO[bytes] | Iterable[bytes] | None = None,
        headers: Mapping[str, str] | None = None,
        bulk: bool = False,
        safe: bool = True,
    ) -> Envelope:
        """Send one logical request with retries and return the parsed envelope (raises typed errors).

        ``safe`` says whether repeating the request is harmless. A file-like ``data`` body is rewound before
        each retry; an iterator body cannot be replayed, so it is sent once.
        """
        return send(  # type: ignore[return-value]
            self.session, self.settings, self.retry_policy, method, path, params=params, json_body=json_body,
            data=data, headers=headers, bulk=bulk, safe=safe, log=self.log, sleep=self._sleep, clock=self._clock,
        )  # fmt: skip

    # -- ingest -------------------------------------------------------------------------------------------
    def collect_json(
        self,
        stream: str,
        records: Mapping[str, Any] | list[Mapping[str, Any]],
        *,
        dryrun: bool = False,
        timestamp_field: str | None = None,
        filename: str | None = None,
    ) -> dict[str, Any]:
        """``POST /collect/json/{stream}`` with one object or a list. Returns ``data`` (message/rejected counts).

        Retried (at-least-once): if a response is lost after Lytics accepted the batch, the retry
        re-sends it, which duplicates raw events (profile fields merge last-write-wins).
        """
        params = {"dryrun": _bool(dryrun) if dryrun else None, "timestamp_field": timestamp_field, "filename": filename}
        body = json.dumps(records, separators=(",", ":"), default=str).encode()
        envelope = self.request(
            "POST", f"/collect/json/{quote_path(stream)}", params=params, data=body,
            headers={"Content-Type": "application/json"},
        )  # fmt: skip
        return envelope.data or {}

    def bulk_upload(
        self,
        stream: str,
        body: bytes | IO[bytes] | Iterable[bytes],
        *,
        content_type: str = "application/csv",
        gzipped: bool = False,
        headers: list[str] | None = None,
        delimiter: str | None = None,
        append: Mapping[str, Any] | None = None,
        droperrors: bool = False,
        dryrun: bool = False,
        timestamp_field: str | None = None,
        filename: str | None = None,
        use_bulk_host: bool = True,
    ) -> dict[str, Any]:
        """``POST /collect/bulk/{stream}``: stream a CSV or JSON body (file object, bytes or chunk iterator).

        Large bodies go to the bulk host (the API host caps bodies at 10 MB). Safe to retry when ``body`` is
        bytes or a seekable file (rewound before each attempt); an iterator body is sent once.
        """
        if delimiter is not None and delimiter not in {",", "\t", "t", "|", ";"}:
            raise LyticsConfigError(f"Unsupported CSV delimiter {delimiter!r}: use ',', tab, '|' or ';'")
        params = {
            "headers": ",".join(headers) if headers else None,
            "delimiter": "t" if delimiter in {"\t", "t"} else delimiter,
            "append": json.dumps(dict(append), separators=(",", ":")) if append else None,
            "droperrors": _bool(droperrors) if droperrors else None,
            "dryrun": _bool(dryrun) if dryrun else None,
            "timestamp_field": timestamp_field,
            "filename": filename,
        }
        send_headers = {"Content-Type": content_type}
        if gzipped:
            send_headers["Content-Encoding"] = "gzip"
        envelope = self.request(
            "POST", f"/collect/bulk/{quote_path(stream)}", params=params, data=body, headers=send_headers,
            bulk=use_bulk_host,
        )  # fmt: skip
        return envelope.data or {}

    # -- segments -----------------------------------------------------------------------------------------
    def list_segments(self, *, table: str | None = None, valid: str | None = None) -> list[dict[str, Any]]:
        """``GET /api/segment``. Safe to retry."""
        return self.request("GET", "/api/segment", params={"table": table, "valid": valid}).data or []

    def get_segment(self, id_or_slug: str) -> dict[str, Any]:
        """``GET /api/segment/{id-or-slug}``. Safe to retry."""
        return self.request("GET", f"/api/segment/{quote_path(id_or_slug)}").data

    def create_segment(self, segment: str | Mapping[str, Any]) -> dict[str, Any]:
        """``POST /api/segment`` with FilterQL text (``ALIAS`` sets the slug) or a JSON definition.

        v1 create is an upsert by slug, so repeating it converges: retried like a safe call.
        """
        if isinstance(segment, str):
            env = self.request("POST", "/api/segment", data=segment.encode(), headers={"Content-Type": "text/plain"})
        else:
            env = self.request("POST", "/api/segment", json_body=dict(segment))
        return env.data

    def update_segment(self, segment_id: str, changes: Mapping[str, Any]) -> dict[str, Any]:
        """``PUT /api/segment/{id}``. Idempotent: safe to retry."""
        return self.request("PUT", f"/api/segment/{quote_path(segment_id)}", json_body=dict(changes)).data

    def delete_segment(self, segment_id: str) -> None:
        """``DELETE /api/segment/{id}``. Safe to retry (a second delete answers 404, which is raised)."""
        self.request("DELETE", f"/api/segment/{quote_path(segment_id)}")

    def validate_segment(self, filter_ql: str) -> None:
        """``POST /api/segment/validate``: raises :class:`LyticsBadRequestError` with the parse message."""
        self.request("POST", "/api/segment/validate", data=filter_ql.encode(), headers={"Content-Type": "text/plain"})

    def segment_size(self, id_or_slug: str) -> int:
        """Current member count of a saved segment. Safe to retry."""
        data = self.request("GET", f"/api/segment/{quote_path(id_or_slug)}/sizes").data or {}
        return int(float(data.get("size") or 0))

    def segment_sizes(self, ids: Iterable[str] | None = None) -> list[dict[str, Any]]:
        """``GET /api/segment/sizes`` for several (or all) segments. Safe to retry."""
        params = {"ids": _ids_param(ids)} if ids is not None else None
        return self.request("GET", "/api/segment/sizes", params=params).data or []

    def adhoc_segment_size(self, filter_ql: str) -> int:
        """Size of an unsaved FilterQL audience (Lytics throttles this to one call per 10 s). Safe to retry."""
        data = self.request(
            "POST", "/api/segment/size", data=filter_ql.encode(), headers={"Content-Type": "text/plain"}
        ).data or {}  # fmt: skip
        return int(float(data.get("size") or 0))

    # -- segment collections ------------------------------------------------------------------------------
    def list_segment_collections(self, *, sideload: bool = False) -> list[dict[str, Any]]:
        """``GET /api/segmentcollection``; ``sideload`` embeds each item's segment. Safe to retry."""
        params = {"sideload": "true"} if sideload else None
        return self.request("GET", "/api/segmentcollection", params=params).data or []

    def get_segment_collection(self, collection_id: str, *, sideload: bool = False) -> dict[str, Any]:
        """``GET /api/segmentcollection/{id}`` (id or slug). Safe to retry."""
        params = {"sideload": "true"} if sideload else None
        return self.request("GET", f"/api/segmentcollection/{quote_path(collection_id)}", params=params).data

    def create_segment_collection(
        self, name: str, segments: Iterable[str], *, slug_name: str | None = None, description: str | None = None
    ) -> dict[str, Any]:
        """``POST /api/segmentcollection``: ``segments`` (ids or slugs) in order. NOT retried after the request
        was sent (a repeat would try to create a second collection)."""
        body = {"name": name, "collection": _collection_items(segments), "slug_name": slug_name,
                "description": description}  # fmt: skip
        body = {k: v for k, v in body.items() if v is not None}
        return self.request("POST", "/api/segmentcollection", json_body=body, safe=False).data

    def update_segment_collection(self, collection_id: str, changes: Mapping[str, Any]) -> dict[str, Any]:
        """``PUT /api/segmentcollection/{id}`` with ``name``/``description``/``slug_name`` and/or ``segments``
        (ids or slugs, in order) or a raw ``collection`` list. Idempotent: safe to retry."""
        body = dict(changes)
        if "segments" in body:
            body["collection"] = _collection_items(body.pop("segments"))
        return self.request("PUT", f"/api/segmentcollection/{quote_path(collection_id)}", json_body=body).data

    def delete_segment_collection(self, collection_id: str) -> None:
        """``DELETE /api/segmentcollection/{id}``. Safe to retry (a second delete answers 404, which is raised)."""
        self.request("DELETE", f"/api/segmentcollection/{quote_path(collection_id)}")

    # -- scan ---------------------------------------------------------------------------------------------
    def scan_pages(
        self,
        segment: str | None = None,
        *,
        filter_ql: str | None = None,
        fields: Iterable[str] | None = None,
        limit: int = SCAN_PAGE_LIMIT,
        sortfield: str | None = None,
        sortorder: str | None = None,
        table: str | None = None,
        start: str | None = None,
    ) -> Iterator[ScanPage]:
        """Lazily page through a saved segment (id or slug) or an ad-hoc FilterQL audience.

        Each page is one safe, retried request; the generator stops when ``_next`` is empty. An expired
        cursor raises :class:`LyticsCursorExpiredError` (restart the scan from the beginning).
        """
        page_request = scan_requests(
            segment, filter_ql, fields=fields, limit=limit, sortfield=sortfield, sortorder=sortorder, table=table
        )
        return iter_scan(self.request, page_request, start)

    def scan(self, segment: str | None = None, **kwargs: Any) -> Iterator[dict[str, Any]]:
        """Every member profile of a segment (or ad-hoc audience), one page in memory at a time."""
        for page in self.scan_pages(segment, **kwargs):
            yield from page.records

    # -- raw events ---------------------------------------------------------------------------------------
    def event_pages(
        self,
        stream: str,
        *,
        start: Any = None,
        end: Any = None,
        limit: int = EVENT_PAGE_LIMIT,
        cursor: str | None = None,
    ) -> Iterator[ScanPage]:
        """Page through ``stream``'s raw events whose event time is in ``[start, end)``.

        ``GET /v2/stream/{stream}/events`` with ``start_date``/``end_date`` (datetimes, epoch ms or ISO 8601
        strings; ``None`` leaves a side open), ``limit`` events per page and ``start=<_next>``. Each page's
        ``total`` is the number of events in the range when the first page was served. Safe to retry.
        """
        from airflow_provider_lytics.client.raw_events import event_requests

        return iter_scan(self.request, event_requests(stream, start, end, limit), cursor)

    def events(self, stream: str, **kwargs: Any) -> Iterator[dict[str, Any]]:
        """Every raw event of ``stream`` in a time range (see :meth:`event_pages`), one page in memory at a time."""
        for page in self.event_pages(stream, **kwargs):
            yield from page.records

    # -- entity, schema, streams, account ------------------------------------------------------------------
    def get_entity(
        self,
        field: str,
        value: str,
        *,
        table: str = "user",
        fields: Iterable[str] | None = None,
        segments: bool | None = None,
        allsegments: bool | None = None,
    ) -> dict[str, Any] | None:
        """A profile by an identity field, or ``None``: handles the 200-"Not Found" quirk. Safe to retry.

        ``segments`` (Lytics default on) adds ``segments``, the slugs of the audiences the profile is in;
        ``allsegments`` also adds their ids as ``segments_all``.
        """
        return self.lookup_entity(field, value, table=table, fields=fields, segments=segments,
                                  allsegments=allsegments)[0]  # fmt: skip

    def lookup_entity(
        self,
        field: str,
        value: str,
        *,
        table: str = "user",
        fields: Iterable[str] | None = None,
        segments: bool | None = None,
        allsegments: bool | None = None,
        meta: bool | None = None,
    ) -> tuple[dict[str, Any] | None, dict[str, Any]]:
        """``(profile or None, meta)``: the entity plus the response's ``meta`` (``by_fields``, ``conflicts``).

        See :mod:`airflow_provider_lytics.client.entity` for the options. Safe to retry.
        """
        from airflow_provider_lytics.client.entity import entity_params, entity_path

        env = self.request("GET", entity_path(table, field, value),
                           params=entity_params(fields, segments, allsegments, meta))  # fmt: skip
        if entity_not_found(env):
            return None, dict(env.meta)
        return env.data, dict(env.meta)

    def get_schema(self, table: str = "user") -> dict[str, Any]:
        """``GET /api/schema/{table}``. Safe to retry."""
        return self.request("GET", f"/api/schema/{quote_path(table)}").data or {}

    def list_streams(self) -> list[dict[str, Any]]:
        """``GET /api/schema/_streams``: streams with counts and observed fields. Safe to retry."""
        return self.request("GET", "/api/schema/_streams").data or []

    def get_table_fields(self, table: str = "user") -> list[dict[str, Any]]:
        """``GET /v2/schema/{table}/field``. Safe to retry."""
        return self.request("GET", f"/v2/schema/{quote_path(table)}/field").data or []

    def get_account(self) -> dict[str, Any] | list[dict[str, Any]]:
        """``GET /api/account``. Safe to retry."""
        return self.request("GET", "/api/account").data

    # -- LQL queries --------------------------------------------------------------------------------------
    def list_queries(self) -> list[dict[str, Any]]:
        """``GET /api/query``: every saved LQL query (``alias``, ``from``, ``text``, ``fields``). Safe to retry."""
        return self.request("GET", "/api/query").data or []

    def get_query(self, id_or_alias: str) -> dict[str, Any] | None:
        """``GET /api/query/{id-or-alias}``, or ``None`` when there is no such query. Safe to retry."""
        from airflow_provider_lytics.client.errors import LyticsNotFoundError

        try:
            return self.request("GET", f"/api/query/{quote_path(id_or_alias)}").data
        except LyticsNotFoundError:
            return None

    def upsert_query(self, lql: str) -> dict[str, Any]:
        """``POST /api/query`` with LQL text: creates or updates the query named by its ``ALIAS``.

        An upsert by alias converges when repeated, so it is retried like a safe call.
        """
        env = self.request("POST", "/api/query", data=lql.encode(), headers={"Content-Type": "text/plain"})
        data = env.data
        return data[0] if isinstance(data, list) and data else data or {}

    def delete_query(self, id_or_alias: str) -> None:
        """``DELETE /api/query/{id-or-alias}``. Safe to retry (a second delete answers 404, which is raised)."""
        self.request("DELETE", f"/api/query/{quote_path(id_or_alias)}")

    def validate_query(self, lql: str) -> None:
        """``POST /api/query/_validate``: raises :class:`LyticsBadRequestError` with the parse message."""
        self.request("POST", "/api/query/_validate", data=lql.encode(), headers={"Content-Type": "text/plain"})

    def test_query(self, lql: str, sample: Mapping[str, Any]) -> dict[str, Any]:
        """``POST /api/query/_test``: the entity fields ``lql`` makes of one sample record. Safe to retry."""
        params = {str(k): (v if isinstance(v, list) else str(v)) for k, v in sample.items() if v is not None}
        env = self.request(
            "POST", "/api/query/_test", params=params, data=lql.encode(), headers={"Content-Type": "text/plain"}
        )
        return env.data or {}

    # -- metrics ------------------------------------------------------------------------------------------
    def push_metrics(self, metrics: Mapping[str, Any] | list[Mapping[str, Any]]) -> int:
        """``POST /api/metric`` with one metric object or a list (``name``, ``value``, optional ``ts`` and
        ``dimension*``). Returns how many Lytics stored. Retried: a lost response may store a point twice."""
        body = dict(metrics) if isinstance(metrics, Mapping) else [dict(m) for m in metrics]
        data = self.request("POST", "/api/metric", json_body=body).data or {}
        return int(data.get("message_count") or 0)

    def get_metrics(self, **params: Any) -> list[dict[str, Any]]:
        """``GET /api/metric`` with ``name``, ``dimension``, ``dimension_id``, ``dimension_type``, ``range`` or
        ``start_date``/``end_date``, ``interval``, ``aggregation``. Series with ``values``. Safe to retry."""
        return self.request("GET", "/api/metric", params={k: v for k, v in params.items() if v is not None}).data or []

    def segment_size_history(self, ids: Iterable[str] | None = None, *, limit: int | None = None) -> list[dict]:
        """``GET /api/segment/attribution``: ``[{id, metrics: [{ts, value}]}]`` per audience. Safe to retry."""
        params = {"ids": _ids_param(ids) if ids is not None else None, "limit": limit}
        return self.request("GET", "/api/segment/attribution", params=params).data or []

    # -- content ------------------------------------------------------------------------------------------
    def upsert_content_document(self, document: Mapping[str, Any]) -> tuple[dict[str, Any], bool]:
        """``POST /api/content/corpus``: create or update one document (by ``url``, or ``id`` of a known one).

        Returns ``(document as stored, created)``; Lytics classifies it into topics. An upsert by URL converges
        when repeated, so it is retried like a safe call (a retry after a lost response reports "updated").
        """
        env = self.request("POST", "/api/content/corpus", json_body=dict(document))
        return env.data or {}, env.http_status == 201

    def get_content_documents(
        self, *, urls: Iterable[str] | None = None, ids: Iterable[str] | None = None, limit: int | None = None
    ) -> list[dict[str, Any]]:
        """``GET /api/content/doc``: documents by URL and/or id (unknown ones are left out), else the most
        recently updated ones. Safe to retry."""
        params = {
            "urls": _ids_param(urls) if urls is not None else None,
            "ids": _ids_param(ids) if ids is not None else None,
            "limit": limit,
        }
        data = self.request("GET", "/api/content/doc", params=params).data or {}
        return list(data.get("urls") or []) if isinstance(data, Mapping) else list(data)

    def list_content_topics(self, *, limit: int | None = None) -> list[dict[str, Any]]:
        """``GET /api/content/topic``: topics with document counts. Safe to retry."""
        return self.request("GET", "/api/content/topic", params={"limit": limit}).data or []

    def get_content_topic(self, topic: str, *, limit: int | None = None) -> dict[str, Any]:
        """``GET /api/content/topic/{topic}``: one topic and its most relevant documents. Safe to retry."""
        return self.request("GET", f"/api/content/topic/{quote_path(topic)}", params={"limit": limit}).data or {}

    def content_recommendations(
        self,
        field: str,
        value: str,
        *,
        limit: int | None = None,
        visited: bool | None = None,
        topics: Iterable[str] | None = None,
        rank: str | None = None,
        contentsegment: str | None = None,
    ) -> list[dict[str, Any]]:
        """``GET /api/content/recommend/user/{field}/{value}``: documents with ``confidence`` and ``visited``.

        ``rank`` is ``affinity`` (default), ``recent`` or ``popular``; ``contentsegment`` (a ``FROM content``
        segment id or slug) limits the candidates. Safe to retry.
        """
        params = {
            "limit": limit,
            "visited": _bool(visited) if visited is not None else None,
            "topics": _ids_param(topics) if topics else None,
            "rank": rank,
            "contentsegment": contentsegment,
        }
        path = f"/api/content/recommend/user/{quote_path(field)}/{quote_path(value)}"
        return self.request("GET", path, params=params).data or []

    def topic_affinities(self, field: str, value: str, *, affinity_field: str = "lytics_content") -> dict | None:
        """A profile's topic affinities (``{topic: score}`` as floats) from its ``lytics_content`` map, ``{}``
        when it has none, or ``None`` when there is no such profile. Safe to retry."""
        profile = self.get_entity(field, value, fields=[affinity_field], segments=False)
        if profile is None:
            return None
        return parse_affinities(profile.get(affinity_field))

    # -- jobs (v2) ----------------------------------------------------------------------------------------
    def create_job(self, workflow: str, spec: Mapping[str, Any], *, run_job: bool = True) -> dict[str, Any]:
        """``POST /v2/job/{workflow}``; starts at once unless ``run_job=False``. NOT safe to retry blindly
        (a repeat creates a second job): retried only when the request never reached Lytics, or on 429."""
        params = None if run_job else {"run_job": "false"}
        env = self.request("POST", f"/v2/job/{quote_path(workflow)}", params=params, json_body=dict(spec), safe=False)
        return env.data

    def get_job(self, job_id: str) -> dict[str, Any]:
        """``GET /v2/job/{id}``. Safe to retry."""
        return self.request("GET", f"/v2/job/{quote_path(job_id)}").data

    def list_jobs(self, **filters: Any) -> list[dict[str, Any]]:
        """``GET /v2/job`` with filters such as ``workflow``, ``show_all=True``. Safe to retry."""
        params = {k: (_bool(v) if isinstance(v, bool) else v) for k, v in filters.items()}
        return self.request("GET", "/v2/job", params=params).data or []

    def update_job(self, workflow: str, job_id: str, spec: Mapping[str, Any]) -> dict[str, Any]:
        """``PUT /v2/job/{workflow}/{id}``: a FULL replace (omitted fields reset). Idempotent: safe to retry."""
        return self.request("PUT", f"/v2/job/{quote_path(workflow)}/{quote_path(job_id)}", json_body=dict(spec)).data

    def job_command(self, job_id: str, command: str) -> dict[str, Any]:
        """``POST /v2/job/{id}/{pause|resume|bounce|kill|release}``. Not retried after the request was sent."""
        if command not in {"pause", "resume", "bounce", "kill", "release"}:
            raise LyticsConfigError(f"Unknown job command {command!r}: use pause, resume, bounce, kill or release")
        return self.request("POST", f"/v2/job/{quote_path(job_id)}/{command}", safe=False).data

    def pause_job(self, job_id: str) -> dict[str, Any]:
        return self.job_command(job_id, "pause")

    def resume_job(self, job_id: str) -> dict[str, Any]:
        return self.job_command(job_id, "resume")

    def bounce_job(self, job_id: str) -> dict[str, Any]:
        return self.job_command(job_id, "bounce")

    def kill_job(self, job_id: str) -> dict[str, Any]:
        return self.job_command(job_id, "kill")

    def job_logs(self, job_id: str | None = None, *, include_errors: bool = False) -> list[dict[str, Any]]:
        """Job log entries (one job, or the account's last 24 h). Safe to retry."""
        path = f"/v2/job/{quote_path(job_id)}/logs" if job_id else "/v2/job/logs"
        params = {"include_errors": "true"} if include_errors else None
        return self.request("GET", path, params=params).data or []

    # -- authorizations -----------------------------------------------------------------------------------
    def list_auths(self) -> list[dict[str, Any]]:
        """``GET /v2/auth`` (public fields only; Lytics never returns secrets). Safe to retry."""
        return self.request("GET", "/v2/auth").data or []

    def get_auth(self, auth_id: str) -> dict[str, Any]:
        """``GET /v2/auth/{id}``. Safe to retry."""
        return self.request("GET", f"/v2/auth/{quote_path(auth_id)}").data


def _collection_items(segments: Iterable[str]) -> list[dict[str, Any]]:
    """Segment ids/slugs as a collection body: ``[{"id": ..., "order": 0}, ...]``."""
    if isinstance(segments, str):
        raise LyticsConfigError("segments must be a list of segment ids or slugs, not one string")
    return [{"id": str(seg), "order": order} for order, seg in enumerate(segments)]


def parse_affinities(raw: Any) -> dict[str, float]:
    """A ``lytics_content`` value (Lytics renders the scores as strings) as ``{topic: float}``, highest first."""
    if not isinstance(raw, Mapping):
        return {}
    out: dict[str, float] = {}
    for topic, score in raw.items():
        try:
            out[str(topic)] = float(score)
        except (TypeError, ValueError):
            continue
    return dict(sorted(out.items(), key=lambda kv: (-kv[1], kv[0])))
