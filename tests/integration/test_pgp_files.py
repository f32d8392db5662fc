"""Atomic PGP outputs: the writeback thread flushes a growing file a step at a time; gpg writes into the very
temporary file it was given (so the flushes reach the data), and the final file is complete and private."""

from __future__ import annotations

import os
import shutil
import stat
import threading
from pathlib import Path

import pytest

from airflow_provider_lytics.io import pgp_files
from airflow_provider_lytics.io.pgp import PgpCipher
from airflow_provider_lytics.io.pgp_files import Writeback, atomic_path
from tests.integration.test_pgp import make_test_keys


def _writeback_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "lytics-pgp-writeback"]


def test_writeback_flushes_once_per_step_of_growth(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "out.bin"
    target.write_bytes(b"")
    calls: list[int] = []
    real = os.fdatasync
    monkeypatch.setattr(pgp_files.os, "fdatasync", lambda fd: (calls.append(fd), real(fd)))
    wb = Writeback(target, step=1000)  # not started: poll() is driven by hand, no timing involved
    try:
        with open(target, "ab") as fh:
            fh.write(b"x" * 999)
            fh.flush()
            wb.poll()
            assert wb.flushes == 0
            fh.write(b"x")
            fh.flush()
            wb.poll()
            assert (wb.flushes, wb.flushed) == (1, 1000)
            wb.poll()  # no growth since: no second flush
            fh.write(b"x" * 2500)
            fh.flush()
            wb.poll()
            assert (wb.flushes, wb.flushed) == (2, 3500)
    finally:
        wb.stop()
    assert len(calls) == 2


def test_atomic_path_renames_on_success_and_stops_its_thread(tmp_path: Path) -> None:
    dest = tmp_path / "plain.csv"
    with atomic_path(dest) as tmp:
        assert stat.S_IMODE(tmp.stat().st_mode) == 0o600
        assert _writeback_threads()
        tmp.write_bytes(b"a,b\n")
    assert dest.read_bytes() == b"a,b\n"
    assert not _writeback_threads()
    assert [p.name for p in tmp_path.iterdir()] == ["plain.csv"]


def test_atomic_path_removes_the_partial_file_on_failure(tmp_path: Path) -> None:
    dest = tmp_path / "plain.csv"
    with pytest.raises(RuntimeError, match="boom"), atomic_path(dest) as tmp:
        tmp.write_bytes(b"secret partial plaintext")
        raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []
    assert not _writeback_threads()


@pytest.mark.skipif(shutil.which("gpg") is None, reason="needs the gpg binary")
def test_gpg_writes_into_the_given_temporary_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The writeback holds a descriptor of the temporary file: gpg must fill that inode, not replace it."""
    keys = make_test_keys(tmp_path / "keys")
    key = keys["ed"]
    inodes: list[int] = []
    real_init = Writeback.__init__

    def spy(self: Writeback, path: Path, **kw: object) -> None:
        real_init(self, path, step=64 * 1024, interval=0.01)
        inodes.append(os.fstat(self._fd).st_ino)

    monkeypatch.setattr(Writeback, "__init__", spy)
    src = tmp_path / "plain.bin"
    src.write_bytes(os.urandom(1 << 20) * 3)
    cipher = PgpCipher(public_key=key.public, private_key=key.private, passphrase=key.passphrase)
    cipher.encrypt_file(src, tmp_path / "c.gpg", compress=False)
    assert os.stat(tmp_path / "c.gpg").st_ino == inodes[-1]
    cipher.decrypt_file(tmp_path / "c.gpg", tmp_path / "back.bin")
    assert os.stat(tmp_path / "back.bin").st_ino == inodes[-1]
    assert (tmp_path / "back.bin").read_bytes() == src.read_bytes()
    assert stat.S_IMODE(os.stat(tmp_path / "back.bin").st_mode) == 0o600
    assert not _writeback_threads()
