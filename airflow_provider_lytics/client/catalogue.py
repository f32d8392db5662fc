"""The Lytics endpoint catalogue: every request the hooks make, described once.

:class:`LyticsApi` holds one :class:`~airflow_provider_lytics.client.endpoints.Endpoint` per Lytics call. The
sync hook (requests) and the async hook (aiohttp) both inherit it, so each endpoint is a method of both, sent
through that hook's own ``request()``: ``hook.get_job(job_id)`` on the sync hook, ``await hook.get_job(job_id)``
on the async one. A new Lytics call belongs here, once.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import IO, Any

from airflow_provider_lytics.client.endpoints import (
    SCAN_PAGE_LIMIT,
    Endpoint,
    Request,
    data,
    data_dict,
    data_list,
    documents,
    endpoint,
    first_or_dict,
    flag,
    ids_param,
    message_count,
    nothing,
    profile,
    profile_and_meta,
    scan_page_of,
    size,
    stored_and_created,
)
from airflow_provider_lytics.client.entity import entity_params
from airflow_provider_lytics.client.errors import LyticsConfigError
from airflow_provider_lytics.client.raw_events import EVENT_PAGE_LIMIT, time_param

JOB_COMMANDS = ("pause", "resume", "bounce", "kill", "release")
CSV_DELIMITERS = frozenset({",", "\t", "t", "|", ";"})


def _text(body: str) -> dict[str, Any]:
    return {"data": body.encode(), "headers": {"Content-Type": "text/plain"}}


def _scan_params(limit: int, start: str | None, fields: Iterable[str] | None, **more: Any) -> dict[str, Any]:
    if not 1 <= limit <= SCAN_PAGE_LIMIT:
        raise LyticsConfigError(f"Scan page limit must be between 1 and {SCAN_PAGE_LIMIT}, got {limit}")
    return {"limit": limit, "start": start, "fields": ",".join(fields) if fields else None, **more}


class LyticsApi:
    """The Lytics endpoints, as methods of any hook with a ``request(method, path, **kwargs)``.

    Retry safety is on each endpoint (``safe``): safe calls are retried on network errors, 429 and 5xx;
    unsafe ones only when the request certainly did not reach Lytics, or on 429.
    """

    # -- ingest -------------------------------------------------------------------------------------------------
    @endpoint("POST", "/collect/json/{stream}", parse=data_dict)
    def collect_json(
        stream: str,
        records: Mapping[str, Any] | list[Mapping[str, Any]],
        *,
        dryrun: bool = False,
        timestamp_field: str | None = None,
        filename: str | None = None,
    ) -> Request:
        """``POST /collect/json/{stream}`` with one object or a list. Returns ``data`` (message/rejected counts).

        Retried (at-least-once): if a response is lost after Lytics accepted the batch, the retry
        re-sends it, which duplicates raw events (profile fields merge last-write-wins).
        """
        params = {"dryrun": flag(dryrun) if dryrun else None, "timestamp_field": timestamp_field, "filename": filename}
        body = json.dumps(records, separators=(",", ":"), default=str).encode()
        return Request({"stream": stream}, params, data=body, headers={"Content-Type": "application/json"})

    @endpoint("POST", "/collect/bulk/{stream}", parse=data_dict, bulk=True)
    def bulk_upload(
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
    ) -> Request:
        """``POST /collect/bulk/{stream}``: stream a CSV or JSON body (file object, bytes or chunk iterator).

        Large bodies go to the bulk host (the API host caps bodies at 10 MB). Safe to retry when ``body`` is
        bytes or a seekable file (rewound before each attempt); an iterator body is sent once.
        """
        if delimiter is not None and delimiter not in CSV_DELIMITERS:
            raise LyticsConfigError(f"Unsupported CSV delimiter {delimiter!r}: use ',', tab, '|' or ';'")
        params = {
            "headers": ",".join(headers) if headers else None,
            "delimiter": "t" if delimiter in {"\t", "t"} else delimiter,
            "append": json.dumps(dict(append), separators=(",", ":")) if append else None,
            "droperrors": flag(droperrors) if droperrors else None,
            "dryrun": flag(dryrun) if dryrun else None,
            "timestamp_field": timestamp_field,
            "filename": filename,
        }
        send_headers = {"Content-Type": content_type}
        if gzipped:
            send_headers["Content-Encoding"] = "gzip"
        return Request({"stream": stream}, params, data=body, headers=send_headers, bulk=use_bulk_host)

    # -- segments -----------------------------------------------------------------------------------------------
    @endpoint("GET", "/api/segment", parse=data_list)
    def list_segments(*, table: str | None = None, valid: str | None = None) -> Request:
        """``GET /api/segment``. Safe to retry."""
        return Request(params={"table": table, "valid": valid})

    @endpoint("GET", "/api/segment/{id}", parse=data)
    def get_segment(id_or_slug: str) -> Request:
        """``GET /api/segment/{id-or-slug}``. Safe to retry."""
        return Request({"id": id_or_slug})

    @endpoint("POST", "/api/segment", parse=data)
    def create_segment(segment: str | Mapping[str, Any]) -> Request:
        """``POST /api/segment`` with FilterQL text (``ALIAS`` sets the slug) or a JSON definition.

        v1 create is an upsert by slug, so repeating it converges: retried like a safe call.
        """
        if isinstance(segment, str):
            return Request(**_text(segment))
        return Request(json_body=dict(segment))

    @endpoint("PUT", "/api/segment/{id}", parse=data)
    def update_segment(segment_id: str, changes: Mapping[str, Any]) -> Request:
        """``PUT /api/segment/{id}``. Idempotent: safe to retry."""
        return Request({"id": segment_id}, json_body=dict(changes))

    @endpoint("DELETE", "/api/segment/{id}", parse=nothing)
    def delete_segment(segment_id: str) -> Request:
        """``DELETE /api/segment/{id}``. Safe to retry (a second delete answers 404, which is raised)."""
        return Request({"id": segment_id})

    @endpoint("POST", "/api/segment/validate", parse=nothing)
    def validate_segment(filter_ql: str) -> Request:
        """``POST /api/segment/validate``: raises :class:`LyticsBadRequestError` with the parse message."""
        return Request(**_text(filter_ql))

    @endpoint("GET", "/api/segment/{id}/sizes", parse=size)
    def segment_size(id_or_slug: str) -> Request:
        """Current member count of a saved segment. Safe to retry."""
        return Request({"id": id_or_slug})

    @endpoint("GET", "/api/segment/sizes", parse=data_list)
    def segment_sizes(ids: Iterable[str] | None = None) -> Request:
        """``GET /api/segment/sizes`` for several (or all) segments. Safe to retry."""
        return Request(params={"ids": ids_param(ids)} if ids is not None else None)

    @endpoint("POST", "/api/segment/size", parse=size)
    def adhoc_segment_size(filter_ql: str) -> Request:
        """Size of an unsaved FilterQL audience (Lytics throttles this to one call per 10 s). Safe to retry."""
        return Request(**_text(filter_ql))

    @endpoint("GET", "/api/segment/attribution", parse=data_list)
    def segment_size_history(ids: Iterable[str] | None = None, *, limit: int | None = None) -> Request:
        """``GET /api/segment/attribution``: ``[{id, metrics: [{ts, value}]}]`` per audience. Safe to retry."""
        return Request(params={"ids": ids_param(ids) if ids is not None else None, "limit": limit})

    # -- segment collections ------------------------------------------------------------------------------------
    @endpoint("GET", "/api/segmentcollection", parse=data_list)
    def list_segment_collections(*, sideload: bool = False) -> Request:
        """``GET /api/segmentcollection``; ``sideload`` embeds each item's segment. Safe to retry."""
        return Request(params={"sideload": "true"} if sideload else None)

    @endpoint("GET", "/api/segmentcollection/{id}", parse=data)
    def get_segment_collection(collection_id: str, *, sideload: bool = False) -> Request:
        """``GET /api/segmentcollection/{id}`` (id or slug). Safe to retry."""
        return Request({"id": collection_id}, {"sideload": "true"} if sideload else None)

    @endpoint("POST", "/api/segmentcollection", parse=data, safe=False)
    def create_segment_collection(
        name: str, segments: Iterable[str], *, slug_name: str | None = None, description: str | None = None
    ) -> Request:
        """``POST /api/segmentcollection``: ``segments`` (ids or slugs) in order. NOT retried after the request
        was sent (a repeat would try to create a second collection)."""
        body = {"name": name, "collection": _collection_items(segments), "slug_name": slug_name,
                "description": description}  # fmt: skip
        return Request(json_body={k: v for k, v in body.items() if v is not None})

    @endpoint("PUT", "/api/segmentcollection/{id}", parse=data)
    def update_segment_collection(collection_id: str, changes: Mapping[str, Any]) -> Request:
        """``PUT /api/segmentcollection/{id}`` with ``name``/``description``/``slug_name`` and/or ``segments``
        (ids or slugs, in order) or a raw ``collection`` list. Idempotent: safe to retry."""
        body = dict(changes)
        if "segments" in body:
            body["collection"] = _collection_items(body.pop("segments"))
        return Request({"id": collection_id}, json_body=body)

    @endpoint("DELETE", "/api/segmentcollection/{id}", parse=nothing)
    def delete_segment_collection(collection_id: str) -> Request:
        """``DELETE /api/segmentcollection/{id}``. Safe to retry (a second delete answers 404, which is raised)."""
        return Request({"id": collection_id})

    # -- scan ---------------------------------------------------------------------------------------------------
    @endpoint("GET", "/api/segment/{id}/scan", parse=scan_page_of)
    def scan_page(
        segment: str,
        *,
        start: str | None = None,
        fields: Iterable[str] | None = None,
        limit: int = SCAN_PAGE_LIMIT,
        sortfield: str | None = None,
        sortorder: str | None = None,
        table: str | None = None,
    ) -> Request:
        """One page of a saved segment's members (id or slug), from cursor ``start``. Safe to retry."""
        more = {"sortfield": sortfield, "sortorder": sortorder, "table": table}
        return Request({"id": segment}, _scan_params(limit, start, fields, **more))

    @endpoint("POST", "/api/segment/scan", parse=scan_page_of)
    def scan_audience_page(
        filter_ql: str,
        *,
        start: str | None = None,
        fields: Iterable[str] | None = None,
        limit: int = SCAN_PAGE_LIMIT,
        sortfield: str | None = None,
        sortorder: str | None = None,
        table: str | None = None,
    ) -> Request:
        """One page of an ad-hoc FilterQL audience, the statement as a text body. Safe to retry."""
        more = {"sortfield": sortfield, "sortorder": sortorder, "table": table}
        return Request(params=_scan_params(limit, start, fields, **more), **_text(filter_ql))

    # -- raw events ---------------------------------------------------------------------------------------------
    @endpoint("GET", "/v2/stream/{stream}/events", parse=scan_page_of)
    def event_page(
        stream: str, *, start: Any = None, end: Any = None, limit: int = EVENT_PAGE_LIMIT, cursor: str | None = None
    ) -> Request:
        """One page of ``stream``'s raw events whose event time is in ``[start, end)`` (datetimes, epoch ms or
        ISO 8601 strings; ``None`` leaves a side open), from ``cursor`` (the previous page's ``_next``). The page's
        ``total`` is the number of events in the range when the first page was served. Safe to retry."""
        if not isinstance(stream, str) or not stream:
            raise LyticsConfigError("stream must be a stream name such as 'web_events'")
        if not 1 <= limit <= EVENT_PAGE_LIMIT:
            raise LyticsConfigError(f"event page limit must be between 1 and {EVENT_PAGE_LIMIT}, got {limit}")
        params = {"start_date": time_param(start, "start"), "end_date": time_param(end, "end"), "limit": limit,
                  "start": cursor}  # fmt: skip
        return Request({"stream": stream}, params)

    # -- entity, schema, streams, account -----------------------------------------------------------------------
    @endpoint("GET", "/api/entity/{table}/{field}/{value}", parse=profile)
    def get_entity(
        field: str,
        value: str,
        *,
        table: str = "user",
        fields: Iterable[str] | None = None,
        segments: bool | None = None,
        allsegments: bool | None = None,
    ) -> Request:
        """A profile by an identity field, or ``None``: handles the 200-"Not Found" quirk. Safe to retry.

        ``segments`` (Lytics default on) adds ``segments``, the slugs of the audiences the profile is in;
        ``allsegments`` also adds their ids as ``segments_all``.
        """
        return Request({"table": table, "field": field, "value": value}, entity_params(fields, segments, allsegments))

    @endpoint("GET", "/api/entity/{table}/{field}/{value}", parse=profile_and_meta)
    def lookup_entity(
        field: str,
        value: str,
        *,
        table: str = "user",
        fields: Iterable[str] | None = None,
        segments: bool | None = None,
        allsegments: bool | None = None,
        meta: bool | None = None,
    ) -> Request:
        """``(profile or None, meta)``: the entity plus the response's ``meta`` (``by_fields``, ``conflicts``).

        See :mod:`airflow_provider_lytics.client.entity` for the options. Safe to retry.
        """
        params = entity_params(fields, segments, allsegments, meta)
        return Request({"table": table, "field": field, "value": value}, params)

    @endpoint("GET", "/api/schema/{table}", parse=data_dict)
    def get_schema(table: str = "user") -> Request:
        """``GET /api/schema/{table}``. Safe to retry."""
        return Request({"table": table})

    @endpoint("GET", "/api/schema/_streams", parse=data_list)
    def list_streams() -> Request:
        """``GET /api/schema/_streams``: streams with counts and observed fields. Safe to retry."""
        return Request()

    @endpoint("GET", "/v2/schema/{table}/field", parse=data_list)
    def get_table_fields(table: str = "user") -> Request:
        """``GET /v2/schema/{table}/field``. Safe to retry."""
        return Request({"table": table})

    @endpoint("GET", "/api/account", parse=data)
    def get_account() -> Request:
        """``GET /api/account``: the account(s) the token can see. Safe to retry."""
        return Request()

    # -- LQL queries --------------------------------------------------------------------------------------------
    @endpoint("GET", "/api/query", parse=data_list)
    def list_queries() -> Request:
        """``GET /api/query``: every saved LQL query (``alias``, ``from``, ``text``, ``fields``). Safe to retry."""
        return Request()

    @endpoint("GET", "/api/query/{id}", parse=data, none_on_404=True)
    def get_query(id_or_alias: str) -> Request:
        """``GET /api/query/{id-or-alias}``, or ``None`` when there is no such query. Safe to retry."""
        return Request({"id": id_or_alias})

    @endpoint("POST", "/api/query", parse=first_or_dict)
    def upsert_query(lql: str) -> Request:
        """``POST /api/query`` with LQL text: creates or updates the query named by its ``ALIAS``.

        An upsert by alias converges when repeated, so it is retried like a safe call.
        """
        return Request(**_text(lql))

    @endpoint("DELETE", "/api/query/{id}", parse=nothing)
    def delete_query(id_or_alias: str) -> Request:
        """``DELETE /api/query/{id-or-alias}``. Safe to retry (a second delete answers 404, which is raised)."""
        return Request({"id": id_or_alias})

    @endpoint("POST", "/api/query/_validate", parse=nothing)
    def validate_query(lql: str) -> Request:
        """``POST /api/query/_validate``: raises :class:`LyticsBadRequestError` with the parse message."""
        return Request(**_text(lql))

    @endpoint("POST", "/api/query/_test", parse=data_dict)
    def test_query(lql: str, sample: Mapping[str, Any]) -> Request:
        """``POST /api/query/_test``: the entity fields ``lql`` makes of one sample record. Safe to retry."""
        params = {str(k): (v if isinstance(v, list) else str(v)) for k, v in sample.items() if v is not None}
        return Request(params=params, **_text(lql))

    # -- metrics ------------------------------------------------------------------------------------------------
    @endpoint("POST", "/api/metric", parse=message_count)
    def push_metrics(metrics: Mapping[str, Any] | list[Mapping[str, Any]]) -> Request:
        """``POST /api/metric`` with one metric object or a list (``name``, ``value``, optional ``ts`` and
        ``dimension*``). Returns how many Lytics stored. Retried: a lost response may store a point twice."""
        return Request(json_body=dict(metrics) if isinstance(metrics, Mapping) else [dict(m) for m in metrics])

    @endpoint("GET", "/api/metric", parse=data_list)
    def get_metrics(**params: Any) -> Request:
        """``GET /api/metric`` with ``name``, ``dimension``, ``dimension_id``, ``dimension_type``, ``range`` or
        ``start_date``/``end_date``, ``interval``, ``aggregation``. Series with ``values``. Safe to retry."""
        return Request(params={k: v for k, v in params.items() if v is not None})

    # -- content ------------------------------------------------------------------------------------------------
    @endpoint("POST", "/api/content/corpus", parse=stored_and_created)
    def upsert_content_document(document: Mapping[str, Any]) -> Request:
        """``POST /api/content/corpus``: create or update one document (by ``url``, or ``id`` of a known one).

        Returns ``(document as stored, created)``; Lytics classifies it into topics. An upsert by URL converges
        when repeated, so it is retried like a safe call (a retry after a lost response reports "updated").
        """
        return Request(json_body=dict(document))

    @endpoint("GET", "/api/content/doc", parse=documents)
    def get_content_documents(
        *, urls: Iterable[str] | None = None, ids: Iterable[str] | None = None, limit: int | None = None
    ) -> Request:
        """``GET /api/content/doc``: documents by URL and/or id (unknown ones are left out), else the most
        recently updated ones. Safe to retry."""
        return Request(params={"urls": ids_param(urls) if urls is not None else None,
                               "ids": ids_param(ids) if ids is not None else None, "limit": limit})  # fmt: skip

    @endpoint("GET", "/api/content/topic", parse=data_list)
    def list_content_topics(*, limit: int | None = None) -> Request:
        """``GET /api/content/topic``: topics with document counts. Safe to retry."""
        return Request(params={"limit": limit})

    @endpoint("GET", "/api/content/topic/{topic}", parse=data_dict)
    def get_content_topic(topic: str, *, limit: int | None = None) -> Request:
        """``GET /api/content/topic/{topic}``: one topic and its most relevant documents. Safe to retry."""
        return Request({"topic": topic}, {"limit": limit})

    @endpoint("GET", "/api/content/recommend/user/{field}/{value}", parse=data_list)
    def content_recommendations(
        field: str,
        value: str,
        *,
        limit: int | None = None,
        visited: bool | None = None,
        topics: Iterable[str] | None = None,
        rank: str | None = None,
        contentsegment: str | None = None,
    ) -> Request:
        """``GET /api/content/recommend/user/{field}/{value}``: documents with ``confidence`` and ``visited``.

        ``rank`` is ``affinity`` (default), ``recent`` or ``popular``; ``contentsegment`` (a ``FROM content``
        segment id or slug) limits the candidates. Safe to retry.
        """
        params = {
            "limit": limit,
            "visited": flag(visited) if visited is not None else None,
            "topics": ids_param(topics) if topics else None,
            "rank": rank,
            "contentsegment": contentsegment,
        }
        return Request({"field": field, "value": value}, params)

    # -- jobs (v2) ----------------------------------------------------------------------------------------------
    @endpoint("POST", "/v2/job/{workflow}", parse=data, safe=False)
    def create_job(workflow: str, spec: Mapping[str, Any], *, run_job: bool = True) -> Request:
        """``POST /v2/job/{workflow}``; starts at once unless ``run_job=False``. NOT safe to retry blindly
        (a repeat creates a second job): retried only when the request never reached Lytics, or on 429."""
        return Request({"workflow": workflow}, None if run_job else {"run_job": "false"}, json_body=dict(spec))

    @endpoint("GET", "/v2/job/{id}", parse=data)
    def get_job(job_id: str) -> Request:
        """``GET /v2/job/{id}``. Safe to retry."""
        return Request({"id": job_id})

    @endpoint("GET", "/v2/job/{id}", parse=data)
    def get_job_with_state(job_id: str) -> Request:
        """``GET /v2/job/{id}?show_state=true``: the job plus its run bookkeeping (``state``). Safe to retry."""
        return Request({"id": job_id}, {"show_state": "true"})

    @endpoint("GET", "/v2/job", parse=data_list)
    def list_jobs(**filters: Any) -> Request:
        """``GET /v2/job`` with filters such as ``workflow``, ``show_all=True``. Safe to retry."""
        return Request(params={k: (flag(v) if isinstance(v, bool) else v) for k, v in filters.items()})

    @endpoint("PUT", "/v2/job/{workflow}/{id}", parse=data)
    def update_job(workflow: str, job_id: str, spec: Mapping[str, Any]) -> Request:
        """``PUT /v2/job/{workflow}/{id}``: a FULL replace (omitted fields reset). Idempotent: safe to retry."""
        return Request({"workflow": workflow, "id": job_id}, json_body=dict(spec))

    @endpoint("POST", "/v2/job/{id}/{command}", parse=data, safe=False)
    def job_command(job_id: str, command: str) -> Request:
        """``POST /v2/job/{id}/{pause|resume|bounce|kill|release}``. Not retried after the request was sent."""
        if command not in JOB_COMMANDS:
            raise LyticsConfigError(f"Unknown job command {command!r}: use pause, resume, bounce, kill or release")
        return Request({"id": job_id, "command": command})

    @endpoint("GET", "/v2/job/{id}/logs", parse=data_list)
    def job_logs(job_id: str | None = None, *, include_errors: bool = False) -> Request:
        """Job log entries: one job's, or (no ``job_id``) the account's last 24 h (``/v2/job/logs``). Safe to
        retry."""
        params = {"include_errors": "true"} if include_errors else None
        if job_id:
            return Request({"id": job_id}, params)
        return Request(params=params, path="/v2/job/logs")

    def pause_job(self, job_id: str) -> Any:
        """``job_command(job_id, "pause")``."""
        return self.job_command(job_id, "pause")

    def resume_job(self, job_id: str) -> Any:
        """``job_command(job_id, "resume")``."""
        return self.job_command(job_id, "resume")

    def bounce_job(self, job_id: str) -> Any:
        """``job_command(job_id, "bounce")``."""
        return self.job_command(job_id, "bounce")

    def kill_job(self, job_id: str) -> Any:
        """``job_command(job_id, "kill")``."""
        return self.job_command(job_id, "kill")

    # -- authorizations -----------------------------------------------------------------------------------------
    @endpoint("GET", "/v2/auth", parse=data_list)
    def list_auths() -> Request:
        """``GET /v2/auth`` (public fields only; Lytics never returns secrets). Safe to retry."""
        return Request()

    @endpoint("GET", "/v2/auth/{id}", parse=data)
    def get_auth(auth_id: str) -> Request:
        """``GET /v2/auth/{id}``. Safe to retry."""
        return Request({"id": auth_id})


def _collection_items(segments: Iterable[str]) -> list[dict[str, Any]]:
    """Segment ids/slugs as a collection body: ``[{"id": ..., "order": 0}, ...]``."""
    if isinstance(segments, str):
        raise LyticsConfigError("segments must be a list of segment ids or slugs, not one string")
    return [{"id": str(seg), "order": order} for order, seg in enumerate(segments)]


def catalogue() -> dict[str, Endpoint]:
    """Every endpoint of :class:`LyticsApi`, by method name."""
    return {name: value for name, value in vars(LyticsApi).items() if isinstance(value, Endpoint)}
