"""Time helpers of the emulator's jobs engine: RFC3339 timestamps, durations such as ``30m``, quiet windows.

The engine keeps epoch seconds internally and shows RFC3339 strings in the API; job commands take durations and
jobs may have a daily quiet window. These are pure functions with no engine state, shared by the engine, request
validation, the authorization registry and the webhook runners.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from datetime import time as dtime
from zoneinfo import ZoneInfo

from airflow_provider_lytics.emulator.job_errors import JobError

# ----------------------------------------------------------------------------------------------------------------
# Small helpers: timestamps, durations, quiet windows.
# ----------------------------------------------------------------------------------------------------------------


def rfc3339(ts: float | None) -> str | None:
    """Epoch seconds as RFC3339 UTC with milliseconds (``2026-01-01T00:00:00.000Z``)."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def parse_rfc3339(value: str, field_name: str) -> float:
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except (ValueError, AttributeError):
        raise JobError(
            f"{field_name} must be an RFC3339 timestamp such as 2026-01-31T00:00:00Z, got {value!r}"
        ) from None


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(value: str) -> float:
    """``90s``/``30m``/``1h``/``2d``/``1w`` (or plain seconds) to seconds."""
    match = _DURATION.match(str(value))
    if not match or float(match.group(1)) <= 0:
        raise JobError(f"duration must look like 30m, 1h or 2d, got {value!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


_TIME_OF_DAY = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")


def quiet_window_end(ts: float, time_of_day: str | None, tz: str | None, period_hours: float | None) -> float | None:
    """End of the daily quiet window containing ``ts``, or None when ``ts`` is outside every window."""
    if not time_of_day or not period_hours:
        return None
    match = _TIME_OF_DAY.match(time_of_day)
    if not match:
        return None
    zone = ZoneInfo(tz or "UTC")
    local = datetime.fromtimestamp(ts, zone)
    for offset in (0, -1):
        day = local.date() + timedelta(days=offset)
        start = datetime.combine(day, dtime(int(match.group(1)), int(match.group(2))), tzinfo=zone).timestamp()
        end = start + float(period_hours) * 3600
        if start <= ts < end:
            return end
    return None
