"""Result mapping: pick fields out of a third party's JSON and shape the records written back to Lytics.

Two record shapes:

- ``flat`` (default): the user's identifiers at top level (identity resolution attaches the record to the
  profile) plus ``<prefix>_<field>`` values and provenance. Lytics needs only a plain LQL query for the stream.
- ``origin_response``: what Lytics's own ``webhook_enrichment`` job collects, ``{"origin": {identifiers},
  "response": {fields}}``, plus provenance at top level. The stream's LQL must map ``origin.<id>`` fields.

Lytics refuses objects inside arrays, so list items that are objects are written as JSON text.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from airflow_provider_lytics.enrichment.base import ENRICHED, FAILED, EnrichmentConfigError, EnrichmentResult
from airflow_provider_lytics.enrichment.freshness import field_names, format_time

SHAPES = ("flat", "origin_response")
#: Reasons written to profiles are cut to this length.
MAX_ERROR_CHARS = 200
_MISSING = object()


def extract_path(document: Any, path: str | None, default: Any = None) -> Any:
    """The value at a dotted ``path`` (``"person.employment.name"``, list items by index: ``"emails.0"``)."""
    if not path:
        return document
    current = document
    for part in path.split("."):
        if isinstance(current, Mapping):
            current = current.get(part, _MISSING)
        elif isinstance(current, list) and part.lstrip("-").isdigit():
            index = int(part)
            current = current[index] if -len(current) <= index < len(current) else _MISSING
        else:
            return default
        if current is _MISSING:
            return default
    return current


def flatten(data: Mapping[str, Any], sep: str = "_", prefix: str = "") -> dict[str, Any]:
    """Nested objects become ``parent_child`` keys; ``None`` values are dropped; lists of objects become JSON."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{sep}{key}" if prefix else str(key)
        if isinstance(value, Mapping):
            out.update(flatten(value, sep, name))
        elif value is None:
            continue
        elif isinstance(value, list | tuple):
            out[name] = [_scalar(v) for v in value if v is not None]
        else:
            out[name] = value
    return out


def _scalar(value: Any) -> Any:
    if isinstance(value, Mapping | list | tuple):
        return json.dumps(value, separators=(",", ":"), sort_keys=True, default=str)
    return value


def select_fields(document: Mapping[str, Any], fields: Mapping[str, str] | None) -> dict[str, Any]:
    """``fields`` maps output names to dotted source paths; without it, the whole document flattened."""
    if fields is None:
        return flatten(document)
    out: dict[str, Any] = {}
    for name, path in fields.items():
        value = extract_path(document, path)
        if value is None:
            continue
        if isinstance(value, Mapping):
            out.update(flatten(value, prefix=name))
        elif isinstance(value, list | tuple):
            out[name] = [_scalar(v) for v in value if v is not None]
        else:
            out[name] = value
    return out


class RecordBuilder:
    """Builds the event written to the Lytics stream for one user's result."""

    def __init__(self, *, prefix: str, enricher_name: str, shape: str = "flat") -> None:
        if shape not in SHAPES:
            raise EnrichmentConfigError(f"record_shape must be one of {', '.join(SHAPES)}, got {shape!r}")
        if prefix and not prefix.replace("_", "").isalnum():
            raise EnrichmentConfigError(f"field_prefix {prefix!r} must be letters, digits and underscores")
        self.prefix = prefix
        self.enricher_name = enricher_name
        self.shape = shape
        self.names = field_names(prefix)

    def provenance(self, result: EnrichmentResult, now: datetime) -> dict[str, Any]:
        when = format_time(now)
        names = self.names
        out: dict[str, Any] = {names["enricher"]: self.enricher_name, names["status"]: result.status,
                               names["checked_at"]: when}  # fmt: skip
        if result.status == ENRICHED:
            out[names["enriched_at"]] = when
        elif result.status == FAILED and result.reason:
            out[names["error"]] = result.reason[:MAX_ERROR_CHARS]
        return out

    def build(self, identifiers: Mapping[str, Any], result: EnrichmentResult, now: datetime) -> dict[str, Any]:
        data = flatten(result.data) if result.status == ENRICHED else {}
        if self.shape == "origin_response":
            return {"origin": dict(identifiers), "response": data, **self.provenance(result, now)}
        record = dict(identifiers)
        for key, value in data.items():
            name = f"{self.prefix}_{key}" if self.prefix else key
            if name not in record:  # never overwrite the identifiers the record is keyed by
                record[name] = value
        record.update(self.provenance(result, now))
        return record
