"""Query parameters of ``GET /api/entity/{table}/{field}/{value}``, shared by the sync and async hooks.

Lytics's options: ``fields`` (projection), ``segments`` (slugs of the audiences the profile is in, default on),
``allsegments`` (also their ids, as ``segments_all``) and ``meta`` (the response's ``meta``: ``by_fields`` and
``conflicts``; default on). ``None`` leaves an option at Lytics's default.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def entity_params(
    fields: Iterable[str] | None = None,
    segments: bool | None = None,
    allsegments: bool | None = None,
    meta: bool | None = None,
) -> dict[str, Any]:
    """The query string of one entity lookup (options left at ``None`` are not sent)."""
    if isinstance(fields, str):
        raise ValueError("fields must be a list of field names, not one string")
    params: dict[str, Any] = {"fields": ",".join(fields) if fields else None}
    for name, flag in (("segments", segments), ("allsegments", allsegments), ("meta", meta)):
        if flag is not None:
            params[name] = "true" if flag else "false"
    return params


def entity_path(table: str, field: str, value: str) -> str:
    from airflow_provider_lytics.client.endpoints import quote_path

    return f"/api/entity/{quote_path(table)}/{quote_path(field)}/{quote_path(value)}"
