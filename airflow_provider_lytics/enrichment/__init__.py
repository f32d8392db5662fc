"""Enrichment building blocks: enrichers, pacing, freshness and result mapping (no Airflow operator here).

Heavy imports (``requests``) happen inside functions, so importing this package is cheap.
"""

from __future__ import annotations

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
