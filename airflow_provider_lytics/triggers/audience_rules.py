"""Audience size and membership rules shared by the audience sensors and triggers.

Plain functions, apart from :mod:`.audience` (which re-exports them) so that a sensor built while a DAG file is
parsed validates its options without loading Airflow's trigger machinery.
"""

from __future__ import annotations

import hashlib
from typing import Any

from airflow_provider_lytics.errors import LyticsArgumentError

COMPARISONS = (">=", ">", "<=", "<")
CHANGES = ("any", "enter", "exit")


def size_reached(size: int, threshold: int, comparison: str) -> bool:
    """Whether ``size`` satisfies ``comparison`` against ``threshold``."""
    if comparison == ">=":
        return size >= threshold
    if comparison == ">":
        return size > threshold
    if comparison == "<=":
        return size <= threshold
    if comparison == "<":
        return size < threshold
    raise LyticsArgumentError(f"comparison must be one of {', '.join(COMPARISONS)}, got {comparison!r}")


def member_digest(value: Any) -> int:
    """A stable 64-bit digest of one member id (sets of these stand in for sets of ids)."""
    return int.from_bytes(hashlib.blake2b(str(value).encode(), digest_size=8).digest(), "big")


def change_counts(baseline: set[int], current: set[int]) -> dict[str, int]:
    """Members that entered and left between two snapshots, plus the current size."""
    return {"entered": len(current - baseline), "left": len(baseline - current), "size": len(current)}


def changed_enough(counts: dict[str, int], change: str, min_changes: int) -> bool:
    if change == "enter":
        n = counts["entered"]
    elif change == "exit":
        n = counts["left"]
    else:
        n = counts["entered"] + counts["left"]
    return n >= min_changes


async def snapshot_members(hook: Any, segment: str, id_field: str) -> set[int]:
    """Digests of every member's ``id_field``, one scan page in memory at a time."""
    out: set[int] = set()
    cursor: str | None = None
    while True:
        page = await hook.scan_page(segment, start=cursor, fields=[id_field])
        for record in page.records:
            value = record.get(id_field)
            if value not in (None, ""):
                out.add(member_digest(value))
        if not page.next_cursor or not page.records:
            return out
        cursor = page.next_cursor


def sync_snapshot_members(hook: Any, segment: str, id_field: str) -> set[int]:
    """The synchronous twin of :func:`snapshot_members` for poke-mode sensors."""
    out: set[int] = set()
    for page in hook.scan_pages(segment, fields=[id_field]):
        for record in page.records:
            value = record.get(id_field)
            if value not in (None, ""):
                out.add(member_digest(value))
    return out
