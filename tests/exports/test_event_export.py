"""Raw event exports over real HTTP against the emulator: ranges, formats, incremental state with late events,
reruns that write nothing twice, and reconciliation failures that leave nothing behind."""

from __future__ import annotations

import itertools
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from airflow_provider_lytics.exports.destinations import LocalDestination, ObjectStorageDestination
from airflow_provider_lytics.exports.errors import ExportConfigError, ExportReconciliationError, ExportStateError
from airflow_provider_lytics.exports.events import EventExport, EventExportSpec
from airflow_provider_lytics.exports.outputs import FormatOptions
from tests.exports.helpers import fast_hook, rows_of

T0 = datetime(2026, 3, 8, 12, 0, tzinfo=timezone.utc)
H = timedelta(hours=1)
_ticks = itertools.count(1_780_000_000)


def _clock() -> float:
    return float(next(_ticks))


@pytest.fixture
def hook(lytics_conn_env, emulator):
    clock = emulator.backend.clock
    clock.set(T0)
    clock.freeze(True)
    hook = fast_hook()
    yield hook
    hook.close()
    clock.reset()


def _events(stream_tag: str, start: datetime, n: int, step: timedelta) -> list[dict]:
    return [{"email": f"{stream_tag}{i}@example.com", "url": f"/p/{i}", "_ts": (start + i * step).isoformat(),
             "n": i} for i in range(n)]  # fmt: skip


def _run(hook, tmp_path: Path, **spec):
    spec.setdefault("streams", ["web"])
    return EventExport(EventExportSpec(**spec), hook, LocalDestination(str(tmp_path)), clock=_clock).run()


def _rows(result, tmp_path: Path) -> list[dict]:
    return [r for f in result.files for r in rows_of(tmp_path / f.name)]


def test_full_range_of_two_streams_gzip_ndjson(hook, tmp_path):
    hook.collect_json("web", _events("w", T0 - 4 * H, 40, timedelta(minutes=6)))  # 08:00 .. 11:54
    hook.collect_json("app", _events("a", T0 - 3 * H, 10, timedelta(minutes=30)))  # 09:00 .. 13:30
    result = _run(hook, tmp_path, streams=["web", "app"], start=T0 - 3 * H, end=T0 - H,
                  fmt=FormatOptions(fmt="ndjson", compression="gzip"), manifest=True)  # fmt: skip
    assert result.events_in_range == {"web": 20, "app": 4}
    assert result.rows_written == 24 and result.counts == {"new": 24, "already_exported": 0}
    (data,) = result.files
    assert data.name.endswith(".ndjson.gz") and data.name.startswith("lytics_events_events_web_app_")
    rows = _rows(result, tmp_path)
    assert [r["n"] for r in rows if r["_stream"] == "web"] == list(range(10, 30))
    assert all("2026-03-08T09:00:00Z" <= r["_event_time"] < "2026-03-08T11:00:00Z" for r in rows)
    manifest = json.loads(Path(result.manifest).read_text())
    assert manifest["events_in_range"] == {"web": 20, "app": 4} and manifest["files"][0]["rows"] == 24
    assert result.state is None  # full mode keeps no state


def test_csv_columns_zip_and_object_storage(hook, tmp_path):
    hook.collect_json("web", _events("w", T0 - 2 * H, 5, timedelta(minutes=10)))
    spec = EventExportSpec(streams=["web"], start=T0 - 2 * H, end=T0, fields=["_event_time", "email", "url"],
                           fmt=FormatOptions(fmt="csv", compression="zip"), page_size=2)  # fmt: skip
    dest = ObjectStorageDestination(f"file://{tmp_path}/bucket/")
    result = EventExport(spec, hook, dest, clock=_clock).run()
    (data,) = result.files
    rows = rows_of(tmp_path / "bucket" / data.name)
    assert list(rows[0]) == ["_event_time", "email", "url"]
    assert [r["url"] for r in rows] == [f"/p/{i}" for i in range(5)]
    with pytest.raises(ExportConfigError, match="needs fields"):
        EventExportSpec(streams=["web"], fmt=FormatOptions(fmt="csv")).validate()


def test_incremental_late_events_and_reruns_never_duplicate(hook, tmp_path):
    hook.collect_json("web", _events("w", T0 - 3 * H, 12, timedelta(minutes=10)))  # 09:00 .. 10:50
    spec = {"mode": "incremental", "lookback": timedelta(minutes=30), "export_name": "web_events"}
    first = _run(hook, tmp_path, start=T0 - 3 * H, end=T0 - 2 * H, **spec)  # [09:00, 10:00)
    assert first.run_kind == "first" and first.rows_written == 6 and first.watermark == "2026-03-08T10:00:00.000Z"
    assert (tmp_path / ".lytics_export_state/web_events.state.sqlite.gz").exists()

    # a late event: event time 09:45 (before the watermark, within the 30 min lookback), arriving now
    hook.collect_json("web", [{"email": "late@example.com", "_ts": (T0 - 2 * H - timedelta(minutes=15)).isoformat()}])
    second = _run(hook, tmp_path, start=T0 - 2 * H, end=T0 - H, **spec)  # reads [09:30, 11:00)
    assert second.run_kind == "incremental" and second.range_start == "2026-03-08T09:30:00.000Z"
    assert second.counts == {"new": 7, "already_exported": 3}  # 10:00..10:50 + the late one; 09:30..09:50 were done
    assert sorted(r.get("n", -1) for r in _rows(second, tmp_path)) == [-1, 6, 7, 8, 9, 10, 11]
    assert second.previous_watermark == first.watermark

    rerun = _run(hook, tmp_path, start=T0 - 2 * H, end=T0 - H, **spec)  # the same interval again
    assert rerun.rows_written == 0 and rerun.counts["new"] == 0 and rerun.watermark == second.watermark
    older = _run(hook, tmp_path, start=T0 - 3 * H, end=T0 - 2 * H, **spec)  # an older interval: nothing to add
    assert older.rows_written == 0 and older.watermark == second.watermark

    everything = [r for res in (first, second, rerun, older) for r in _rows(res, tmp_path)]
    assert len(everything) == 13 == len({r["_event_id"] for r in everything})  # each event exactly once


def test_a_short_read_fails_and_leaves_nothing(hook, tmp_path, monkeypatch):
    hook.collect_json("web", _events("w", T0 - 2 * H, 8, timedelta(minutes=5)))
    real = type(hook).event_pages

    def lossy(self, *args, **kwargs):
        for page in real(self, *args, **kwargs):
            page.records.pop()  # a page that lost an event on the way
            yield page

    monkeypatch.setattr(type(hook), "event_pages", lossy)
    with pytest.raises(ExportReconciliationError, match="Lytics reported 8 events"):
        _run(hook, tmp_path, start=T0 - 2 * H, end=T0, mode="incremental", page_size=3)
    assert [p.name for p in tmp_path.rglob("*") if p.is_file() and "lease" not in p.name] == []


def test_state_of_another_configuration_is_refused(hook, tmp_path):
    hook.collect_json("web", _events("w", T0 - 2 * H, 2, timedelta(minutes=5)))
    hook.collect_json("app", _events("a", T0 - 2 * H, 2, timedelta(minutes=5)))
    _run(hook, tmp_path, start=T0 - 2 * H, end=T0, mode="incremental", export_name="x")
    with pytest.raises(ExportStateError, match="different configuration"):
        _run(hook, tmp_path, streams=["web", "app"], end=T0, mode="incremental", export_name="x")
    again = _run(hook, tmp_path, streams=["web", "app"], start=T0 - 2 * H, end=T0, mode="incremental",
                 export_name="x", reset_state=True)  # fmt: skip
    assert again.rows_written == 4


def test_first_incremental_run_needs_a_start(hook, tmp_path):
    with pytest.raises(ExportConfigError, match="needs start="):
        _run(hook, tmp_path, end=T0, mode="incremental")
