"""Error messages count attempts once: a request the client did not retry says nothing about attempts, so a
caller that retries on its own ("not delivered after 8 attempt(s)") never shows a second, different count."""

from __future__ import annotations

import json
import socket

import pytest

from airflow_provider_lytics.client.errors import LyticsTransportError, attempts_note
from airflow_provider_lytics.client.retry import RetryPolicy


def test_attempts_note() -> None:
    assert attempts_note(1) == ""
    assert attempts_note(3) == " (after 3 attempt(s))"


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize(("attempts", "note"), [(1, False), (2, True)])
def test_transport_error_over_real_http(monkeypatch, attempts: int, note: bool) -> None:
    from airflow_provider_lytics.hooks.lytics import LyticsHook
    from tests.conftest import LYTICS_CONN_ENV, lytics_connection

    monkeypatch.setenv(LYTICS_CONN_ENV, json.dumps(lytics_connection(f"http://127.0.0.1:{_closed_port()}", "t")))
    hook = LyticsHook(retry_policy=RetryPolicy(max_attempts=attempts, base_delay=0.0, max_delay=0.0, jitter=False))
    with pytest.raises(LyticsTransportError) as info:
        hook.get_account()
    assert ("attempt(s)" in str(info.value)) is note
    assert info.value.attempts == attempts
