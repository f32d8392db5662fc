"""Audience sensors: size crossing a threshold, and membership changed (members entered or left).

Both work in poke and deferrable modes; the size sensor also in reschedule mode. The membership sensor's
baseline (digests of member ids taken at the first poke) lives in the sensor between pokes, which reschedule mode
cannot keep, so reschedule is refused with a clear error: use poke or deferrable.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from airflow.providers.common.compat.sdk import AirflowFailException, BaseSensorOperator, PokeReturnValue, conf

from airflow_provider_lytics.sensors._deferral import defer_to_trigger
from airflow_provider_lytics.triggers.audience import CHANGES, change_counts, changed_enough, size_reached


def _deferrable(value: bool | None) -> bool:
    return conf.getboolean("operators", "default_deferrable", fallback=False) if value is None else value


def _finish(event: Any, key: str) -> Any:
    if isinstance(event, Mapping) and event.get("status") == "success":
        return event.get(key) if key != "*" else {k: event[k] for k in ("entered", "left", "size") if k in event}
    if isinstance(event, Mapping) and event.get("status") in ("timeout", "error"):
        raise AirflowFailException(event.get("message") or f"audience wait ended with {event['status']}")
    raise AirflowFailException(f"audience trigger sent an unexpected event {event!r}; failing closed")


class LyticsAudienceSizeSensor(BaseSensorOperator):
    """Succeed when the audience size satisfies ``comparison threshold`` (e.g. ``>= 1000``); returns the size."""

    template_fields: Sequence[str] = ("segment", "threshold", "lytics_conn_id")
    ui_color = "#7B61FF"

    def __init__(
        self,
        *,
        segment: str,
        threshold: int,
        comparison: str = ">=",
        lytics_conn_id: str = "lytics_default",
        deferrable: bool | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        size_reached(0, 0, comparison)
        self.segment, self.threshold, self.comparison = segment, threshold, comparison
        self.lytics_conn_id = lytics_conn_id
        self.deferrable = _deferrable(deferrable)

    def poke(self, context: Mapping[str, Any]) -> PokeReturnValue:
        from airflow_provider_lytics.hooks.lytics import LyticsHook

        try:
            threshold = int(self.threshold)
        except (TypeError, ValueError):
            raise ValueError(f"threshold must be an integer member count, got {self.threshold!r}") from None
        size = LyticsHook(self.lytics_conn_id).segment_size(self.segment)
        done = size_reached(size, threshold, self.comparison)
        self.log.info("Audience %s has %d members (want %s %d)", self.segment, size, self.comparison, threshold)
        return PokeReturnValue(is_done=done, xcom_value=size)

    def execute(self, context: Mapping[str, Any]) -> Any:
        if not self.deferrable:
            return super().execute(context)
        result = self.poke(context)
        if result.is_done:
            return result.xcom_value
        from airflow_provider_lytics.triggers.audience import LyticsAudienceSizeTrigger

        defer_to_trigger(
            self,
            lambda end_time: LyticsAudienceSizeTrigger(
                segment=self.segment,
                threshold=int(self.threshold),
                comparison=self.comparison,
                end_time=end_time,
                lytics_conn_id=self.lytics_conn_id,
                poll_interval=float(self.poke_interval),
            ),
        )

    def execute_complete(self, context: Mapping[str, Any], event: Mapping[str, Any] | None = None) -> int:
        return int(_finish(event, "size"))


class LyticsAudienceMembershipSensor(BaseSensorOperator):
    """Succeed when members entered and/or left the audience since the first poke; returns the counts.

    :param change: ``any`` (entered + left), ``enter`` or ``exit``.
    :param min_changes: how many such changes are needed.
    :param id_field: profile field identifying a member (default ``_id``).
    :returns: ``{"entered": n, "left": n, "size": n}``.
    """

    template_fields: Sequence[str] = ("segment", "lytics_conn_id")
    ui_color = "#7B61FF"

    def __init__(
        self,
        *,
        segment: str,
        change: str = "any",
        min_changes: int = 1,
        id_field: str = "_id",
        lytics_conn_id: str = "lytics_default",
        deferrable: bool | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if change not in CHANGES:
            raise ValueError(f"change must be one of {', '.join(CHANGES)}, got {change!r}")
        if min_changes < 1:
            raise ValueError("min_changes must be at least 1")
        if self.mode == "reschedule":
            raise ValueError(
                "LyticsAudienceMembershipSensor keeps its membership baseline between pokes, which reschedule mode "
                "cannot: use mode='poke' or deferrable=True"
            )
        self.segment, self.change, self.min_changes, self.id_field = segment, change, int(min_changes), id_field
        self.lytics_conn_id = lytics_conn_id
        self.deferrable = _deferrable(deferrable)
        self._baseline: set[int] | None = None

    def poke(self, context: Mapping[str, Any]) -> PokeReturnValue:
        from airflow_provider_lytics.hooks.lytics import LyticsHook
        from airflow_provider_lytics.triggers.audience import sync_snapshot_members

        current = sync_snapshot_members(LyticsHook(self.lytics_conn_id), self.segment, self.id_field)
        if self._baseline is None:
            self._baseline = current
            self.log.info("Pinned membership baseline of %s: %d members", self.segment, len(current))
            return PokeReturnValue(is_done=False)
        counts = change_counts(self._baseline, current)
        self.log.info(
            "Audience %s: %d entered, %d left since the baseline", self.segment, counts["entered"], counts["left"]
        )
        return PokeReturnValue(is_done=changed_enough(counts, self.change, self.min_changes), xcom_value=counts)

    def execute(self, context: Mapping[str, Any]) -> Any:
        if not self.deferrable:
            return super().execute(context)
        from airflow_provider_lytics.triggers.audience import LyticsAudienceMembershipTrigger

        defer_to_trigger(
            self,
            lambda end_time: LyticsAudienceMembershipTrigger(
                segment=self.segment,
                end_time=end_time,
                change=self.change,
                min_changes=self.min_changes,
                id_field=self.id_field,
                lytics_conn_id=self.lytics_conn_id,
                poll_interval=float(self.poke_interval),
            ),
        )

    def execute_complete(self, context: Mapping[str, Any], event: Mapping[str, Any] | None = None) -> dict:
        return _finish(event, "*")
