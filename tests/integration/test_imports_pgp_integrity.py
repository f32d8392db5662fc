"""PGP imports verify the whole file before any row reaches Lytics (issue 14 item 1), over real gpg, the
emulator's SFTP server and real HTTP: a manipulated ciphertext sends nothing, and no plaintext is left behind."""

from __future__ import annotations

import gc
import os
import shutil
import tempfile
from pathlib import Path

import pytest

from airflow_provider_lytics.imports.formats import ImportInputError
from airflow_provider_lytics.operators.imports import LocalFilesToLyticsOperator, SFTPToLyticsOperator
from tests.integration.sftp_fixtures import *  # noqa: F403
from tests.integration.sftp_fixtures import use_connection
from tests.integration.task_fakes import TI
from tests.integration.test_pgp import _gpg, _kill_agent, make_test_keys

pytestmark = pytest.mark.skipif(shutil.which("gpg") is None, reason="needs the gpg binary")

ROWS = 100_000


@pytest.fixture(scope="session")
def pgp_keys(tmp_path_factory):
    keys = make_test_keys(tmp_path_factory.getbasetemp() / "pgp-test-keys")
    yield keys
    _kill_agent(keys.cli_home)


def _encrypt_uncompressed(keys, fpr: str, src: Path, dst: Path, *, sign_with: str | None = None,
                          passphrase: str | None = None) -> None:  # fmt: skip
    args = ["--trust-model", "always", "--compress-algo", "none", "--recipient", fpr, "--output", str(dst)]
    if sign_with:
        args += ["--pinentry-mode", "loopback", "--passphrase", passphrase or "", "--local-user", sign_with, "--sign"]
    _gpg(keys.cli_home, *args, "--encrypt", str(src))


def _flip(path: Path, at: float, count: int = 16) -> None:
    data = bytearray(path.read_bytes())
    start = int(len(data) * at)
    for i in range(start, start + count):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))


def _plain(tmp_path: Path, rows: int = ROWS) -> Path:
    plain = tmp_path / "users.csv"
    plain.write_text("id,email\n" + "".join(f"u{i},u{i}@example.com\n" for i in range(rows)))
    return plain


@pytest.fixture
def private_tmp(tmp_path, monkeypatch):
    """A private TMPDIR, so the test can see that no plaintext spool is left behind."""
    spool = tmp_path / "tmp"
    spool.mkdir()
    monkeypatch.setenv("TMPDIR", str(spool))
    monkeypatch.setattr(tempfile, "tempdir", None)
    return spool


def test_manipulated_sftp_file_sends_no_row(tmp_path, emulator, lytics_conn_env, emulator_target_fixture, pgp_keys,
                                             monkeypatch, variables, private_tmp):  # fmt: skip
    target = emulator_target_fixture
    use_connection(monkeypatch, "partner_sftp", target.connection())
    key = pgp_keys["ed"]
    use_connection(monkeypatch, "partner_pgp", {"conn_type": "pgp", "extra": {"private_key": key.private}})
    encrypted = target.local("users.csv.gpg")
    _encrypt_uncompressed(pgp_keys, key.fingerprint, _plain(tmp_path), encrypted)
    _flip(encrypted, 0.6)
    op = SFTPToLyticsOperator(task_id="t", stream="tampered", sftp_conn_id="partner_sftp", pgp_conn_id="partner_pgp",
                              remote_dir=target.remote(), glob="*.gpg", checkpoint="none", batch_rows=5000)  # fmt: skip
    with pytest.raises(ImportInputError, match=r"users\.csv\.gpg.*(manipulated|integrity|decrypt)") as failure:
        op.execute({"ti": TI(), "run_id": "r"})
    assert emulator.backend.store.stream_event_count("tampered") == 0
    del failure  # its traceback keeps the task's PgpHook alive: the hook's reused key ring goes with the hook
    gc.collect()
    assert list(private_tmp.iterdir()) == []  # no plaintext spool left behind, nor the hook's key ring


def test_intact_sftp_file_is_imported_after_verification(tmp_path, emulator, lytics_conn_env,
                                                          emulator_target_fixture, pgp_keys, monkeypatch,
                                                          variables, private_tmp):  # fmt: skip
    target = emulator_target_fixture
    use_connection(monkeypatch, "partner_sftp", target.connection())
    key = pgp_keys["ed"]
    use_connection(monkeypatch, "partner_pgp", {"conn_type": "pgp", "extra": {"private_key": key.private}})
    _encrypt_uncompressed(pgp_keys, key.fingerprint, _plain(tmp_path), target.local("users.csv.gpg"))
    op = SFTPToLyticsOperator(task_id="t", stream="intact", sftp_conn_id="partner_sftp", pgp_conn_id="partner_pgp",
                              remote_dir=target.remote(), glob="*.gpg", checkpoint="none", batch_rows=5000)  # fmt: skip
    result = op.execute({"ti": TI(), "run_id": "r"})
    assert result["rows_read"] == ROWS and result["rows_sent"] == ROWS
    assert emulator.backend.store.stream_event_count("intact") == ROWS
    assert list(private_tmp.iterdir()) == []


def test_manipulated_local_file_sends_no_row(tmp_path, emulator, lytics_conn_env, pgp_keys, monkeypatch, variables,
                                             private_tmp):  # fmt: skip
    key = pgp_keys["ed"]
    use_connection(monkeypatch, "partner_pgp", {"conn_type": "pgp", "extra": {"private_key": key.private}})
    encrypted = tmp_path / "in" / "users.csv.gpg"
    encrypted.parent.mkdir()
    _encrypt_uncompressed(pgp_keys, key.fingerprint, _plain(tmp_path), encrypted)
    op = LocalFilesToLyticsOperator(task_id="t", stream="local_pgp", paths=str(encrypted), pgp_conn_id="partner_pgp",
                                    checkpoint="none", batch_rows=5000)  # fmt: skip
    assert op.execute({"ti": TI(), "run_id": "r"})["rows_sent"] == ROWS
    _flip(encrypted, 0.6)
    with pytest.raises(ImportInputError, match=r"users\.csv\.gpg") as failure:
        op.execute({"ti": TI(), "run_id": "r2"})
    assert emulator.backend.store.stream_event_count("local_pgp") == ROWS  # only the first, intact run
    del failure  # its traceback keeps the task's PgpHook alive: the hook's reused key ring goes with the hook
    gc.collect()
    assert list(private_tmp.iterdir()) == []
    assert os.listdir(encrypted.parent) == ["users.csv.gpg"]


def test_required_signature_is_checked_before_any_row(tmp_path, emulator, lytics_conn_env, pgp_keys, monkeypatch,
                                                      variables, private_tmp):  # fmt: skip
    key, signer = pgp_keys["ed"], pgp_keys["ed"]
    extra = {"private_key": key.private, "signer_public_keys": signer.public}
    if key.passphrase:
        extra["passphrase"] = key.passphrase
    use_connection(monkeypatch, "partner_pgp", {"conn_type": "pgp", "extra": extra})
    unsigned, signed = tmp_path / "unsigned.csv.gpg", tmp_path / "signed.csv.gpg"
    plain = _plain(tmp_path, 3000)
    _encrypt_uncompressed(pgp_keys, key.fingerprint, plain, unsigned)
    _encrypt_uncompressed(pgp_keys, key.fingerprint, plain, signed, sign_with=signer.fingerprint,
                          passphrase=signer.passphrase)  # fmt: skip

    def run(path: Path) -> dict:
        op = LocalFilesToLyticsOperator(task_id="t", stream="signed", paths=str(path), pgp_conn_id="partner_pgp",
                                        pgp_require_signature=True, checkpoint="none")  # fmt: skip
        return op.execute({"ti": TI()})

    with pytest.raises(ImportInputError, match=r"unsigned\.csv\.gpg.*signature"):
        run(unsigned)
    assert emulator.backend.store.stream_event_count("signed") == 0
    assert run(signed)["rows_sent"] == 3000
    assert list(private_tmp.iterdir()) == []
