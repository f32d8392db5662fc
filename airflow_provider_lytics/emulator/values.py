"""Value helpers shared by the data plane: event-time parsing, RFC3339 output and Lytics-style rendering.

Lytics parses event timestamps very leniently and renders profile values as strings in scan and entity output
(``"score_intensity": "83"``); these helpers keep both behaviours in one place.
"""

from __future__ import annotations

import functools
import re
import time
from datetime import datetime, timezone
from typing import Any

from airflow_provider_lytics.emulator.clock import current_time

_DIGITS = re.compile(r"^-?\d+(\.\d+)?$")
_FORMATS = (
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%d %H:%M:%S.%f",
    "%Y/%m/%d %H:%M:%S",
    "%Y/%m/%d",
    "%m/%d/%Y %H:%M:%S",
    "%m/%d/%Y %H:%M",
    "%m/%d/%Y",
    "%d %b %Y",
    "%b %d, %Y",
    "%a, %d %b %Y %H:%M:%S %Z",
    "%a, %d %b %Y %H:%M:%S %z",
)


def now_ms() -> int:
    """Now in epoch milliseconds on the serving emulator's clock (the wall clock outside a request)."""
    return int(current_time() * 1000)


def _from_number(num: float) -> int:
    """Epoch seconds, milliseconds or nanoseconds to milliseconds, by magnitude (as Lytics does)."""
    mag = abs(num)
    if mag >= 1e17:  # nanoseconds
        return int(num / 1_000_000)
    if mag >= 1e14:  # microseconds
        return int(num / 1000)
    if mag >= 1e11:  # milliseconds
        return int(num)
    return int(num * 1000)  # seconds


def parse_time_ms(value: Any) -> int | None:
    """Parse an event timestamp (epoch s/ms/us/ns number or string, ISO 8601, common date formats) to epoch ms.

    Returns ``None`` when the value is not a recognisable time; callers then fall back to arrival time.
    """
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return _from_number(float(value))
    if isinstance(value, datetime):
        aware = value if value.tzinfo else value.replace(tzinfo=timezone.utc)
        return int(aware.timestamp() * 1000)
    text = str(value).strip()
    if not text:
        return None
    if _DIGITS.match(text):
        return _from_number(float(text))
    iso = text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text
    dt: datetime | None
    try:
        dt = datetime.fromisoformat(iso)
    except ValueError:
        dt = None
        for fmt in _FORMATS:
            try:
                dt = datetime.strptime(text, fmt)
                break
            except ValueError:
                continue
        if dt is None:
            return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return int(dt.timestamp() * 1000)


def rfc3339(ms: int | float | None) -> str | None:
    """Epoch milliseconds as an RFC3339 UTC string (``2024-05-01T12:00:00Z``, milliseconds when present)."""
    if ms is None:
        return None
    return _rfc3339(int(ms))


@functools.lru_cache(maxsize=65536)
def _rfc3339(ms: int) -> str:
    seconds, millis = divmod(ms, 1000)
    t = time.gmtime(seconds)
    base = f"{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d}T{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}"
    return f"{base}.{millis:03d}Z" if millis else f"{base}Z"


def render(value: Any) -> Any:
    """Render a profile value the way Lytics scan/entity output does: numbers and booleans become strings."""
    kind = type(value)
    if kind is str:
        return value
    if kind is list:
        return [v if type(v) is str else render(v) for v in value]
    if kind is int:
        return str(value)
    return _render_other(value)


def _render_other(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, list):
        return [render(v) for v in value]
    if isinstance(value, dict):
        return {k: render(v) for k, v in value.items()}
    return value


def value_type(value: Any) -> str:
    """The Lytics schema type name for an observed value."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "number"
    if isinstance(value, list):
        return "[]string"
    if isinstance(value, dict):
        return "map[string]string"
    return "string"
