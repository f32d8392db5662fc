"""Extra links on every operator that touches a Lytics object, the UI URL field, documentation-url, and the
Port field's meaning for ``lytics`` connections."""

from __future__ import annotations

import json

import pytest

from airflow_provider_lytics import get_provider_info
from airflow_provider_lytics.client.config import normalise_url
from airflow_provider_lytics.client.errors import LyticsConfigError
from airflow_provider_lytics.forms import LYTICS_CONN_FIELDS
from airflow_provider_lytics.links import (
    XCOM_AUDIENCE_URL,
    XCOM_STREAM_URL,
    LyticsAudienceLink,
    LyticsJobLink,
    LyticsStreamLink,
    audience_ui_url,
    publish_links,
    stream_ui_url,
)
from airflow_provider_lytics.provider_info import FALLBACK_DOCUMENTATION_URL


class _TI:
    def __init__(self) -> None:
        self.pushed: dict[str, str] = {}

    def xcom_push(self, key: str, value: str) -> None:
        self.pushed[key] = value


def test_every_operator_touching_a_lytics_object_has_its_links() -> None:
    from airflow_provider_lytics.operators.enrichment import LyticsEnrichmentOperator
    from airflow_provider_lytics.operators.exports import LyticsAudienceExportOperator
    from airflow_provider_lytics.operators.imports import (
        DataFrameToLyticsOperator,
        LocalFilesToLyticsOperator,
        SFTPToLyticsOperator,
    )
    from airflow_provider_lytics.operators.jobs import LyticsCreateOrUpdateJobOperator, LyticsRunJobOperator
    from airflow_provider_lytics.operators.messaging import LyticsProfileMessageOperator
    from airflow_provider_lytics.sensors.audience import LyticsAudienceMembershipSensor, LyticsAudienceSizeSensor
    from airflow_provider_lytics.sensors.jobs import LyticsJobSensor

    expected = {
        LyticsAudienceExportOperator: {"Lytics Audience"},
        LocalFilesToLyticsOperator: {"Lytics Stream"},
        SFTPToLyticsOperator: {"Lytics Stream"},
        DataFrameToLyticsOperator: {"Lytics Stream"},
        LyticsEnrichmentOperator: {"Lytics Audience", "Lytics Stream"},
        LyticsProfileMessageOperator: {"Lytics Audience"},
        LyticsAudienceSizeSensor: {"Lytics Audience"},
        LyticsAudienceMembershipSensor: {"Lytics Audience"},
        LyticsCreateOrUpdateJobOperator: {"Lytics Job"},
        LyticsRunJobOperator: {"Lytics Job"},
        LyticsJobSensor: {"Lytics Job"},
    }
    for cls, names in expected.items():
        assert {link.name for link in cls.operator_extra_links} == names, cls.__name__
    registered = set(get_provider_info()["extra-links"])
    for link in (LyticsJobLink, LyticsAudienceLink, LyticsStreamLink):
        assert f"{link.__module__}.{link.__qualname__}" in registered


def test_links_use_the_connections_ui_url(monkeypatch: pytest.MonkeyPatch) -> None:
    conn = {"conn_type": "lytics", "password": "t", "extra": {"ui_url": "https://eu.app.example/"}}
    monkeypatch.setenv("AIRFLOW_CONN_LYTICS_EU", json.dumps(conn))
    ti = _TI()
    urls = publish_links({"ti": ti}, "lytics_eu", audience="high value", stream="crm_customers")
    assert (
        ti.pushed
        == urls
        == {
            XCOM_AUDIENCE_URL: "https://eu.app.example/audiences/high%20value",
            XCOM_STREAM_URL: "https://eu.app.example/data/streams/crm_customers",
        }
    )


def test_links_default_to_the_lytics_app_and_never_fail_the_task() -> None:
    ti = _TI()  # no such connection: the default UI, no error
    assert publish_links({"ti": ti}, "no_such_conn_for_links", audience="a1") == {
        XCOM_AUDIENCE_URL: "https://app.lytics.com/audiences/a1"
    }
    assert publish_links({}, "no_such_conn_for_links", stream="s") == {XCOM_STREAM_URL: stream_ui_url(
        "https://app.lytics.com", "s")}  # fmt: skip
    assert publish_links({"ti": ti}, "x") == {}  # an ad hoc export (no audience) pushes nothing
    assert audience_ui_url("https://app.lytics.com/", "a/b") == "https://app.lytics.com/audiences/a%2Fb"


def test_ui_url_is_a_form_field_with_the_lytics_app_default() -> None:
    field = LYTICS_CONN_FIELDS["ui_url"]
    assert field["label"] == "Lytics UI URL" and field["schema"]["default"] == "https://app.lytics.com"


def test_documentation_url_is_declared_and_resolves_to_a_real_page() -> None:
    info = get_provider_info()
    # No "Documentation" Project-URL in this package's metadata: the fallback (see provider_info.py for why).
    assert info["documentation-url"] == FALLBACK_DOCUMENTATION_URL == "https://docs.lytics.com/"


@pytest.mark.parametrize(
    ("host", "port", "expected"),
    [
        ("api.lytics.io", None, "https://api.lytics.io"),
        ("api.lytics.io", 443, "https://api.lytics.io:443"),
        ("http://127.0.0.1", 8765, "http://127.0.0.1:8765"),  # the Port field fills a URL without one
        ("http://127.0.0.1:8765", 8765, "http://127.0.0.1:8765"),
        ("https://api.lytics.io", 0, "https://api.lytics.io"),  # 0 = no port
    ],
)
def test_port_field(host: str, port: int | None, expected: str) -> None:
    assert normalise_url(host, field="host", port=port) == expected


def test_port_field_that_contradicts_the_url_is_refused() -> None:
    with pytest.raises(LyticsConfigError, match="says port 8765 but its Port field says 9000"):
        normalise_url("http://127.0.0.1:8765", field="host", port=9000)
