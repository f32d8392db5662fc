"""Audience exports emit membership columns from the ``segments`` Lytics lists on every scan row (real HTTP)."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from airflow_provider_lytics.exports.destinations import LocalDestination
from airflow_provider_lytics.exports.errors import ExportConfigError
from airflow_provider_lytics.exports.outputs import FormatOptions
from airflow_provider_lytics.exports.runner import AudienceExport, ExportSpec
from tests.exports.helpers import fast_hook, rows_of

_ticks = itertools.count(1_780_000_000)


def _clock() -> float:
    return float(next(_ticks))


@pytest.fixture
def hook(lytics_conn_env):
    hook = fast_hook()
    hook.collect_json("crm", [{"user_id": f"u{i}", "plan": "pro" if i < 3 else "free", "ltv": i * 100}
                              for i in range(6)])  # fmt: skip
    hook.create_segment('FILTER plan = "pro" ALIAS pro_users')
    hook.create_segment("FILTER ltv >= 400 ALIAS high_ltv")
    hook.create_segment("FILTER EXISTS user_id ALIAS everyone")
    yield hook
    hook.close()


def _export(hook, tmp_path: Path, **spec) -> tuple[object, list[dict]]:
    spec.setdefault("segment", "everyone")
    result = AudienceExport(ExportSpec(**spec), hook, LocalDestination(str(tmp_path)), clock=_clock).run()
    rows = [r for f in result.files for r in rows_of(tmp_path / f.name)]
    return result, rows


def test_csv_boolean_membership_columns(hook, tmp_path):
    result, rows = _export(hook, tmp_path, fields=["user_id", "plan"], segment_columns=["pro_users", "high_ltv"],
                           scan_process=False)  # fmt: skip
    assert result.rows_written == 6
    assert list(rows[0]) == ["user_id", "plan", "pro_users", "high_ltv"]  # the scan's 'segments' is not a column
    by_id = {r["user_id"]: (r["pro_users"], r["high_ltv"]) for r in rows}
    assert by_id == {"u0": ("true", "false"), "u1": ("true", "false"), "u2": ("true", "false"),
                     "u3": ("false", "false"), "u4": ("false", "true"), "u5": ("false", "true")}  # fmt: skip


def test_ndjson_keeps_booleans_and_the_segments_list_when_asked(hook, tmp_path):
    _, rows = _export(hook, tmp_path, fields=["user_id", "segments"], segment_columns=["high_ltv"],
                      fmt=FormatOptions(fmt="ndjson"))  # fmt: skip
    u4 = next(r for r in rows if r["user_id"] == "u4")
    assert u4 == {"user_id": "u4", "segments": ["all", "high_ltv", "everyone"], "high_ltv": True}
    assert next(r for r in rows if r["user_id"] == "u0")["high_ltv"] is False


def test_incremental_reports_membership_changes_as_changed(hook, tmp_path):
    spec = {"fields": ["user_id"], "segment_columns": ["pro_users"], "mode": "incremental", "id_field": "user_id"}
    first, _ = _export(hook, tmp_path, **spec)
    assert first.counts["added"] == 6
    hook.collect_json("crm", {"user_id": "u5", "plan": "pro"})  # u5 joins pro_users: only the column changes
    second, rows = _export(hook, tmp_path, **spec)
    assert second.counts == {"added": 0, "changed": 1, "unchanged": 5, "removed": 0}
    assert [r for r in rows if r["user_id"] == "u5"] == [{"user_id": "u5", "pro_users": "true"}]


def test_segment_columns_are_checked():
    for bad, match in (("vip", "list of audience slugs"), (["a", "a"], "twice"), (["plan"], "clash")):
        with pytest.raises(ExportConfigError, match=match):
            ExportSpec(segment="x", fields=["plan"], segment_columns=bad).validate()
