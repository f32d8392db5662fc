"""The declarative description of a Lytics job that a DAG owns (``LyticsJobSpec``).

A spec names only the fields the DAG cares about. Fields it leaves out are kept as they are on the existing job
(Lytics's update replaces the whole job, so the operator merges before it writes: see :mod:`.drift`).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_lytics.client.errors import LyticsConfigError

#: Optional JobRequest fields a spec may set, with the type each must have.
OPTIONAL_FIELDS: dict[str, tuple[type, ...]] = {
    "description": (str,),
    "tag": (str,),
    "auth_ids": (list,),
    "quiet_time_of_day": (str,),
    "quiet_timezone": (str,),
    "quiet_period": (int, float),
    "drop_events_during_quiet_window": (bool,),
    "expires_at": (str,),
    "hidden": (bool,),
    "verbose_logging": (bool,),
    "monitoring": (dict,),
}

#: Every writable JobRequest field (what a full-replace PUT must carry so nothing resets).
WRITABLE_FIELDS = ("name", "config", *OPTIONAL_FIELDS, "meta", "anomaly_rule")

_TIME_OF_DAY = re.compile(r"^([01]?\d|2[0-3]):[0-5]\d$")
_WORKFLOW = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-]{0,127}$")


@dataclass(frozen=True)
class LyticsJobSpec:
    """A Lytics job declared in code.

    :param workflow: workflow slug, e.g. ``sftp_import`` or ``webhook_triggers``.
    :param name: job name; together with ``workflow`` (or with ``tag`` when given) it finds the existing job.
    :param config: workflow settings the DAG owns; keys not listed are kept as they are on the job.
    :param fields: optional JobRequest fields (``auth_ids``, ``quiet_time_of_day``, ``quiet_timezone``,
        ``quiet_period``, ``description``, ``tag``, ``expires_at``...). Only the ones given are managed.
    """

    workflow: str
    name: str
    config: dict[str, Any] = field(default_factory=dict)
    fields: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.workflow, str) or not _WORKFLOW.match(self.workflow):
            raise LyticsConfigError(
                f"workflow must be a Lytics workflow slug such as sftp_import, got {self.workflow!r}"
            )
        if not isinstance(self.name, str) or not self.name.strip():
            raise LyticsConfigError("name must be a non-empty string: it identifies the job across DAG runs")
        if not isinstance(self.config, Mapping):
            raise LyticsConfigError(f"config must be a mapping of workflow settings, got {type(self.config).__name__}")
        if not isinstance(self.fields, Mapping):
            raise LyticsConfigError("fields must be a mapping of JobRequest fields")
        for key, value in self.fields.items():
            if key not in OPTIONAL_FIELDS:
                allowed = ", ".join(OPTIONAL_FIELDS)
                raise LyticsConfigError(f"unknown job field {key!r}; a spec may set: {allowed}")
            if value is not None and (
                (isinstance(value, bool) and bool not in OPTIONAL_FIELDS[key])
                or not isinstance(value, OPTIONAL_FIELDS[key])
            ):
                want = " or ".join(t.__name__ for t in OPTIONAL_FIELDS[key])
                raise LyticsConfigError(f"job field {key} must be {want}, got {value!r}")
        auth_ids = self.fields.get("auth_ids")
        if auth_ids is not None and not all(isinstance(a, str) and a for a in auth_ids):
            raise LyticsConfigError("auth_ids must be a list of authorization id strings")
        tod = self.fields.get("quiet_time_of_day")
        if tod and not _TIME_OF_DAY.match(tod):
            raise LyticsConfigError(f"quiet_time_of_day must be HH:MM in 24-hour time, got {tod!r}")
        period = self.fields.get("quiet_period")
        if period is not None and not 0 < period < 24:
            raise LyticsConfigError(f"quiet_period must be hours between 0 and 24 (exclusive), got {period!r}")
        if (tod is None) != (period is None):
            raise LyticsConfigError("quiet_time_of_day and quiet_period go together: set both or neither")
        tz = self.fields.get("quiet_timezone")
        if tz:
            from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

            try:
                ZoneInfo(tz)
            except (ZoneInfoNotFoundError, ValueError):
                raise LyticsConfigError(
                    f"quiet_timezone must be an IANA zone such as Europe/Paris, got {tz!r}"
                ) from None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LyticsJobSpec:
        """Build a spec from one flat mapping (``workflow``, ``name``, ``config`` plus optional fields)."""
        if isinstance(data, LyticsJobSpec):
            return data
        if not isinstance(data, Mapping):
            raise LyticsConfigError(f"a job spec must be a mapping or LyticsJobSpec, got {type(data).__name__}")
        missing = [key for key in ("workflow", "name") if not data.get(key)]
        if missing:
            raise LyticsConfigError(f"job spec is missing {', '.join(missing)}")
        rest = {k: v for k, v in data.items() if k not in ("workflow", "name", "config")}
        return cls(workflow=data["workflow"], name=data["name"], config=dict(data.get("config") or {}), fields=rest)

    def to_dict(self) -> dict[str, Any]:
        """The flat, JSON-friendly form (inverse of :meth:`from_dict`)."""
        return {
            "workflow": self.workflow,
            "name": self.name,
            "config": copy.deepcopy(dict(self.config)),
            **copy.deepcopy(dict(self.fields)),
        }

    def create_request(self) -> dict[str, Any]:
        """The JobRequest body for creating this job (only the fields the spec sets)."""
        body: dict[str, Any] = {"name": self.name, "config": copy.deepcopy(dict(self.config))}
        body.update({k: copy.deepcopy(v) for k, v in self.fields.items() if v is not None})
        return body

    def matches(self, job: Mapping[str, Any]) -> bool:
        """True when ``job`` is the one this spec owns: same workflow, and same tag (when set) or same name."""
        if job.get("deleted") or job.get("workflow") not in (self.workflow, self.workflow.replace("-", "_")):
            return False
        tag = self.fields.get("tag")
        if tag:
            return job.get("tag") == tag
        return job.get("name") == self.name
