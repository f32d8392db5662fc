"""Metrics: push third-party metrics to Lytics, and read metrics or audience size history back.

``LyticsPushMetricsOperator`` checks every metric before sending any (a bad row fails the task naming the row,
and nothing is sent), then posts them in batches. ``LyticsGetMetricsOperator`` reads ``/api/metric`` series or
audience size history (``/api/segment/attribution``) into a CSV file and returns a small summary for XCom.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from airflow.providers.common.compat.sdk import AirflowException, BaseOperator

from airflow_provider_lytics.errors import LyticsArgumentError

_DIMENSIONS = ("dimension", "dimension_id", "dimension_type")


def read_metric_rows(path: str) -> list[dict[str, Any]]:
    """Metrics from a CSV (header row), NDJSON or JSON array file."""
    text = Path(path).read_text(encoding="utf-8-sig")
    if path.endswith((".json", ".ndjson", ".jsonl")):
        stripped = text.lstrip()
        if stripped.startswith("["):
            return list(json.loads(stripped))
        return [json.loads(line) for line in text.splitlines() if line.strip()]
    return [dict(row) for row in csv.DictReader(text.splitlines())]


def check_metric(row: Any, number: int) -> dict[str, Any]:
    """One metric as Lytics takes it; raises ``ValueError`` naming the row and what to fix."""
    if not isinstance(row, Mapping):
        raise ValueError(f"metric {number} is not an object with name and value")
    name = str(row.get("name") or "").strip()
    if not name:
        raise ValueError(f"metric {number} has no name")
    raw = row.get("value")
    try:
        value = float(raw)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValueError(f"metric {number} ({name}) has value {raw!r}; it must be a number") from None
    if math.isnan(value) or math.isinf(value):
        raise ValueError(f"metric {number} ({name}) has value {raw!r}; it must be a finite number")
    out: dict[str, Any] = {"name": name, "value": int(value) if value.is_integer() else value}
    ts = row.get("ts", row.get("timestamp"))
    if ts not in (None, ""):
        out["ts"] = ts if isinstance(ts, (int, float)) else str(ts)
    for key in _DIMENSIONS:
        if row.get(key) not in (None, ""):
            out[key] = str(row[key])
    return out


class LyticsPushMetricsOperator(BaseOperator):
    """Push metrics (``name``, ``value``, optional ``ts`` and ``dimension``/``dimension_id``/``dimension_type``).

    :param metrics: a list of metric mappings (templated), or
    :param path: a CSV / NDJSON / JSON file of them (templated), or
    :param dataframe: a callable returning a pandas DataFrame with those columns (called at run time).
    :param batch_size: metrics per ``POST /api/metric``.
    Returns ``{"pushed", "batches", "names"}``.
    """

    template_fields: Sequence[str] = ("metrics", "path", "lytics_conn_id")

    def __init__(
        self,
        *,
        metrics: Sequence[Mapping[str, Any]] | None = None,
        path: str | None = None,
        dataframe: Callable[[], Any] | None = None,
        batch_size: int = 500,
        lytics_conn_id: str = "lytics_default",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if sum(x is not None for x in (metrics, path, dataframe)) != 1:
            raise LyticsArgumentError("give exactly one of metrics, path or dataframe")
        if batch_size < 1:
            raise LyticsArgumentError("batch_size must be at least 1")
        self.metrics, self.path, self.dataframe = metrics, path, dataframe
        self.batch_size = batch_size
        self.lytics_conn_id = lytics_conn_id

    def _rows(self) -> list[Any]:
        if self.path is not None:
            return read_metric_rows(str(self.path))
        if self.dataframe is not None:
            frame = self.dataframe()
            records = frame.to_dict(orient="records")
            return [{k: v for k, v in row.items() if v == v} for row in records]  # v == v is False for NaN cells
        return list(self.metrics or [])

    def execute(self, context: Mapping[str, Any]) -> dict[str, Any]:
        from airflow_provider_lytics.hooks.lytics import LyticsHook

        try:
            rows = [check_metric(row, i) for i, row in enumerate(self._rows(), 1)]
        except (OSError, ValueError) as exc:
            raise AirflowException(f"metrics not sent: {exc}") from None
        if not rows:
            raise AirflowException("no metrics to push: the input is empty")
        hook = LyticsHook(self.lytics_conn_id)
        pushed = batches = 0
        for start in range(0, len(rows), self.batch_size):
            pushed += hook.push_metrics(rows[start : start + self.batch_size])
            batches += 1
        self.log.info("Pushed %d metrics in %d batch(es)", pushed, batches)
        return {"pushed": pushed, "batches": batches, "names": sorted({r["name"] for r in rows})}


class LyticsGetMetricsOperator(BaseOperator):
    """Read metric series (``query``: ``/api/metric`` parameters) or audience size history (``segments``).

    Writes one CSV row per point (``name, dimension, dimension_id, dimension_type, ts, value``) to ``output_path``
    when given, and returns ``{"series", "points", "latest": {series label: last value}}``.
    """

    template_fields: Sequence[str] = ("query", "segments", "output_path", "lytics_conn_id")

    def __init__(
        self,
        *,
        query: Mapping[str, Any] | None = None,
        segments: Sequence[str] | None = None,
        limit: int | None = None,
        output_path: str | None = None,
        lytics_conn_id: str = "lytics_default",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if (query is None) == (segments is None):
            raise LyticsArgumentError("give exactly one of query (metric series) or segments (audience size history)")
        self.query, self.segments, self.limit = query, segments, limit
        self.output_path = output_path
        self.lytics_conn_id = lytics_conn_id

    def execute(self, context: Mapping[str, Any]) -> dict[str, Any]:
        from airflow_provider_lytics.hooks.lytics import LyticsHook

        hook = LyticsHook(self.lytics_conn_id)
        rows: list[dict[str, Any]] = []
        if self.segments is not None:
            slugs = {s["id"]: s.get("slug_name") for s in hook.list_segments()}
            for entry in hook.segment_size_history(list(self.segments), limit=self.limit):
                for point in entry.get("metrics") or []:
                    rows.append({"name": slugs.get(entry["id"], entry["id"]), "dimension": "segsize",
                                 "dimension_id": entry["id"], "dimension_type": "size", **point})  # fmt: skip
        else:
            for series in hook.get_metrics(**dict(self.query or {})):
                base = {k: series.get(k, "") for k in ("name", *_DIMENSIONS)}
                rows.extend({**base, **point} for point in series.get("values") or [])
        latest: dict[str, Any] = {}
        for row in rows:
            latest[str(row["name"] or row["dimension_id"])] = row["value"]
        if self.output_path:
            out = Path(self.output_path)
            out.parent.mkdir(parents=True, exist_ok=True)
            with out.open("w", newline="") as handle:
                writer = csv.DictWriter(handle, ["name", *_DIMENSIONS, "ts", "value"], extrasaction="ignore")
                writer.writeheader()
                writer.writerows(rows)
        series_count = len({(r["name"], r["dimension_id"]) for r in rows})
        self.log.info("Read %d points of %d series", len(rows), series_count)
        return {"series": series_count, "points": len(rows), "latest": latest, "path": self.output_path}
