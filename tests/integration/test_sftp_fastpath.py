"""The lean asyncssh send path (``io/sftp_fastpath.py``) against real servers: on by default for AES-GCM, the bytes
arrive intact (the server checks every packet's GCM tag), rekeys mid-transfer still work, and every case it does
not cover falls back to asyncssh's own path."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from airflow_provider_lytics.hooks.sftp import LyticsSftpHook

pytest.register_assert_rewrite("tests.integration.sftp_fixtures")
from tests.integration.sftp_fixtures import SftpTarget, use_connection  # noqa: E402

pytest_plugins = ["tests.integration.sftp_fixtures"]

CONN_ID = "fastpath_sftp"


def _hook(monkeypatch: pytest.MonkeyPatch, target: SftpTarget, **conn_kwargs) -> LyticsSftpHook:
    use_connection(monkeypatch, CONN_ID, target.connection(**conn_kwargs))
    return LyticsSftpHook(CONN_ID)


def _random_file(path: Path, mib: int) -> str:
    digest = hashlib.sha256()
    with open(path, "wb") as handle:
        for _ in range(mib):
            block = os.urandom(1024 * 1024)
            digest.update(block)
            handle.write(block)
    return digest.hexdigest()


def test_fast_path_carries_uploads_intact(monkeypatch, sftp_target: SftpTarget, tmp_path: Path) -> None:
    sha = _random_file(tmp_path / "src.bin", 6)
    with _hook(monkeypatch, sftp_target).session() as sftp:
        assert sftp.fast_sender is not None, "AES-GCM connection should use the fast send path"
        before = sftp.fast_sender.fast_packets
        up = sftp.upload_file(tmp_path / "src.bin", sftp_target.remote("up.bin"))
        down = sftp.download_file(sftp_target.remote("up.bin"), tmp_path / "back.bin")
        # 6 MiB in 32 KiB SSH packets: the data went through the fast path, not asyncssh's.
        assert sftp.fast_sender.fast_packets - before >= 6 * 1024 // 32
    assert up.sha256 == down.sha256 == sha
    assert hashlib.sha256(sftp_target.local("up.bin").read_bytes()).hexdigest() == sha


@pytest.mark.sshd
def test_rekey_during_transfer(monkeypatch, openssh_sftp_server, sftp_keys, tmp_path: Path) -> None:
    """Key re-exchanges (asyncssh's path) interleave with fast-path packets: sequence numbers, IVs and byte counts
    stay in step, or OpenSSH would drop the connection with a MAC error."""
    from tests.integration.sftp_fixtures import openssh_target

    target = openssh_target(openssh_sftp_server, sftp_keys, tmp_path)
    sha = _random_file(tmp_path / "src.bin", 8)
    with _hook(monkeypatch, target).session() as sftp:
        conn = sftp._conn
        kexinits = []
        stock_kexinit = conn._send_kexinit
        monkeypatch.setattr(conn, "_send_kexinit", lambda: (kexinits.append(1), stock_kexinit())[1])
        monkeypatch.setattr(conn, "_rekey_bytes", 1024 * 1024)
        up = sftp.upload_file(tmp_path / "src.bin", target.remote("up.bin"))
        down = sftp.download_file(target.remote("up.bin"), tmp_path / "back.bin")
        assert sftp.list_files(target.remote()), "the connection still works after the rekeys"
    assert len(kexinits) >= 4
    assert up.sha256 == down.sha256 == sha
    assert hashlib.sha256(target.local("up.bin").read_bytes()).hexdigest() == sha


@pytest.mark.sshd
def test_other_ciphers_use_asyncssh_path(monkeypatch, openssh_sftp_server, sftp_keys, tmp_path: Path) -> None:
    from tests.integration.sftp_fixtures import openssh_target

    target = openssh_target(openssh_sftp_server, sftp_keys, tmp_path)
    sha = _random_file(tmp_path / "src.bin", 2)
    with _hook(monkeypatch, target, ciphers=["aes128-ctr"]).session() as sftp:
        up = sftp.upload_file(tmp_path / "src.bin", target.remote("up.bin"))
        assert sftp.fast_sender is not None and sftp.fast_sender.fast_packets == 0
    assert up.sha256 == sha == hashlib.sha256(target.local("up.bin").read_bytes()).hexdigest()


def test_switch_and_version_guard(monkeypatch, emulator_target_fixture: SftpTarget) -> None:
    import asyncssh

    monkeypatch.setenv("LYTICS_SFTP_FAST_PATH", "0")
    with _hook(monkeypatch, emulator_target_fixture).session() as sftp:
        assert sftp.fast_sender is None
        sftp.upload_stream(b"x" * 100_000, emulator_target_fixture.remote("a.bin"))
    monkeypatch.delenv("LYTICS_SFTP_FAST_PATH")
    monkeypatch.setattr(asyncssh, "__version__", "9.0.0")  # internals never checked: asyncssh's own path
    with _hook(monkeypatch, emulator_target_fixture).session() as sftp:
        assert sftp.fast_sender is None
        sftp.upload_stream(b"y" * 100_000, emulator_target_fixture.remote("b.bin"))
    assert emulator_target_fixture.local("a.bin").read_bytes() == b"x" * 100_000
    assert emulator_target_fixture.local("b.bin").read_bytes() == b"y" * 100_000
