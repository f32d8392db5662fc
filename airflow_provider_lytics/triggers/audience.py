"""Async audience waits: size crossing a threshold, and membership changes (members entered or left).

``LyticsAudienceMembershipTrigger`` yields one event (for a deferred sensor). ``LyticsAudienceChangeEventTrigger``
keeps watching and yields an event each time membership changes, for Airflow 3 asset watchers
(``AssetWatcher(name=..., trigger=LyticsAudienceChangeEventTrigger(...))``).

Membership is a set of 64-bit digests of each member's id field, so memory grows by a few bytes per member and
never holds profiles; pages are fetched one at a time.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_lytics.errors import LyticsArgumentError
from airflow_provider_lytics.triggers.audience_rules import (  # the rules live apart; re-exported here
    CHANGES,
    change_counts,
    changed_enough,
    size_reached,
    snapshot_members,
)
from airflow_provider_lytics.triggers.audience_rules import COMPARISONS as COMPARISONS
from airflow_provider_lytics.triggers.audience_rules import member_digest as member_digest
from airflow_provider_lytics.triggers.audience_rules import sync_snapshot_members as sync_snapshot_members

try:  # Airflow 3: event-driven scheduling through asset watchers
    from airflow.triggers.base import BaseEventTrigger
except ImportError:  # Airflow 2.11: no asset watchers, the class is still usable as a plain trigger
    BaseEventTrigger = BaseTrigger  # type: ignore[misc,assignment]


def _hook(conn_id: str) -> Any:
    from airflow_provider_lytics.hooks.lytics_async import LyticsAsyncHook

    return LyticsAsyncHook(conn_id)


class LyticsAudienceSizeTrigger(BaseTrigger):
    """Yield ``success`` with the size once the audience size satisfies ``comparison threshold``."""

    def __init__(
        self,
        *,
        segment: str,
        threshold: int,
        comparison: str = ">=",
        end_time: float,
        lytics_conn_id: str = "lytics_default",
        poll_interval: float = 60.0,
    ) -> None:
        super().__init__()
        size_reached(0, 0, comparison)  # validates the comparison early
        self.segment, self.threshold, self.comparison = segment, int(threshold), comparison
        self.end_time, self.lytics_conn_id, self.poll_interval = float(end_time), lytics_conn_id, float(poll_interval)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "segment": self.segment,
                "threshold": self.threshold,
                "comparison": self.comparison,
                "end_time": self.end_time,
                "lytics_conn_id": self.lytics_conn_id,
                "poll_interval": self.poll_interval,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        try:
            async with _hook(self.lytics_conn_id) as hook:
                while True:
                    size = await hook.segment_size(self.segment)
                    if size_reached(size, self.threshold, self.comparison):
                        event = {
                            "status": "success",
                            "segment": self.segment,
                            "size": size,
                            "message": f"audience {self.segment} size {size} {self.comparison} {self.threshold}",
                        }
                        break
                    remaining = self.end_time - time.time()
                    if remaining <= 0:
                        event = {
                            "status": "timeout",
                            "segment": self.segment,
                            "size": size,
                            "message": f"audience {self.segment} size stayed at {size}, "
                            f"not {self.comparison} {self.threshold}, until the deadline",
                        }
                        break
                    await asyncio.sleep(min(self.poll_interval, remaining))
        except Exception as err:  # always one event
            event = {"status": "error", "segment": self.segment, "message": f"{type(err).__name__}: {err}"}
        yield TriggerEvent(event)


class LyticsAudienceMembershipTrigger(BaseTrigger):
    """Yield ``success`` with ``entered``/``left``/``size`` once membership changed enough since the baseline.

    The baseline is the membership when the trigger starts; a triggerer restart re-pins it (documented).
    """

    def __init__(
        self,
        *,
        segment: str,
        end_time: float,
        change: str = "any",
        min_changes: int = 1,
        id_field: str = "_id",
        lytics_conn_id: str = "lytics_default",
        poll_interval: float = 60.0,
    ) -> None:
        super().__init__()
        if change not in CHANGES:
            raise LyticsArgumentError(f"change must be one of {', '.join(CHANGES)}, got {change!r}")
        self.segment, self.end_time, self.change, self.min_changes = segment, float(end_time), change, int(min_changes)
        self.id_field, self.lytics_conn_id, self.poll_interval = id_field, lytics_conn_id, float(poll_interval)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "segment": self.segment,
                "end_time": self.end_time,
                "change": self.change,
                "min_changes": self.min_changes,
                "id_field": self.id_field,
                "lytics_conn_id": self.lytics_conn_id,
                "poll_interval": self.poll_interval,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        event: dict[str, Any]
        try:
            async with _hook(self.lytics_conn_id) as hook:
                baseline = await snapshot_members(hook, self.segment, self.id_field)
                while True:
                    remaining = self.end_time - time.time()
                    if remaining <= 0:
                        event = {
                            "status": "timeout",
                            "segment": self.segment,
                            "message": f"membership of {self.segment} did not change enough before the deadline",
                        }
                        break
                    await asyncio.sleep(min(self.poll_interval, remaining))
                    counts = change_counts(baseline, await snapshot_members(hook, self.segment, self.id_field))
                    if changed_enough(counts, self.change, self.min_changes):
                        event = {"status": "success", "segment": self.segment, **counts}
                        break
        except Exception as err:  # always one event
            event = {"status": "error", "segment": self.segment, "message": f"{type(err).__name__}: {err}"}
        yield TriggerEvent(event)


class LyticsAudienceChangeEventTrigger(BaseEventTrigger):
    """Watch an audience forever and yield one event per observed change (for ``AssetWatcher``).

    Each event carries ``segment``, ``entered``, ``left``, ``size`` and ``observed_at``. Poll failures are
    logged and retried; after ``max_consecutive_failures`` in a row the trigger raises so Airflow reports it.
    """

    def __init__(
        self,
        *,
        segment: str,
        change: str = "any",
        min_changes: int = 1,
        id_field: str = "_id",
        lytics_conn_id: str = "lytics_default",
        poll_interval: float = 60.0,
        max_consecutive_failures: int = 5,
    ) -> None:
        super().__init__()
        if change not in CHANGES:
            raise LyticsArgumentError(f"change must be one of {', '.join(CHANGES)}, got {change!r}")
        self.segment, self.change, self.min_changes, self.id_field = segment, change, int(min_changes), id_field
        self.lytics_conn_id, self.poll_interval = lytics_conn_id, float(poll_interval)
        self.max_consecutive_failures = int(max_consecutive_failures)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "segment": self.segment,
                "change": self.change,
                "min_changes": self.min_changes,
                "id_field": self.id_field,
                "lytics_conn_id": self.lytics_conn_id,
                "poll_interval": self.poll_interval,
                "max_consecutive_failures": self.max_consecutive_failures,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        from airflow_provider_lytics.client.errors import LyticsError

        failures = 0
        async with _hook(self.lytics_conn_id) as hook:
            baseline: set[int] | None = None
            while True:
                try:
                    current = await snapshot_members(hook, self.segment, self.id_field)
                    failures = 0
                except LyticsError as err:
                    failures += 1
                    self.log.warning("Audience %s poll failed (%d in a row): %s", self.segment, failures, err)
                    if failures >= self.max_consecutive_failures:
                        raise
                    await asyncio.sleep(self.poll_interval)
                    continue
                if baseline is not None:
                    counts = change_counts(baseline, current)
                    if changed_enough(counts, self.change, self.min_changes):
                        yield TriggerEvent({"segment": self.segment, **counts, "observed_at": time.time()})
                        baseline = current
                else:
                    baseline = current
                await asyncio.sleep(self.poll_interval)
