"""The emulated enrichment service over real HTTP: determinism, auth, rate limiting, injected faults, admin."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from airflow_provider_lytics.emulator.enrichment_service import EnrichmentService, ServiceConfig

KEY = "k-123"


@pytest.fixture(scope="module")
def service() -> Iterator[EnrichmentService]:
    with EnrichmentService(config=ServiceConfig(api_key=KEY)) as svc:
        yield svc


@pytest.fixture
def svc(service: EnrichmentService) -> EnrichmentService:
    service.reset(api_key=KEY)
    return service


def _get(svc, path, key=KEY, **params):
    return requests.get(svc.url + path, params=params, headers={"Authorization": f"Bearer {key}"}, timeout=5)


def test_deterministic_person_and_company(svc) -> None:
    first = _get(svc, "/v1/people/find", email="Grace.Hopper@Navy-Labs.io").json()
    again = _get(svc, "/v1/people/find", email="grace.hopper@navy-labs.io").json()
    assert first == again
    assert first["person"]["name"] == {"given": "Grace", "family": "Hopper", "full": "Grace Hopper"}
    assert first["company"]["name"] == "Navy Labs" and first["company"]["domain"] == "navy-labs.io"
    assert _get(svc, "/v1/people/find", email="ann@gmail.com").json()["company"] is None
    assert _get(svc, "/v1/companies/find", domain="gmail.com").status_code == 404
    assert _get(svc, "/v1/people/find").status_code == 422


def test_auth_required(svc) -> None:
    response = _get(svc, "/v1/people/find", key="wrong", email="a@b.io")
    assert response.status_code == 401 and "Bearer" in response.json()["error"]["message"]
    headers = {"X-Api-Key": KEY}
    assert requests.get(svc.url + "/v1/companies/find?domain=acme.io", headers=headers, timeout=5).ok


def test_rate_limit_answers_429_with_retry_after(svc) -> None:
    svc.configure(rate_limit=3)
    statuses = [_get(svc, "/v1/companies/find", domain="acme.io") for _ in range(5)]
    assert [r.status_code for r in statuses] == [200, 200, 200, 429, 429]
    assert int(statuses[3].headers["Retry-After"]) >= 1
    assert [r["status"] for r in svc.requests()] == [200, 200, 200, 429, 429]


def test_not_found_rate_is_stable_and_faults_injectable(svc) -> None:
    svc.configure(not_found_rate=0.5)
    emails = [f"user{i}@corp.io" for i in range(40)]
    found = [_get(svc, "/v1/people/find", email=e).status_code for e in emails]
    assert 8 < found.count(404) < 32
    assert [_get(svc, "/v1/people/find", email=e).status_code for e in emails] == found
    svc.configure(not_found_rate=0, fail_emails=["Bad@Corp.io"], error_status=500)
    assert _get(svc, "/v1/people/find", email="bad@corp.io").status_code == 500
    svc.configure(fail_emails=[], error_rate=1.0)
    assert _get(svc, "/v1/people/find", email="a@corp.io").status_code == 500


def test_bulk_limits_and_item_errors(svc) -> None:
    headers = {"Authorization": f"Bearer {KEY}"}
    too_many = {"lookups": [{"email": f"u{i}@x.io"} for i in range(101)]}
    assert requests.post(svc.url + "/v1/people/bulk", json=too_many, headers=headers, timeout=5).status_code == 413
    svc.configure(fail_emails=["u1@x.io"], not_found_emails=["u2@x.io"])
    body = {"lookups": [{"email": "u0@x.io"}, {"email": "u1@x.io"}, {"email": "u2@x.io"}]}
    results = requests.post(svc.url + "/v1/people/bulk", json=body, headers=headers, timeout=5).json()["results"]
    assert results[0]["person"]["email"] == "u0@x.io" and results[1]["error"] == "lookup failed"
    assert results[2]["person"] is None and results[2]["error"] is None


def test_admin_config_validates(svc) -> None:
    bad = requests.post(svc.url + "/_service/config", json={"rate_limt": 5}, timeout=5)
    assert bad.status_code == 400 and "rate_limt" in bad.json()["error"]["message"]
    assert requests.post(svc.url + "/_service/config", json={"error_rate": 2}, timeout=5).status_code == 400
    ok = requests.post(svc.url + "/_service/config", json={"latency": 0.01}, timeout=5).json()
    assert ok["latency"] == 0.01 and "api_key" not in ok
