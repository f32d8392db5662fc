"""SFTP imports against the emulator's SFTP server with real gpg: PGP decrypted and verified, watermark,
archive after load, quarantine uploaded to SFTP, and the file-arrival sensor."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import time

import pytest

from airflow_provider_lytics.imports.watermark import decode_state
from airflow_provider_lytics.operators.imports import SFTPToLyticsOperator
from airflow_provider_lytics.sensors.files import LyticsFileArrivalSensor
from tests.integration.sftp_fixtures import *  # noqa: F403
from tests.integration.sftp_fixtures import use_connection
from tests.integration.task_fakes import TI
from tests.integration.test_pgp import _kill_agent, cli_encrypt, make_test_keys

pytestmark = pytest.mark.skipif(shutil.which("gpg") is None, reason="needs the gpg binary")


@pytest.fixture(scope="session")
def pgp_keys(tmp_path_factory):
    """The PGP test keys (generated once per session, shared with the PGP tests' cache)."""
    keys = make_test_keys(tmp_path_factory.getbasetemp() / "pgp-test-keys")
    yield keys
    _kill_agent(keys.cli_home)


def test_pgp_files_decrypted_while_downloading_with_watermark(
    tmp_path,
    emulator,
    lytics_conn_env,
    emulator_target_fixture,
    pgp_keys,
    monkeypatch,
    variables,
):
    target = emulator_target_fixture
    use_connection(monkeypatch, "partner_sftp", target.connection())
    key = pgp_keys["ed"]
    use_connection(monkeypatch, "partner_pgp", {"conn_type": "pgp", "extra": {"private_key": key.private}})
    for day, rows in (("2026-11-26", 40), ("2026-11-27", 60)):
        plain = tmp_path / f"users_{day}.csv.gz"
        body = "id,email\n" + "".join(f"{day}-{i},u{i}@{day}.example.com\n" for i in range(rows))
        plain.write_bytes(gzip.compress(body.encode()))
        cli_encrypt(pgp_keys, key.fingerprint, plain, target.local(f"users_{day}.csv.gz.gpg"))
    (target.local("users_2026-11-25.csv.gz.gpg.part")).write_bytes(b"partial upload")

    def op(**kw):
        return SFTPToLyticsOperator(
            task_id="sftp_imp", stream="sftp_stream", sftp_conn_id="partner_sftp", pgp_conn_id="partner_pgp",
            remote_dir=target.remote(), glob="users_*.csv*", watermark_by="name", watermark_key="wm",
            checkpoint="none", after_load="archive", archive_dir="done", **kw,
        )  # fmt: skip

    sensor = LyticsFileArrivalSensor(task_id="wait", directory=target.remote(), glob="users_*.csv*",
                                     sftp_conn_id="partner_sftp", watermark_by="name", watermark_key="wm")  # fmt: skip
    ti = TI()
    assert sensor.poke({"ti": ti}) is True and len(ti.xcom["lytics_new_files"]) == 2
    result = op().execute({"ti": TI(), "run_id": "r1"})
    assert result["files"] == 2 and result["rows_sent"] == 100 and result["accepted"] == 100
    assert emulator.backend.store.stream_event_count("sftp_stream") == 100
    assert decode_state(variables["wm"]) == ("2026-11-27", [target.remote("users_2026-11-27.csv.gz.gpg")])
    assert sorted(os.listdir(target.local("done"))) == ["users_2026-11-26.csv.gz.gpg", "users_2026-11-27.csv.gz.gpg"]
    assert sensor.poke({"ti": TI()}) is False  # nothing new since the watermark
    # a new dated file arrives: only it is imported
    body = "id,email\n" + "".join(f"n{i},n{i}@x.com\n" for i in range(5)) + "bad-row-without-email\n"
    plain = tmp_path / "new.csv"
    plain.write_text(body)
    cli_encrypt(pgp_keys, key.fingerprint, plain, target.local("users_2026-11-28.csv.gpg"))
    result = op(quarantine_path=target.remote("quarantine/rejects.ndjson"),
                quarantine_sftp_conn_id="partner_sftp").execute({"ti": TI(), "run_id": "r2"})  # fmt: skip
    assert result["files"] == 1 and result["rows_sent"] == 5 and result["rejected_here"] == 1
    rejects = [json.loads(x) for x in target.local("quarantine/rejects.ndjson").read_text().splitlines()]
    assert rejects[0]["line"] == 7 and rejects[0]["source"].endswith("users_2026-11-28.csv.gpg")
    assert emulator.backend.store.stream_event_count("sftp_stream") == 105
    assert decode_state(variables["wm"])[0] == "2026-11-28"


def test_wrong_pgp_key_fails_clearly(tmp_path, emulator, lytics_conn_env, emulator_target_fixture, pgp_keys,
                                     monkeypatch, variables):  # fmt: skip
    target = emulator_target_fixture
    use_connection(monkeypatch, "partner_sftp", target.connection())
    use_connection(monkeypatch, "other_pgp", {"conn_type": "pgp", "extra": {"private_key": pgp_keys["other"].private}})
    plain = tmp_path / "a.csv"
    plain.write_text("id\n1\n")
    cli_encrypt(pgp_keys, pgp_keys["ed"].fingerprint, plain, target.local("a.csv.gpg"))
    op = SFTPToLyticsOperator(task_id="t", stream="s", sftp_conn_id="partner_sftp", pgp_conn_id="other_pgp",
                              remote_dir=target.remote(), glob="*.gpg", checkpoint="none")  # fmt: skip
    with pytest.raises(Exception, match="does not pair"):
        op.execute({"ti": TI(), "run_id": "r"})
    assert emulator.backend.store.stream_event_count("s") == 0


def test_local_sensor_and_mtime_watermark(tmp_path, variables):
    sensor = LyticsFileArrivalSensor(task_id="w", directory=str(tmp_path / "in"), glob="*.csv",
                                     watermark_key="wm_local", min_age_seconds=0)  # fmt: skip
    assert sensor.poke({"ti": TI()}) is False
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.csv").write_text("id\n1\n")
    assert sensor.poke({"ti": TI()}) is True
    variables["wm_local"] = "2999-01-01T00:00:00+00:00"
    assert sensor.poke({"ti": TI()}) is False
    young = LyticsFileArrivalSensor(task_id="y", directory=str(tmp_path / "in"), watermark_by="none",
                                    min_age_seconds=3600)  # fmt: skip
    assert young.poke({"ti": TI()}) is False
    _ = subprocess, time


def test_a_file_landing_in_the_watermark_second_is_imported_next_run_and_only_once(
    tmp_path, emulator, lytics_conn_env, emulator_target_fixture, monkeypatch, variables
):
    """SFTP times are whole seconds: a file written in the same second as the last imported one is still new."""
    target = emulator_target_fixture
    use_connection(monkeypatch, "partner_sftp", target.connection())
    stamp = int(time.time()) - 60

    def drop(name: str, rows: int) -> None:
        path = target.local(name)
        path.write_text("id,email\n" + "".join(f"{name}-{i},{i}@{name}.example.com\n" for i in range(rows)))
        os.utime(path, (stamp, stamp))

    def run(run_id: str) -> dict:
        return SFTPToLyticsOperator(
            task_id="same_second", stream="same_second", sftp_conn_id="partner_sftp", remote_dir=target.remote(),
            glob="*.csv", watermark_by="mtime", watermark_key="wm_s", checkpoint="none",
        ).execute({"ti": TI(), "run_id": run_id})  # fmt: skip

    drop("a.csv", 3)
    assert run("r1")["files"] == 1
    watermark, at = decode_state(variables["wm_s"])
    assert at == [target.remote("a.csv")]
    drop("b.csv", 4)  # same whole second as a.csv
    second = run("r2")
    assert second["files"] == 1 and second["rows_sent"] == 4  # b only: a is not imported twice
    assert decode_state(variables["wm_s"]) == (watermark, [target.remote("a.csv"), target.remote("b.csv")])
    assert run("r3")["files"] == 0
    assert emulator.backend.store.stream_event_count("same_second") == 7

    # a watermark stored by an older version (a bare timestamp) keeps its strictly-newer meaning
    variables["wm_s"] = watermark
    drop("c.csv", 2)
    assert run("r4")["files"] == 0
