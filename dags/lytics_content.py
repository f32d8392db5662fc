"""Content affinity: documents in, page views in, topic affinities on profiles, an audience on an affinity, export.

1. ``import_content`` sends the blog's documents to the Lytics content corpus (one ``POST /api/content/corpus``
   each); Lytics classifies each into topics. One row of the sample file has no ``url`` on purpose: it is refused
   before sending and kept, with its reason, in the run's ``rejected_documents.ndjson``.
2. ``load_page_views`` imports page-view events (``email``, ``url``, ``ts``) into the ``web_content`` stream.
   Lytics matches each event's URL to a document and scores the reader's topic affinities into the profile's
   ``lytics_content`` map (``{"running": 0.83, ...}``).
3. ``check_topics`` reads the topics back and fails unless the chosen topic has documents and readers.
4. ``ensure_audiences`` upserts the audience ``content_<topic>_fans`` (``lytics_content.<topic> >= min_affinity``)
   and the content collection ``content_<topic>_docs`` (``FROM content``: documents on that topic), and
   ``scan_collection`` scans that collection through the segment scan API.
5. ``export_fans`` exports the audience's members to NDJSON; ``recommend`` writes each fan's affinities and
   content recommendations (from the collection) to NDJSON.

Needs ``lytics_default``. Paths use ``run_slug(run_id)`` (no logical date), so REST-triggered runs work.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from airflow.providers.common.compat.sdk import Param, dag, task

from airflow_provider_lytics.macros import RUN_MACROS
from airflow_provider_lytics.operators.content import (
    LyticsContentImportOperator,
    LyticsContentRecommendationsOperator,
)
from airflow_provider_lytics.operators.exports import LyticsAudienceExportOperator
from airflow_provider_lytics.operators.imports import LocalFilesToLyticsOperator

DATA = Path(__file__).parent / "data"
RUN_DIR = "{{ params.results_dir }}/{{ run_slug(run_id) }}"
FANS = "content_{{ params.topic }}_fans"
DOCS = "content_{{ params.topic }}_docs"


@dag(
    dag_id="lytics_content",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    params={
        "documents_file": Param(
            str(DATA / "content_documents.ndjson"),
            type="string",
            minLength=1,
            description="Documents to import: NDJSON, CSV (url, title, ...) or a JSON array.",
        ),
        "page_views_file": Param(
            str(DATA / "content_page_views.csv"),
            type="string",
            minLength=1,
            description="Page-view events: email, url, ts.",
        ),
        "topic": Param(
            "running", type="string", pattern="^[a-z0-9_]+$", description="The topic whose fans become an audience."
        ),
        "min_affinity": Param(
            0.5, type="number", minimum=0, maximum=1, description="Lowest lytics_content score of an audience member."
        ),
        "results_dir": Param(
            "/tmp/lytics-demo/content",
            type="string",
            minLength=1,
            description="Where the rejects, the export and the recommendations go.",
        ),
    },
    user_defined_macros=RUN_MACROS,
    tags=["lytics", "content", "example"],
    doc_md=__doc__,
)
def lytics_content() -> None:
    import_content = LyticsContentImportOperator(
        task_id="import_content",
        path="{{ params.documents_file }}",
        concurrency=4,
        rejects_path=f"{RUN_DIR}/rejected_documents.ndjson",
        max_rejected=1,  # the sample's one draft without a url; more than that fails the task
    )
    load_page_views = LocalFilesToLyticsOperator(
        task_id="load_page_views", paths="{{ params.page_views_file }}", stream="web_content", timestamp_field="ts"
    )

    @task
    def check_topics(params: dict | None = None) -> dict:
        """The topic has documents, and some profiles read them (their affinities are on the profiles)."""
        from airflow_provider_lytics.hooks.lytics import LyticsHook

        hook = LyticsHook()
        topics = {t["label"]: t for t in hook.list_content_topics()}
        topic = params["topic"]
        if topic not in topics:
            raise ValueError(f"topic {topic!r} has no documents; topics found: {sorted(topics)}")
        if not topics[topic]["user_count"]:
            raise ValueError(f"no profile has read a document on {topic!r}: check the page views' urls")
        return {
            "topics": sorted(topics),
            "documents": topics[topic]["doc_count"],
            "readers": topics[topic]["user_count"],
        }

    @task
    def ensure_audiences(params: dict | None = None) -> dict:
        """Upsert (by ALIAS) the affinity audience and the content collection of the topic."""
        from airflow_provider_lytics.hooks.lytics import LyticsHook

        hook = LyticsHook()
        topic, floor = params["topic"], float(params["min_affinity"])
        fans = hook.create_segment(f"FILTER lytics_content.{topic} >= {floor} FROM user ALIAS content_{topic}_fans")
        docs = hook.create_segment(f'FILTER topics CONTAINS "{topic}" FROM content ALIAS content_{topic}_docs')
        size = hook.segment_size(fans["slug_name"])
        if size == 0:
            raise ValueError(f"nobody has a {topic} affinity of {floor} or more; lower min_affinity")
        return {"fans": fans["slug_name"], "fans_size": size, "collection": docs["slug_name"]}

    @task
    def scan_collection(audiences: dict) -> dict:
        """Scan the content collection (FROM content) through the segment scan API."""
        from airflow_provider_lytics.hooks.lytics import LyticsHook

        urls = [doc["url"] for doc in LyticsHook().scan(audiences["collection"], fields=["url", "title"])]
        if not urls:
            raise ValueError(f"content collection {audiences['collection']} is empty")
        return {"documents": len(urls), "urls": urls}

    export_fans = LyticsAudienceExportOperator(
        task_id="export_fans",
        segment=FANS,
        export_name="content_fans",
        fields=["email", "lytics_content", "hashedurls"],
        format="ndjson",
        destination="local",
        path=f"{RUN_DIR}/export",
        file_name="{AUDIENCE}_{TIMESTAMP}",
        emit_asset=False,
    )
    recommend = LyticsContentRecommendationsOperator(
        task_id="recommend",
        segment=FANS,
        contentsegment=DOCS,
        limit=3,
        output_path=f"{RUN_DIR}/recommendations.ndjson",
    )
    audiences = ensure_audiences()
    import_content >> load_page_views >> check_topics() >> audiences
    audiences >> [export_fans, recommend]
    scan_collection(audiences)


lytics_content()
