"""SFTP server fixtures: the emulator's managed SFTP server and, where installed, a real OpenSSH sshd on loopback.

Import into a test module with ``from tests.integration.sftp_fixtures import *`` (fixtures are discovered by
name) or list the module in ``pytest_plugins``. Both servers serve files from a local directory, so tests can check
results on disk: :class:`SftpTarget` maps a relative name to the remote path and to the local file behind it.
"""

from __future__ import annotations

import getpass
import json
import os
import shutil
import socket
import subprocess
import time
import uuid
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

SSHD = Path("/usr/sbin/sshd")
EMULATOR_USER = "lytics"
EMULATOR_PASSWORD = "emulator-secret-pw"


@dataclass
class SftpKeys:
    """A client key pair: plain and passphrase-protected private key files plus the public key line."""

    private_path: Path
    encrypted_path: Path
    passphrase: str
    public_line: str
    private_text: str
    other_host_key: str  # a public key no server uses, for mismatch tests


@dataclass
class SftpTarget:
    """One SFTP server under test, with the local directory its remote ``base`` directory is stored in."""

    kind: str
    host: str
    port: int
    username: str
    host_key: str
    fingerprint: str
    remote_base: str
    local_base: Path
    password: str | None = None
    key_path: Path | None = None
    extras: dict[str, Any] = field(default_factory=dict)

    def remote(self, name: str = "") -> str:
        return f"{self.remote_base}/{name}" if name else self.remote_base

    def local(self, name: str = "") -> Path:
        return self.local_base / name if name else self.local_base

    def connection(self, *, auth: str = "key", **extra: Any) -> dict[str, Any]:
        """Airflow connection JSON (conn_type sftp) with the host key pinned unless ``extra`` overrides it."""
        conn: dict[str, Any] = {"conn_type": "sftp", "host": self.host, "port": self.port, "login": self.username}
        extras: dict[str, Any] = {"host_key": self.host_key, "look_for_keys": "false"}
        if auth == "password":
            conn["password"] = self.password
        else:
            extras["key_file"] = str(self.key_path)
        extras.update(extra)
        conn["extra"] = {k: v for k, v in extras.items() if v is not None}
        return conn


def use_connection(monkeypatch: pytest.MonkeyPatch, conn_id: str, conn: dict[str, Any]) -> str:
    """Define Airflow connection ``conn_id`` through its ``AIRFLOW_CONN_<ID>`` env var (no metadata DB)."""
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(conn))
    return conn_id


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _public_line(key: Any) -> str:
    return " ".join(key.export_public_key("openssh").decode().split()[:2])


@pytest.fixture(scope="session")
def sftp_keys(tmp_path_factory: pytest.TempPathFactory) -> SftpKeys:
    import asyncssh

    directory = tmp_path_factory.mktemp("sftp-keys")
    key = asyncssh.generate_private_key("ssh-ed25519")
    private_path = directory / "id_ed25519"
    private_path.write_bytes(key.export_private_key("openssh"))
    private_path.chmod(0o600)
    passphrase = "correct horse battery staple"
    encrypted_path = directory / "id_ed25519_enc"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # few bcrypt rounds keep the test fast; not a real secret
        encrypted_path.write_bytes(key.export_private_key("openssh", passphrase, rounds=4))
    encrypted_path.chmod(0o600)
    other = asyncssh.generate_private_key("ssh-ed25519")
    return SftpKeys(
        private_path=private_path,
        encrypted_path=encrypted_path,
        passphrase=passphrase,
        public_line=_public_line(key),
        private_text=key.export_private_key("openssh").decode(),
        other_host_key=_public_line(other),
    )


@pytest.fixture(scope="session")
def emulator_sftp_server(tmp_path_factory: pytest.TempPathFactory, sftp_keys: SftpKeys) -> Iterator[Any]:
    from airflow_provider_lytics.emulator.sftp import EmulatorSftpServer

    base = tmp_path_factory.mktemp("emulator-sftp")
    users = {EMULATOR_USER: {"password": EMULATOR_PASSWORD, "authorized_keys": [sftp_keys.public_line]}}
    with EmulatorSftpServer(base / "root", users=users) as server:
        yield server


@dataclass
class OpenSshServer:
    port: int
    host_key: str
    fingerprint: str
    username: str
    process: subprocess.Popen[bytes]


@pytest.fixture(scope="session")
def openssh_sftp_server(tmp_path_factory: pytest.TempPathFactory, sftp_keys: SftpKeys) -> Iterator[OpenSshServer]:
    """A real OpenSSH sshd on a free loopback port (key-only auth, internal-sftp), skipped when not installed."""
    if not SSHD.exists() or shutil.which("ssh-keygen") is None:
        pytest.skip("OpenSSH server not installed (/usr/sbin/sshd): apt-get install -y openssh-server")
    import asyncssh

    directory = tmp_path_factory.mktemp("sshd")
    host_key_path = directory / "ssh_host_ed25519_key"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(host_key_path)], check=True, capture_output=True
    )
    authorized = directory / "authorized_keys"
    authorized.write_text(sftp_keys.public_line + "\n")
    authorized.chmod(0o600)
    port = _free_port()
    config = directory / "sshd_config"
    config.write_text(
        "\n".join(
            [
                "ListenAddress 127.0.0.1",
                f"Port {port}",
                f"HostKey {host_key_path}",
                f"PidFile {directory / 'sshd.pid'}",
                f"AuthorizedKeysFile {authorized}",
                "StrictModes no",
                "UsePAM no",
                "PasswordAuthentication no",
                "KbdInteractiveAuthentication no",
                "PubkeyAuthentication yes",
                "PermitRootLogin prohibit-password",
                "Subsystem sftp internal-sftp",
                "LogLevel ERROR",
                "",
            ]
        )
    )
    if os.geteuid() == 0:
        Path("/run/sshd").mkdir(parents=True, exist_ok=True)
    process = subprocess.Popen(
        [str(SSHD), "-D", "-e", "-f", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 10
    while True:
        if process.poll() is not None:
            err = process.stderr.read().decode(errors="replace") if process.stderr else ""
            pytest.skip(f"sshd could not start: {err.strip()[:300]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                break
        except OSError:
            if time.monotonic() > deadline:
                process.kill()
                pytest.skip("sshd did not start listening within 10 s")
            time.sleep(0.05)
    host_public = asyncssh.read_public_key(str(host_key_path) + ".pub")
    try:
        yield OpenSshServer(
            port=port,
            host_key=_public_line(host_public),
            fingerprint=host_public.get_fingerprint("sha256"),
            username=getpass.getuser(),
            process=process,
        )
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def emulator_target(server: Any, sftp_keys: SftpKeys) -> SftpTarget:
    name = f"t-{uuid.uuid4().hex[:10]}"
    (server.root / name).mkdir()
    return SftpTarget(
        kind="emulator",
        host=server.host,
        port=server.port,
        username=EMULATOR_USER,
        host_key=server.host_public_key,
        fingerprint=server.fingerprint,
        remote_base=f"/{name}",
        local_base=server.root / name,
        password=EMULATOR_PASSWORD,
        key_path=sftp_keys.private_path,
    )


def openssh_target(server: OpenSshServer, sftp_keys: SftpKeys, tmp_path: Path) -> SftpTarget:
    base = tmp_path / "remote"
    base.mkdir()
    return SftpTarget(
        kind="openssh",
        host="127.0.0.1",
        port=server.port,
        username=server.username,
        host_key=server.host_key,
        fingerprint=server.fingerprint,
        remote_base=str(base),
        local_base=base,
        key_path=sftp_keys.private_path,
    )


@pytest.fixture
def emulator_target_fixture(emulator_sftp_server: Any, sftp_keys: SftpKeys) -> SftpTarget:
    """A fresh directory on the emulator's SFTP server."""
    return emulator_target(emulator_sftp_server, sftp_keys)


@pytest.fixture(params=["emulator", pytest.param("openssh", marks=pytest.mark.sshd)])
def sftp_target(request: pytest.FixtureRequest, sftp_keys: SftpKeys, tmp_path: Path) -> SftpTarget:
    """A fresh directory on each server kind: the emulator, then real OpenSSH (skipped when absent)."""
    if request.param == "emulator":
        return emulator_target(request.getfixturevalue("emulator_sftp_server"), sftp_keys)
    return openssh_target(request.getfixturevalue("openssh_sftp_server"), sftp_keys, tmp_path)
