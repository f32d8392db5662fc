"""The task retry policy: which Lytics errors fail at once, which retry, and that it survives serialization."""

from __future__ import annotations

from datetime import timedelta

import pytest

from airflow_provider_lytics.client.errors import (
    LyticsAuthError,
    LyticsBadRequestError,
    LyticsCursorExpiredError,
    LyticsRateLimitError,
    LyticsServerError,
    LyticsTransportError,
)
from airflow_provider_lytics.exports.errors import ExportConfigError
from airflow_provider_lytics.io.pgp_errors import PgpPassphraseError
from airflow_provider_lytics.io.sftp_errors import HostKeyVerificationError, SftpTransferError
from airflow_provider_lytics.retry_policy import PERMANENT, lytics_retry_policy

sdk = pytest.importorskip("airflow.sdk")
if not hasattr(sdk, "ExceptionRetryPolicy"):
    pytest.skip("task retry policies arrived in Airflow 3.3", allow_module_level=True)


def _action(policy, exc):
    return policy.evaluate(exc, try_number=1, max_tries=4).action.value


@pytest.mark.parametrize(
    ("exc", "action"),
    [
        (LyticsAuthError(401, "invalid token"), "fail"),
        (LyticsBadRequestError(400, "bad FilterQL"), "fail"),
        (ExportConfigError("fields lists a field twice"), "fail"),
        (PgpPassphraseError("bad passphrase"), "fail"),
        (HostKeyVerificationError("host key changed", expected=["ssh-ed25519 AAAA"], presented=None), "fail"),
        (LyticsCursorExpiredError(400, "scan cursor has expired"), "retry"),
        (LyticsRateLimitError(429, "slow down"), "retry"),
        (LyticsServerError(503, "unavailable"), "default"),
        (LyticsTransportError("connection dropped"), "default"),
        (SftpTransferError("connection lost"), "default"),
        (RuntimeError("anything else"), "default"),
    ],
)
def test_decisions(exc, action):
    assert _action(lytics_retry_policy(), exc) == action


def test_rate_limit_waits_longer_and_every_path_imports():
    from airflow.sdk.module_loading import import_string

    decision = lytics_retry_policy(timedelta(minutes=7)).evaluate(LyticsRateLimitError(429, "x"), 1, 4)
    assert decision.retry_delay == timedelta(minutes=7) and "rate limit" in decision.reason
    for path in PERMANENT:
        assert issubclass(import_string(path), BaseException), path


def test_survives_dag_serialization():
    from airflow.sdk import ExceptionRetryPolicy

    policy = lytics_retry_policy()
    again = ExceptionRetryPolicy.deserialize(policy.serialize())
    for exc in (LyticsAuthError(401, "x"), LyticsRateLimitError(429, "x"), LyticsServerError(500, "x")):
        assert _action(again, exc) == _action(policy, exc)
