"""PGP + SFTP file moves over real SFTP (emulator server and OpenSSH) and the real gpg binary."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from airflow_provider_lytics.io.pgp_errors import PgpKeyMismatchError
from airflow_provider_lytics.operators.file_transfer import LyticsSftpDownloadOperator, LyticsSftpUploadOperator
from tests.integration.sftp_fixtures import use_connection
from tests.integration.test_pgp import cli_decrypt, cli_encrypt, pgp_keys  # noqa: F401  (fixture)

pytest_plugins = ["tests.integration.sftp_fixtures"]

CSV = b"email,first_name\n" + b"".join(b"user%d@example.com,User%d\n" % (i, i) for i in range(5000))


def _pgp_conn(monkeypatch, key, conn_id="partner_pgp") -> str:
    extra = {"public_key": key.public, "private_key": key.private}
    if key.passphrase:
        extra["passphrase"] = key.passphrase
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps({"conn_type": "pgp", "extra": extra}))
    return conn_id


def test_plain_upload_with_manifest(sftp_target, monkeypatch, tmp_path):
    conn_id = use_connection(monkeypatch, "partner_sftp", sftp_target.connection())
    for i in range(2):
        (tmp_path / f"part{i}.csv").write_bytes(CSV)
    op = LyticsSftpUploadOperator(task_id="up", local_path=str(tmp_path / "*.csv"), remote_dir=sftp_target.remote(),
                                  sftp_conn_id=conn_id, manifest=True)  # fmt: skip
    results = op.execute({})
    assert [Path(r["remote"]).name for r in results] == ["part0.csv", "part1.csv"]
    assert (sftp_target.local("part0.csv")).read_bytes() == CSV
    manifest = json.loads(sftp_target.local("part1.csv.manifest.json").read_text())
    assert manifest["size"] == len(CSV) and manifest["sha256"] == results[1]["sha256"]


@pytest.mark.parametrize("key_name", ["ed", "rsa"])
def test_encrypted_upload_decrypts_with_the_gpg_cli(sftp_target, monkeypatch, tmp_path, pgp_keys, key_name):  # noqa: F811
    key = pgp_keys[key_name]
    sftp_id = use_connection(monkeypatch, "partner_sftp", sftp_target.connection())
    pgp_id = _pgp_conn(monkeypatch, key)
    (tmp_path / "audience.csv").write_bytes(CSV)
    op = LyticsSftpUploadOperator(
        task_id="up",
        local_path=str(tmp_path / "audience.csv"),
        remote_dir=sftp_target.remote("out"),
        sftp_conn_id=sftp_id,
        pgp_conn_id=pgp_id,
    )
    (result,) = op.execute({})
    remote_copy = sftp_target.local("out/audience.csv.gpg")
    assert result["remote"].endswith("out/audience.csv.gpg") and result["size"] == remote_copy.stat().st_size
    assert CSV[:20] not in remote_copy.read_bytes()
    cli_decrypt(pgp_keys, key, remote_copy, tmp_path / "check.csv")
    assert (tmp_path / "check.csv").read_bytes() == CSV
    assert not [p for p in sftp_target.local("out").iterdir() if p.name.endswith(".part")]


def test_continuous_download_decrypts_archives_and_advances_the_watermark(
    sftp_target,
    monkeypatch,
    tmp_path,
    pgp_keys,  # noqa: F811
):
    key = pgp_keys["ed"]
    sftp_id = use_connection(monkeypatch, "partner_sftp", sftp_target.connection())
    pgp_id = _pgp_conn(monkeypatch, key)
    inbox = sftp_target.local("inbox")
    inbox.mkdir()
    for day in ("2026-11-26", "2026-11-27"):
        plain = tmp_path / f"users_{day}.csv"
        plain.write_bytes(CSV + day.encode())
        cli_encrypt(pgp_keys, key.fingerprint, plain, inbox / f"users_{day}.csv.gpg")

    def run(watermark):
        op = LyticsSftpDownloadOperator(
            task_id="down", remote_dir=sftp_target.remote("inbox"), local_dir=str(tmp_path / "landing"),
            sftp_conn_id=sftp_id, glob="users_*.csv.gpg", select="newer_than", by="name", watermark=watermark,
            pgp_conn_id=pgp_id, after_load="archive", archive_dir="processed",
        )  # fmt: skip
        return op.execute({})

    first = run(None)
    assert [Path(f["local"]).name for f in first["files"]] == ["users_2026-11-26.csv", "users_2026-11-27.csv"]
    assert (tmp_path / "landing" / "users_2026-11-27.csv").read_bytes() == CSV + b"2026-11-27"
    assert first["watermark"] == "2026-11-27"
    assert sorted(p.name for p in (inbox / "processed").iterdir()) == [
        "users_2026-11-26.csv.gpg", "users_2026-11-27.csv.gpg"]  # fmt: skip

    (tmp_path / "new.csv").write_bytes(b"email\nnew@example.com\n")
    cli_encrypt(pgp_keys, key.fingerprint, tmp_path / "new.csv", inbox / "users_2026-11-28.csv.gpg")
    second = run(first["watermark"])
    assert [Path(f["local"]).name for f in second["files"]] == ["users_2026-11-28.csv"]
    assert second["watermark"] == "2026-11-28"


def test_wrong_private_key_fails_clearly_and_leaves_no_plaintext(emulator_target_fixture, monkeypatch, tmp_path,
                                                                 pgp_keys):  # noqa: F811  # fmt: skip
    target = emulator_target_fixture
    sftp_id = use_connection(monkeypatch, "partner_sftp", target.connection())
    (tmp_path / "secret.csv").write_bytes(CSV)
    cli_encrypt(pgp_keys, pgp_keys["ed"].fingerprint, tmp_path / "secret.csv", target.local("secret.csv.gpg"))
    pgp_id = _pgp_conn(monkeypatch, pgp_keys["other"], "wrong_pgp")
    op = LyticsSftpDownloadOperator(task_id="down", remote_dir=target.remote(), local_dir=str(tmp_path / "landing"),
                                    sftp_conn_id=sftp_id, pgp_conn_id=pgp_id, after_load="delete")  # fmt: skip
    with pytest.raises(PgpKeyMismatchError, match="does not pair with the public key that encrypted the data"):
        op.execute({})
    assert os.listdir(tmp_path / "landing") == []
    assert target.local("secret.csv.gpg").exists(), "a failed load must not delete the remote file"


def test_newest_and_fail_if_empty(emulator_target_fixture, monkeypatch, tmp_path):
    target = emulator_target_fixture
    sftp_id = use_connection(monkeypatch, "partner_sftp", target.connection())
    for i, name in enumerate(["a.csv", "b.csv"]):
        path = target.local(name)
        path.write_bytes(CSV)
        os.utime(path, (time.time() - 100 + i * 50, time.time() - 100 + i * 50))
    op = LyticsSftpDownloadOperator(task_id="d", remote_dir=target.remote(), local_dir=str(tmp_path / "l"),
                                    sftp_conn_id=sftp_id, glob="*.csv", select="newest")  # fmt: skip
    assert [Path(f["local"]).name for f in op.execute({})["files"]] == ["b.csv"]
    empty = LyticsSftpDownloadOperator(task_id="e", remote_dir=target.remote(), local_dir=str(tmp_path / "l"),
                                       sftp_conn_id=sftp_id, glob="*.json", fail_if_empty=True)  # fmt: skip
    with pytest.raises(FileNotFoundError, match=r"No file .* matches"):
        empty.execute({})


def test_bad_arguments_fail_at_construction():
    with pytest.raises(ValueError, match="archive_dir"):
        LyticsSftpDownloadOperator(task_id="x", remote_dir="/", local_dir="/tmp", after_load="archive")
    with pytest.raises(ValueError, match="pgp_conn_id"):
        LyticsSftpUploadOperator(task_id="y", local_path="/tmp/x", remote_dir="/", sign=True)
