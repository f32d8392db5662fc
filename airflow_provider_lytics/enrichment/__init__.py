"""Enrichment building blocks: enrichers, pacing, freshness and result mapping (no Airflow operator here).

Heavy imports (``requests``) happen inside functions, and the names below load their module on first use, so
importing this package, or one module of it, is cheap (it matters while DAG files are parsed).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_provider_lytics.enrichment.base import (
        ENRICHED,
        FAILED,
        NOT_FOUND,
        Enricher,
        EnrichmentConfigError,
        EnrichmentResult,
        Identifiers,
        PermanentEnrichmentError,
        TransientEnrichmentError,
    )
    from airflow_provider_lytics.enrichment.freshness import FreshnessPolicy, field_names
    from airflow_provider_lytics.enrichment.function import CallableEnricher
    from airflow_provider_lytics.enrichment.http import HttpCaller, HttpEnricher
    from airflow_provider_lytics.enrichment.lookup import EmailDomainLookupEnricher
    from airflow_provider_lytics.enrichment.mapping import RecordBuilder, extract_path, flatten, select_fields
    from airflow_provider_lytics.enrichment.ratelimit import RequestLimiter
    from airflow_provider_lytics.enrichment.runner import EnrichmentCounts, EnrichmentRunner

#: Public name -> submodule, imported on first use (module ``__getattr__``).
_EXPORTS = {
    **dict.fromkeys(
        ("ENRICHED", "FAILED", "NOT_FOUND", "Enricher", "EnrichmentConfigError", "EnrichmentResult", "Identifiers",
         "PermanentEnrichmentError", "TransientEnrichmentError"),
        "base",
    ),
    "FreshnessPolicy": "freshness",
    "field_names": "freshness",
    "CallableEnricher": "function",
    "HttpCaller": "http",
    "HttpEnricher": "http",
    "EmailDomainLookupEnricher": "lookup",
    **dict.fromkeys(("RecordBuilder", "extract_path", "flatten", "select_fields"), "mapping"),
    "RequestLimiter": "ratelimit",
    "EnrichmentCounts": "runner",
    "EnrichmentRunner": "runner",
}  # fmt: skip

__all__ = [
    "ENRICHED",
    "FAILED",
    "NOT_FOUND",
    "CallableEnricher",
    "EmailDomainLookupEnricher",
    "Enricher",
    "EnrichmentConfigError",
    "EnrichmentCounts",
    "EnrichmentResult",
    "EnrichmentRunner",
    "FreshnessPolicy",
    "HttpCaller",
    "HttpEnricher",
    "Identifiers",
    "PermanentEnrichmentError",
    "RecordBuilder",
    "RequestLimiter",
    "TransientEnrichmentError",
    "extract_path",
    "field_names",
    "flatten",
    "select_fields",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
