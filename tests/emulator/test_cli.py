"""``lytics-emulator`` as a real subprocess: serve, signals, persistence across restarts, port errors, seed."""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

CLI = [sys.executable, "-m", "airflow_provider_lytics.emulator.cli"]
URL_LINE = re.compile(r"Lytics emulator serving on (http://\S+)")


class Served:
    """A running ``lytics-emulator serve`` and the lines it printed at start-up."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [*CLI, "serve", "--port", "0", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[str] = []
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                raise AssertionError(f"serve exited early: {self.proc.wait()} {self.proc.stderr.read()}")
            self.lines.append(line.rstrip("\n"))
            match = URL_LINE.search(line)
            if match:
                self.url = match.group(1)
                self.lines.append(self.proc.stdout.readline().rstrip("\n"))  # bulk host
                self.bulk_url = self.lines[-1].removeprefix("bulk host: ")
                self.lines.append(self.proc.stdout.readline().rstrip("\n"))  # token hint
                return
        raise AssertionError(f"no URL printed: {self.lines}")

    def stop(self, sig: int = signal.SIGTERM) -> tuple[int, str, str]:
        self.proc.send_signal(sig)
        out, err = self.proc.communicate(timeout=10)
        return self.proc.returncode, out, err


@pytest.fixture
def served():
    started: list[Served] = []

    def start(*args: str) -> Served:
        server = Served(*args)
        started.append(server)
        return server

    yield start
    for server in started:
        if server.proc.poll() is None:
            server.proc.kill()
            server.proc.wait()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_serve_prints_url_and_exits_cleanly_on_signal(served, sig):
    server = served()
    assert server.url.startswith("http://127.0.0.1:")
    assert server.bulk_url.startswith("http://127.0.0.1:") and server.bulk_url != server.url
    assert requests.get(f"{server.bulk_url}/_emulator/health", timeout=5).status_code == 200
    assert "emulator-token" in server.lines[-1]  # the default token is public: say it
    health = requests.get(f"{server.url}/_emulator/health", timeout=5)
    assert health.json()["status"] == "ok"
    account = requests.get(f"{server.url}/api/account/current", headers={"Authorization": "emulator-token"}, timeout=5)
    assert account.status_code == 200
    code, out, err = server.stop(sig)
    assert code == 0, err
    assert "stopping" in out
    assert "Traceback" not in err


def test_custom_tokens_are_accepted_and_never_printed(served):
    secret = "s3cret-token-value-123"
    server = served("--token", secret, "--token", "second-token")
    printed = "\n".join(server.lines)
    assert secret not in printed and "second-token" not in printed
    for token in (secret, "second-token"):
        response = requests.get(f"{server.url}/api/account", headers={"Authorization": token}, timeout=5)
        assert response.status_code == 200
    assert requests.get(f"{server.url}/api/account", params={"key": "emulator-token"}, timeout=5).status_code == 401
    code, out, err = server.stop()
    assert code == 0
    assert secret not in out + err


def test_state_survives_a_restart_with_db(served, tmp_path: Path):
    db = str(tmp_path / "state.db")
    headers = {"Authorization": "emulator-token", "Content-Type": "application/csv"}
    first = served("--db", db)
    posted = requests.post(
        f"{first.url}/collect/bulk/crm", data=b"email,plan\nann@example.com,pro\n", headers=headers, timeout=5
    )
    assert posted.json()["data"]["message_count"] == 1
    assert first.stop()[0] == 0

    second = served("--db", db)
    profile = requests.get(
        f"{second.url}/api/entity/user/email/ann@example.com", headers={"Authorization": "emulator-token"}, timeout=5
    ).json()
    assert profile["data"]["plan"] == "pro"
    assert second.stop()[0] == 0


def test_port_in_use_exits_2_naming_the_port():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        result = subprocess.run([*CLI, "serve", "--port", str(port)], capture_output=True, text=True, timeout=20)
    assert result.returncode == 2
    assert f"port {port} on 127.0.0.1 is already in use" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("args", "complaint"),
    [
        (["serve", "--port", "70000"], "port must be between 0 and 65535"),
        (["serve", "--job-timings", "slow"], "invalid choice: 'slow'"),
        (["seed"], "--users"),
        (["seed", "--users", "0"], "expected a positive integer"),
        ([], "serve,seed"),
    ],
)
def test_bad_arguments_exit_2_with_a_message(args, complaint):
    result = subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=20)
    assert result.returncode == 2
    assert complaint in result.stderr


def test_unwritable_db_is_a_clear_error(tmp_path: Path):
    db = tmp_path / "missing-dir" / "state.db"
    result = subprocess.run([*CLI, "serve", "--port", "0", "--db", str(db)], capture_output=True, text=True, timeout=20)
    assert result.returncode == 2
    assert str(db) in result.stderr
    assert "Traceback" not in result.stderr


def test_seed_fills_a_db_that_serve_then_uses(served, tmp_path: Path):
    db = str(tmp_path / "seeded.db")
    result = subprocess.run(
        [*CLI, "seed", "--users", "40", "--db", db, "--seed", "3"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["users"] == 40 and report["db"] == db
    assert report["counts"]
    server = served("--db", db)
    scan = requests.post(
        f"{server.url}/api/segment/scan",
        params={"limit": 100},
        data="FILTER * FROM user",
        headers={"Authorization": "emulator-token", "Content-Type": "text/plain"},
        timeout=10,
    ).json()
    assert scan["total"] == 40, scan
    assert server.stop()[0] == 0


def test_seed_without_db_says_nothing_was_kept():
    result = subprocess.run([*CLI, "seed", "--users", "5"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "discarded" in result.stderr


def test_serve_with_managed_sftp_prints_a_pinnable_host_key(served, tmp_path: Path, monkeypatch):
    """``--sftp-port`` serves SFTP beside the API; the printed host key lets clients verify the server."""
    from airflow_provider_lytics.hooks.sftp import LyticsSftpHook

    root = tmp_path / "sftp-root"
    server = served("--sftp-port", "0", "--sftp-root", str(root), "--sftp-user", "partner:s3cret-pass")
    banner = server.proc.stdout.readline()
    key_line = server.proc.stdout.readline().rstrip("\n").removeprefix("sftp host key: ")
    match = re.search(r"SFTP on 127\.0\.0\.1:(\d+)", banner)
    assert match, banner
    assert "s3cret-pass" not in banner + key_line
    conn = {"conn_type": "sftp", "host": "127.0.0.1", "port": int(match.group(1)), "login": "partner",
            "password": "s3cret-pass", "extra": {"host_key": key_line}}  # fmt: skip
    local = tmp_path / "hello.csv"
    local.write_text("email\na@example.com\n")
    monkeypatch.setenv("AIRFLOW_CONN_EMU_SFTP", json.dumps(conn))
    with LyticsSftpHook("emu_sftp").get_conn() as session:
        session.upload_file(local, "/inbox/hello.csv", makedirs=True)
    assert (root / "inbox" / "hello.csv").read_text() == local.read_text()
    code, _, _ = server.stop()
    assert code == 0
