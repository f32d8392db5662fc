"""Recursive SFTP listing and selection over real servers (the emulator's and OpenSSH): nested matches with
relative paths, path patterns, the depth limit, symlink loops, partial uploads, unreadable sub-folders and
watermarks across folders."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import pytest

from airflow_provider_lytics.hooks.sftp import LyticsSftpHook
from airflow_provider_lytics.imports.watermark import select_new
from airflow_provider_lytics.io.sftp_errors import RemoteFileNotFoundError, SftpConfigError

# The fixtures module is also a plugin (below); rewrite its asserts although it is imported here first.
pytest.register_assert_rewrite("tests.integration.sftp_fixtures")
from tests.integration.sftp_fixtures import SftpTarget, use_connection  # noqa: E402

pytest_plugins = ["tests.integration.sftp_fixtures"]

CONN_ID = "partner_sftp"


def _hook(monkeypatch: pytest.MonkeyPatch, target: SftpTarget) -> LyticsSftpHook:
    use_connection(monkeypatch, CONN_ID, target.connection())
    return LyticsSftpHook(CONN_ID)


def make_tree(target: SftpTarget, files: dict[str, int]) -> None:
    """Create ``relative path -> age in seconds`` files (content: the path) below the target's base directory."""
    now = time.time()
    for relative, age in files.items():
        path = target.local(relative)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(relative.encode())
        os.utime(path, (now - age, now - age))


DROP_ZONE = {
    "top.csv": 500,
    "2026/11/27/users.csv": 400,
    "2026/11/28/users.csv": 300,
    "2026/11/28/orders.csv": 200,
    "2026/11/28/.users.csv.0a1b2c.part": 5,  # an upload in progress
    ".incoming/users.csv": 5,  # hidden folder (e.g. a client's staging area)
}


def test_nested_matches_carry_relative_paths(monkeypatch, sftp_target: SftpTarget) -> None:
    make_tree(sftp_target, DROP_ZONE)
    base = sftp_target.remote()
    with _hook(monkeypatch, sftp_target).session() as sftp:
        assert [f.relative for f in sftp.list_files(base)] == ["top.csv"]  # flat listing unchanged
        users = sftp.list_files(base, glob="users.csv", recursive=True)
        assert [f.relative for f in users] == ["2026/11/27/users.csv", "2026/11/28/users.csv"]
        assert [f.path for f in users] == [f"{base}/2026/11/27/users.csv", f"{base}/2026/11/28/users.csv"]
        assert [f.name for f in users] == ["users.csv", "users.csv"]
        assert [f.relative for f in sftp.list_files(base, glob="2026/*/28/*.csv", recursive=True)] == [
            "2026/11/28/orders.csv",
            "2026/11/28/users.csv",
        ]
        assert [f.relative for f in sftp.list_files(base, glob="**/*.csv", recursive=True)] == [
            "2026/11/27/users.csv",
            "2026/11/28/orders.csv",
            "2026/11/28/users.csv",
            "top.csv",
        ]
        assert [f.relative for f in sftp.list_files(base, regex=r"\d{4}/\d{2}/27/.+", recursive=True)] == [
            "2026/11/27/users.csv"
        ]
        everything = sftp.list_files(base, recursive=True)
        assert ".incoming/users.csv" not in [f.relative for f in everything]
        assert sftp.newest(base, glob="*.csv", recursive=True).relative == "2026/11/28/orders.csv"
        with pytest.raises(SftpConfigError, match="recursive=True"):
            sftp.list_files(base, glob="2026/*/*/users.csv")
        with pytest.raises(RemoteFileNotFoundError):
            sftp.list_files(f"{base}/missing", recursive=True)
    # the file-arrival rules skip the partial upload found in a sub-folder
    ready = select_new(everything, None, by="mtime")
    assert [f.relative for f in ready.files] == [
        "top.csv",
        "2026/11/27/users.csv",
        "2026/11/28/users.csv",
        "2026/11/28/orders.csv",
    ]
    assert "2026/11/28/.users.csv.0a1b2c.part" in [f.relative for f in everything]  # listed, never selected


def test_depth_limit_warns_about_what_it_left_out(monkeypatch, sftp_target: SftpTarget, caplog) -> None:
    make_tree(sftp_target, {"a.csv": 9, "l1/b.csv": 8, "l1/l2/c.csv": 7, "l1/l2/l3/d.csv": 6})
    base = sftp_target.remote()
    with _hook(monkeypatch, sftp_target).session() as sftp:
        assert [f.relative for f in sftp.list_files(base, recursive=True)] == [
            "a.csv",
            "l1/b.csv",
            "l1/l2/c.csv",
            "l1/l2/l3/d.csv",
        ]
        with caplog.at_level(logging.WARNING, logger="airflow_provider_lytics.io.sftp"):
            shallow = sftp.list_files(base, recursive=True, max_depth=1)
        assert [f.relative for f in shallow] == ["a.csv", "l1/b.csv"]
        assert "deeper than max_depth=1" in caplog.text and "l1/l2" in caplog.text
        assert [f.relative for f in sftp.list_files(base, recursive=True, max_depth=0)] == ["a.csv"]
        with pytest.raises(SftpConfigError, match="max_depth"):
            sftp.list_files(base, recursive=True, max_depth=-1)


def test_symlink_loops_do_not_hang_and_files_are_listed_once(monkeypatch, sftp_target: SftpTarget) -> None:
    make_tree(sftp_target, {"2026/11/28/users.csv": 10, "real.csv": 20})
    os.symlink("..", sftp_target.local("2026/11/28/up"))  # loop: 2026/11/28/up/11/28/up/...
    os.symlink(".", sftp_target.local("self"))  # loop at the top
    os.symlink("real.csv", sftp_target.local("alias.csv"))  # a link to a file is a file
    os.symlink("nowhere.csv", sftp_target.local("dangling.csv"))
    started = time.monotonic()
    with _hook(monkeypatch, sftp_target).session() as sftp:
        found = sftp.list_files(sftp_target.remote(), recursive=True, max_depth=50)
    assert [f.relative for f in found] == ["2026/11/28/users.csv", "alias.csv", "real.csv"]
    assert time.monotonic() - started < 30


def test_unreadable_sub_folder_is_a_warning(monkeypatch, sftp_target: SftpTarget, caplog) -> None:
    import asyncssh

    make_tree(sftp_target, {"ok/a.csv": 10, "locked/b.csv": 10, "c.csv": 10})
    locked = sftp_target.remote("locked")
    with _hook(monkeypatch, sftp_target).session() as sftp:
        client = sftp._client
        readdir = client.readdir

        async def guarded_readdir(path, *args, **kwargs):  # root ignores chmod, so the server's refusal is faked
            if path == locked:
                raise asyncssh.SFTPPermissionDenied("Permission denied")
            return await readdir(path, *args, **kwargs)

        monkeypatch.setattr(client, "readdir", guarded_readdir)
        with caplog.at_level(logging.WARNING, logger="airflow_provider_lytics.io.sftp"):
            found = sftp.list_files(sftp_target.remote(), recursive=True)
        assert [f.relative for f in found] == ["c.csv", "ok/a.csv"]
        assert f"Skipping sub-folder {locked}" in caplog.text and "permission denied" in caplog.text
        with pytest.raises(Exception, match="permission denied"):
            sftp.list_files(locked, recursive=True)  # the listed directory itself must be readable


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads every folder")
def test_unreadable_sub_folder_on_disk(monkeypatch, sftp_target: SftpTarget, caplog) -> None:
    make_tree(sftp_target, {"ok/a.csv": 10, "locked/b.csv": 10})
    sftp_target.local("locked").chmod(0)
    try:
        with _hook(monkeypatch, sftp_target).session() as sftp, caplog.at_level(logging.WARNING):
            found = sftp.list_files(sftp_target.remote(), recursive=True)
        assert [f.relative for f in found] == ["ok/a.csv"] and "Skipping sub-folder" in caplog.text
    finally:
        sftp_target.local("locked").chmod(0o755)


def test_watermarks_across_folders(monkeypatch, sftp_target: SftpTarget) -> None:
    make_tree(sftp_target, {"2026/11/26/users.csv": 3000, "2026/11/27/users.csv": 2000, "other/users.csv": 1000})
    base = sftp_target.remote()
    with _hook(monkeypatch, sftp_target).session() as sftp:
        first = sftp.newer_than(base, None, glob="users.csv", recursive=True)
        assert [f.relative for f in first.files] == ["2026/11/26/users.csv", "2026/11/27/users.csv", "other/users.csv"]
        assert sftp.newer_than(base, first.watermark, glob="users.csv", recursive=True).files == []
        make_tree(sftp_target, {"2026/11/28/users.csv": 10})  # a new dated folder appears
        second = sftp.newer_than(base, first.watermark, glob="users.csv", recursive=True)
        assert [f.relative for f in second.files] == ["2026/11/28/users.csv"] and second.watermark > first.watermark
        # dates read from the folder names
        dated = sftp.newer_than(base, "2026-11-26", glob="users.csv", recursive=True, by="name",
                                date_format="%Y/%m/%d")  # fmt: skip
        assert [f.relative for f in dated.files] == ["2026/11/27/users.csv", "2026/11/28/users.csv"]
        assert dated.watermark == "2026-11-28" and dated.skipped == ["other/users.csv"]


def test_archive_folders_are_not_walked(monkeypatch, sftp_target: SftpTarget) -> None:
    make_tree(sftp_target, {"2026/11/28/users.csv": 10, "2026/11/27/users.csv": 20})
    base = sftp_target.remote()
    with _hook(monkeypatch, sftp_target).session() as sftp:
        files = sftp.list_files(base, recursive=True)
        moved = sftp.finish(files, action="archive", archive_dir="done")
        assert moved == [f"{base}/2026/11/27/done/users.csv", f"{base}/2026/11/28/done/users.csv"]
        assert sftp.list_files(base, recursive=True, exclude_dirs=["done"]) == []
        assert len(sftp.list_files(base, recursive=True)) == 2  # without the exclusion they would come back
        assert sftp.list_files(base, recursive=True, exclude_dirs=["2026/11/27/done"])[0].relative == (
            "2026/11/28/done/users.csv"
        )
    assert not list(Path(sftp_target.local("2026/11/28")).glob("*.csv"))
