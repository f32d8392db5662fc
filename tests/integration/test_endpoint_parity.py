"""Every endpoint of the catalogue, through the sync hook and the async hook, against the emulator: same answers.

Each case calls one endpoint through :class:`LyticsHook` and then through :class:`LyticsAsyncHook`. Calls that
change state get their own target per hook (two jobs to pause, two segments to delete) and the answers are
compared without the fields that are unique per object. A new endpoint in the catalogue fails
``test_every_endpoint_has_a_case`` until it gets a case here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests

from airflow_provider_lytics.client.catalogue import catalogue
from airflow_provider_lytics.client.endpoints import ScanPage
from airflow_provider_lytics.client.retry import RetryPolicy
from airflow_provider_lytics.hooks.lytics import LyticsHook
from airflow_provider_lytics.hooks.lytics_async import LyticsAsyncHook

FAST = RetryPolicy(max_attempts=4, base_delay=0.01, max_delay=0.05, max_total=30)
PRO = 'FILTER plan = "pro"'
LQL = "SELECT email AS email, plan AS plan FROM web INTO user BY email ALIAS parity_web"
DOC = {"url": "https://blog.example/run-faster", "title": "Run faster", "text": "pace, sprint and 5k runs"}
SPEC = {"name": "parity", "config": {"segment_id": "pro"}}
#: fields that differ between two objects made by two equal calls
OWN_FIELDS = {
    "id",
    "created",
    "updated",
    "created_at",
    "updated_at",
    "last_update",
    "name",
    "slug",
    "slug_name",
    "url",
    "path",
    "alias",
}


@dataclass
class Case:
    """One endpoint call. ``args(ctx, which)`` gives its arguments for the ``"sync"`` or the ``"async"`` call."""

    name: str
    args: Callable[[dict[str, Any], str], tuple[tuple, dict]] = lambda ctx, which: ((), {})
    compare: Callable[[Any], Any] = field(default=lambda value: value)
    #: emulator clock seconds to advance between the two calls (a throttled endpoint)
    advance: float = 0.0


def same(*args: Any, **kwargs: Any) -> Callable[[dict[str, Any], str], tuple[tuple, dict]]:
    """The same arguments for both hooks."""
    return lambda ctx, which: (args, kwargs)


def from_ctx(build: Callable[[dict[str, Any]], tuple]) -> Callable[[dict[str, Any], str], tuple[tuple, dict]]:
    """The same arguments for both hooks, taken from the objects the setup made."""
    return lambda ctx, which: (build(ctx), {})


def per_hook(build: Callable[[dict[str, Any], str], tuple]) -> Callable[[dict[str, Any], str], tuple[tuple, dict]]:
    """A different target per hook (state-changing calls)."""
    return lambda ctx, which: (build(ctx, which), {})


def without_own_fields(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: without_own_fields(v) for k, v in value.items() if k not in OWN_FIELDS}
    if isinstance(value, list | tuple):
        return [without_own_fields(v) for v in value]
    return value


def page(value: ScanPage) -> tuple:
    """A scan page without its cursor token (each scan gets its own), but with whether there is one."""
    return value.records, value.total, bool(value.next_cursor)


CASES = [
    Case("collect_json", same("web", [{"email": "new@example.com", "plan": "free"}])),
    Case("bulk_upload", same("web", b"email,plan\nbulk@example.com,free\n", content_type="application/csv")),
    Case("list_segments"),
    Case("get_segment", same("pro")),
    Case("create_segment", same(PRO + " ALIAS pro_again"), without_own_fields),
    Case("update_segment", from_ctx(lambda ctx: (ctx["segment_id"], {"description": "pro plan"}))),
    Case("delete_segment", per_hook(lambda ctx, which: (ctx[f"doomed_{which}"],))),
    Case("validate_segment", same(PRO)),
    Case("segment_size", same("pro")),
    Case("segment_sizes", from_ctx(lambda ctx: ([ctx["segment_id"]],))),
    Case("adhoc_segment_size", same(PRO), advance=10.0),  # Lytics allows one call per 10 s
    Case("segment_size_history", from_ctx(lambda ctx: ([ctx["segment_id"]],))),
    Case("list_segment_collections", same(sideload=True)),
    Case("get_segment_collection", from_ctx(lambda ctx: (ctx["collection_id"],))),
    Case("create_segment_collection", per_hook(lambda ctx, which: (f"Made by {which}", ["pro"])), without_own_fields),
    Case("update_segment_collection", from_ctx(lambda ctx: (ctx["collection_id"], {"description": "again"}))),
    Case("delete_segment_collection", per_hook(lambda ctx, which: (ctx[f"doomed_collection_{which}"],))),
    Case("event_page", same("web", limit=3), page),
    Case("scan_page", same("pro", limit=3), page),
    Case("scan_audience_page", same(PRO, limit=3), page),
    Case("get_entity", same("email", "a1@example.com")),
    Case("lookup_entity", same("email", "a1@example.com", meta=True)),
    Case("get_schema"),
    Case("list_streams"),
    Case("get_table_fields"),
    Case("get_account"),
    Case("list_queries"),
    Case("get_query", same("parity_web")),
    Case("upsert_query", same(LQL), without_own_fields),
    Case("delete_query", per_hook(lambda ctx, which: (f"doomed_{which}",))),
    Case("validate_query", same(LQL)),
    Case("test_query", same(LQL, {"email": "t@example.com", "plan": "pro"})),
    Case(
        "upsert_content_document",
        per_hook(lambda ctx, which: ({**DOC, "url": f"{DOC['url']}/{which}"},)),
        without_own_fields,
    ),
    Case("get_content_documents", same(urls=[DOC["url"]])),
    Case("list_content_topics"),
    Case("get_content_topic", from_ctx(lambda ctx: (ctx["topic"],))),
    Case("content_recommendations", same("email", "a1@example.com", limit=5)),
    Case("push_metrics", same({"name": "parity", "value": 1})),
    Case("get_metrics", same(name="parity")),
    Case("create_job", same("sftp_export", SPEC, run_job=False), without_own_fields),
    Case("get_job", from_ctx(lambda ctx: (ctx["job_id"],))),
    Case("get_job_with_state", from_ctx(lambda ctx: (ctx["job_id"],))),
    Case("list_jobs", same(show_all=True)),
    Case("update_job", from_ctx(lambda ctx: ("sftp_export", ctx["job_id"], SPEC)), without_own_fields),
    Case("job_command", per_hook(lambda ctx, which: (ctx[f"job_{which}"], "pause")), without_own_fields),
    Case("job_logs", from_ctx(lambda ctx: (ctx["job_id"],))),
    Case("list_auths"),
    Case("get_auth", from_ctx(lambda ctx: (ctx["auth_id"],))),
]


def set_clock(url: str, **body: Any) -> None:
    requests.post(f"{url}/_emulator/clock", json=body, timeout=10).raise_for_status()


def test_every_endpoint_has_a_case():
    assert sorted(c.name for c in CASES) == sorted(catalogue())


@pytest.fixture
def ctx(lytics_conn_env, emulator) -> Iterator[dict[str, Any]]:
    """Profiles, audiences, a query, jobs and an authorization for the cases to read or change; the emulator
    clock stands still at a fixed instant, so answers stamped with "now" match."""
    set_clock(emulator.url, now="2026-06-01T12:00:00Z", frozen=True)
    hook = LyticsHook(retry_policy=FAST)
    hook.collect_json("web", [{"email": f"a{i}@example.com", "plan": "pro"} for i in range(8)])
    segment = hook.create_segment(PRO + " ALIAS pro")
    made = {"segment_id": segment["id"]}
    for which in ("sync", "async"):
        made[f"doomed_{which}"] = hook.create_segment(f"{PRO} ALIAS doomed_{which}")["id"]
        hook.upsert_query(LQL.replace("parity_web", f"doomed_{which}"))
        made[f"job_{which}"] = hook.create_job("sftp_export", SPEC)["id"]
        made[f"doomed_collection_{which}"] = hook.create_segment_collection(f"Doomed {which}", ["pro"])["id"]
    made["collection_id"] = hook.create_segment_collection("Pro", ["pro"])["id"]
    hook.upsert_query(LQL)
    hook.upsert_content_document(DOC)
    hook.upsert_content_document(
        {"url": "https://blog.example/run-longer", "title": "Run longer", "text": "marathon runs"}
    )
    made["topic"] = hook.list_content_topics()[0]["label"]
    hook.collect_json("web", [{"email": "a1@example.com", "url": DOC["url"]}])
    made["job_id"] = hook.create_job("sftp_export", SPEC, run_job=False)["id"]
    hook.push_metrics({"name": "parity", "value": 2})
    answer = requests.post(
        f"{emulator.url}/v2/auth",
        json={"label": "parity", "provider_slug": "sftp", "config": {"password": "pw"}},
        headers={"Authorization": emulator.token},
        timeout=10,
    )
    answer.raise_for_status()
    made["auth_id"] = answer.json()["data"]["id"]
    made["url"] = emulator.url
    yield made
    emulator.backend.clock.reset()  # back to the wall clock for the tests that follow


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
async def test_both_hooks_give_the_same_answer(case: Case, ctx: dict[str, Any]) -> None:
    args, kwargs = case.args(ctx, "sync")
    sync_answer = getattr(LyticsHook(retry_policy=FAST), case.name)(*args, **kwargs)
    if case.advance:
        set_clock(ctx["url"], advance_seconds=case.advance)
    args, kwargs = case.args(ctx, "async")
    async with LyticsAsyncHook(retry_policy=FAST) as hook:
        async_answer = await getattr(hook, case.name)(*args, **kwargs)
    assert case.compare(async_answer) == case.compare(sync_answer)
    if case.name not in {"delete_segment", "delete_query", "delete_segment_collection", "validate_segment",
                         "validate_query"}:  # fmt: skip
        assert sync_answer not in (None, [], {}), f"{case.name}: the emulator answered nothing to compare"
