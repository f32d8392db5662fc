"""Audience sensors: size crossing a threshold, and membership changed (members entered or left).

Both work in poke, reschedule and deferrable modes. The membership sensor's baseline (digests of member ids
taken at the first poke) stays in the sensor between pokes, or in the trigger when deferred; in reschedule mode
each poke is a new process, so the baseline goes to object storage (``baseline_uri``) or, on Airflow 3.3+,
to the task state store (see :mod:`.baseline_store`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from airflow.providers.common.compat.sdk import AirflowFailException, BaseSensorOperator, PokeReturnValue, conf

from airflow_provider_lytics.errors import LyticsArgumentError, validate_event
from airflow_provider_lytics.links import LyticsAudienceLink, publish_links
from airflow_provider_lytics.sensors._deferral import defer_to_trigger
from airflow_provider_lytics.triggers.audience_rules import CHANGES, change_counts, changed_enough, size_reached


def _deferrable(value: bool | None) -> bool:
    return conf.getboolean("operators", "default_deferrable", fallback=False) if value is None else value


class LyticsAudienceSizeSensor(BaseSensorOperator):
    """Succeed when the audience size satisfies ``comparison threshold`` (e.g. ``>= 1000``); returns the size."""

    template_fields: Sequence[str] = ("segment", "threshold", "lytics_conn_id")
    ui_color = "#7B61FF"
    operator_extra_links = (LyticsAudienceLink(),)

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
            raise LyticsArgumentError(f"threshold must be an integer member count, got {self.threshold!r}") from None
        size = LyticsHook(self.lytics_conn_id).segment_size(self.segment)
        done = size_reached(size, threshold, self.comparison)
        self.log.info("Audience %s has %d members (want %s %d)", self.segment, size, self.comparison, threshold)
        return PokeReturnValue(is_done=done, xcom_value=size)

    def execute(self, context: Any) -> Any:
        publish_links(context, self.lytics_conn_id, audience=self.segment)
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
        return int(validate_event(event, f"audience size trigger for {self.segment}")["size"])


class LyticsAudienceMembershipSensor(BaseSensorOperator):
    """Succeed when members entered and/or left the audience since the first poke; returns the counts.

    :param change: ``any`` (entered + left), ``enter`` or ``exit``.
    :param min_changes: how many such changes are needed.
    :param id_field: profile field identifying a member (default ``_id``).
    :param baseline_uri: object storage folder every worker can reach (``s3://bucket/lytics-sensors``,
        ``file:///shared/...``) where the baseline is kept between pokes; in reschedule mode without it the
        baseline goes to Airflow 3.3's task state store (before 3.3 it is required). Deleted on success.
    :param baseline_conn_id: Airflow connection for ``baseline_uri`` (object storage credentials).
    :returns: ``{"entered": n, "left": n, "size": n}``.
    """

    template_fields: Sequence[str] = ("segment", "lytics_conn_id", "baseline_uri")
    ui_color = "#7B61FF"
    operator_extra_links = (LyticsAudienceLink(),)

    def __init__(
        self,
        *,
        segment: str,
        change: str = "any",
        min_changes: int = 1,
        id_field: str = "_id",
        baseline_uri: str | None = None,
        baseline_conn_id: str | None = None,
        lytics_conn_id: str = "lytics_default",
        deferrable: bool | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if change not in CHANGES:
            raise LyticsArgumentError(f"change must be one of {', '.join(CHANGES)}, got {change!r}")
        if min_changes < 1:
            raise LyticsArgumentError("min_changes must be at least 1")
        if self.mode == "reschedule" and not baseline_uri:
            from airflow_provider_lytics.sensors.baseline_store import task_state_store_available

            if not task_state_store_available():
                raise LyticsArgumentError(
                    "LyticsAudienceMembershipSensor in reschedule mode needs baseline_uri= (an object storage "
                    "folder every worker can reach, e.g. 's3://bucket/lytics-sensors') to keep its membership "
                    "baseline between pokes before Airflow 3.3; or use mode='poke' or deferrable=True"
                )
        self.baseline_uri, self.baseline_conn_id = baseline_uri, baseline_conn_id
        self.segment, self.change, self.min_changes, self.id_field = segment, change, int(min_changes), id_field
        self.lytics_conn_id = lytics_conn_id
        self.deferrable = _deferrable(deferrable)
        self._baseline: set[int] | None = None

    def poke(self, context: Mapping[str, Any]) -> PokeReturnValue:
        from airflow_provider_lytics.hooks.lytics import LyticsHook
        from airflow_provider_lytics.triggers.audience_rules import sync_snapshot_members

        current = sync_snapshot_members(LyticsHook(self.lytics_conn_id), self.segment, self.id_field)
        keeper = self._keeper(context)
        if self._baseline is None and keeper is not None:
            self._baseline = keeper.load()
        if self._baseline is None:
            self._baseline = current
            if keeper is not None:
                keeper.save(current)
            self.log.info(
                "Pinned membership baseline of %s: %d members%s", self.segment, len(current),
                f" (kept in {keeper})" if keeper is not None else "",
            )  # fmt: skip
            return PokeReturnValue(is_done=False)
        counts = change_counts(self._baseline, current)
        self.log.info(
            "Audience %s: %d entered, %d left since the baseline", self.segment, counts["entered"], counts["left"]
        )
        done = changed_enough(counts, self.change, self.min_changes)
        if done and keeper is not None:
            keeper.drop()
        return PokeReturnValue(is_done=done, xcom_value=counts)

    def _keeper(self, context: Mapping[str, Any]) -> Any:
        """Where the baseline survives between pokes: object storage, the task state store, or nowhere (memory)."""
        from airflow_provider_lytics.sensors import baseline_store

        if self.baseline_uri:
            return baseline_store.ObjectStorageBaseline(
                baseline_store.baseline_path(self.baseline_uri, context, self.baseline_conn_id)
            )
        if self.mode == "reschedule":
            store = context.get("task_state_store")
            if store is None:
                raise AirflowFailException(
                    "reschedule mode without baseline_uri keeps the baseline in the task state store, which this "
                    "run's context does not have: pass baseline_uri="
                )
            return baseline_store.TaskStateBaseline(store)
        return None

    def execute(self, context: Any) -> Any:
        publish_links(context, self.lytics_conn_id, audience=self.segment)
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
        event = validate_event(event, f"audience membership trigger for {self.segment}")
        return {k: event[k] for k in ("entered", "left", "size") if k in event}
