"""A ready enricher shaped like the common commercial person/company APIs: look a user up by email, fall back
to the company behind the email's domain.

Protocol (what :mod:`airflow_provider_lytics.emulator.enrichment_service` serves, and what Clearbit-style
services resemble): ``GET {person_endpoint}?email=`` answers ``{"person": {...}, "company": {...} | null}``;
``GET {company_endpoint}?domain=`` answers the company object; 404 means unknown; with ``batch_size > 1``,
``POST {bulk_endpoint}`` ``{"lookups": [{"email": ...}]}`` answers ``{"results": [{"input": {"email"},
"person", "company", "error"}]}``. Auth: the connection password as ``Authorization: Bearer <key>``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from airflow_provider_lytics.enrichment.base import (
    Enricher,
    EnrichmentConfigError,
    EnrichmentResult,
    Identifiers,
    PermanentEnrichmentError,
)
from airflow_provider_lytics.enrichment.http import HttpCaller
from airflow_provider_lytics.enrichment.mapping import extract_path, select_fields

#: Output fields (before the operator's prefix) and where they are read in the person/company documents.
PERSON_FIELDS: dict[str, str] = {
    "full_name": "person.name.full",
    "given_name": "person.name.given",
    "family_name": "person.name.family",
    "title": "person.employment.title",
    "role": "person.employment.role",
    "seniority": "person.employment.seniority",
    "city": "person.geo.city",
    "country": "person.geo.country",
    "linkedin": "person.linkedin.handle",
}
COMPANY_FIELDS: dict[str, str] = {
    "company_name": "company.name",
    "company_domain": "company.domain",
    "company_industry": "company.category.industry",
    "company_sector": "company.category.sector",
    "company_employees": "company.metrics.employees",
    "company_employees_range": "company.metrics.employeesRange",
    "company_country": "company.geo.country",
    "company_founded": "company.foundedYear",
    "company_tags": "company.tags",
}
#: Consumer mailbox domains: their company lookup would describe the mail provider, not the user's employer.
FREE_MAIL_DOMAINS = frozenset({
    "gmail.com", "googlemail.com", "yahoo.com", "hotmail.com", "outlook.com", "live.com", "aol.com", "icloud.com",
    "me.com", "proton.me", "protonmail.com", "gmx.com", "gmx.de", "web.de", "mail.com", "yandex.ru", "qq.com",
})  # fmt: skip


class EmailDomainLookupEnricher(Enricher):
    """Person by email (with their company), else company by domain; ``match`` says which one answered.

    :param http_conn_id: Airflow ``http`` connection: host = API base URL, password = API key.
    :param email_field: identifier holding the email address.
    :param domain_field: identifier holding a company domain (used when there is no email or no person match).
    :param company_fallback: look the company up by domain when the person is unknown.
    :param fields: output names to dotted paths in ``{"person": ..., "company": ...}``; default: a curated set.
    :param batch_size: above 1, uses the bulk endpoint (person lookups only, by email).
    """

    def __init__(
        self,
        http_conn_id: str,
        *,
        name: str = "email_domain_lookup",
        email_field: str = "email",
        domain_field: str | None = "domain",
        company_fallback: bool = True,
        fields: Mapping[str, str] | None = None,
        person_endpoint: str = "/v1/people/find",
        company_endpoint: str = "/v1/companies/find",
        bulk_endpoint: str = "/v1/people/bulk",
        batch_size: int = 1,
        timeout: float | None = None,
    ) -> None:
        if not 1 <= batch_size <= 100:
            raise EnrichmentConfigError(f"batch_size must be between 1 and 100 lookups per request, got {batch_size}")
        self.name = name
        self.email_field = email_field
        self.domain_field = domain_field
        self.company_fallback = company_fallback
        self.fields = dict(fields) if fields is not None else {**PERSON_FIELDS, **COMPANY_FIELDS}
        self.person_endpoint = person_endpoint
        self.company_endpoint = company_endpoint
        self.bulk_endpoint = bulk_endpoint
        self.batch_size = batch_size
        if batch_size > 1:
            self.required_fields = (email_field,)
        else:
            self.any_of_fields = (email_field, domain_field) if domain_field and company_fallback else (email_field,)
        self.caller = HttpCaller(http_conn_id, timeout=timeout)

    def open(self) -> None:
        self.caller.open()

    def close(self) -> None:
        self.caller.close()

    def domain_of(self, identifiers: Identifiers) -> str | None:
        """The company domain for a user: the domain field, else the email's domain unless it is a free mailbox."""
        if self.domain_field:
            domain = identifiers.get(self.domain_field)
            if isinstance(domain, str) and domain.strip():
                return domain.strip().lower()
        email = identifiers.get(self.email_field)
        if isinstance(email, str) and "@" in email:
            domain = email.rsplit("@", 1)[1].strip().lower()
            if domain and domain not in FREE_MAIL_DOMAINS:
                return domain
        return None

    def _result(self, person: Any, company: Any, match: str) -> EnrichmentResult:
        document = {"person": person if isinstance(person, Mapping) else {},
                    "company": company if isinstance(company, Mapping) else {}}  # fmt: skip
        data = select_fields(document, self.fields)
        if not data:
            return EnrichmentResult.not_found()
        return EnrichmentResult.found({**data, "match": match})

    def lookup(self, identifiers: Identifiers) -> EnrichmentResult:
        email = identifiers.get(self.email_field)
        if isinstance(email, str) and email.strip():
            found = self.caller.call("GET", self.person_endpoint, params={"email": email.strip()})
            if isinstance(found, Mapping) and found.get("person"):
                return self._result(found.get("person"), found.get("company"), "person")
        domain = self.domain_of(identifiers) if self.company_fallback else None
        if domain:
            company = self.caller.call("GET", self.company_endpoint, params={"domain": domain})
            if isinstance(company, Mapping) and company:
                return self._result(None, company, "company")
        return EnrichmentResult.not_found()

    def enrich_batch(self, batch: Sequence[Identifiers]) -> list[EnrichmentResult]:
        if self.batch_size == 1:
            return [self.lookup(ids) for ids in batch]
        emails = [str(ids.get(self.email_field)).strip() for ids in batch]
        document = self.caller.call("POST", self.bulk_endpoint, json_body={"lookups": [{"email": e} for e in emails]})
        results = extract_path(document, "results")
        if not isinstance(results, list):
            raise PermanentEnrichmentError(f"bulk response from {self.bulk_endpoint} has no 'results' list")
        by_email = {str(extract_path(item, "input.email", "")).strip().lower(): item for item in results
                    if isinstance(item, Mapping)}  # fmt: skip
        out: list[EnrichmentResult] = []
        for email in emails:
            item = by_email.get(email.lower())
            if item is None:
                out.append(EnrichmentResult.not_found("no result for this user"))
            elif item.get("error"):
                out.append(EnrichmentResult.failed(f"the service reported an error for this user: {item['error']}"))
            elif item.get("person"):
                out.append(self._result(item.get("person"), item.get("company"), "person"))
            else:
                out.append(EnrichmentResult.not_found())
        return out
