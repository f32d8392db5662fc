"""The enricher interface: what a third-party lookup receives, what it returns, and how it reports failure.

One call to :meth:`Enricher.enrich_batch` is one request toward the third party: the runner rate-limits and
retries at that granularity. Enrichers are called from several worker threads at once, so they must be
thread-safe (the ready ones keep one HTTP session per thread).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_lytics.errors import LyticsArgumentError

#: Identifier values of one user, e.g. ``{"email": "ada@example.com"}``: what the enricher may send.
Identifiers = Mapping[str, Any]

ENRICHED = "enriched"
NOT_FOUND = "not_found"
FAILED = "failed"
STATUSES = (ENRICHED, NOT_FOUND, FAILED)


class EnrichmentConfigError(LyticsArgumentError):
    """An enricher or the enrichment options are unusable; the message says what to change."""


class TransientEnrichmentError(Exception):
    """The third party failed in a way worth retrying (429, 5xx, timeout); ``retry_after`` is its hint in seconds.

    The message must never contain credentials: it is logged and reported per user.
    """

    def __init__(self, reason: str, *, retry_after: float | None = None, status: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after
        self.status = status


class PermanentEnrichmentError(Exception):
    """The request can never succeed as sent (400, 401, 403...): every user of the batch fails, no retry."""

    def __init__(self, reason: str, *, status: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


@dataclass(frozen=True)
class EnrichmentResult:
    """Outcome for one user: ``status`` is ``enriched`` (with ``data``), ``not_found`` or ``failed`` (``reason``)."""

    status: str
    data: Mapping[str, Any] = field(default_factory=dict)
    reason: str = ""

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"EnrichmentResult status must be one of {', '.join(STATUSES)}, got {self.status!r}")

    @classmethod
    def found(cls, data: Mapping[str, Any]) -> EnrichmentResult:
        return cls(ENRICHED, dict(data))

    @classmethod
    def not_found(cls, reason: str = "") -> EnrichmentResult:
        return cls(NOT_FOUND, {}, reason)

    @classmethod
    def failed(cls, reason: str) -> EnrichmentResult:
        return cls(FAILED, {}, reason)


def coerce_result(value: Any) -> EnrichmentResult:
    """Turn what a user lookup returned into a result: a mapping is data (empty means not found), ``None`` is
    not found, an :class:`EnrichmentResult` is kept as is."""
    if isinstance(value, EnrichmentResult):
        return value
    if value is None:
        return EnrichmentResult.not_found()
    if isinstance(value, Mapping):
        return EnrichmentResult.found(value) if value else EnrichmentResult.not_found()
    raise TypeError(
        f"an enricher returned a {type(value).__name__}; return a dict of enriched fields, None for not found, "
        "or an EnrichmentResult"
    )


class Enricher:
    """Base class for enrichers. Override :meth:`lookup` (one user per request) or :meth:`enrich_batch`.

    :attr name: recorded as provenance on every profile written (``<prefix>_enricher``).
    :attr batch_size: users per request; :meth:`enrich_batch` receives at most this many.
    :attr required_fields: identifier fields a user must carry to be sent (others are skipped and counted).
    """

    name: str = "custom"
    batch_size: int = 1
    required_fields: Sequence[str] = ()
    any_of_fields: Sequence[str] = ()

    def open(self) -> None:
        """Acquire resources (sessions, credentials) before the first call; called once per run."""

    def close(self) -> None:
        """Release what :meth:`open` acquired; called once per run, also after failures."""

    def missing(self, identifiers: Identifiers) -> str | None:
        """Why this user cannot be sent (a required identifier is missing), or ``None``."""
        absent = [f for f in self.required_fields if _blank(identifiers.get(f))]
        if absent:
            return f"no value for {', '.join(absent)}"
        if self.any_of_fields and all(_blank(identifiers.get(f)) for f in self.any_of_fields):
            return f"none of {', '.join(self.any_of_fields)} has a value"
        return None

    def lookup(self, identifiers: Identifiers) -> Mapping[str, Any] | EnrichmentResult | None:
        """Enrich one user: a dict of fields, ``None`` when the third party does not know the user.

        Raise :class:`TransientEnrichmentError` to have the call retried with back-off.
        """
        raise NotImplementedError(f"{type(self).__name__} must override lookup() or enrich_batch()")

    def enrich_batch(self, batch: Sequence[Identifiers]) -> Sequence[EnrichmentResult]:
        """Enrich a batch (one request); returns one result per user, in order. Default: :meth:`lookup` each."""
        return [coerce_result(self.lookup(ids)) for ids in batch]


def _blank(value: Any) -> bool:
    return value is None or value == "" or value == []
