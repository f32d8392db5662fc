"""Arguments of a stream's raw-event pages by event-time range (``GET /v2/stream/{stream}/events``, the
catalogue's ``event_page``).

The emulator's contract for that endpoint (parameters, paging, the fields added to each event) is described in
:mod:`airflow_provider_lytics.emulator.raw_events` and docs/exports.md.
"""

from __future__ import annotations

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
