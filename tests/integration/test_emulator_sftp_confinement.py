"""The emulator's SFTP server keeps each user inside their own root, even through symlinks placed in it, and its
default password cannot be mistaken for parts of ordinary log text by Airflow's secret masker."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

from airflow_provider_lytics.emulator.sftp import DEFAULT_PASSWORD, EmulatorSftpServer, SftpServerError
from airflow_provider_lytics.hooks.sftp import LyticsSftpHook
from airflow_provider_lytics.io.sftp_errors import SftpError
from tests.integration.sftp_fixtures import use_connection


@pytest.fixture
def server(tmp_path: Path):
    users = {"alice": {"password": "alice-pw-0123456789"}, "bob": {"password": "bob-pw-0123456789"}}
    with EmulatorSftpServer(tmp_path / "root", users=users) as srv:
        yield srv


def _session(monkeypatch, server: EmulatorSftpServer, user: str):
    use_connection(monkeypatch, f"emu_{user}", server.airflow_connection(user))
    return LyticsSftpHook(f"emu_{user}").session()


def test_symlinks_inside_the_root_cannot_reach_outside(monkeypatch, server, tmp_path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("not for sftp users")
    home = server.user_roots["alice"]
    os.symlink(outside, home / "dir_link")
    os.symlink(outside / "secret.txt", home / "file_link")
    os.symlink("/", home / "slash")
    (home / "ok.txt").write_text("inside")
    os.symlink(home / "ok.txt", home / "inner_link")
    with _session(monkeypatch, server, "alice") as sftp:
        for path in ("/dir_link/secret.txt", "/file_link", "/slash/etc/passwd"):
            with pytest.raises(SftpError):
                sftp.download_stream(path, io.BytesIO())
        with pytest.raises(SftpError):
            sftp.upload_stream(iter([b"escape"]), "/dir_link/written.txt", overwrite=True)
        with pytest.raises(SftpError):
            sftp.upload_stream(iter([b"escape"]), f"/slash{outside}/written2.txt", overwrite=True)
        sink = io.BytesIO()
        sftp.download_stream("/inner_link", sink)  # a link that stays inside the root works
        assert sink.getvalue() == b"inside"
    assert sorted(p.name for p in outside.iterdir()) == ["secret.txt"]


def test_each_user_has_their_own_root(monkeypatch, server) -> None:
    with _session(monkeypatch, server, "alice") as sftp:
        sftp.upload_stream(iter([b"alice's"]), "/mine.txt", overwrite=True)
    with _session(monkeypatch, server, "bob") as sftp:
        assert not sftp.exists("/mine.txt")
        assert not sftp.exists("/../alice/mine.txt")
        assert [f.name for f in sftp.list_files("/")] == []
    assert (server.user_roots["alice"] / "mine.txt").read_bytes() == b"alice's"
    assert server.user_roots["alice"] != server.user_roots["bob"]


def test_user_root_must_stay_inside_the_server_root(tmp_path) -> None:
    with pytest.raises(SftpServerError, match="outside the server root"):
        EmulatorSftpServer(tmp_path / "r", users={"x": {"password": "p", "root": "../elsewhere"}})


def test_default_password_is_not_masked_inside_ordinary_names() -> None:
    """Airflow masks every occurrence of a connection password in logs: the default must not be a word that
    appears in the provider's own names (``lytics`` turned ``airflow_provider_lytics`` into ``..._***``)."""
    assert DEFAULT_PASSWORD not in "airflow_provider_lytics lytics_default LyticsSftpHook lytics-emulator"
    assert len(DEFAULT_PASSWORD) >= 20
