"""The retry policy judged on what the operators really raise: each test runs a real operator against the emulator
over HTTP, takes the exception Airflow's task runner would get, and evaluates ``lytics_retry_policy()`` on it."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from airflow_provider_lytics.client.errors import LyticsAuthError
from airflow_provider_lytics.errors import LyticsArgumentError
from airflow_provider_lytics.exports.errors import ExportStateError
from airflow_provider_lytics.imports.runner import ImportThresholdError
from airflow_provider_lytics.operators.event_exports import LyticsEventExportOperator
from airflow_provider_lytics.operators.exports import LyticsAudienceExportOperator
from airflow_provider_lytics.operators.imports import LocalFilesToLyticsOperator
from airflow_provider_lytics.retry_policy import lytics_retry_policy
from tests.conftest import LYTICS_CONN_ENV, lytics_connection
from tests.exports.helpers import FIELDS, seed, user
from tests.integration.task_fakes import TI

sdk = pytest.importorskip("airflow.sdk")
if not hasattr(sdk, "ExceptionRetryPolicy"):
    pytest.skip("task retry policies arrived in Airflow 3.3", allow_module_level=True)


def _decision(exc: BaseException) -> str:
    return lytics_retry_policy().evaluate(exc, try_number=1, max_tries=4).action.value


def _raised(call: Callable[[], Any]) -> BaseException:
    with pytest.raises(Exception) as info:
        call()
    return info.value


def _export(tmp_path, fields: list[str]) -> LyticsAudienceExportOperator:
    return LyticsAudienceExportOperator(task_id="exp", segment="actives", fields=fields, mode="incremental",
                                        path=str(tmp_path), scan_process=False)  # fmt: skip


def test_import_over_the_rejection_threshold_fails_at_once_with_counts_in_xcom(tmp_path, emulator, lytics_conn_env):
    src = tmp_path / "bad.csv"
    src.write_text("id,name\n1,a\n2\n3\n4,d\n")  # two rows lack a column
    ti = TI()
    op = LocalFilesToLyticsOperator(task_id="imp", paths=str(src), stream="policy", checkpoint="none",
                                    max_rejected_rows=1)  # fmt: skip
    exc = _raised(lambda: op.execute({"ti": ti, "run_id": "r"}))
    assert type(exc) is ImportThresholdError, repr(exc)  # itself, not wrapped in AirflowException
    assert _decision(exc) == "fail"
    assert ti.xcom["lytics_import_counts"]["rejected_here"] == 2
    assert emulator.backend.store.stream_event_count("policy") == 2  # the good rows went before the verdict


def test_export_state_of_another_configuration_fails_at_once(tmp_path, emulator, lytics_conn_env):
    seed(emulator, [user(i) for i in range(5)])
    _export(tmp_path, FIELDS).execute({"ti": TI()})
    exc = _raised(lambda: _export(tmp_path, ["email"]).execute({"ti": TI()}))
    assert type(exc) is ExportStateError and "reset_state=True" in str(exc), repr(exc)
    assert "Lytics audience export 'actives' failed" in getattr(exc, "__notes__", [])
    assert _decision(exc) == "fail"


def test_wrong_token_fails_at_once(tmp_path, emulator, monkeypatch):
    seed(emulator, [user(i) for i in range(3)])
    monkeypatch.setenv(LYTICS_CONN_ENV, json.dumps(lytics_connection(emulator.url, "not-the-token", emulator.bulk_url)))
    exc = _raised(lambda: _export(tmp_path, FIELDS).execute({"ti": TI()}))
    assert isinstance(exc, LyticsAuthError), repr(exc)
    assert _decision(exc) == "fail"


@pytest.mark.parametrize(
    "build",
    [
        lambda: LocalFilesToLyticsOperator(task_id="imp", paths="x.csv", stream="s", delimiter=":"),
        lambda: LocalFilesToLyticsOperator(task_id="imp", paths="x.csv", stream="s", watermark_by="size"),
        lambda: LyticsAudienceExportOperator(task_id="exp", segment="actives", format="xml"),
        lambda: LyticsAudienceExportOperator(task_id="exp", segment="actives", file_name="{NOPE}"),
        lambda: LyticsEventExportOperator(task_id="ev", streams=[]),
    ],
    ids=["import-settings", "import-operator", "export-operator", "export-config", "event-export-operator"],
)
def test_bad_arguments_are_one_type_and_fail_at_once(build):
    exc = _raised(build)
    assert isinstance(exc, LyticsArgumentError) and isinstance(exc, ValueError), repr(exc)
    assert _decision(exc) == "fail"


def test_task_retry_policy_reaches_airflow_on_operators_with_http_retries():
    from airflow_provider_lytics.client.retry import RetryPolicy
    from airflow_provider_lytics.enrichment.lookup import EmailDomainLookupEnricher
    from airflow_provider_lytics.operators.enrichment import LyticsEnrichmentOperator
    from airflow_provider_lytics.operators.messaging import LyticsProfileMessageOperator

    policy, http = lytics_retry_policy(), RetryPolicy(max_attempts=2)
    enrich = LyticsEnrichmentOperator(task_id="e", segment="s", enricher=EmailDomainLookupEnricher("api"),
                                      retry_policy=policy, http_retry_policy=http)  # fmt: skip
    message = LyticsProfileMessageOperator(task_id="m", messages={"t": "hi"}, profiles=[], delivery="xcom",
                                           retry_policy=policy, http_retry_policy=http)  # fmt: skip
    for op in (enrich, message):
        assert op.retry_policy is policy and op.http_retry_policy is http
