"""The exception model for Lytics API calls.

Every error carries what an operator needs to act on it (HTTP status, Lytics's message, request id, v2 error
codes, the method and path called) and nothing secret: the token travels in a header and is never formatted
into a message.
"""

from __future__ import annotations

from collections.abc import Sequence


class LyticsError(Exception):
    """Base class for everything this provider raises about Lytics."""


class LyticsConfigError(LyticsError, ValueError):
    """The Airflow connection or an argument is unusable; the message says what to change."""


def attempts_note(attempts: int) -> str:
    """`` (after N attempt(s))`` when a request was retried; empty for a single attempt, so a caller that
    retries on its own (and counts its attempts) does not print two different counts."""
    return f" (after {attempts} attempt(s))" if attempts > 1 else ""


class LyticsTransportError(LyticsError):
    """No usable HTTP response arrived (connection refused or reset, timeout), after the allowed retries.

    ``connect_phase`` is True when the last attempt never reached Lytics (refused, unresolvable, connect
    timeout): then the request certainly took no effect. Otherwise Lytics may have processed it.
    """

    def __init__(
        self, message: str, *, method: str = "", path: str = "", attempts: int = 1, connect_phase: bool = False
    ) -> None:
        super().__init__(message)
        self.method = method
        self.path = path
        self.attempts = attempts
        self.connect_phase = connect_phase


class LyticsApiError(LyticsError):
    """Lytics answered with an error status (or an error envelope)."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        method: str = "",
        path: str = "",
        request_id: str | None = None,
        codes: Sequence[str] = (),
        attempts: int = 1,
        retry_after: float | None = None,
    ) -> None:
        self.status = status
        self.message = message
        self.method = method
        self.path = path
        self.request_id = request_id
        self.codes = tuple(codes)
        self.attempts = attempts
        self.retry_after = retry_after
        super().__init__(self._describe())

    def _describe(self) -> str:
        where = f"{self.method} {self.path}".strip()
        parts = [f"Lytics API error {self.status}" + (f" on {where}" if where else ""), f": {self.message}"]
        if self.codes:
            parts.append(f" [{', '.join(self.codes)}]")
        if self.request_id:
            parts.append(f" (request_id={self.request_id})")
        if self.attempts > 1:
            parts.append(f" after {self.attempts} attempts")
        return "".join(parts)


class LyticsBadRequestError(LyticsApiError):
    """400/422: the request itself is wrong (bad FilterQL, bad payload); retrying will not help."""


class LyticsAuthError(LyticsApiError):
    """401/403: the token is missing, unknown, expired, or lacks the role for this call."""


class LyticsNotFoundError(LyticsApiError):
    """404: the segment, job, entity or route does not exist."""


class LyticsConflictError(LyticsApiError):
    """409: a name or slug is already taken."""


class LyticsPayloadTooLargeError(LyticsApiError):
    """413: the body is over the host's limit (10 MB on the API host: use the bulk host)."""


class LyticsRateLimitError(LyticsApiError):
    """429: throttled. ``retry_after`` holds the server's hint in seconds when it sent one."""


class LyticsServerError(LyticsApiError):
    """5xx: Lytics failed; usually transient."""


class LyticsCursorExpiredError(LyticsBadRequestError):
    """A scan cursor (``_next``) is no longer valid: the scan has to start again from the beginning."""


_BY_STATUS: dict[int, type[LyticsApiError]] = {
    400: LyticsBadRequestError,
    401: LyticsAuthError,
    403: LyticsAuthError,
    404: LyticsNotFoundError,
    409: LyticsConflictError,
    413: LyticsPayloadTooLargeError,
    422: LyticsBadRequestError,
    429: LyticsRateLimitError,
}


def error_class_for(status: int, message: str = "") -> type[LyticsApiError]:
    """Pick the most specific exception class for an HTTP status (and message, for cursor expiry)."""
    if status == 400 and "cursor" in message.lower() and "expire" in message.lower():
        return LyticsCursorExpiredError
    if status >= 500:
        return LyticsServerError
    return _BY_STATUS.get(status, LyticsApiError)
