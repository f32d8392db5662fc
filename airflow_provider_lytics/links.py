"""Operator extra links to the Lytics UI, read from XCom so the API server never runs provider code (AIP-72).

A task that touches a Lytics object (job, audience, stream) pushes the object's UI page to XCom as soon as it
knows it (before waiting, so the link works even when the task fails); the link class only reads that XCom.
The UI base comes from the ``lytics`` connection's ``ui_url`` field (default ``https://app.lytics.com``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from airflow.providers.common.compat.sdk import BaseOperatorLink, XCom

from airflow_provider_lytics.forms import DEFAULT_UI_URL

#: XCom keys the job operators push before they wait, so links and downstream tasks work even on failure.
XCOM_JOB_ID = "lytics_job_id"
XCOM_JOB_URL = "lytics_job_url"
XCOM_AUDIENCE_URL = "lytics_audience_url"
XCOM_STREAM_URL = "lytics_stream_url"
#: Connection extra that overrides the UI base URL (e.g. a regional Lytics app host); a form field too.
EXTRA_UI_URL = "ui_url"

log = logging.getLogger(__name__)


def _seg(value: str) -> str:
    return quote(str(value), safe="")


def job_ui_url(ui_url: str, job_id: str, workflow: str | None = None) -> str:
    """The Lytics UI page of a job (``{ui_url}/jobs/{workflow}/{id}`` or ``{ui_url}/jobs/{id}``)."""
    base = ui_url.rstrip("/")
    if workflow:
        return f"{base}/jobs/{_seg(workflow)}/{_seg(job_id)}"
    return f"{base}/jobs/{_seg(job_id)}"


def audience_ui_url(ui_url: str, audience: str) -> str:
    """The Lytics UI page of an audience (``{ui_url}/audiences/{id or slug}``)."""
    return f"{ui_url.rstrip('/')}/audiences/{_seg(audience)}"


def stream_ui_url(ui_url: str, stream: str) -> str:
    """The Lytics UI page of a data stream (``{ui_url}/data/streams/{name}``)."""
    return f"{ui_url.rstrip('/')}/data/streams/{_seg(stream)}"


def ui_base(conn_id: str) -> str:
    """The connection's ``ui_url`` extra, else :data:`DEFAULT_UI_URL` (also when the connection cannot be read)."""
    try:
        from airflow.providers.common.compat.sdk import BaseHook

        value = BaseHook.get_connection(conn_id).extra_dejson.get(EXTRA_UI_URL)
    except Exception:  # a link is a convenience: never fail the task for it
        value = None
    return str(value).strip() if value and str(value).strip() else DEFAULT_UI_URL


def publish_links(context: Mapping[str, Any], conn_id: str, *, audience: str | None = None,
                  stream: str | None = None) -> dict[str, str]:  # fmt: skip
    """Push the UI pages of the audience and/or stream a task works on to XCom; returns them by XCom key."""
    urls: dict[str, str] = {}
    if not audience and not stream:
        return urls
    base = ui_base(conn_id)
    if audience:
        urls[XCOM_AUDIENCE_URL] = audience_ui_url(base, audience)
    if stream:
        urls[XCOM_STREAM_URL] = stream_ui_url(base, stream)
    ti = context.get("ti") or context.get("task_instance")
    for key, url in urls.items():
        try:
            if ti is not None:
                ti.xcom_push(key=key, value=url)
        except Exception as err:  # best effort, as above
            log.warning("Could not push the %s link: %s", key, err)
    return urls


def publish_job(context: Mapping[str, Any], hook: Any, conn_id: str, job: Mapping[str, Any], log: Any) -> str:
    """Push ``lytics_job_id`` and ``lytics_job_url`` (the :class:`LyticsJobLink` target) to XCom; returns the URL.

    Shared by the job operators and the job sensor; ``hook`` is their Lytics hook (for the connection's extra).
    """
    job_id = str(job["id"])
    try:
        extra = hook.get_connection(conn_id).extra_dejson
    except Exception:  # the link is a convenience; the connection already worked for the API call
        extra = {}
    url = job_ui_url(str(extra.get(EXTRA_UI_URL) or DEFAULT_UI_URL), job_id, job.get("workflow"))
    ti = context.get("ti") or context.get("task_instance")
    if ti is not None:
        ti.xcom_push(key=XCOM_JOB_ID, value=job_id)
        ti.xcom_push(key=XCOM_JOB_URL, value=url)
    log.info("Lytics job %s (%s): %s", job_id, job.get("status"), url)
    return url


class _XComLink(BaseOperatorLink):
    """A link whose target a task pushed to XCom under :attr:`xcom_key`; empty until it did."""

    name = ""
    xcom_key = ""

    def get_link(self, operator: Any, *, ti_key: Any = None, dttm: Any = None) -> str:
        if ti_key is None:
            return ""
        url = XCom.get_value(key=self.xcom_key, ti_key=ti_key)
        return url if isinstance(url, str) else ""


class LyticsJobLink(_XComLink):
    """ "Lytics Job": the job a task created, updated, commanded or waited for."""

    name = "Lytics Job"
    xcom_key = XCOM_JOB_URL


class LyticsAudienceLink(_XComLink):
    """ "Lytics Audience": the audience a task exported, enriched, messaged or watched."""

    name = "Lytics Audience"
    xcom_key = XCOM_AUDIENCE_URL


class LyticsStreamLink(_XComLink):
    """ "Lytics Stream": the data stream a task loaded records into."""

    name = "Lytics Stream"
    xcom_key = XCOM_STREAM_URL
