"""Export integrity: a failed run leaves no partial file behind, and the next run clears what a killed run left.

Over real gpg (a signing key with the wrong passphrase fails the run after ciphertext was written) and the
emulator's real SFTP server."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from airflow_provider_lytics.exports.destinations import LocalDestination
from airflow_provider_lytics.exports.outputs import EncryptionOptions
from airflow_provider_lytics.exports.runner import AudienceExport, ExportSpec
from airflow_provider_lytics.io.pgp_errors import PgpError
from airflow_provider_lytics.operators.exports import LyticsAudienceExportOperator
from tests.exports.helpers import FIELDS, fast_hook, seed, stop_agent, user
from tests.integration.sftp_fixtures import *  # noqa: F403
from tests.integration.sftp_fixtures import use_connection

pytestmark = pytest.mark.skipif(shutil.which("gpg") is None, reason="needs the gpg binary")

N = 300


def protected_key(base: Path, passphrase: str) -> tuple[str, str]:
    """A passphrase-protected Curve25519 key pair: (armored public, armored private)."""
    home = base / "gen"
    home.mkdir(mode=0o700, parents=True)
    spec = (
        "Key-Type: EDDSA\nKey-Curve: ed25519\nSubkey-Type: ECDH\nSubkey-Curve: cv25519\n"
        f"Name-Real: Signer\nName-Email: signer@example.com\nExpire-Date: 0\nPassphrase: {passphrase}\n%commit\n"
    )
    gpg = ["gpg", "--homedir", str(home), "--batch", "--no-tty", "--pinentry-mode", "loopback"]
    try:
        subprocess.run([*gpg, "--gen-key"], input=spec.encode(), check=True, capture_output=True, timeout=60)
        public = subprocess.run([*gpg, "--armor", "--export"], check=True, capture_output=True, timeout=60).stdout
        private = subprocess.run(
            [*gpg, "--passphrase-fd", "0", "--armor", "--export-secret-keys"],
            input=passphrase.encode() + b"\n", check=True, capture_output=True, timeout=60,
        ).stdout  # fmt: skip
    finally:
        stop_agent(home)
    return public.decode(), private.decode()


@pytest.fixture(scope="module")
def signer(tmp_path_factory) -> tuple[str, str]:
    return protected_key(tmp_path_factory.mktemp("signer"), "the right one")


def _wrong_passphrase_conn(monkeypatch, signer) -> None:
    public, private = signer
    extra = {"public_key": public, "private_key": private, "passphrase": "not the right one"}
    monkeypatch.setenv("AIRFLOW_CONN_SIGN_PGP", json.dumps({"conn_type": "pgp", "extra": extra}))


def _leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.rglob("*") if p.is_file())


def test_failed_signed_export_to_sftp_leaves_no_part_file(
    emulator, lytics_conn_env, emulator_target_fixture, monkeypatch, signer
):
    seed(emulator, [user(i) for i in range(N)])
    _wrong_passphrase_conn(monkeypatch, signer)
    use_connection(monkeypatch, "partner_sftp", emulator_target_fixture.connection())
    for attempt in range(2):
        op = LyticsAudienceExportOperator(
            task_id=f"sign{attempt}", segment="actives", fields=FIELDS, pgp_conn_id="sign_pgp", pgp_sign=True,
            destination="sftp", sftp_conn_id="partner_sftp", path=emulator_target_fixture.remote("out"),
            split_rows=100, file_name="actives_{PART}",
        )  # fmt: skip
        with pytest.raises(PgpError):
            op.execute({})
        out = emulator_target_fixture.local("out")
        assert (_leftovers(out) if out.exists() else []) == []


def test_failed_signed_export_to_local_leaves_no_part_file(emulator, lytics_conn_env, tmp_path, signer):
    from airflow_provider_lytics.io.pgp import PgpCipher

    seed(emulator, [user(i) for i in range(N)])
    public, private = signer
    cipher = PgpCipher(public_key=public, private_key=private, passphrase="not the right one")

    class _Pgp:  # what EncryptionOptions needs of a PgpHook
        def open_encryptor(self, target, **kw):
            return cipher.open_encryptor(target, **kw)

    spec = ExportSpec(
        segment="actives", fields=FIELDS, encryption=EncryptionOptions(pgp=_Pgp(), sign=True), file_name="a",
        scan_process=False,
    )  # fmt: skip
    with pytest.raises(PgpError):
        AudienceExport(spec, fast_hook(), LocalDestination(str(tmp_path / "out"))).run()
    assert _leftovers(tmp_path / "out") == []


# -- one incremental run at a time (the lease) --------------------------------------------------------------------
def _incremental_spec(**kw) -> ExportSpec:
    return ExportSpec(
        segment="actives", fields=FIELDS, mode="incremental", scan_process=False, file_name="a_{TIMESTAMP}", **kw
    )


class _Clock:
    def __init__(self) -> None:
        self.now = 1_900_000_000.0

    def __call__(self) -> float:
        self.now += 1.0
        return self.now


def test_overlapping_incremental_runs_over_sftp_do_not_deliver_changes_twice(
    emulator, lytics_conn_env, emulator_target_fixture, monkeypatch
):
    """Run B starts while run A is writing its files (deterministic: A's first file opening starts B). Without
    the lease both loaded the same previous state and delivered the same changes; now B fails naming A."""
    from airflow_provider_lytics.exports.destinations import SftpDestination
    from airflow_provider_lytics.exports.errors import ExportLeaseError

    use_connection(monkeypatch, "partner_sftp", emulator_target_fixture.connection())
    remote = emulator_target_fixture.remote("out")
    clock = _Clock()
    seed(emulator, [user(i) for i in range(50)])
    first = SftpDestination("partner_sftp", remote)
    try:
        AudienceExport(_incremental_spec(), fast_hook(), first, clock=clock).run()
    finally:
        first.close()
    seed(emulator, [user(i) for i in range(50, 120)])  # 70 new members: the changes of the next run
    errors: list[BaseException] = []

    class _StartsAnotherRun(SftpDestination):
        started = False

        def open_file(self, name, *, overwrite):
            if not self.started:
                self.started = True
                other = SftpDestination("partner_sftp", remote)
                try:
                    AudienceExport(_incremental_spec(), fast_hook(), other, clock=clock).run()
                except ExportLeaseError as exc:
                    errors.append(exc)
                finally:
                    other.close()
            return super().open_file(name, overwrite=overwrite)

    dest = _StartsAnotherRun("partner_sftp", remote)
    try:
        result = AudienceExport(_incremental_spec(), fast_hook(), dest, clock=clock).run()
    finally:
        dest.close()
    assert result.counts["added"] == 70
    assert len(errors) == 1 and "already running" in str(errors[0]) and f"pid {os.getpid()}" in str(errors[0])
    out = emulator_target_fixture.local("out")
    added = [f for f in out.iterdir() if "_added" in f.name]
    assert len(added) == 2  # the first run's and A's: B delivered nothing
    assert not (out / ".lytics_export_state" / "actives.lease.json").exists()  # released


# -- what a killed run leaves behind is removed by the next run of the same export ---------------------------------
def test_dead_run_folders_are_removed_but_live_ones_kept(tmp_path):
    import sys

    from airflow_provider_lytics.exports.leftovers import MAIL_OWNER, RunFolder, remove_dead_folders

    code = (
        "import sys, tempfile; tempfile.tempdir = sys.argv[1];"
        "from airflow_provider_lytics.exports.leftovers import RunFolder;"
        "f = RunFolder(sys.argv[2], prefix=sys.argv[3] or None); print(f.path); import os; os._exit(0)"  # kill -9
    )
    dead = subprocess.run([sys.executable, "-c", code, str(tmp_path), "weekly", ""], capture_output=True, text=True,
                          check=True).stdout.strip()  # fmt: skip
    other = subprocess.run([sys.executable, "-c", code, str(tmp_path), "weekly-eu", ""], capture_output=True, text=True,
                           check=True).stdout.strip()  # fmt: skip
    mail = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path), MAIL_OWNER, "lytics-export-mail-"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    import tempfile

    saved, tempfile.tempdir = tempfile.tempdir, str(tmp_path)
    try:
        live = RunFolder("weekly")
        assert sorted(remove_dead_folders("weekly", base=str(tmp_path))) == sorted([dead, mail])
        assert live.path.exists() and Path(other).exists()
        live.remove()
    finally:
        tempfile.tempdir = saved


def test_next_incremental_run_removes_its_exports_dead_parts(emulator, lytics_conn_env, tmp_path):
    seed(emulator, [user(i) for i in range(20)])
    out = tmp_path / "out"
    state = out / ".lytics_export_state"
    state.mkdir(parents=True)
    dead = [out / ".a_20260101T000000Z_added.csv.0badc0de.part", state / ".actives.state.sqlite.gz.1234abcd.part"]
    foreign = [out / ".other_20260101_added.csv.0badc0de.part", out / ".a_notes.txt.0badc0de.part"]
    for path in dead + foreign:
        path.write_bytes(b"partial")
    result = AudienceExport(_incremental_spec(), fast_hook(), LocalDestination(str(out)), clock=_Clock()).run()
    assert result.counts["added"] == 20
    assert [p for p in dead if p.exists()] == []
    assert all(p.exists() for p in foreign)
