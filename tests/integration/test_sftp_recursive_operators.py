"""Recursive selection through the user-facing surfaces, over real SFTP: the download operator (relative paths
kept locally, archive folder never walked), the import operator (continuous import across dated folders with a
watermark, nested paths in the checkpoint key) and the file-arrival sensor."""

from __future__ import annotations

import pytest

from airflow_provider_lytics.imports.sources import sftp_sources
from airflow_provider_lytics.imports.watermark import decode_state
from airflow_provider_lytics.io.sftp_select import RemoteFile
from airflow_provider_lytics.operators.file_transfer import LyticsSftpDownloadOperator, local_target
from airflow_provider_lytics.operators.imports import SFTPToLyticsOperator
from airflow_provider_lytics.sensors.files import LyticsFileArrivalSensor
from tests.integration.task_fakes import TI

pytest.register_assert_rewrite("tests.integration.sftp_fixtures", "tests.integration.test_sftp_recursive")
from tests.integration.sftp_fixtures import use_connection  # noqa: E402
from tests.integration.test_sftp_recursive import make_tree  # noqa: E402

pytest_plugins = ["tests.integration.sftp_fixtures"]


def test_download_keeps_relative_paths_and_skips_the_archive(sftp_target, monkeypatch, tmp_path):
    conn_id = use_connection(monkeypatch, "partner_sftp", sftp_target.connection())
    make_tree(sftp_target, {"2026/11/27/users.csv": 300, "2026/11/28/users.csv": 200, "top.csv": 100})
    landing = tmp_path / "landing"

    def op(**kw):
        return LyticsSftpDownloadOperator(task_id="down", remote_dir=sftp_target.remote(), local_dir=str(landing),
                                          sftp_conn_id=conn_id, glob="users.csv", recursive=True, **kw)  # fmt: skip

    result = op(after_load="archive", archive_dir="done").execute({})
    assert [f["local"] for f in result["files"]] == [
        str(landing / "2026/11/27/users.csv"),
        str(landing / "2026/11/28/users.csv"),
    ]
    assert (landing / "2026/11/27/users.csv").read_bytes() == b"2026/11/27/users.csv"
    assert (landing / "2026/11/28/users.csv").read_bytes() == b"2026/11/28/users.csv"
    assert sftp_target.local("2026/11/28/done/users.csv").is_file()
    # the archived copies are not downloaded again
    again = op(after_load="archive", archive_dir="done").execute({})
    assert again["files"] == []
    newest = LyticsSftpDownloadOperator(task_id="n", remote_dir=sftp_target.remote(), local_dir=str(tmp_path / "n"),
                                        sftp_conn_id=conn_id, select="newest", recursive=True)  # fmt: skip
    assert [f["local"] for f in newest.execute({})["files"]] == [str(tmp_path / "n" / "top.csv")]
    with pytest.raises(ValueError, match="max_depth"):
        op(max_depth=-1)


def test_local_target_refuses_paths_leaving_the_folder(tmp_path):
    assert local_target(tmp_path, "a/b.csv") == tmp_path / "a" / "b.csv" and (tmp_path / "a").is_dir()
    for bad in ("../x.csv", "a/../../x.csv", "/etc/x", "a//b"):
        with pytest.raises(ValueError, match="plain relative path"):
            local_target(tmp_path, bad)


def test_nested_files_have_distinct_checkpoint_keys():
    """Checkpoints are keyed by the full remote path: equal names in different folders never share progress."""
    files = [
        RemoteFile("/in/a/users.csv", 10, 5.0, "a/users.csv"),
        RemoteFile("/in/b/users.csv", 10, 5.0, "b/users.csv"),
    ]
    keys = [s.key for s in sftp_sources(None, files)]  # type: ignore[arg-type]
    assert keys == ["sftp:/in/a/users.csv:10:5", "sftp:/in/b/users.csv:10:5"]
    flat = sftp_sources(None, [RemoteFile("/in/users.csv", 10, 5.0)])  # type: ignore[arg-type]
    assert flat[0].key == "sftp:/in/users.csv:10:5"  # unchanged for flat listings: old checkpoints still apply


def test_continuous_import_across_dated_folders(emulator, lytics_conn_env, emulator_target_fixture, monkeypatch,
                                                variables):  # fmt: skip
    target = emulator_target_fixture
    use_connection(monkeypatch, "partner_sftp", target.connection())

    def write(relative: str, rows: int) -> None:
        path = target.local(relative)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("id,email\n" + "".join(f"{relative}-{i},u{i}@x.example.com\n" for i in range(rows)))

    write("2026/11/26/users.csv", 3)
    write("2026/11/27/users.csv", 4)
    write("2026/11/27/.users.csv.9f8e.part", 50)  # still uploading

    def op():
        return SFTPToLyticsOperator(
            task_id="imp", stream="nested", sftp_conn_id="partner_sftp", remote_dir=target.remote(),
            glob="*.csv", recursive=True, watermark_by="name", date_format="%Y/%m/%d", watermark_key="wm_nested",
            checkpoint="none", after_load="archive", archive_dir="done",
        )  # fmt: skip

    sensor = LyticsFileArrivalSensor(task_id="wait", directory=target.remote(), glob="*.csv", recursive=True,
                                     sftp_conn_id="partner_sftp", watermark_by="name", date_format="%Y/%m/%d",
                                     watermark_key="wm_nested", exclude_dirs=["done"])  # fmt: skip
    ti = TI()
    assert sensor.poke({"ti": ti}) is True
    assert ti.xcom["lytics_new_files"] == [target.remote("2026/11/26/users.csv"), target.remote("2026/11/27/users.csv")]
    first_ti = TI()
    result = op().execute({"ti": first_ti, "run_id": "r1"})
    assert result["files"] == 2 and result["rows_sent"] == 7
    assert first_ti.xcom["lytics_import_files"] == ti.xcom["lytics_new_files"]
    assert decode_state(variables["wm_nested"]) == ("2026-11-27", [target.remote("2026/11/27/users.csv")])
    assert target.local("2026/11/27/done/users.csv").is_file()
    assert sensor.poke({"ti": TI()}) is False
    write("2026/11/28/users.csv", 5)  # a new dated folder
    assert sensor.poke({"ti": TI()}) is True
    result = op().execute({"ti": TI(), "run_id": "r2"})
    assert result["files"] == 1 and result["rows_sent"] == 5
    assert decode_state(variables["wm_nested"])[0] == "2026-11-28"
    assert emulator.backend.store.stream_event_count("nested") == 12


def test_recursive_sensor_needs_sftp():
    with pytest.raises(Exception, match="sftp_conn_id"):
        LyticsFileArrivalSensor(task_id="s", directory="/data", recursive=True, watermark_by="none")
