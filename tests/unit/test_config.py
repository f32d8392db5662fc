"""Connection settings: defaults, URL normalisation, and errors that say what to fix."""

from __future__ import annotations

import pytest

from airflow_provider_lytics.client.config import settings_from_connection
from airflow_provider_lytics.client.errors import LyticsConfigError


def _settings(**kw):
    base = {"conn_id": "lytics_default", "host": None, "port": None, "schema": None, "password": "tok", "extra": {}}
    base.update(kw)
    return settings_from_connection(**base)


def test_defaults_point_at_lytics():
    s = _settings()
    assert (s.api_url, s.bulk_url, s.account_id, s.timeout) == (
        "https://api.lytics.io", "https://bulk.lytics.io", None, 60.0)  # fmt: skip


def test_host_forms():
    assert _settings(host="http://127.0.0.1:8765/").api_url == "http://127.0.0.1:8765"
    assert _settings(host="127.0.0.1", port=8765, schema="http").api_url == "http://127.0.0.1:8765"
    assert _settings(host="api.lytics.io").api_url == "https://api.lytics.io"


def test_extras():
    s = _settings(extra={"bulk_url": "http://localhost:1", "account_id": "abc", "timeout": "5"})
    assert (s.bulk_url, s.account_id, s.timeout) == ("http://localhost:1", "abc", 5.0)


def test_token_never_in_repr():
    assert "secret-123" not in repr(_settings(password="tok-secret-123"))


@pytest.mark.parametrize(
    ("kw", "hint"),
    [
        ({"password": ""}, "Password field"),
        ({"password": "Bearer abc"}, "raw token"),
        ({"host": "ftp://x"}, "http(s) URL"),
        ({"extra": {"timeout": "soon"}}, "number of seconds"),
        ({"extra": {"timeout": 0}}, "greater than 0"),
    ],
)
def test_bad_settings_say_what_to_fix(kw, hint):
    with pytest.raises(LyticsConfigError, match=hint.replace("(", r"\(").replace(")", r"\)")):
        _settings(**kw)
