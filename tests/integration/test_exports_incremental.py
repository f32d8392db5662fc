"""Incremental exports across runs (members entering, changing, leaving), backfill handoff, state safety,
cursor expiry and injected faults: over real HTTP against the emulator."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import requests

from airflow_provider_lytics.exports.destinations import LocalDestination, SftpDestination
from airflow_provider_lytics.exports.outputs import FormatOptions
from airflow_provider_lytics.exports.runner import AudienceExport, ExportSpec
from tests.exports.helpers import FIELDS, fast_hook, rows_of, seed, user
from tests.integration.sftp_fixtures import *  # noqa: F403
from tests.integration.sftp_fixtures import use_connection

STATE = ".lytics_export_state/actives.state.sqlite.gz"


class Clock:
    """Distinct run timestamps without sleeping (file names carry the second)."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        self.now += 1.0
        return self.now


def run(spec: ExportSpec, dest, clock: Clock, hook=None):
    return AudienceExport(spec, hook or fast_hook(), dest, clock=clock).run()


def by_change(result, tmp_path: Path) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for f in result.files:
        out.setdefault(f.change, []).extend(rows_of(tmp_path / f.name))
    return out


def test_three_runs_added_changed_removed_in_separate_files(emulator, lytics_conn_env, tmp_path):
    clock, dest = Clock(), LocalDestination(str(tmp_path))
    spec = ExportSpec(segment="actives", fields=FIELDS, mode="incremental")
    seed(emulator, [user(i) for i in range(100)])
    first = run(spec, dest, clock)
    assert first.run_kind == "incremental" and first.previous_watermark is None
    assert first.counts == {"added": 100, "changed": 0, "unchanged": 0, "removed": 0}

    seed(emulator, [user(5, name="Renamed"), user(10, status="gone"), user(11, status="gone"),
                    {"user_id": "u000020", "page": "/not-exported"}] + [user(i) for i in range(100, 105)])  # fmt: skip
    second = run(spec, dest, clock)
    assert second.counts == {"added": 5, "changed": 1, "unchanged": 97, "removed": 2}
    assert second.previous_watermark == first.watermark
    rows = by_change(second, tmp_path)
    assert sorted(r["user_id"] for r in rows["added"]) == [f"u{i:06d}" for i in range(100, 105)]
    assert [(r["user_id"], r["first_name"]) for r in rows["changed"]] == [("u000005", "Renamed")]
    removed_ids = sorted(emulator.backend.store.lookup("user_id", f"u{i:06d}").get("_id") for i in (10, 11))
    assert sorted(r["_id"] for r in rows["removed"]) == removed_ids and set(rows["removed"][0]) == {"_id"}

    seed(emulator, [user(10), user(6, name="Six"), user(100, status="gone")])
    third = run(spec, dest, clock)
    assert third.counts == {"added": 1, "changed": 1, "unchanged": 101, "removed": 1}
    rows = by_change(third, tmp_path)
    assert [r["user_id"] for r in rows["added"]] == ["u000010"]
    assert [r["first_name"] for r in rows["changed"]] == ["Six"]
    assert third.rows_written == 3 and third.size_at_start == 103


def test_change_column_mode_writes_one_file(emulator, lytics_conn_env, tmp_path):
    clock, dest = Clock(), LocalDestination(str(tmp_path))
    spec = ExportSpec(segment="actives", fields=FIELDS, mode="incremental", change_output="column",
                      fmt=FormatOptions(fmt="ndjson", compression="gzip"))  # fmt: skip
    seed(emulator, [user(i) for i in range(30)])
    run(spec, dest, clock)
    seed(emulator, [user(1, name="X"), user(2, status="gone"), user(40)])
    result = run(spec, dest, clock)
    (f,) = result.files
    changes = {r.get("user_id", r["_id"]): r["_change"] for r in rows_of(tmp_path / f.name)}
    assert sorted(changes.values()) == ["added", "changed", "removed"] and changes["u000001"] == "changed"


def test_backfill_then_incremental_handoff(emulator, lytics_conn_env, tmp_path):
    clock, dest = Clock(), LocalDestination(str(tmp_path))
    spec = ExportSpec(segment="actives", fields=FIELDS, mode="backfill_then_incremental", manifest=True)
    seed(emulator, [user(i) for i in range(50)])
    backfill = run(spec, dest, clock)
    assert backfill.run_kind == "backfill" and backfill.counts == {"full": 50}
    assert [f.change for f in backfill.files] == ["full"] and backfill.files[0].rows == 50
    seed(emulator, [user(50), user(3, name="Changed")])
    nxt = run(spec, dest, clock)
    assert nxt.run_kind == "incremental" and nxt.previous_watermark == backfill.watermark
    assert nxt.counts["added"] == 1 and nxt.counts["changed"] == 1 and nxt.rows_written == 2
    assert nxt.watermark > backfill.watermark


def test_failed_run_does_not_advance_state_and_leaves_no_files(emulator, lytics_conn_env, tmp_path, monkeypatch):
    clock, dest = Clock(), LocalDestination(str(tmp_path))
    spec = ExportSpec(segment="actives", fields=FIELDS, mode="incremental", split_rows=10, page_size=20)
    seed(emulator, [user(i) for i in range(100)])
    run(spec, dest, clock)
    state_before = (tmp_path / STATE).read_bytes()
    files_before = sorted(p.name for p in tmp_path.iterdir())
    seed(emulator, [user(i, name="new") for i in range(40)])

    hook = fast_hook()
    real = hook.scan_pages

    def failing(*args, **kwargs):
        from airflow_provider_lytics.client.errors import LyticsServerError

        for n, page in enumerate(real(*args, **kwargs)):
            if n == 1:
                raise LyticsServerError(503, "backend unavailable")
            yield page

    monkeypatch.setattr(hook, "scan_pages", failing)
    with pytest.raises(Exception, match="backend unavailable"):
        run(spec, dest, clock, hook)
    assert (tmp_path / STATE).read_bytes() == state_before
    assert sorted(p.name for p in tmp_path.iterdir()) == files_before  # no parts, no partial set

    again = run(spec, dest, clock)
    assert again.counts["changed"] == 40  # the changes were not lost with the failed run


def test_interrupted_sftp_upload_leaves_no_partial_final_file(
    emulator, lytics_conn_env, emulator_target_fixture, monkeypatch
):
    target = emulator_target_fixture
    use_connection(monkeypatch, "export_sftp", target.connection())
    seed(emulator, [user(i) for i in range(300)])
    hook = fast_hook()
    real = hook.scan_pages

    def failing(*args, **kwargs):
        for n, page in enumerate(real(*args, **kwargs)):
            if n == 2:
                raise RuntimeError("scan broke half way")
            yield page

    monkeypatch.setattr(hook, "scan_pages", failing)
    dest = SftpDestination("export_sftp", target.remote("out"))
    try:
        with pytest.raises(RuntimeError, match="half way"):
            run(
                ExportSpec(segment="actives", fields=FIELDS, fmt=FormatOptions(compression="gzip")), dest, Clock(), hook
            )
    finally:
        dest.close()
    out = target.local("out")
    assert not out.exists() or list(out.iterdir()) == []


def test_cursor_expiry_restarts_without_missing_or_doubled_rows(emulator, lytics_conn_env, tmp_path, monkeypatch):
    seed(emulator, [user(i) for i in range(250)])
    scans = emulator.backend.store.scans
    shift = [0.0]
    base = time.monotonic
    monkeypatch.setattr(scans, "clock", lambda: base() + shift[0])
    original = scans.resume
    calls = [0]

    def resume(cursor, key=None):
        calls[0] += 1
        if calls[0] == 3:  # the cursor handed out with page 2 goes stale, as if the export had stalled
            shift[0] += scans.ttl + 60
        return original(cursor, key)

    monkeypatch.setattr(scans, "resume", resume)
    result = run(ExportSpec(segment="actives", fields=FIELDS), LocalDestination(str(tmp_path)), Clock())
    assert result.cursor_restarts == 1 and result.duplicates_dropped == 200 and result.rows_scanned == 450
    ids = [r["user_id"] for r in rows_of(tmp_path / result.files[0].name)]
    assert len(ids) == 250 and len(set(ids)) == 250


def test_injected_faults_lose_and_double_nothing(emulator, lytics_conn_env, tmp_path):
    seed(emulator, [user(i) for i in range(420)])
    for rule in (
        {"route": "/api/segment/*/scan", "method": "GET", "kind": "status", "status": 500, "times": 2},
        {
            "route": "/api/segment/*/scan",
            "method": "GET",
            "kind": "status",
            "status": 429,
            "retry_after": 0,
            "times": 1,
        },
        {"route": "/api/segment/*/scan", "method": "GET", "kind": "drop_after", "times": 2},
    ):
        requests.post(f"{emulator.url}/_emulator/faults", json=rule, timeout=5).raise_for_status()
    result = run(
        ExportSpec(segment="actives", fields=FIELDS, mode="incremental"), LocalDestination(str(tmp_path)), Clock()
    )
    ids = [r["user_id"] for f in result.files for r in rows_of(tmp_path / f.name)]
    assert len(ids) == 420 and len(set(ids)) == 420 and result.duplicates_dropped == 0


def test_state_for_other_configuration_is_refused(emulator, lytics_conn_env, tmp_path):
    from airflow_provider_lytics.exports.errors import ExportStateError

    clock, dest = Clock(), LocalDestination(str(tmp_path))
    seed(emulator, [user(i) for i in range(5)])
    run(ExportSpec(segment="actives", fields=FIELDS, mode="incremental"), dest, clock)
    with pytest.raises(ExportStateError, match="reset_state=True"):
        run(ExportSpec(segment="actives", fields=["email"], mode="incremental"), dest, clock)
    fresh = run(ExportSpec(segment="actives", fields=["email"], mode="incremental", reset_state=True), dest, clock)
    assert fresh.counts["added"] == 5


def test_incremental_on_sftp_keeps_state_next_to_the_exports(
    emulator, lytics_conn_env, emulator_target_fixture, monkeypatch
):
    target = emulator_target_fixture
    use_connection(monkeypatch, "export_sftp", target.connection())
    clock = Clock()
    spec = ExportSpec(segment="actives", fields=FIELDS, mode="incremental", fmt=FormatOptions(compression="gzip"))
    seed(emulator, [user(i) for i in range(60)])
    results = []
    for change in ([], [user(1, name="One"), user(2, status="gone"), user(70)]):
        seed(emulator, change)
        dest = SftpDestination("export_sftp", target.remote("feed"))  # a fresh session, as on another worker
        try:
            results.append(run(spec, dest, clock))
        finally:
            dest.close()
    assert results[0].counts["added"] == 60
    assert {k: results[1].counts[k] for k in ("added", "changed", "removed")} == {
        "added": 1,
        "changed": 1,
        "removed": 1,
    }
    assert (target.local("feed") / STATE).is_file()
    rows = {f.change: rows_of(target.local("feed") / f.name) for f in results[1].files}
    assert [r["user_id"] for r in rows["added"]] == ["u000070"] and [r["first_name"] for r in rows["changed"]] == [
        "One"
    ]
    assert not [p for p in target.local("feed").rglob("*.part")]
