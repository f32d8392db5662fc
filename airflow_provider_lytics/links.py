"""Operator extra links to the Lytics UI, read from XCom so the API server never runs provider code (AIP-72)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from airflow.providers.common.compat.sdk import BaseOperatorLink, XCom

#: XCom keys the job operators push before they wait, so links and downstream tasks work even on failure.
XCOM_JOB_ID = "lytics_job_id"
XCOM_JOB_URL = "lytics_job_url"
DEFAULT_UI_URL = "https://app.lytics.com"
#: Connection extra that overrides the UI base URL (e.g. a regional Lytics app host).
EXTRA_UI_URL = "ui_url"


def job_ui_url(ui_url: str, job_id: str, workflow: str | None = None) -> str:
    """The Lytics UI page of a job (``{ui_url}/jobs/{workflow}/{id}`` or ``{ui_url}/jobs/{id}``)."""
    base = ui_url.rstrip("/")
    if workflow:
        return f"{base}/jobs/{quote(workflow, safe='')}/{quote(job_id, safe='')}"
    return f"{base}/jobs/{quote(job_id, safe='')}"


class LyticsJobLink(BaseOperatorLink):
    """ "Lytics Job": the job a task created, updated, commanded or waited for."""

    name = "Lytics Job"

    def get_link(self, operator: Any, *, ti_key: Any = None, dttm: Any = None) -> str:
        if ti_key is None:
            return ""
        url = XCom.get_value(key=XCOM_JOB_URL, ti_key=ti_key)
        return url if isinstance(url, str) else ""
