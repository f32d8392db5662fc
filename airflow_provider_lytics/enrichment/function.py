"""Enrich with a Python callable: the quickest way to plug in an SDK or an in-house lookup."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from airflow_provider_lytics.enrichment.base import (
    Enricher,
    EnrichmentConfigError,
    EnrichmentResult,
    Identifiers,
    coerce_result,
)


class CallableEnricher(Enricher):
    """Wrap ``func``. With ``batch_size=1`` it gets one user's identifiers and returns a dict (``None`` or
    ``{}`` for not found, or an :class:`EnrichmentResult`); with ``batch_size > 1`` it gets a list and returns
    a list of those, one per user, in order. Raise
    :class:`~airflow_provider_lytics.enrichment.base.TransientEnrichmentError` to be retried with back-off.
    The callable runs on several threads at once unless the operator's ``max_in_flight`` is 1.
    """

    def __init__(
        self,
        func: Callable[..., Any],
        *,
        name: str | None = None,
        batch_size: int = 1,
        required_fields: Sequence[str] = (),
    ) -> None:
        if not callable(func):
            raise EnrichmentConfigError(f"CallableEnricher needs a callable, got {type(func).__name__}")
        if batch_size < 1:
            raise EnrichmentConfigError(f"batch_size must be at least 1, got {batch_size}")
        self.func = func
        self.name: str = name or str(getattr(func, "__name__", "callable"))
        self.batch_size = batch_size
        self.required_fields = tuple(required_fields)

    def lookup(self, identifiers: Identifiers) -> Mapping[str, Any] | EnrichmentResult | None:
        return self.func(dict(identifiers))

    def enrich_batch(self, batch: Sequence[Identifiers]) -> list[EnrichmentResult]:
        if self.batch_size == 1:
            return [coerce_result(self.lookup(ids)) for ids in batch]
        answers = self.func([dict(ids) for ids in batch])
        if answers is None or isinstance(answers, Mapping | str) or len(answers) != len(batch):
            count = "None" if answers is None else (len(answers) if hasattr(answers, "__len__") else "?")
            raise TypeError(f"{self.name} returned {count} answers for {len(batch)} users: return a list, one per user")
        return [coerce_result(a) for a in answers]
