"""Metrics in the emulator: pushed third-party metrics (``POST /api/metric``) and audience size history.

Pushed points are kept per series ``(name, dimension, dimension_id, dimension_type)``. Audience sizes are recorded
by the profile store each time it computes a segment's size afresh (after data or segment changes), stamped with
the emulator's clock, so ``/api/segment/attribution`` and ``GET /api/metric?dimension=segsize`` return the sizes
the audience really had. Both live in memory (a restarted emulator starts a new history).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any

from airflow_provider_lytics.emulator.values import now_ms, parse_time_ms

#: Points kept per series (oldest dropped first).
MAX_POINTS = 10_000
#: Default number of points ``/api/segment/attribution`` returns (Lytics's default).
ATTRIBUTION_LIMIT = 168
_AGGREGATIONS = ("sum", "max", "min", "avg", "last")


class MetricError(ValueError):
    """A metric or a metric query is unusable; the message says what to send instead."""


def _series_key(doc: Mapping[str, Any]) -> tuple[str, str, str, str]:
    return (str(doc.get("name") or ""), str(doc.get("dimension") or ""), str(doc.get("dimension_id") or ""),
            str(doc.get("dimension_type") or ""))  # fmt: skip


def parse_metric(doc: Any, index: int, clock: Callable[[], int]) -> tuple[tuple[str, str, str, str], int, float]:
    """``(series key, ts ms, value)`` of one pushed metric object; raises :class:`MetricError`."""
    where = f"metric {index}"
    if not isinstance(doc, Mapping):
        raise MetricError(f"{where} is not a JSON object")
    if not (doc.get("name") or doc.get("dimension")):
        raise MetricError(f'{where} needs "name" (or "dimension"), e.g. {{"name": "nps", "value": 42}}')
    value = doc.get("value")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        try:
            value = float(str(value))
        except ValueError:
            raise MetricError(f'{where} has "value" {doc.get("value")!r}; send a number') from None
    raw_ts = doc.get("ts", doc.get("timestamp"))
    ts = clock() if raw_ts in (None, "") else parse_time_ms(raw_ts)
    if ts is None:
        raise MetricError(f'{where} has "ts" {raw_ts!r}; send epoch milliseconds or an ISO 8601 time')
    return _series_key(doc), ts, float(value)


class MetricStore:
    """Series of ``(ts ms, value)`` points; thread-safe."""

    def __init__(self, clock: Callable[[], int] = now_ms) -> None:
        self.clock = clock
        self._lock = threading.Lock()
        self._series: dict[tuple[str, str, str, str], list[tuple[int, float]]] = {}

    def push(self, docs: list[Any]) -> int:
        """Store every metric of ``docs`` (all or none: one bad object refuses the request)."""
        parsed = [parse_metric(doc, i, self.clock) for i, doc in enumerate(docs)]
        with self._lock:
            for key, ts, value in parsed:
                points = self._series.setdefault(key, [])
                points.append((ts, value))
                points.sort()
                del points[:-MAX_POINTS]
        return len(parsed)

    def record_size(self, segment_id: str, slug: str, size: int) -> None:
        """One audience size observation at the emulator's clock (skipped when the size did not change)."""
        key = (slug, "segsize", segment_id, "size")
        with self._lock:
            points = self._series.setdefault(key, [])
            if points and points[-1][1] == size:
                return
            points.append((self.clock(), float(size)))
            del points[:-MAX_POINTS]

    def size_history(self, segment_id: str, limit: int = ATTRIBUTION_LIMIT) -> list[dict[str, Any]]:
        with self._lock:
            points = next((p for k, p in self._series.items() if k[1] == "segsize" and k[2] == segment_id), [])
            return [{"ts": str(ts), "value": int(v)} for ts, v in points[-limit:]]

    def query(self, params: Mapping[str, str]) -> list[dict[str, Any]]:
        """``GET /api/metric``: matching series, points in ``[start, end]`` bucketed by ``interval``."""
        start, end = _window(params, self.clock())
        interval = _interval_ms(params.get("interval"))
        aggregation = (params.get("aggregation") or "sum").lower()
        if aggregation not in _AGGREGATIONS:
            raise MetricError(f"aggregation {aggregation!r} is not supported; use one of {', '.join(_AGGREGATIONS)}")
        wanted = {f: params.get(f) for f in ("name", "dimension", "dimension_id", "dimension_type") if params.get(f)}
        if wanted.get("dimension") == "segment":
            wanted["dimension"] = "segsize"
        if wanted.get("dimension_id") == "all_segments":
            wanted.pop("dimension_id")
        out = []
        with self._lock:
            series = list(self._series.items())
        for (name, dimension, dimension_id, dimension_type), points in sorted(series):
            key = {"name": name, "dimension": dimension, "dimension_id": dimension_id, "dimension_type": dimension_type}
            if any(
                key[f] != v and not (f == "dimension_id" and dimension == "segsize" and name == v)
                for f, v in wanted.items()
            ):  # fmt: skip  (an audience is also found by its slug)
                continue
            values = _bucket([(t, v) for t, v in points if start <= t <= end], interval, aggregation)
            out.append({**key, "range": params.get("range") or "", "aggregation": aggregation,
                        "interval": params.get("interval") or "", "is_cached": False, "values": values})  # fmt: skip
        return out

    def clear(self) -> None:
        with self._lock:
            self._series.clear()


def _window(params: Mapping[str, str], now: int) -> tuple[int, int]:
    if params.get("range"):
        text = params["range"].strip()
        ms = parse_time_ms(text) if not text.startswith("now") else _relative(text, now)
        if ms is None:
            raise MetricError(f"range {text!r} is not usable; send e.g. now-24h or now-7d")
        return ms, now
    start = parse_time_ms(params["start_date"]) if params.get("start_date") else 0
    end = parse_time_ms(params["end_date"]) if params.get("end_date") else now
    if start is None or end is None:
        raise MetricError("start_date/end_date must be epoch milliseconds or ISO 8601 times")
    return start, end


_UNITS = {"s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}


def _relative(text: str, now: int) -> int | None:
    if text == "now":
        return now
    body = text[3:]
    if len(body) < 3 or body[0] != "-" or body[-1] not in _UNITS or not body[1:-1].isdigit():
        return None
    return now - int(body[1:-1]) * _UNITS[body[-1]]


def _interval_ms(raw: str | None) -> int | None:
    if not raw:
        return None
    if raw[-1] in _UNITS and raw[:-1].isdigit() and int(raw[:-1]) > 0:
        return int(raw[:-1]) * _UNITS[raw[-1]]
    raise MetricError(f"interval {raw!r} is not usable; send e.g. 2h, 30m or 1d")


def _bucket(points: list[tuple[int, float]], interval: int | None, aggregation: str) -> list[dict[str, Any]]:
    if interval is None:
        return [{"ts": str(t), "value": _num(v)} for t, v in points]
    buckets: dict[int, list[float]] = {}
    for t, v in points:
        buckets.setdefault(t - t % interval, []).append(v)
    fold: dict[str, Callable[[list[float]], float]] = {
        "sum": sum, "max": max, "min": min, "last": lambda vs: vs[-1], "avg": lambda vs: sum(vs) / len(vs),
    }  # fmt: skip
    return [{"ts": str(t), "value": _num(fold[aggregation](vs))} for t, vs in sorted(buckets.items())]


def _num(value: float) -> int | float:
    return int(value) if float(value).is_integer() else round(value, 9)
