"""Validation of an emulated Lytics JobRequest body into the fields a job document stores.

Creating (POST) and replacing (PUT) a job both check the body the same way and fill in defaults for everything
omitted, with errors that name the field and say what is expected. This is input checking only; the engine in
``jobs`` decides what happens to the job.
"""

from __future__ import annotations

import copy
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from airflow_provider_lytics.emulator.catalog import Workflow
from airflow_provider_lytics.emulator.job_errors import JobError
from airflow_provider_lytics.emulator.job_time import _TIME_OF_DAY, parse_rfc3339

# ----------------------------------------------------------------------------------------------------------------
# Request validation: JobRequest -> the stored fields.
# ----------------------------------------------------------------------------------------------------------------

_BOOL_FIELDS = ("hidden", "verbose_logging", "drop_events_during_quiet_window")
_DICT_FIELDS = ("meta", "monitoring", "anomaly_rule")
_STR_FIELDS = ("description", "tag")


def _is_bool(value: Any) -> bool:
    return isinstance(value, bool)


def validate_job_body(body: Any, workflow: Workflow) -> dict[str, Any]:
    """Check a JobRequest and return the writable fields with defaults for everything omitted (PUT semantics)."""
    if not isinstance(body, dict):
        raise JobError("request body must be a JSON object describing the job", code="JSON-BADREQ-025")
    name = body.get("name")
    if not isinstance(name, str) or not name.strip():
        raise JobError("name is required: a non-empty string naming the job")
    config = body.get("config")
    if not isinstance(config, dict):
        raise JobError("config is required: a JSON object with the workflow's settings (may be {})")
    missing = [key for key in workflow.required if config.get(key) in (None, "", [])]
    if missing:
        raise JobError(f"config for workflow {workflow.slug} is missing required field(s): {', '.join(missing)}")
    for key in ("continuous", "continuous_update"):
        if key in config and not _is_bool(config[key]):
            raise JobError(f"config.{key} must be true or false")
    out: dict[str, Any] = {"name": name.strip(), "config": copy.deepcopy(config)}
    auth_ids = body.get("auth_ids")
    if auth_ids is None:
        auth_ids = []
    if not isinstance(auth_ids, list) or not all(isinstance(a, str) and a for a in auth_ids):
        raise JobError("auth_ids must be a list of authorization id strings")
    out["auth_ids"] = list(auth_ids)
    for key in _STR_FIELDS:
        value = body.get(key)
        if value is not None and not isinstance(value, str):
            raise JobError(f"{key} must be a string")
        out[key] = value or ""
    for key in _BOOL_FIELDS:
        value = body.get(key)
        if value is not None and not _is_bool(value):
            raise JobError(f"{key} must be true or false")
        out[key] = bool(value)
    for key in _DICT_FIELDS:
        value = body.get(key)
        if value is not None and not isinstance(value, dict):
            raise JobError(f"{key} must be a JSON object")
        out[key] = copy.deepcopy(value) if value is not None else ({} if key == "meta" else None)
    expires_at = body.get("expires_at")
    if expires_at in (None, ""):
        out["expires_at"] = None
    elif isinstance(expires_at, str):
        parse_rfc3339(expires_at, "expires_at")
        out["expires_at"] = expires_at
    else:
        raise JobError("expires_at must be an RFC3339 timestamp string")
    out.update(_validate_quiet(body))
    return out


def _validate_quiet(body: dict[str, Any]) -> dict[str, Any]:
    tod, tz, period = body.get("quiet_time_of_day"), body.get("quiet_timezone"), body.get("quiet_period")
    if tod in (None, "") and period in (None, 0):
        if tz not in (None, ""):
            _check_timezone(tz)
        return {"quiet_time_of_day": None, "quiet_timezone": tz or None, "quiet_period": None}
    if not isinstance(tod, str) or not _TIME_OF_DAY.match(tod):
        raise JobError("quiet_time_of_day must be HH:MM (24-hour) when quiet_period is set, e.g. 02:00")
    if isinstance(period, bool) or not isinstance(period, (int, float)) or not 0 < period < 24:
        raise JobError("quiet_period must be a number of hours greater than 0 and less than 24")
    if tz not in (None, ""):
        _check_timezone(tz)
    return {"quiet_time_of_day": tod, "quiet_timezone": tz or None, "quiet_period": period}


def _check_timezone(tz: Any) -> None:
    try:
        if not isinstance(tz, str):
            raise ValueError
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise JobError(f"quiet_timezone must be an IANA time zone such as America/New_York, got {tz!r}") from None
