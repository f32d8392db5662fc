"""SFTP transfer engine against real SFTP servers: the emulator's managed SFTP and, where installed, OpenSSH sshd.

Connections come from ``AIRFLOW_CONN_<ID>`` env vars (no metadata DB), exactly as users configure them.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest

from airflow_provider_lytics.hooks.sftp import LyticsSftpHook
from airflow_provider_lytics.io.sftp_errors import (
    HostKeyVerificationError,
    RemoteFileExistsError,
    RemoteFileNotFoundError,
    SftpConfigError,
    SftpConnectError,
)

# The fixtures module is also a plugin (below); rewrite its asserts although it is imported here first.
pytest.register_assert_rewrite("tests.integration.sftp_fixtures")
from tests.integration.sftp_fixtures import (  # noqa: E402
    EMULATOR_PASSWORD,
    SftpKeys,
    SftpTarget,
    use_connection,
)

pytest_plugins = ["tests.integration.sftp_fixtures"]

CONN_ID = "partner_sftp"


def _hook(monkeypatch: pytest.MonkeyPatch, target: SftpTarget, **conn_kwargs) -> LyticsSftpHook:
    use_connection(monkeypatch, CONN_ID, target.connection(**conn_kwargs))
    return LyticsSftpHook(CONN_ID)


def _leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.rglob("*.part"))


class _FailingStream(io.RawIOBase):
    """A readable stream that fails after ``fail_after`` bytes, like a crashing encoder or a killed pipe."""

    def __init__(self, fail_after: int) -> None:
        self.remaining = fail_after

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        if self.remaining <= 0:
            raise OSError("upstream encoder died")
        n = min(size if size > 0 else 65536, self.remaining)
        self.remaining -= n
        return os.urandom(n)


# ---------------------------------------------------------------- authentication and host keys


def test_password_auth_round_trip(monkeypatch, emulator_target_fixture: SftpTarget, tmp_path: Path) -> None:
    target = emulator_target_fixture
    local = tmp_path / "data.csv"
    local.write_bytes(b"id,email\n1,a@example.com\n")
    with _hook(monkeypatch, target, auth="password").session() as sftp:
        result = sftp.upload_file(local, target.remote("data.csv"))
        back = sftp.download_file(target.remote("data.csv"), tmp_path / "back.csv")
    assert target.local("data.csv").read_bytes() == local.read_bytes()
    assert (tmp_path / "back.csv").read_bytes() == local.read_bytes()
    assert result.sha256 == back.sha256 == hashlib.sha256(local.read_bytes()).hexdigest()


def test_wrong_password_is_rejected_without_leaking_it(monkeypatch, emulator_target_fixture: SftpTarget) -> None:
    target = emulator_target_fixture
    conn = target.connection(auth="password")
    conn["password"] = "not-the-password-XYZ"
    use_connection(monkeypatch, CONN_ID, conn)
    with pytest.raises(SftpConnectError, match="Authentication failed") as info:
        LyticsSftpHook(CONN_ID).session().open()
    assert "not-the-password-XYZ" not in str(info.value)
    assert "not-the-password-XYZ" not in repr(LyticsSftpHook(CONN_ID).get_config())


def test_key_auth_with_key_file(monkeypatch, sftp_target: SftpTarget) -> None:
    with _hook(monkeypatch, sftp_target, auth="key").session() as sftp:
        sftp.upload_stream(b"hello", sftp_target.remote("k.txt"))
    assert sftp_target.local("k.txt").read_bytes() == b"hello"


def test_inline_private_key_with_passphrase(monkeypatch, sftp_target: SftpTarget, sftp_keys: SftpKeys) -> None:
    encrypted = sftp_keys.encrypted_path.read_text()
    hook = _hook(
        monkeypatch,
        sftp_target,
        auth="key",
        key_file=None,
        private_key=encrypted,
        private_key_passphrase=sftp_keys.passphrase,
    )
    with hook.session() as sftp:
        assert sftp.list_files(sftp_target.remote()) == []

    bad = _hook(
        monkeypatch, sftp_target, auth="key", key_file=None, private_key=encrypted, private_key_passphrase="wrong"
    )
    with pytest.raises(SftpConfigError, match="private_key_passphrase") as info:
        bad.session().open()
    assert "BEGIN" not in str(info.value)


def test_host_key_pinned_ok_and_fingerprint_format(monkeypatch, sftp_target: SftpTarget) -> None:
    with _hook(monkeypatch, sftp_target).session() as sftp:
        assert sftp.exists(sftp_target.remote())
    assert sftp_target.fingerprint.startswith("SHA256:") and not sftp_target.fingerprint.endswith("=")


def test_host_key_mismatch_names_both_fingerprints(monkeypatch, sftp_target: SftpTarget, sftp_keys: SftpKeys) -> None:
    import asyncssh

    hook = _hook(monkeypatch, sftp_target, host_key=sftp_keys.other_host_key)
    expected = asyncssh.import_public_key(sftp_keys.other_host_key).get_fingerprint("sha256")
    with pytest.raises(HostKeyVerificationError) as info:
        hook.session().open()
    message = str(info.value)
    assert expected in message and sftp_target.fingerprint in message
    assert info.value.presented == sftp_target.fingerprint
    assert info.value.expected == [expected]
    assert sftp_target.host_key in message  # the line to pin if the change is legitimate


def test_missing_host_key_fails_closed(monkeypatch, sftp_target: SftpTarget, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.ssh/known_hosts to fall back on
    hook = _hook(monkeypatch, sftp_target, host_key=None)
    with pytest.raises(HostKeyVerificationError, match="no host key is configured") as info:
        hook.session().open()
    assert sftp_target.fingerprint in str(info.value)


def test_known_hosts_file(monkeypatch, sftp_target: SftpTarget, tmp_path: Path) -> None:
    known = tmp_path / "known_hosts"
    known.write_text(f"[{sftp_target.host}]:{sftp_target.port} {sftp_target.host_key}\n")
    with _hook(monkeypatch, sftp_target, host_key=None, known_hosts=str(known)).session() as sftp:
        assert sftp.exists(sftp_target.remote())
    known.write_text(f"[{sftp_target.host}]:{sftp_target.port + 1} {sftp_target.host_key}\n")
    with pytest.raises(HostKeyVerificationError, match="is not in known_hosts file"):
        _hook(monkeypatch, sftp_target, host_key=None, known_hosts=str(known)).session().open()


def test_no_host_key_check_must_be_explicit(monkeypatch, sftp_target: SftpTarget, tmp_path: Path, caplog) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    hook = _hook(monkeypatch, sftp_target, host_key=None, no_host_key_check="true")
    with caplog.at_level(logging.WARNING), hook.session() as sftp:
        assert sftp.exists(sftp_target.remote())
    assert "Host key verification is OFF" in caplog.text
    with pytest.raises(SftpConfigError, match="host_key"):
        _hook(monkeypatch, sftp_target, no_host_key_check="true").get_config()


def test_connection_config_errors_say_what_to_fix(monkeypatch, emulator_target_fixture: SftpTarget) -> None:
    target = emulator_target_fixture
    with pytest.raises(SftpConfigError, match="keep only one"):
        _hook(monkeypatch, target, private_key="-----BEGIN X-----\nabc\n-----END X-----").get_config()
    with pytest.raises(SftpConfigError, match="true or false"):
        _hook(monkeypatch, target, no_host_key_check="maybe").get_config()
    with pytest.raises(SftpConfigError, match="does not exist"):
        _hook(monkeypatch, target, key_file="/nonexistent/id_ed25519").session().open()
    with pytest.raises(SftpConfigError, match="'ciphers' extra"):
        _hook(monkeypatch, target, ciphers=["no-such-cipher"]).session().open()
    conn = target.connection()
    conn["host"] = ""
    use_connection(monkeypatch, CONN_ID, conn)
    with pytest.raises(SftpConfigError, match="Host field"):
        LyticsSftpHook(CONN_ID).get_config()


def test_hook_test_connection(monkeypatch, emulator_target_fixture: SftpTarget, sftp_keys: SftpKeys) -> None:
    assert _hook(monkeypatch, emulator_target_fixture).test_connection() == (True, "Connection successfully tested")
    ok, message = _hook(monkeypatch, emulator_target_fixture, host_key=sftp_keys.other_host_key).test_connection()
    assert not ok and "Host key verification failed" in message


# ---------------------------------------------------------------- atomic transfers


def test_upload_killed_half_way_leaves_nothing(monkeypatch, sftp_target: SftpTarget) -> None:
    with _hook(monkeypatch, sftp_target).session() as sftp:
        with pytest.raises(OSError, match="upstream encoder died"):
            sftp.upload_stream(_FailingStream(3 * 1024 * 1024 + 17), sftp_target.remote("out.csv.gpg"))
        # The session stays usable after the failure.
        sftp.upload_stream(b"ok", sftp_target.remote("after.txt"))
    assert not sftp_target.local("out.csv.gpg").exists()
    assert _leftovers(sftp_target.local()) == []
    assert [p.name for p in sftp_target.local().iterdir()] == ["after.txt"]


def test_generator_failure_mid_upload_keeps_previous_version(monkeypatch, sftp_target: SftpTarget) -> None:
    def rows():
        for i in range(50_000):
            if i == 40_000:
                raise ValueError("bad row 40000")
            yield f"{i},user{i}@example.com\n".encode()

    sftp_target.local("users.csv").write_bytes(b"previous\n")
    with _hook(monkeypatch, sftp_target).session() as sftp, pytest.raises(ValueError, match="bad row"):
        sftp.upload_stream(rows(), sftp_target.remote("users.csv"), overwrite=True)
    assert sftp_target.local("users.csv").read_bytes() == b"previous\n"
    assert _leftovers(sftp_target.local()) == []


def test_overwrite_rules(monkeypatch, sftp_target: SftpTarget) -> None:
    with _hook(monkeypatch, sftp_target).session() as sftp:
        sftp.upload_stream(b"v1", sftp_target.remote("f.txt"))
        with pytest.raises(RemoteFileExistsError, match="overwrite=True"):
            sftp.upload_stream(b"v2", sftp_target.remote("f.txt"))
        assert sftp_target.local("f.txt").read_bytes() == b"v1"
        sftp.upload_stream(b"v2", sftp_target.remote("f.txt"), overwrite=True)
        with pytest.raises(RemoteFileNotFoundError):
            sftp.upload_stream(b"x", sftp_target.remote("missing/dir/f.txt"))
        sftp.upload_stream(b"x", sftp_target.remote("made/dir/f.txt"), makedirs=True)
    assert sftp_target.local("f.txt").read_bytes() == b"v2"
    assert sftp_target.local("made/dir/f.txt").read_bytes() == b"x"
    assert _leftovers(sftp_target.local()) == []


def test_download_is_atomic(monkeypatch, sftp_target: SftpTarget, tmp_path: Path) -> None:
    sftp_target.local("new.csv").write_bytes(b"new content\n" * 1000)
    target_file = tmp_path / "local.csv"
    target_file.write_bytes(b"old content\n")
    with _hook(monkeypatch, sftp_target).session() as sftp:
        with pytest.raises(RemoteFileNotFoundError):
            sftp.download_file(sftp_target.remote("absent.csv"), target_file)
        assert target_file.read_bytes() == b"old content\n"

        class _Boom(Exception):
            pass

        original = sftp.download_stream

        def failing_stream(remote_path, sink):
            sink.write(b"partial")
            raise _Boom("disk full")

        sftp.download_stream = failing_stream  # a failure after bytes reached the temp file
        with pytest.raises(_Boom):
            sftp.download_file(sftp_target.remote("new.csv"), target_file)
        assert target_file.read_bytes() == b"old content\n"
        sftp.download_stream = original

        with pytest.raises(FileExistsError):
            sftp.download_file(sftp_target.remote("new.csv"), target_file, overwrite=False)
        result = sftp.download_file(sftp_target.remote("new.csv"), target_file)
    assert target_file.read_bytes() == b"new content\n" * 1000
    assert result.local_path == str(target_file)
    assert _leftovers(tmp_path) == []


def test_stream_upload_from_generator_and_download_to_stream(monkeypatch, sftp_target: SftpTarget) -> None:
    lines = [f"{i},user{i}@example.com,{i % 7}\n".encode() for i in range(200_000)]
    expected = b"".join(lines)
    with _hook(monkeypatch, sftp_target).session() as sftp:
        up = sftp.upload_stream(iter(lines), sftp_target.remote("users.csv"))
        sink = io.BytesIO()
        down = sftp.download_stream(sftp_target.remote("users.csv"), sink)
    assert sftp_target.local("users.csv").read_bytes() == expected
    assert sink.getvalue() == expected
    assert up.size == down.size == len(expected)
    assert up.sha256 == down.sha256 == hashlib.sha256(expected).hexdigest()


def test_sink_failure_stops_download(monkeypatch, sftp_target: SftpTarget) -> None:
    sftp_target.local("big.bin").write_bytes(os.urandom(4 * 1024 * 1024))

    class _Sink(io.RawIOBase):
        written = 0

        def writable(self) -> bool:
            return True

        def write(self, data) -> int:
            if self.written > 1024 * 1024:
                raise OSError("pipe closed")
            self.written += len(data)
            return len(data)

    with _hook(monkeypatch, sftp_target).session() as sftp:
        with pytest.raises(OSError, match="pipe closed"):
            sftp.download_stream(sftp_target.remote("big.bin"), _Sink())
        # The connection is still fine afterwards.
        assert sftp.stat(sftp_target.remote("big.bin")).size == 4 * 1024 * 1024


@pytest.mark.slow
def test_50mb_checksum_round_trip(monkeypatch, sftp_target: SftpTarget, tmp_path: Path) -> None:
    source = tmp_path / "big.bin"
    digest = hashlib.sha256()
    with open(source, "wb") as handle:
        for _ in range(50):
            block = os.urandom(1024 * 1024)
            digest.update(block)
            handle.write(block)
    with _hook(monkeypatch, sftp_target).session() as sftp:
        up = sftp.upload_file(source, sftp_target.remote("big.bin"))
        down = sftp.download_file(sftp_target.remote("big.bin"), tmp_path / "back.bin")
    assert up.size == down.size == 50 * 1024 * 1024
    assert up.sha256 == down.sha256 == digest.hexdigest()
    assert hashlib.sha256(sftp_target.local("big.bin").read_bytes()).hexdigest() == digest.hexdigest()
    assert hashlib.sha256((tmp_path / "back.bin").read_bytes()).hexdigest() == digest.hexdigest()


# ---------------------------------------------------------------- manifests


def test_manifest_written_after_data(monkeypatch, sftp_target: SftpTarget, tmp_path: Path) -> None:
    local = tmp_path / "export.csv"
    local.write_bytes(b"a,b\n1,2\n3,4\n")
    with _hook(monkeypatch, sftp_target).session() as sftp:
        result = sftp.upload_file(local, sftp_target.remote("export.csv"), manifest=True, row_count=2)
        later = sftp.upload_stream(b"x\n", sftp_target.remote("later.csv"))
        later = sftp.write_manifest(later, row_count=1, manifest_path=sftp_target.remote("later.json"))
    manifest = json.loads(sftp_target.local("export.csv.manifest.json").read_text())
    assert result.manifest_path == sftp_target.remote("export.csv.manifest.json")
    assert manifest["name"] == "export.csv"
    assert manifest["size"] == local.stat().st_size
    assert manifest["sha256"] == hashlib.sha256(local.read_bytes()).hexdigest()
    assert manifest["row_count"] == 2
    created = datetime.fromisoformat(manifest["created"])
    assert abs((datetime.now(timezone.utc) - created).total_seconds()) < 60
    assert (
        sftp_target.local("export.csv.manifest.json").stat().st_mtime >= sftp_target.local("export.csv").stat().st_mtime
    )
    assert json.loads(sftp_target.local("later.json").read_text())["row_count"] == 1
    assert _leftovers(sftp_target.local()) == []


# ---------------------------------------------------------------- selection, watermarks, after-load


def _make_files(target: SftpTarget, names_and_ages: dict[str, int]) -> None:
    now = time.time()
    for name, age in names_and_ages.items():
        path = target.local(name)
        path.write_bytes(name.encode())
        os.utime(path, (now - age, now - age))


def test_glob_regex_and_newest(monkeypatch, sftp_target: SftpTarget) -> None:
    _make_files(
        sftp_target,
        {"users_1.csv": 300, "users_2.csv": 100, "users_3.csv.gpg": 50, "orders_1.csv": 10, "notes.txt": 5},
    )
    sftp_target.local("users_dir.csv").mkdir()  # directories are never selected
    with _hook(monkeypatch, sftp_target).session() as sftp:
        base = sftp_target.remote()
        assert [f.name for f in sftp.list_files(base, glob="users_*.csv")] == ["users_1.csv", "users_2.csv"]
        assert [f.name for f in sftp.list_files(base, regex=r"users_\d+\.csv(\.gpg)?")] == [
            "users_1.csv",
            "users_2.csv",
            "users_3.csv.gpg",
        ]
        assert sftp.newest(base, glob="users_*").name == "users_3.csv.gpg"
        assert sftp.newest(base, glob="nothing_*") is None
        exact = sftp.stat(sftp_target.remote("orders_1.csv"))
        assert exact.size == len(b"orders_1.csv") and exact.name == "orders_1.csv"
        with pytest.raises(RemoteFileNotFoundError):
            sftp.stat(sftp_target.remote("nope.csv"))
        with pytest.raises(SftpConfigError, match="Invalid file name regex"):
            sftp.list_files(base, regex="users_(")


def test_mtime_watermark(monkeypatch, sftp_target: SftpTarget) -> None:
    _make_files(sftp_target, {"a.csv": 3000, "b.csv": 2000, "c.csv": 1000})
    with _hook(monkeypatch, sftp_target).session() as sftp:
        first = sftp.newer_than(sftp_target.remote(), None, glob="*.csv")
        assert [f.name for f in first.files] == ["a.csv", "b.csv", "c.csv"]
        assert first.watermark == first.files[-1].modified.isoformat()
        again = sftp.newer_than(sftp_target.remote(), first.watermark, glob="*.csv")
        assert again.files == [] and again.watermark == first.watermark
        _make_files(sftp_target, {"d.csv": 10})
        third = sftp.newer_than(sftp_target.remote(), first.watermark, glob="*.csv")
        assert [f.name for f in third.files] == ["d.csv"]
        assert third.watermark > first.watermark


def test_dated_name_watermark(monkeypatch, sftp_target: SftpTarget) -> None:
    _make_files(
        sftp_target,
        {
            "users_2026-11-26.csv": 10,
            "users_2026-11-28.csv": 300,  # older mtime, newer name date: names win
            "users_2026-11-27.csv": 20,
            "users_latest.csv": 1,
        },
    )
    with _hook(monkeypatch, sftp_target).session() as sftp:
        picked = sftp.newer_than(sftp_target.remote(), "2026-11-26", glob="users_*.csv", by="name")
        assert [f.name for f in picked.files] == ["users_2026-11-27.csv", "users_2026-11-28.csv"]
        assert picked.watermark == "2026-11-28"
        assert picked.skipped == ["users_latest.csv"]
        compact = sftp.newer_than(sftp_target.remote(), None, regex=r"users_.*\.csv", by="name", date_format="%Y%m%d")
        assert compact.files == [] and compact.watermark is None
        with pytest.raises(SftpConfigError, match="ISO-8601"):
            sftp.newer_than(sftp_target.remote(), "28/11/2026", by="name")


def test_delete_and_archive_after_load(monkeypatch, sftp_target: SftpTarget) -> None:
    _make_files(sftp_target, {"a.csv": 30, "b.csv": 20, "c.csv": 10})
    sftp_target.local("processed").mkdir()
    sftp_target.local("processed/a.csv").write_bytes(b"older a")
    with _hook(monkeypatch, sftp_target).session() as sftp:
        files = sftp.list_files(sftp_target.remote(), glob="*.csv")
        moved = sftp.finish(files[:2], action="archive", archive_dir="processed")
        assert sftp.finish(files[2:], action="delete") == []
        with pytest.raises(SftpConfigError, match="archive_dir"):
            sftp.finish(files, action="archive")
    assert sorted(p.name for p in sftp_target.local().iterdir()) == ["processed"]
    archived = sorted(p.name for p in sftp_target.local("processed").iterdir())
    assert "b.csv" in archived and "a.csv" in archived and len(archived) == 3
    assert sftp_target.local("processed/a.csv").read_bytes() == b"older a"  # the older archive is kept
    assert moved[1] == sftp_target.remote("processed/b.csv")
    assert moved[0].startswith(sftp_target.remote("processed/a.")) and moved[0].endswith(".csv")


# ---------------------------------------------------------------- emulator server behaviour


def test_emulator_host_key_is_stable_across_restarts(tmp_path: Path) -> None:
    from airflow_provider_lytics.emulator.sftp import EmulatorSftpServer

    with EmulatorSftpServer(tmp_path / "root") as first:
        key, fp = first.host_public_key, first.fingerprint
    with EmulatorSftpServer(tmp_path / "root") as second:
        assert (second.host_public_key, second.fingerprint) == (key, fp)
    assert oct((tmp_path / "lytics-emulator-sftp-host-key").stat().st_mode & 0o777) == "0o600"


def test_emulator_is_chrooted(monkeypatch, emulator_target_fixture: SftpTarget, emulator_sftp_server) -> None:
    outside = emulator_sftp_server.root.parent / "outside.txt"
    outside.write_text("secret")
    with _hook(monkeypatch, emulator_target_fixture, auth="password").session() as sftp:
        names = [f.name for f in sftp.list_files("/")]
        assert "outside.txt" not in names
        with pytest.raises(RemoteFileNotFoundError):
            sftp.stat("/../outside.txt")


def test_emulator_airflow_connection_helper(monkeypatch, emulator_sftp_server) -> None:
    conn = emulator_sftp_server.airflow_connection()
    assert conn["password"] == EMULATOR_PASSWORD and conn["extra"]["host_key"].startswith("ssh-ed25519 ")
    use_connection(monkeypatch, "emu_sftp", conn)
    with LyticsSftpHook("emu_sftp").session() as sftp:
        assert sftp.exists("/")


def test_emulator_rejects_bad_user_config(tmp_path: Path) -> None:
    from airflow_provider_lytics.emulator.sftp import EmulatorSftpServer, SftpServerError

    with pytest.raises(SftpServerError, match="needs a 'password'"):
        EmulatorSftpServer(tmp_path / "r", users={"x": {}})
    with pytest.raises(SftpServerError, match="OpenSSH public key"):
        EmulatorSftpServer(tmp_path / "r", users={"x": {"authorized_keys": ["garbage"]}})


def test_inline_known_hosts(monkeypatch, emulator_target_fixture: SftpTarget) -> None:
    target = emulator_target_fixture
    line = f"[{target.host}]:{target.port} {target.host_key}"
    with _hook(monkeypatch, target, host_key=None, known_hosts=line).session() as sftp:
        assert sftp.exists(target.remote())
    with pytest.raises(SftpConfigError, match="does not exist on this worker"):
        _hook(monkeypatch, target, host_key=None, known_hosts="/no/such/known_hosts").session().open()


# ---------------------------------------------------------------- selection rules without a server


def test_selection_rules() -> None:
    from airflow_provider_lytics.io.sftp_select import RemoteFile, filter_files, name_date, newer_than

    files = [
        RemoteFile("/o/users_20261127T0600.csv", 1, 100.0),
        RemoteFile("/o/users_20261127T1800.csv", 1, 50.0),
        RemoteFile("/o/users_20261128T0000.csv", 1, 200.0),
    ]
    picked = newer_than(files, "2026-11-27T06:00:00", by="name", date_format="%Y%m%dT%H%M")
    assert [f.name for f in picked.files] == ["users_20261127T1800.csv", "users_20261128T0000.csv"]
    assert picked.watermark == "2026-11-28T00:00:00"
    by_mtime = newer_than(files, datetime.fromtimestamp(100.0, tz=timezone.utc))
    assert [f.name for f in by_mtime.files] == ["users_20261128T0000.csv"]
    assert newer_than(files, 200.0).watermark == datetime.fromtimestamp(200.0, tz=timezone.utc).isoformat()
    assert name_date("export_2026-02-30_2026-02-28.csv", "%Y-%m-%d") == datetime(2026, 2, 28)
    assert name_date("v12026-11-28.csv", "%Y-%m-%d") is None  # digits glued to the date are not a date
    with pytest.raises(SftpConfigError, match="either 'glob' or 'regex'"):
        filter_files(files, glob="*", regex=".*")
    with pytest.raises(SftpConfigError, match="supported"):
        newer_than(files, None, by="name", date_format="%B %Y")
    with pytest.raises(SftpConfigError, match="'mtime' or 'name'"):
        newer_than(files, None, by="size")  # type: ignore[arg-type]


def test_session_reuses_one_connection(monkeypatch, emulator_target_fixture: SftpTarget, emulator_sftp_server) -> None:
    before = emulator_sftp_server.connection_count
    with _hook(monkeypatch, emulator_target_fixture).session() as sftp:
        for i in range(5):
            sftp.upload_stream(b"x" * i, emulator_target_fixture.remote(f"f{i}.txt"))
        assert len(sftp.list_files(emulator_target_fixture.remote())) == 5
        sftp.finish(sftp.list_files(emulator_target_fixture.remote()), action="delete")
    assert emulator_sftp_server.connection_count == before + 1


@pytest.mark.sshd
@pytest.mark.slow
def test_memory_stays_flat(monkeypatch, openssh_sftp_server, sftp_keys: SftpKeys, tmp_path: Path) -> None:
    """Python allocations stay far below the data size in both directions (real sshd: no server in-process)."""
    import tracemalloc

    from tests.integration.sftp_fixtures import openssh_target

    target = openssh_target(openssh_sftp_server, sftp_keys, tmp_path)
    block = os.urandom(1024 * 1024)
    size_mb = 128

    class _Null(io.RawIOBase):
        def writable(self) -> bool:
            return True

        def write(self, data) -> int:
            return len(data)

    with _hook(monkeypatch, target).session() as sftp:
        tracemalloc.start()
        try:
            up = sftp.upload_stream((block for _ in range(size_mb)), target.remote("big.bin"))
            upload_peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.reset_peak()
            down = sftp.download_stream(target.remote("big.bin"), _Null())
            download_peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert up.size == down.size == size_mb * 1024 * 1024 and up.sha256 == down.sha256
    assert upload_peak < 48e6, upload_peak
    assert download_peak < 24e6, download_peak
