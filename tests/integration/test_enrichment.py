"""Enrichment round trips end to end: Lytics emulator audience -> emulated enrichment service over real HTTP ->
results posted back to a Lytics stream -> read back from the profiles by entity lookup.

The enrichment service logs every request with its arrival time, so pacing, retries and "nothing sent" are
checked on the wire.
"""

from __future__ import annotations

import itertools
import json
import logging
from collections.abc import Iterator
from datetime import datetime, timezone
from types import SimpleNamespace

import pytest
from airflow.providers.common.compat.sdk import AirflowException

from airflow_provider_lytics.client.retry import RetryPolicy
from airflow_provider_lytics.emulator.enrichment_service import EnrichmentService, ServiceConfig, person_for
from airflow_provider_lytics.enrichment import EmailDomainLookupEnricher, HttpEnricher
from airflow_provider_lytics.operators.enrichment import LyticsEnrichmentOperator

API_KEY = "svc-secret-key-4711"
FAST_RETRY = RetryPolicy(max_attempts=4, base_delay=0.01, max_delay=0.05, jitter=False)
PERSON = "/v1/people/find"


@pytest.fixture(scope="module")
def service_server() -> Iterator[EnrichmentService]:
    with EnrichmentService(config=ServiceConfig(api_key=API_KEY)) as server:
        yield server


@pytest.fixture
def service(service_server: EnrichmentService, monkeypatch: pytest.MonkeyPatch) -> EnrichmentService:
    service_server.reset(api_key=API_KEY)
    conn = {"conn_type": "http", "host": "127.0.0.1", "port": service_server.port, "schema": "http",
            "password": API_KEY, "extra": {"timeout": 5}}  # fmt: skip
    monkeypatch.setenv("AIRFLOW_CONN_ENRICHMENT_API", json.dumps(conn))
    return service_server


def _seed(emulator, n: int, *, extra: list[dict] | None = None) -> list[str]:
    from airflow_provider_lytics.hooks.lytics import LyticsHook

    users = [{"email": f"user.{i}@acme{i % 3}.io", "user_id": f"u{i}"} for i in range(n)] + (extra or [])
    emulator.backend.store.ingest("crm", users)
    LyticsHook().create_segment('FILTER EXISTS email FROM user ALIAS enrich_me WITH name = "Enrich me"')
    return [u["email"] for u in users]


def _operator(**kwargs) -> LyticsEnrichmentOperator:
    defaults = {"task_id": "enrich", "segment": "enrich_me", "http_retry_policy": FAST_RETRY,
                "enricher": EmailDomainLookupEnricher("enrichment_api")}  # fmt: skip
    return LyticsEnrichmentOperator(**{**defaults, **kwargs})


def _profile(email: str) -> dict:
    from airflow_provider_lytics.hooks.lytics import LyticsHook

    profile = LyticsHook().get_entity("email", email)
    assert profile is not None, email
    return profile


def test_round_trip_not_found_and_failed_users_are_retried_next_run(lytics_conn_env, emulator, service) -> None:
    _seed(emulator, 12, extra=[{"email": "ghost@nowhere-corp.io"}, {"email": "ann@gmail.com"}])
    service.configure(not_found_emails=["ghost@nowhere-corp.io", "ann@gmail.com"],
                      fail_emails=["user.3@acme0.io", "user.7@acme1.io"])  # fmt: skip

    first = _operator().execute({})

    assert first["scanned"] == first["sent"] == 14
    # ghost: no person, company fallback by domain answers; ann: no person, free mail so no company lookup
    assert (first["enriched"], first["not_found"], first["failed"]) == (11, 1, 2)
    assert first["written"] == 14 and first["skipped_fresh"] == 0
    assert {f["key"] for f in first["failures_sample"]} == {"email=user.3@acme0.io", "email=user.7@acme1.io"}

    ada = _profile("user.0@acme0.io")
    expected = person_for("user.0@acme0.io", service.state.config)
    assert (
        ada["enrich_full_name"] == expected["name"]["full"] and ada["enrich_title"] == expected["employment"]["title"]
    )
    assert ada["enrich_company_name"] == "Acme0" and ada["enrich_company_domain"] == "acme0.io"
    assert ada["enrich_match"] == "person" and ada["enrich_status"] == "enriched"
    assert ada["enrich_enricher"] == "email_domain_lookup" and ada["enrich_enriched_at"] == first["run_at"]
    assert ada["user_id"] == "u0"  # the result landed on the existing profile, not a new one
    assert _profile("ghost@nowhere-corp.io")["enrich_match"] == "company"
    ann = _profile("ann@gmail.com")
    assert ann["enrich_status"] == "not_found" and "enrich_enriched_at" not in ann
    failed = _profile("user.3@acme0.io")
    assert failed["enrich_status"] == "failed" and "HTTP 503" in failed["enrich_error"]
    assert "enrich_enriched_at" not in failed and "enrich_full_name" not in failed
    failing_requests = [r for r in service.requests(PERSON) if r["key"] == "user.3@acme0.io"]
    assert len(failing_requests) == FAST_RETRY.max_attempts  # retried with back-off before giving up

    service.configure(fail_emails=[])
    before = len(service.requests())
    second = _operator().execute({})

    assert second["skipped_fresh"] == 11 and second["sent"] == 3  # 2 failed + 1 not found, asked again
    assert (second["enriched"], second["not_found"], second["failed"]) == (2, 1, 0)
    assert _profile("user.3@acme0.io")["enrich_status"] == "enriched"
    assert {r["key"] for r in service.requests()[before:]} == {"user.3@acme0.io", "user.7@acme1.io", "ann@gmail.com"}

    third = _operator(not_found_retry_days=7).execute({})
    assert third["sent"] == 0 and third["skipped_fresh"] == 14 and third["requests"] == 0


def test_second_run_within_freshness_window_sends_nothing(lytics_conn_env, emulator, service) -> None:
    _seed(emulator, 10)
    first = _operator(freshness_days=30).execute({})
    assert first["enriched"] == 10
    calls = len(service.requests())
    events = emulator.backend.store.stream_event_count("enrichment")

    second = _operator(freshness_days=30).execute({})

    assert second["scanned"] == 10 and second["skipped_fresh"] == 10 and second["sent"] == 0
    assert len(service.requests()) == calls  # nothing reached the third party
    assert emulator.backend.store.stream_event_count("enrichment") == events  # nothing written either
    again = _operator(freshness_days=0).execute({})  # a zero window re-enriches everyone
    assert again["sent"] == again["enriched"] == 10


def test_client_rate_limit_respected_on_the_wire(lytics_conn_env, emulator, service) -> None:
    _seed(emulator, 20)
    service.configure(rate_limit=10, latency=0.02)

    summary = _operator(rate_limit=8, max_in_flight=4).execute({})

    assert summary["enriched"] == 20 and summary["retries"] == 0
    times = sorted(r["t"] for r in service.requests(PERSON))
    assert len(times) == 20 and all(r["status"] == 200 for r in service.requests(PERSON))
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert min(gaps) > 0.125 * 0.6, gaps  # evenly spaced starts (network jitter allowed for)
    assert times[-1] - times[0] >= 19 / 8 - 0.1  # 20 starts at 8/s need at least 19 intervals
    assert max(sum(1 for t in times if s <= t < s + 1.0) for s in times) <= 9


def test_retry_after_honoured_by_every_worker(lytics_conn_env, emulator, service) -> None:
    _seed(emulator, 12)
    service.configure(rate_limit=4, retry_after=1)

    summary = _operator(max_in_flight=4, http_retry_policy=RetryPolicy(max_attempts=6, jitter=False)).execute({})

    assert summary["enriched"] == 12 and summary["failed"] == 0 and summary["retries"] >= 1
    log = service.requests(PERSON)
    first_429 = next(r["t"] for r in log if r["status"] == 429)
    # after the first 429 the whole pool pauses for Retry-After (1 s), not just the worker that was told
    during_pause = [r for r in log if first_429 + 0.25 < r["t"] < first_429 + 0.9]
    assert during_pause == []
    assert sum(1 for r in log if r["status"] == 429) <= 8


def test_dry_run_reports_who_would_be_sent(lytics_conn_env, emulator, service) -> None:
    _seed(emulator, 6)
    _operator().execute({})
    emulator.backend.store.ingest("crm", [{"email": f"new{i}@fresh.io"} for i in range(4)] + [{"user_id": "no-email"}])
    calls, events = len(service.requests()), emulator.backend.store.stream_event_count("enrichment")

    op = _operator(dry_run=True, filter_ql="FILTER OR (EXISTS email, EXISTS user_id) FROM user", segment=None)
    assert op.is_dry_run and callable(op.dry_run)  # Airflow's BaseOperator.dry_run() is not shadowed
    summary = op.execute({})

    assert summary["dry_run"] is True and summary["would_send"] == 4 and summary["sent"] == 0
    assert summary["skipped_fresh"] == 6 and summary["skipped_no_identifier"] == 1 and summary["scanned"] == 11
    assert len(service.requests()) == calls and emulator.backend.store.stream_event_count("enrichment") == events


def test_http_template_enricher_in_batches_origin_response_shape(lytics_conn_env, emulator, service) -> None:
    _seed(emulator, 7)
    service.configure(fail_emails=["user.2@acme2.io"])
    enricher = HttpEnricher(
        "enrichment_api", name="bulk_people", method="POST", endpoint="/v1/people/bulk",
        body={"email": "{email}"}, batch_size=3, batch_key="lookups", results_path="results",
        match_path="input.email", match_field="email", error_path="error",
        fields={"name": "person.name.full", "company": "company.name", "size": "company.metrics"},
    )  # fmt: skip

    summary = _operator(enricher=enricher, record_shape="origin_response", stream="webhook_enrichment").execute({})

    assert (summary["sent"], summary["enriched"], summary["failed"], summary["requests"]) == (7, 6, 1, 3)
    assert sorted(r["lookups"] for r in service.requests("/v1/people/bulk")) == [1, 3, 3]
    events = [e for _, e in emulator.backend.db.iter_events("webhook_enrichment")]
    by_email = {e["origin"]["email"]: e for e in events}
    assert (
        by_email["user.1@acme1.io"]["response"]["name"]
        == person_for("user.1@acme1.io", ServiceConfig())["name"]["full"]
    )
    good = by_email["user.1@acme1.io"]
    assert set(good) >= {"origin", "response", "enrich_enricher", "enrich_status", "enrich_enriched_at"}
    assert good["response"]["company"] == "Acme1" and "size_employees" in good["response"]
    assert good["enrich_enricher"] == "bulk_people"
    assert by_email["user.2@acme2.io"]["enrich_status"] == "failed"


def test_bad_api_key_fails_users_without_leaking_it(lytics_conn_env, emulator, service, tmp_path, caplog) -> None:
    _seed(emulator, 3)
    service.configure(api_key="another-key")
    results = tmp_path / "results.ndjson"
    caplog.set_level(logging.DEBUG)

    with pytest.raises(AirflowException, match="max_failure_rate"):
        _operator(max_failure_rate=0.5, results_path=str(results)).execute({})

    lines = [json.loads(line) for line in results.read_text().splitlines()]
    assert len(lines) == 3 and {line["status"] for line in lines} == {"failed"}
    assert "HTTP 401" in lines[0]["reason"] and "enrichment_api" in lines[0]["reason"]
    assert len(service.requests()) == 3  # 401 is not retried
    assert API_KEY not in caplog.text and API_KEY not in results.read_text()
    assert API_KEY not in json.dumps([e for _, e in emulator.backend.db.iter_events("enrichment")])
    assert _profile("user.0@acme0.io")["enrich_status"] == "failed"


def test_example_dag_runs_against_the_emulators(lytics_conn_env, emulator, service, tmp_path) -> None:
    import importlib.util
    from pathlib import Path

    from airflow_provider_lytics.hooks.lytics import LyticsHook

    path = Path(__file__).resolve().parents[2] / "dags" / "lytics_enrichment_round_trip.py"
    spec = importlib.util.spec_from_file_location("lytics_enrichment_round_trip", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    dag = module.dag
    assert {t.task_id for t in dag.tasks} == {"preview", "enrich", "report"}

    emulator.backend.store.ingest("crm", [{"email": f"fan{i}@studio{i % 2}.io"} for i in range(5)])
    LyticsHook().create_segment('FILTER EXISTS email FROM user ALIAS demo_enrichment_audience WITH name = "Demo"')
    params = {"audience_slug": "demo_enrichment_audience", "results_dir": str(tmp_path)}
    # An Airflow 3 run without a logical date (REST API / `airflow dags trigger`): only run_id and dag_run.
    run_after = datetime(2026, 11, 28, 6, 0, tzinfo=timezone.utc)
    run_id = "manual__2026-11-28T06:00:00+00:00"
    dag_run = SimpleNamespace(run_id=run_id, logical_date=None, run_after=run_after)
    context = {"run_id": run_id, "dag_run": dag_run, "params": params}
    preview, enrich = dag.get_task("preview"), dag.get_task("enrich")
    for op in (preview, enrich):
        op.render_template_fields(context)
    assert preview.execute(context)["would_send"] == 5 and service.requests() == []
    assert enrich.results_path == str(tmp_path / "manual__2026-11-28T06_00_00_00_00" / "results.ndjson")
    summary = enrich.execute(context)
    assert summary["enriched"] == 5 and summary["written"] == 5
    assert _profile("fan1@studio1.io")["enrich_company_name"] == "Studio1"
    assert preview.execute(context)["would_send"] == 0


def test_scan_restarts_after_cursor_expiry_without_resending(lytics_conn_env, emulator, monkeypatch) -> None:
    import time

    _seed(emulator, 10)
    monkeypatch.setattr(emulator.backend.store.scans, "ttl", 0.1)  # a slow third party outlasts the cursor
    seen: list[str] = []

    def slow_lookup(ids: dict) -> dict:
        time.sleep(0.06)
        seen.append(ids["email"])
        return {"segment": "b2b"}

    summary = _operator(enricher=slow_lookup, scan_page_size=4, max_in_flight=1).execute({})

    assert summary["scan_restarts"] >= 1 and summary["already_processed"] >= 4
    assert sorted(seen) == sorted(set(seen)) and len(seen) == 10  # every user sent exactly once
    assert (summary["sent"], summary["enriched"], summary["scanned"]) == (10, 10, 10)
    assert _profile("user.9@acme0.io")["enrich_segment"] == "b2b"


def test_old_retry_policy_argument_still_sets_the_http_retries() -> None:
    with pytest.warns(DeprecationWarning, match="http_retry_policy="):
        op = _operator(http_retry_policy=None, retry_policy=FAST_RETRY)
    assert op.http_retry_policy is FAST_RETRY and not getattr(op, "retry_policy", None)  # Airflow's own stays unset
