"""Per-stream statistics observed at ingest: event counts, timestamps and field catalogue (type, cardinality,
samples). They back ``/api/schema/_streams``, ``/v2/stream*`` and the observed table schema."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from itertools import chain
from typing import Any

from airflow_provider_lytics.emulator.identity import UID_FIELD, column_name
from airflow_provider_lytics.emulator.values import rfc3339, value_type

#: Distinct values remembered per field to estimate cardinality.
CARD_CAP = 1000
SAMPLES = 5
#: Records per ingest batch whose values are inspected for types, samples and cardinality.
SAMPLE_ROWS = 256


class StreamStats:
    """Statistics of one stream; ``to_doc``/``from_doc`` round-trip through the state DB."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.count = 0
        self.bytes = 0
        self.created: int | None = None
        self.last_msg: int | None = None
        self.fields: dict[str, dict[str, Any]] = {}
        self._distinct: dict[str, set[str]] = {}

    def observe(self, records: Sequence[Mapping[str, Any]], arrival_ms: int) -> None:
        """Account for a batch of accepted events.

        Field usage is counted for every record (C-speed ``Counter``); types, samples, sizes and cardinality are
        estimated from up to :data:`SAMPLE_ROWS` records per batch, which keeps ingest fast and flat.
        """
        if not records:
            return
        self.count += len(records)
        self.created = self.created or arrival_ms
        self.last_msg = arrival_ms
        fields, distinct = self.fields, self._distinct
        usage = Counter(chain.from_iterable(records))
        step = max(1, len(records) // SAMPLE_ROWS)
        sampled = records[::step]
        size = 0
        for record in sampled:
            size += 2
            for name, value in record.items():
                text = value if isinstance(value, str) else str(value)
                size += len(name) + len(text) + 6
                info = fields.get(name)
                if info is None:
                    info = fields[name] = {
                        "type": value_type(value), "count": 0, "card": 0, "sample": [],
                        "first_seen": arrival_ms, "last_seen": arrival_ms, "is_array": isinstance(value, list),
                    }  # fmt: skip
                seen = distinct.setdefault(name, set())
                if len(seen) < CARD_CAP and text not in seen:
                    seen.add(text)
                    if len(info["sample"]) < SAMPLES:
                        info["sample"].append(text)
        for name, n in usage.items():
            info = fields.get(name)
            if info is None:  # not in the sample: type from the first record carrying it
                value = next(r[name] for r in records if name in r)
                info = fields[name] = {
                    "type": value_type(value), "count": 0, "card": 0, "sample": [],
                    "first_seen": arrival_ms, "last_seen": arrival_ms, "is_array": isinstance(value, list),
                }  # fmt: skip
            info["count"] += n
            info["last_seen"] = arrival_ms
            seen_count = len(distinct.get(name, ()))
            # Scale the sampled distinct count back up, bounded by the number of values actually seen.
            info["card"] = max(
                info["card"], min(info["count"], seen_count * step if seen_count >= 0.9 * len(sampled) else seen_count)
            )
        self.bytes += size * step

    def to_doc(self) -> dict[str, Any]:
        return {
            "name": self.name, "count": self.count, "bytes": self.bytes, "created": self.created,
            "last_msg": self.last_msg, "fields": self.fields,
            "distinct": {k: sorted(v)[:CARD_CAP] for k, v in self._distinct.items()},
        }  # fmt: skip

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> StreamStats:
        stats = cls(doc["name"])
        stats.count, stats.bytes = doc.get("count", 0), doc.get("bytes", 0)
        stats.created, stats.last_msg = doc.get("created"), doc.get("last_msg")
        stats.fields = dict(doc.get("fields") or {})
        stats._distinct = {k: set(v) for k, v in (doc.get("distinct") or {}).items()}
        return stats

    # -- API shapes --------------------------------------------------------------------------------------
    def as_v1(self) -> dict[str, Any]:
        """The ``/api/schema/_streams`` entry (timestamps as epoch-ms strings)."""
        last = str(self.last_msg or 0)
        return {
            "stream": self.name, "ct": self.count, "curct": self.count, "hidden": False,
            "last_msg_ts": last, "last_update_ts": last,
            "fields": [
                {
                    "name": name, "type": info["type"], "card": info["card"], "is_array": info["is_array"],
                    "sample": list(info["sample"]), "usage": info["count"],
                    "first_seen": rfc3339(info["first_seen"]), "last_seen": rfc3339(info["last_seen"]),
                    "hidden": False, "column": [{"table": "user", "as": column_name(name)}],
                }
                for name, info in sorted(self.fields.items())
            ],
        }  # fmt: skip

    def as_v2(self) -> dict[str, Any]:
        return {
            "id": self.name, "slug": self.name, "name": self.name, "channel": "api", "count": self.count,
            "avg_event_size": round(self.bytes / self.count) if self.count else 0, "hidden": False,
            "internal": False, "created": rfc3339(self.created), "last_event": rfc3339(self.last_msg),
            "fields": sorted(self.fields), "jobs": [], "anomaly_rule": None,
        }  # fmt: skip


def table_columns(streams: Iterable[StreamStats], identity_fields: Sequence[str]) -> list[dict[str, Any]]:
    """Columns of the ``user`` table as observed: every field seen on any stream, plus identity columns."""
    columns: dict[str, dict[str, Any]] = {}
    ids = set(identity_fields)
    for stats in streams:
        for name, info in stats.fields.items():
            if name.startswith("_") and name not in ids:
                continue
            col = column_name(name)
            entry = columns.get(col)
            if entry is None:
                is_list = info["is_array"] or name == UID_FIELD
                entry = columns[col] = {
                    "as": col, "is_by": name in ids, "type": "[]string" if name == UID_FIELD else info["type"],
                    "op": "set" if is_list else "latest", "shortdesc": col.replace("_", " ").strip().title(),
                    "longdesc": "", "froms": [], "identities": [name],
                }  # fmt: skip
            if stats.name not in entry["froms"]:
                entry["froms"].append(stats.name)
    return [columns[c] for c in sorted(columns)]
