"""Errors of the emulator's jobs engine, each carrying the HTTP status and v2 error code the routes answer with.

The job engine, the workflow catalog and the authorization registry all refuse requests with these exceptions,
and ``jobs_routes`` turns them into API error envelopes. They sit in their own module so those three can raise
them without importing each other.
"""

from __future__ import annotations

# ----------------------------------------------------------------------------------------------------------------
# Errors: each carries the HTTP status and v2 error code the routes answer with.
# ----------------------------------------------------------------------------------------------------------------


class JobError(Exception):
    """A request the engine refuses; ``status``/``code`` say how the API reports it."""

    status = 400
    code = "JOB-BADREQ-002"

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status
        if code is not None:
            self.code = code


class JobNotFound(JobError):
    status = 404
    code = "JOB-NOTFOUND-004"


class WorkflowNotFound(JobError):
    status = 400
    code = "WF-NOTFOUND-005"


class AuthNotFound(JobError):
    status = 404
    code = "AUTH-NOTFOUND-006"


class RateLimited(JobError):
    status = 429
    code = "JOB-BADREQ-002"
