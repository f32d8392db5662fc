"""Type-tolerant value coercion for FilterQL evaluation: numbers, timestamps and date math.

Lytics profiles often hold numbers as strings ("83") and dates as ISO strings, epoch seconds or epoch
milliseconds (numeric or numeric strings); these helpers turn such values into floats / POSIX seconds.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Callable
from datetime import date, datetime, timedelta, timezone

from airflow_provider_lytics.emulator.filterql_lexer import FilterQLError

__all__ = [
    "as_number",
    "compile_date_math",
    "epoch_to_seconds",
    "is_date_math",
    "looks_like_date",
    "parse_date_math",
    "parse_datetime",
    "to_timestamp",
]

UTC = timezone.utc
_NUM_RE = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_ISO_START = re.compile(r"\d{4}-\d{1,2}-\d{1,2}")
_ISO_RE = re.compile(
    r"(\d{4})-(\d{1,2})-(\d{1,2})"
    r"(?:[T ](\d{1,2}):(\d{2})(?::(\d{2})(?:[.,](\d+))?)?)?"
    r"\s*(Z|z|UTC|[+-]\d{2}(?::?\d{2})?)?"
)
_US_DATE_RE = re.compile(r"(\d{1,2})/(\d{1,2})/(\d{4})")
_DATE_MATH_TERM = re.compile(r"([+-])(\d+)([yMwdhmsYWDHS])")
_UNIT_SECONDS = {"w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1}
_UNIT_ALIASES = {"Y": "y", "W": "w", "D": "d", "H": "h", "S": "s"}
_DATE_MATH_HINT = 'use "now", "now-30d", "now+2h", "now-3M" or "now-1d/d" (units: y M w d h m s)'
# Epoch values at or above this are milliseconds (1e11 seconds is the year 5138; 1e11 ms is 1973).
_MS_THRESHOLD = 1e11


def as_number(value: object) -> float | int | None:
    """Return ``value`` as a number when it is an int/float or a numeric string; None otherwise (bools too)."""
    cls = value.__class__
    if cls is int or cls is float:
        return value  # type: ignore[return-value]
    if cls is str:
        if value and _NUM_RE.fullmatch(value):  # type: ignore[call-overload]
            return float(value)  # type: ignore[arg-type]
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value
    return None


def epoch_to_seconds(number: float) -> float:
    """Interpret an epoch number as seconds or milliseconds by magnitude and return POSIX seconds."""
    return number / 1000.0 if abs(number) >= _MS_THRESHOLD else float(number)


def looks_like_date(text: str) -> bool:
    """True for strings that look like absolute dates (ISO/RFC3339 or MM/DD/YYYY)."""
    return bool(_ISO_START.match(text) or _US_DATE_RE.fullmatch(text))


def parse_datetime(text: str) -> datetime | None:
    """Parse an ISO-8601 / RFC3339 string (or MM/DD/YYYY) into an aware UTC-default datetime; None if not a date."""
    if len(text) < 8 or not text[0].isdigit():
        return None
    candidate = text[:-1] + "+00:00" if text[-1] in "Zz" else text
    try:
        dt = datetime.fromisoformat(candidate)
    except ValueError:
        slow = _parse_datetime_slow(text)
        if slow is None:
            return None
        dt = slow
    return dt if dt.tzinfo is not None else dt.replace(tzinfo=UTC)


def _parse_datetime_slow(text: str) -> datetime | None:
    m = _ISO_RE.fullmatch(text.strip())
    try:
        if m:
            y, mo, d, hh, mi, ss, frac, tz = m.groups()
            micro = int((frac or "0")[:6].ljust(6, "0"))
            tzinfo = UTC
            if tz and tz not in ("Z", "z", "UTC"):
                sign = -1 if tz[0] == "-" else 1
                digits = tz[1:].replace(":", "")
                offset = timedelta(hours=int(digits[:2]), minutes=int(digits[2:4] or 0))
                tzinfo = timezone(sign * offset)
            return datetime(int(y), int(mo), int(d), int(hh or 0), int(mi or 0), int(ss or 0), micro, tzinfo)
        m = _US_DATE_RE.fullmatch(text.strip())
        if m:
            return datetime(int(m.group(3)), int(m.group(1)), int(m.group(2)), tzinfo=UTC)
    except ValueError:
        return None
    return None


def to_timestamp(value: object) -> float | None:
    """POSIX seconds for a profile value: datetime, ISO string, epoch seconds or ms (numbers or numeric strings)."""
    cls = value.__class__
    if cls is int or cls is float:
        return epoch_to_seconds(value)  # type: ignore[arg-type]
    if cls is str:
        if not value:
            return None
        if _NUM_RE.fullmatch(value):  # type: ignore[call-overload]
            return epoch_to_seconds(float(value))  # type: ignore[arg-type]
        dt = parse_datetime(value)  # type: ignore[arg-type]
        return None if dt is None else dt.timestamp()
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC).timestamp()
    return None


def is_date_math(text: str) -> bool:
    """True when ``text`` is meant as date math: "now", optionally followed by anything but a letter or "_"."""
    low = text.strip().lower()
    return low[:3] == "now" and (len(low) == 3 or not (low[3].isalnum() or low[3] == "_") or low[3].isdigit())


def _add_months(dt: datetime, months: int) -> datetime:
    total = dt.year * 12 + (dt.month - 1) + months
    year, month = divmod(total, 12)
    if not 1 <= year <= 9999:
        raise OverflowError("date out of range")
    day = min(dt.day, calendar.monthrange(year, month + 1)[1])
    return dt.replace(year=year, month=month + 1, day=day)


def _round_down(dt: datetime, unit: str) -> datetime:
    if unit == "y":
        return dt.replace(month=1, day=1, hour=0, minute=0, second=0, microsecond=0)
    if unit == "M":
        return dt.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    if unit == "w":
        start = dt - timedelta(days=dt.weekday())
        return start.replace(hour=0, minute=0, second=0, microsecond=0)
    if unit == "d":
        return dt.replace(hour=0, minute=0, second=0, microsecond=0)
    if unit == "h":
        return dt.replace(minute=0, second=0, microsecond=0)
    if unit == "m":
        return dt.replace(second=0, microsecond=0)
    return dt.replace(microsecond=0)


def _parse_terms(text: str) -> tuple[list[tuple[int, str]], str | None]:
    """Split date math after "now" into signed (amount, unit) terms and an optional rounding unit."""
    body = text.strip()[3:]
    rounding = None
    if "/" in body:
        body, _, rounding = body.partition("/")
        rounding = _UNIT_ALIASES.get(rounding, rounding)
        if rounding not in ("y", "M", "w", "d", "h", "m", "s"):
            raise FilterQLError(f"invalid date math {text!r}: unknown rounding unit {rounding!r}", hint=_DATE_MATH_HINT)
    terms: list[tuple[int, str]] = []
    pos = 0
    for m in _DATE_MATH_TERM.finditer(body):
        if m.start() != pos:
            break
        amount = int(m.group(2)) * (-1 if m.group(1) == "-" else 1)
        terms.append((amount, _UNIT_ALIASES.get(m.group(3), m.group(3))))
        pos = m.end()
    if pos != len(body):
        raise FilterQLError(f"invalid date math {text!r}", hint=_DATE_MATH_HINT)
    return terms, rounding


def _apply(now: datetime, terms: list[tuple[int, str]], rounding: str | None, text: str) -> datetime:
    try:
        dt = now
        for amount, unit in terms:
            if unit == "y":
                dt = _add_months(dt, 12 * amount)
            elif unit == "M":
                dt = _add_months(dt, amount)
            else:
                dt = dt + timedelta(seconds=amount * _UNIT_SECONDS[unit])
        return _round_down(dt, rounding) if rounding else dt
    except (OverflowError, ValueError) as exc:
        raise FilterQLError(f"date math {text!r} is out of range", hint=_DATE_MATH_HINT) from exc


def parse_date_math(value: str, now: datetime) -> datetime | None:
    """Resolve Lytics date math ("now", "now-30d", "now+2h", "now-3M", "now-1d/d") relative to ``now``.

    Returns None when ``value`` is not date math at all (does not start with "now"), so callers can fall
    back to absolute dates; raises FilterQLError for malformed date math such as "now-3x". A naive ``now``
    is taken as UTC.
    """
    if not isinstance(value, str) or not is_date_math(value):
        return None
    terms, rounding = _parse_terms(value)
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    return _apply(now, terms, rounding, value)


def compile_date_math(text: str) -> Callable[[datetime], float]:
    """Pre-parse date math once; the result maps an aware ``now`` to POSIX seconds cheaply."""
    terms, rounding = _parse_terms(text)
    if rounding is None and all(unit in _UNIT_SECONDS for _, unit in terms):
        delta = float(sum(amount * _UNIT_SECONDS[unit] for amount, unit in terms))
        return lambda now: now.timestamp() + delta
    return lambda now: _apply(now, terms, rounding, text).timestamp()
