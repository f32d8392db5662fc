"""LyticsEventExportOperator over real HTTP: PGP-encrypted gzip CSV to the emulator's SFTP server, the range taken
from the data interval, a run without one (run_after + window), the XCom result and argument checks."""

from __future__ import annotations

import json
import shutil
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import pytest

from airflow_provider_lytics.operators.event_exports import LyticsEventExportOperator
from tests.exports.helpers import make_recipient_key, rows_of, stop_agent
from tests.integration.sftp_fixtures import *  # noqa: F403
from tests.integration.sftp_fixtures import use_connection

T0 = datetime(2026, 3, 8, 12, 0, tzinfo=timezone.utc)
H = timedelta(hours=1)
STAMP = "%Y%m%dT%H%M%S%fZ"  # microseconds: two runs within one second get distinct file names


class _TI:
    def __init__(self) -> None:
        self.pushed: dict = {}

    def xcom_push(self, key, value) -> None:
        self.pushed[key] = value


@pytest.fixture
def hook(lytics_conn_env, emulator):
    from tests.exports.helpers import fast_hook

    clock = emulator.backend.clock
    clock.set(T0)
    clock.freeze(True)
    hook = fast_hook()
    hook.collect_json(
        "web",
        [
            {
                "email": f"v{i}@example.com",
                "url": f"/p/{i}",
                "_ts": (T0 - 2 * H + i * timedelta(minutes=10)).isoformat(),
            }
            for i in range(12)
        ],
    )  # fmt: skip  (10:00 .. 11:50)
    yield hook
    hook.close()
    clock.reset()


@pytest.mark.skipif(shutil.which("gpg") is None, reason="needs the gpg binary")
def test_pgp_gzip_csv_to_sftp_over_the_data_interval(hook, tmp_path, monkeypatch, emulator_target_fixture):
    public, home = make_recipient_key(tmp_path / "keys")
    try:
        monkeypatch.setenv(
            "AIRFLOW_CONN_PARTNER_PGP", json.dumps({"conn_type": "pgp", "extra": {"public_key": public}})
        )
        use_connection(monkeypatch, "partner_sftp", emulator_target_fixture.connection())
        op = LyticsEventExportOperator(
            task_id="events", streams="web", fields=["_event_time", "email", "url"], format="csv",
            compression="gzip", pgp_conn_id="partner_pgp", destination="sftp", sftp_conn_id="partner_sftp",
            path=emulator_target_fixture.remote("events"), mode="incremental", export_name="web_hourly",
            timestamp_format=STAMP,
        )  # fmt: skip
        ti = _TI()
        result = op.execute({"ti": ti, "data_interval_start": T0 - 2 * H, "data_interval_end": T0 - H})
        (name,) = [f["name"] for f in result["files"]]
        assert name.endswith(".csv.gz.gpg") and result["rows_written"] == 6
        assert result["range_start"] == "2026-03-08T10:00:00.000Z" and result["events_in_range"] == {"web": 6}
        rows = rows_of(emulator_target_fixture.local("events") / name, gpg_home=home)
        assert [r["url"] for r in rows] == [f"/p/{i}" for i in range(6)]
        assert ti.pushed["lytics_export_watermark"] == result["watermark"] == "2026-03-08T11:00:00.000Z"
        assert (
            emulator_target_fixture.local("events") / ".lytics_export_state" / "web_hourly.state.sqlite.gz"
        ).exists()
        again = op.execute({"data_interval_start": T0 - H, "data_interval_end": T0})
        assert again["run_kind"] == "incremental" and again["rows_written"] == 6
    finally:
        stop_agent(home)


def test_run_without_a_data_interval_uses_run_after_and_window(hook, tmp_path):
    op = LyticsEventExportOperator(task_id="events", streams=["web"], path=str(tmp_path), window=H / 2,
                                   timestamp_format=STAMP)  # fmt: skip
    result = op.execute({"dag_run": SimpleNamespace(run_after=T0 - H)})  # [10:30, 11:00)
    assert (result["range_start"], result["range_end"]) == ("2026-03-08T10:30:00.000Z", "2026-03-08T11:00:00.000Z")
    assert result["rows_written"] == 3 and result["paths"][0].endswith(".ndjson")
    templated = LyticsEventExportOperator(task_id="t", streams=["web"], path=str(tmp_path), timestamp_format=STAMP,
                                          start="2026-03-08T11:00:00Z", end="2026-03-08T12:00:00+00:00")  # fmt: skip
    assert templated.execute({})["rows_written"] == 6


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"streams": []}, "at least one stream"),
        ({"streams": ["web"], "mode": "backfill"}, "Unknown mode"),
        ({"streams": ["web"], "format": "xml"}, "Unknown format"),
        ({"streams": ["web"], "destination": "email", "mode": "incremental"}, "needs state_uri"),
    ],
)
def test_operator_argument_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        LyticsEventExportOperator(task_id="bad", **kwargs)


def test_a_range_it_cannot_use_is_a_clear_argument_error(hook, tmp_path):
    from airflow_provider_lytics.errors import LyticsArgumentError

    no_start = LyticsEventExportOperator(task_id="e", streams=["web"], path=str(tmp_path))
    with pytest.raises(LyticsArgumentError, match="needs start=") as info:
        no_start.execute({})
    assert info.value.__notes__ == ["Lytics event export 'events_web' failed"]  # the same error, with context
    naive = LyticsEventExportOperator(task_id="e", streams=["web"], path=str(tmp_path), start="2026-03-08T10:00:00")
    with pytest.raises(LyticsArgumentError, match="no time zone"):
        naive.execute({})
