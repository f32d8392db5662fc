"""The provider's error boundary: what an operator, sensor or trigger hands to Airflow when it fails.

Three rules, applied by every operator and sensor:

1. **Typed errors reach Airflow as themselves.** A failure that has a type of its own in this package (the
   client's ``Lytics*Error``, ``Export*Error``, ``Import*Error``, ``Pgp*Error``, ``Sftp*Error``,
   ``TemplateError``...) is never re-wrapped in ``AirflowException``. Operators may add context with
   ``exc.add_note(...)`` (printed under the message in the task log) and re-raise the same object. We chose this
   over mapping permanent errors to ``AirflowFailException`` in one place because the class is the contract:
   :func:`~airflow_provider_lytics.retry_policy.lytics_retry_policy` (Airflow 3.3+) and any ``on_failure_callback``
   decide by class, and the task's ``retries`` stay the DAG author's choice on Airflow versions without retry
   policies. A wrapper would hide the class and turn "fail now" errors into retries.
2. **Bad arguments are one type**, :class:`LyticsArgumentError` (a ``ValueError``), raised when the DAG is
   parsed for plain arguments and when the task runs for templated ones. The message names the argument and
   what to pass instead. The retry policy fails such a task at once.
3. **Trigger events are checked in one place**, :func:`validate_event`, by every ``execute_complete``: only an
   event with ``status == "success"`` lets the task succeed; ``failed``, ``timeout`` and ``error`` fail it with
   the trigger's message, and anything else fails closed.

``AirflowException`` is still raised for outcomes that are not a typed error, e.g. a rejection threshold
crossed in the enrichment or messaging operators, or a job run that failed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

#: event statuses a trigger of this package sends when the wait did not succeed
FAILED_STATUSES = ("failed", "timeout", "error")


class LyticsArgumentError(ValueError):
    """An operator or sensor argument is unusable; the message names it and says what to pass."""


def validate_event(event: Any, what: str, *, failure: type[BaseException] | None = None) -> Mapping[str, Any]:
    """The trigger's event if it reports success; else raise ``failure`` (default ``AirflowFailException``).

    ``what`` names the wait in messages ("Lytics job trigger", "audience trigger"). A ``failed``, ``timeout``
    or ``error`` event raises with the event's own message; an event of any other shape fails closed.
    """
    if isinstance(event, Mapping) and event.get("status") == "success":
        return event
    if failure is None:
        from airflow.providers.common.compat.sdk import AirflowFailException

        failure = AirflowFailException
    if isinstance(event, Mapping) and event.get("status") in FAILED_STATUSES:
        raise failure(event.get("message") or f"{what}: the wait ended with status {event['status']!r}")
    raise failure(f"{what} sent an unexpected event {event!r}; failing closed")
