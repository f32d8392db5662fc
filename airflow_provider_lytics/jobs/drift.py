"""Drift between a :class:`LyticsJobSpec` and the job Lytics has, and the full-replace body that repairs it.

Only what the spec mentions is compared. The update body starts from every writable field of the existing job
and overlays the spec, so a PUT (which resets whatever it omits) never clears settings the DAG does not own.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from airflow_provider_lytics.jobs.spec import WRITABLE_FIELDS, LyticsJobSpec

_MISSING = object()


@dataclass(frozen=True)
class FieldDrift:
    """One managed field whose value on Lytics differs from the spec (``path`` like ``config.delimiter``)."""

    path: str
    current: Any
    desired: Any

    def describe(self) -> str:
        current = "<unset>" if self.current is _MISSING else repr(self.current)
        return f"{self.path}: {current} -> {self.desired!r}"


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return float(a) == float(b)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return a == b


def find_drift(spec: LyticsJobSpec, job: Mapping[str, Any]) -> list[FieldDrift]:
    """Managed fields whose value differs; empty when the job already matches the spec."""
    drift: list[FieldDrift] = []
    if job.get("name") != spec.name:
        drift.append(FieldDrift("name", job.get("name", _MISSING), spec.name))
    config = job.get("config") or {}
    for key in sorted(spec.config):
        current = config.get(key, _MISSING)
        if current is _MISSING or not _same(current, spec.config[key]):
            drift.append(FieldDrift(f"config.{key}", current, spec.config[key]))
    for key in sorted(spec.fields):
        desired = spec.fields[key]
        current = job.get(key, _MISSING)
        if desired is None and current in (None, "", [], _MISSING):
            continue
        if current is _MISSING or not _same(current, desired):
            drift.append(FieldDrift(key, current, desired))
    return drift


def update_request(spec: LyticsJobSpec, job: Mapping[str, Any]) -> dict[str, Any]:
    """The full JobRequest for ``PUT``: every writable field of ``job``, the spec's fields and config keys on top."""
    body: dict[str, Any] = {}
    for key in WRITABLE_FIELDS:
        if key in job and job[key] is not None:
            body[key] = copy.deepcopy(job[key])
    body["name"] = spec.name
    config = dict(copy.deepcopy(job.get("config") or {}))
    config.update(copy.deepcopy(dict(spec.config)))
    body["config"] = config
    for key, value in spec.fields.items():
        if value is None:
            body.pop(key, None)
        else:
            body[key] = copy.deepcopy(value)
    return body
