"""A task retry policy for Lytics tasks (Airflow 3.3+): fail at once on what a retry cannot fix, back off on 429.

The hooks already retry each request (back-off, ``Retry-After``); what reaches the task is an error that
outlived those retries. Some will not go away by running the task again (a wrong token, a bad FilterQL
statement, an unusable key or configuration, rows over the rejection threshold), so retrying them only delays
the alert; others (rate limits, 5xx, dropped connections, SFTP hiccups) deserve the task's retries, rate
limits with a longer pause. Use it on any task::

    from airflow_provider_lytics.retry_policy import lytics_retry_policy

    LyticsAudienceExportOperator(..., retries=3, retry_policy=lytics_retry_policy())

Built from Airflow's own ``ExceptionRetryPolicy`` with exception paths as strings, so DAG serialization
keeps it. Rules apply in order, first match wins; anything else follows the task's normal retries.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

_ERRORS = "airflow_provider_lytics.client.errors"

#: errors another try cannot fix: fail the task now, with the error's own message
PERMANENT = (
    f"{_ERRORS}.LyticsConfigError",
    f"{_ERRORS}.LyticsAuthError",
    f"{_ERRORS}.LyticsConflictError",
    f"{_ERRORS}.LyticsPayloadTooLargeError",
    "airflow_provider_lytics.exports.errors.ExportConfigError",
    "airflow_provider_lytics.exports.errors.ExportStateError",
    "airflow_provider_lytics.io.pgp_errors.PgpConfigError",
    "airflow_provider_lytics.io.pgp_errors.PgpKeyFormatError",
    "airflow_provider_lytics.io.pgp_errors.PgpKeyMismatchError",
    "airflow_provider_lytics.io.pgp_errors.PgpPassphraseError",
    "airflow_provider_lytics.io.sftp_errors.SftpConfigError",
    "airflow_provider_lytics.io.sftp_errors.HostKeyVerificationError",
    "airflow_provider_lytics.imports.runner.ImportThresholdError",
    "airflow_provider_lytics.enrichment.base.EnrichmentConfigError",
    "airflow_provider_lytics.templating.errors.TemplateError",
)
#: a scan cursor that expired too often is worth one more try (it subclasses a "bad request")
RESTARTABLE = (f"{_ERRORS}.LyticsCursorExpiredError",)
BAD_REQUEST = (f"{_ERRORS}.LyticsBadRequestError",)
RATE_LIMITED = (f"{_ERRORS}.LyticsRateLimitError",)


def lytics_retry_policy(rate_limit_delay: timedelta = timedelta(minutes=5)) -> Any:
    """An ``ExceptionRetryPolicy`` for Lytics tasks; ``rate_limit_delay`` is the pause after a 429 outlived
    the hook's own retries. Needs Airflow 3.3+ (``retry_policy=`` on tasks)."""
    try:
        from airflow.sdk import ExceptionRetryPolicy, RetryAction, RetryRule
    except ImportError:
        raise ImportError(
            "Task retry policies arrived in Airflow 3.3; on older Airflow use retries= and retry_delay= instead"
        ) from None
    return ExceptionRetryPolicy(
        rules=[
            RetryRule(
                exception=[*RESTARTABLE],
                action=RetryAction.RETRY,
                reason="the audience scan was overtaken by the cursor lifetime; one more try may get through",
            ),
            RetryRule(
                exception=[*RATE_LIMITED],
                action=RetryAction.RETRY,
                retry_delay=rate_limit_delay,
                reason="Lytics rate limit still hit after the hook's retries; backing off",
            ),
            RetryRule(
                exception=[*PERMANENT, *BAD_REQUEST],
                action=RetryAction.FAIL,
                reason="another try cannot fix this: the error says what to change",
            ),
        ],
    )
