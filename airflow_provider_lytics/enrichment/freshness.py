"""Freshness: decide from a profile's own fields whether a user was enriched recently enough to skip.

The state lives on the Lytics profile (the most Lytics-native place, and it needs no extra store): every
result written back carries ``<prefix>_status`` (enriched, not_found, failed), ``<prefix>_checked_at`` (the last
attempt) and, on success, ``<prefix>_enriched_at``. A user is skipped when it was enriched within ``max_age``,
or answered "not found" within ``not_found_max_age``. Failed users carry no fresh ``enriched_at``, so the next
run sends them again.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from airflow_provider_lytics.enrichment.base import NOT_FOUND, EnrichmentConfigError


def field_names(prefix: str) -> dict[str, str]:
    """The provenance/freshness field names for ``prefix`` (``""`` gives unprefixed names)."""
    join = (lambda name: f"{prefix}_{name}") if prefix else (lambda name: name)
    return {key: join(key) for key in ("enriched_at", "checked_at", "status", "enricher", "error")}


def parse_time(value: Any) -> datetime | None:
    """A profile time value as an aware datetime: RFC 3339 text, epoch seconds/milliseconds, or a datetime.

    Unreadable values give ``None`` (the user is treated as never enriched, i.e. sent again).
    """
    if value is None or value == "":
        return None
    if isinstance(value, list):  # a multi-value field: the latest wins
        times = [t for t in (parse_time(v) for v in value) if t is not None]
        return max(times) if times else None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    if isinstance(value, int | float) or (isinstance(value, str) and value.strip().lstrip("-").isdigit()):
        number = float(value)
        if number > 1e11:  # milliseconds (Lytics's usual epoch unit)
            number /= 1000.0
        try:
            return datetime.fromtimestamp(number, timezone.utc)
        except (OverflowError, OSError, ValueError):
            return None
    text = str(value).strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def format_time(when: datetime) -> str:
    """RFC 3339 UTC with second precision, the form written to profiles."""
    return when.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def as_timedelta(value: timedelta | float | int | None, name: str) -> timedelta | None:
    """Accept a timedelta or a number of days; ``None`` disables the window."""
    if value is None or isinstance(value, timedelta):
        delta = value
    elif isinstance(value, int | float) and not isinstance(value, bool):
        delta = timedelta(days=value)
    else:
        raise EnrichmentConfigError(f"{name} must be a timedelta or a number of days, got {value!r}")
    if delta is not None and delta < timedelta(0):
        raise EnrichmentConfigError(f"{name} must not be negative, got {value!r}")
    return delta


@dataclass(frozen=True)
class FreshnessPolicy:
    """When to skip a user. ``max_age`` applies to enriched users, ``not_found_max_age`` to not-found ones
    (``None``: never skip, i.e. ask again every run)."""

    prefix: str
    max_age: timedelta | None = timedelta(days=30)
    not_found_max_age: timedelta | None = None

    @property
    def fields(self) -> dict[str, str]:
        return field_names(self.prefix)

    def read_fields(self) -> list[str]:
        """Profile fields a scan must return for :meth:`is_fresh` to decide."""
        names = self.fields
        return [names["enriched_at"], names["checked_at"], names["status"]]

    def is_fresh(self, profile: Mapping[str, Any], now: datetime) -> bool:
        names = self.fields
        if self.max_age is not None:
            enriched_at = parse_time(profile.get(names["enriched_at"]))
            if enriched_at is not None and now - enriched_at < self.max_age:
                return True
        if self.not_found_max_age is not None and _status(profile.get(names["status"])) == NOT_FOUND:
            checked_at = parse_time(profile.get(names["checked_at"]))
            if checked_at is not None and now - checked_at < self.not_found_max_age:
                return True
        return False


def _status(value: Any) -> str | None:
    if isinstance(value, list):  # multi-value field: no order to trust, so only an unambiguous value counts
        return str(value[0]) if len({str(v) for v in value}) == 1 else None
    return str(value) if value is not None else None
