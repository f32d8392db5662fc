"""Requests for a stream's raw events by event-time range (``GET /v2/stream/{stream}/events``).

The emulator's contract for that endpoint (parameters, paging, the fields added to each event) is described in
:mod:`airflow_provider_lytics.emulator.raw_events` and docs/exports.md.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from airflow_provider_lytics.client.errors import LyticsConfigError

#: Events per page the export asks for (the endpoint's maximum).
EVENT_PAGE_LIMIT = 1000


def time_param(value: Any, name: str) -> str | None:
    """A range bound as the API takes it: epoch milliseconds (datetimes must carry a time zone)."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise LyticsConfigError(
                f"{name} must be a timezone-aware datetime (naive {value.isoformat()} is ambiguous)"
            )
        return str(int(value.astimezone(timezone.utc).timestamp() * 1000))
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(int(value))
    if isinstance(value, str):
        return value
    raise LyticsConfigError(f"{name} must be a datetime, epoch milliseconds or an ISO 8601 string, not {value!r}")


def event_requests(
    stream: str, start: Any, end: Any, limit: int = EVENT_PAGE_LIMIT
) -> Callable[[str | None], tuple[str, str, dict[str, Any], dict[str, Any]]]:
    """Validate the arguments and return ``cursor -> (method, path, params, request kwargs)`` for each page."""
    from airflow_provider_lytics.client.http import quote_path

    if not isinstance(stream, str) or not stream:
        raise LyticsConfigError("stream must be a stream name such as 'web_events'")
    if not 1 <= limit <= EVENT_PAGE_LIMIT:
        raise LyticsConfigError(f"event page limit must be between 1 and {EVENT_PAGE_LIMIT}, got {limit}")
    path = f"/v2/stream/{quote_path(stream)}/events"
    base = {"start_date": time_param(start, "start"), "end_date": time_param(end, "end"), "limit": limit}

    def page(cursor: str | None) -> tuple[str, str, dict[str, Any], dict[str, Any]]:
        return "GET", path, {**base, "start": cursor}, {}

    return page
