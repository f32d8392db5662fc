"""A task retry policy for Lytics tasks (Airflow 3.3+): fail at once on what a retry cannot fix, back off on 429.

The hooks already retry each request (back-off, ``Retry-After``); what reaches the task is an error that
outlived those retries. Some will not go away by running the task again (a wrong token, a bad FilterQL
statement, a bad operator argument, an unusable key or configuration, rows over the rejection threshold), so
retrying them only delays the alert; others (rate limits, 5xx, dropped connections, SFTP hiccups) deserve the
task's retries, rate limits with a longer pause. Use it on any task::

    from airflow_provider_lytics.retry_policy import lytics_retry_policy

    LyticsAudienceExportOperator(..., retries=3, retry_policy=lytics_retry_policy())

Operators raise these errors as themselves, never wrapped in ``AirflowException`` (see
:mod:`airflow_provider_lytics.errors`), so the rules see the real class. Built from Airflow's own
``ExceptionRetryPolicy`` with exception paths as strings, so DAG serialization keeps it. Rules apply in order,
first match wins; anything else follows the task's normal retries.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

_ERRORS = "airflow_provider_lytics.client.errors"

#: errors another try cannot fix: fail the task now, with the error's own message
PERMANENT = (
    "airflow_provider_lytics.errors.LyticsArgumentError",
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


def http_retry_from_kwargs(owner: str, http_retry_policy: Any, kwargs: dict[str, Any], stacklevel: int = 3) -> Any:
    """Keep Airflow's ``retry_policy=`` for the task and return the HTTP retry policy of an operator.

    The enrichment and messaging operators once took their HTTP :class:`~airflow_provider_lytics.client.retry.
    RetryPolicy` as ``retry_policy=``, the name Airflow 3.3 gives the task retry policy. A client policy passed
    that way still works (with a ``DeprecationWarning``: use ``http_retry_policy=``); any other value stays in
    ``kwargs`` for ``BaseOperator``, so ``retry_policy=lytics_retry_policy()`` works on these operators too.
    """
    from airflow_provider_lytics.client.retry import RetryPolicy

    if isinstance(kwargs.get("retry_policy"), RetryPolicy):
        if http_retry_policy is not None:
            from airflow_provider_lytics.errors import LyticsArgumentError

            raise LyticsArgumentError(f"{owner}: pass the HTTP retry policy once, as http_retry_policy=")
        import warnings

        warnings.warn(
            f"{owner}(retry_policy=RetryPolicy(...)) is deprecated: pass the HTTP retry policy as "
            "http_retry_policy= (retry_policy= is Airflow's task retry policy)",
            DeprecationWarning,
            stacklevel=stacklevel,
        )
        return kwargs.pop("retry_policy")
    return http_retry_policy
