"""Metrics over real HTTP: push (hook and operator), read back, audience size history recorded on the emulator's
clock as the audience really changes."""

from __future__ import annotations

import csv

import pytest
from airflow.providers.common.compat.sdk import AirflowException

from airflow_provider_lytics.client.errors import LyticsBadRequestError
from airflow_provider_lytics.emulator.metrics import MetricStore
from airflow_provider_lytics.hooks.lytics import LyticsHook
from airflow_provider_lytics.operators.metrics import LyticsGetMetricsOperator, LyticsPushMetricsOperator


@pytest.fixture
def hook(lytics_conn_env):
    hook = LyticsHook()
    yield hook
    hook.close()


def test_push_then_read_back_what_was_pushed(hook):
    assert hook.push_metrics({"name": "nps", "value": 41, "ts": 1_700_000_000_000}) == 1
    assert hook.push_metrics([{"name": "nps", "value": 43.5, "ts": "2023-11-14T22:14:00Z"},
                              {"name": "opens", "value": 7, "dimension": "campaign", "dimension_id": "c1",
                               "ts": 1_700_000_000_000}]) == 2  # fmt: skip
    series = hook.get_metrics(name="nps")
    assert len(series) == 1
    assert series[0]["values"] == [{"ts": "1700000000000", "value": 41}, {"ts": "1700000040000", "value": 43.5}]
    [opens] = hook.get_metrics(dimension="campaign", dimension_id="c1")
    assert opens["name"] == "opens" and opens["values"][0]["value"] == 7
    bucketed = hook.get_metrics(name="nps", interval="1h", aggregation="max")
    assert bucketed[0]["values"] == [{"ts": "1699999200000", "value": 43.5}]


def test_bad_metrics_are_refused_whole(hook):
    with pytest.raises(LyticsBadRequestError, match='metric 1 has "value"'):
        hook.push_metrics([{"name": "ok", "value": 1}, {"name": "bad", "value": "lots"}])
    assert hook.get_metrics(name="ok") == []
    with pytest.raises(LyticsBadRequestError, match="interval"):
        hook.get_metrics(interval="fortnight")


def test_size_history_follows_the_audience(hook, emulator):
    clock = iter(range(1_000, 100_000, 1_000))
    emulator.backend.store.metrics.clock = lambda: next(clock)  # a deterministic emulator clock
    try:
        seg = hook.create_segment('FILTER plan = "pro" ALIAS pros')
        for n in (2, 3, 5):
            hook.collect_json("crm", [{"email": f"p{i}@x.io", "plan": "pro"} for i in range(n)])
            assert hook.segment_size("pros") == n
        hook.segment_size("pros")  # unchanged: no new point
        [entry] = hook.segment_size_history([seg["id"]])
        assert entry["id"] == seg["id"] and [p["value"] for p in entry["metrics"]] == [2, 3, 5]
        assert [p["ts"] for p in entry["metrics"]] == sorted(p["ts"] for p in entry["metrics"])
        assert [p["value"] for p in hook.segment_size_history(["pros"], limit=2)[0]["metrics"]] == [3, 5]
        [series] = hook.get_metrics(dimension="segment", dimension_id="pros")
        assert series["dimension"] == "segsize" and series["values"][-1]["value"] == 5
    finally:
        emulator.backend.store.metrics.clock = MetricStore().clock


def test_operators_push_a_file_and_write_what_they_read(lytics_conn_env, tmp_path):
    source = tmp_path / "metrics.csv"
    source.write_text("name,value,ts,dimension,dimension_id\nrevenue,120.5,1700000000000,shop,eu\n"
                      "revenue,80,1700000060000,shop,eu\n")  # fmt: skip
    pushed = LyticsPushMetricsOperator(task_id="push", path=str(source), batch_size=1).execute({})
    assert pushed == {"pushed": 2, "batches": 2, "names": ["revenue"]}
    out = tmp_path / "out" / "revenue.csv"
    summary = LyticsGetMetricsOperator(task_id="read", query={"name": "revenue"}, output_path=str(out)).execute({})
    assert summary["points"] == 2 and summary["latest"] == {"revenue": 80}
    rows = list(csv.DictReader(out.open()))
    assert [(r["ts"], r["value"], r["dimension_id"]) for r in rows] == [("1700000000000", "120.5", "eu"),
                                                                        ("1700000060000", "80", "eu")]  # fmt: skip


def test_push_operator_sends_nothing_when_a_row_is_bad(lytics_conn_env, tmp_path):
    source = tmp_path / "m.ndjson"
    source.write_text('{"name": "a", "value": 1}\n{"name": "", "value": 2}\n')
    with pytest.raises(AirflowException, match="metric 2 has no name"):
        LyticsPushMetricsOperator(task_id="push", path=str(source)).execute({})
    assert LyticsHook().get_metrics(name="a") == []
    with pytest.raises(ValueError, match="exactly one"):
        LyticsPushMetricsOperator(task_id="x", metrics=[], path="p")
