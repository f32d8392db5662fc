"""Template macros that exist for every DAG run, however it was started, on Airflow 2.11 and 3.x.

Airflow 3 creates runs without a logical date (REST API, ``airflow dags trigger``, asset events): ``ds``,
``ts_nodash``, ``logical_date`` and the data interval are then missing from the context and a template using
them fails. These macros read the run itself instead: its logical date when it has one, otherwise
``dag_run.run_after`` (Airflow 3: when the run became due; fixed for the run, so every retry renders the same
value). Airflow 2.11 has no ``run_after`` but always sets a logical date. Use them through
``user_defined_macros=RUN_MACROS``::

    results_path="{{ params.results_dir }}/{{ run_day(dag_run) }}/results.ndjson"

``http_url`` reads an ``http`` connection when the task runs (never when the DAG file is parsed), so a
webhook URL lives in a connection every worker can see instead of an environment variable.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def run_moment(dag_run: Any) -> datetime:
    """The run's logical date, else its ``run_after``, else its start date; raises if it has none of them."""
    for attr in ("logical_date", "run_after", "start_date"):
        value = getattr(dag_run, attr, None)
        if value is not None:
            return value
    raise ValueError(
        f"DAG run {getattr(dag_run, 'run_id', dag_run)!r} has no logical date, run_after or start date: "
        "pass the task's dag_run (e.g. run_day(dag_run))"
    )


def run_day(dag_run: Any) -> str:
    """``YYYY-MM-DD`` of :func:`run_moment` (what ``{{ ds }}`` gives for runs that have a logical date)."""
    return run_moment(dag_run).strftime("%Y-%m-%d")


def run_stamp(dag_run: Any) -> str:
    """``YYYYMMDDTHHMMSS`` of :func:`run_moment` (what ``{{ ts_nodash }}`` gives when there is a logical date)."""
    return run_moment(dag_run).strftime("%Y%m%dT%H%M%S")


def run_slug(run_id: str) -> str:
    """``run_id`` as one safe path segment (``manual__2026-12-03T16:25:38+00:00`` has ``:`` and ``+``)."""
    slug = _UNSAFE.sub("_", str(run_id)).strip("._")
    if not slug:
        raise ValueError(f"run id {run_id!r} has no character usable in a file name")
    return slug


def http_url(conn_id: str, endpoint: str = "") -> str:
    """The URL of an ``http`` connection plus ``endpoint``, built as the HTTP provider's hook builds it.

    Host may be a bare name (scheme from Schema, default ``http``) or a full URL; Port is optional.
    """
    from airflow.providers.common.compat.sdk import BaseHook

    conn = BaseHook.get_connection(conn_id)
    host = (conn.host or "").strip().rstrip("/")
    if not host:
        raise ValueError(f"Connection {conn_id!r} has no Host: set it to the receiver, e.g. https://hooks.example.com")
    if "://" not in host:
        host = f"{conn.schema or 'http'}://{host}"
        if conn.port:
            host = f"{host}:{conn.port}"
    if endpoint and not endpoint.startswith("/"):
        endpoint = "/" + endpoint
    return host + endpoint


#: Pass as ``DAG(user_defined_macros=RUN_MACROS)``.
RUN_MACROS: dict[str, Any] = {
    "run_day": run_day,
    "run_stamp": run_stamp,
    "run_slug": run_slug,
    "http_url": http_url,
}
