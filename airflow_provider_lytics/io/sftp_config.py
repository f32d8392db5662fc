"""SFTP connection settings, read from an Airflow ``sftp``/``ssh`` connection the way SSHHook/SFTPHook read it.

Fields used (so existing ``sftp`` connections work unchanged):

* ``host``, ``port`` (default 22), ``login`` (default: the local user name), ``password``.
* extras ``key_file`` (path to a private key) or ``private_key`` (the key text; not both), ``private_key_passphrase``
  (``passphrase`` is accepted too, as SFTPHookAsync does).
* Host key verification, ON by default:

  - ``host_key``: the server's public key as ``"<type> <base64>"`` (what ``ssh-keyscan`` or the server's
    ``*.pub`` file shows; a bare base64 blob is read as ``ssh-rsa`` like SSHHook does). Several keys may be given
    one per line. The server must present one of them, otherwise the connection fails naming the expected and
    presented SHA256 fingerprints.
  - ``known_hosts``: a known_hosts file path (or its content) to check against instead.
  - otherwise ``~/.ssh/known_hosts`` when it exists.
  - ``no_host_key_check: true`` skips verification. It must be set explicitly and cannot be combined with
    ``host_key``.

* ``conn_timeout`` (seconds, default 30), ``keepalive_interval`` (seconds, default 30), ``look_for_keys``
  (``false`` stops trying ``~/.ssh`` keys), ``ciphers`` (list, preferred order), ``compress`` (``true`` to ask
  for zlib; off by default because it slows loopback and LAN transfers down).
"""

from __future__ import annotations

import getpass
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from airflow_provider_lytics.io.sftp_errors import SftpConfigError

if TYPE_CHECKING:
    from asyncssh import SSHKey

DEFAULT_PORT = 22
DEFAULT_CONN_TIMEOUT = 30.0
DEFAULT_KEEPALIVE = 30.0
# Fastest first: AES-GCM runs on AES-NI through OpenSSL and needs no separate MAC.
FAST_CIPHERS = (
    "aes128-gcm@openssh.com",
    "aes256-gcm@openssh.com",
    "aes128-ctr",
    "aes256-ctr",
    "chacha20-poly1305@openssh.com",
)
_HOST_KEY_TYPES = (
    "ssh-ed25519",
    "ssh-rsa",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
)


def local_username() -> str:
    """The local user name, used when the connection has no login (as SSHHook does)."""
    try:
        return getpass.getuser()
    except Exception:
        raise SftpConfigError(
            "The SFTP connection has no login and the local user name is unknown: set Login."
        ) from None


class ConnectionLike(Protocol):
    """The parts of an Airflow ``Connection`` this module reads."""

    host: str | None
    port: int | None
    login: str | None
    password: str | None

    @property
    def extra_dejson(self) -> dict[str, Any]: ...


def parse_bool(value: Any, name: str) -> bool:
    """Read a connection extra as a boolean (``true``/``false``, any case, or a JSON bool)."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes", "on"):
        return True
    if text in ("false", "0", "no", "off", ""):
        return False
    raise SftpConfigError(f"Connection extra {name!r} must be true or false, got {value!r}.")


def normalize_host_key(text: str) -> str:
    """Return ``"<type> <base64>"`` for a host key given as an OpenSSH public key line or a bare base64 blob."""
    parts = text.strip().split()
    if not parts:
        raise SftpConfigError("Connection extra 'host_key' is empty: paste the server's public key line.")
    if parts[0] == "ssh-dss":
        raise SftpConfigError("DSA host keys are not supported: pin the server's ed25519, ECDSA or RSA key instead.")
    if parts[0] in _HOST_KEY_TYPES or parts[0].startswith(("ssh-", "ecdsa-", "sk-")):
        if len(parts) < 2:
            raise SftpConfigError(f"Connection extra 'host_key' has the key type {parts[0]!r} but no key data.")
        return f"{parts[0]} {parts[1]}"
    # A known_hosts line ("host type base64"): drop the host pattern.
    if len(parts) >= 3 and parts[1] in _HOST_KEY_TYPES:
        return f"{parts[1]} {parts[2]}"
    if len(parts) == 1:
        return f"ssh-rsa {parts[0]}"
    raise SftpConfigError(
        "Connection extra 'host_key' is not a public key: use the form '<type> <base64>' "
        "(for example the content of /etc/ssh/ssh_host_ed25519_key.pub or an ssh-keyscan line)."
    )


def import_host_key(line: str) -> SSHKey:
    """Parse an OpenSSH public key line into an asyncssh key (raises :class:`SftpConfigError` if invalid)."""
    import asyncssh

    try:
        return asyncssh.import_public_key(normalize_host_key(line))
    except (asyncssh.KeyImportError, ValueError) as exc:
        raise SftpConfigError(
            f"Connection extra 'host_key' could not be read as a public key ({exc}): use the form "
            "'<type> <base64>' as printed by ssh-keyscan or found in the server's *.pub host key file."
        ) from None


def fingerprint(key: SSHKey) -> str:
    """SHA256 fingerprint formatted the way OpenSSH prints it (``SHA256:<base64 without padding>``)."""
    return key.get_fingerprint("sha256")


@dataclass(frozen=True)
class SftpConfig:
    """Everything needed to open an SSH/SFTP connection. Secrets are excluded from ``repr``."""

    host: str
    port: int = DEFAULT_PORT
    username: str = field(default_factory=local_username)
    password: str | None = field(default=None, repr=False)
    key_file: str | None = None
    private_key: str | None = field(default=None, repr=False)
    private_key_passphrase: str | None = field(default=None, repr=False)
    host_keys: tuple[str, ...] = ()
    known_hosts: str | None = None
    no_host_key_check: bool = False
    look_for_keys: bool = True
    conn_timeout: float = DEFAULT_CONN_TIMEOUT
    keepalive_interval: float = DEFAULT_KEEPALIVE
    ciphers: tuple[str, ...] = FAST_CIPHERS
    compress: bool = False
    conn_retry_attempts: int = 3
    conn_id: str | None = None

    def __post_init__(self) -> None:
        where = f"Connection {self.conn_id!r}" if self.conn_id else "The SFTP configuration"
        if not self.host:
            raise SftpConfigError(f"{where} has no host: set the connection's Host field.")
        if not 0 < int(self.port) < 65536:
            raise SftpConfigError(f"{where} has an invalid port {self.port!r}: use 1-65535.")
        if self.key_file and self.private_key:
            raise SftpConfigError(f"{where} sets both extras 'key_file' and 'private_key': keep only one of them.")
        if self.host_keys and self.no_host_key_check:
            raise SftpConfigError(
                f"{where} sets 'host_key' and also 'no_host_key_check: true': remove one of them "
                "(keeping 'host_key' is the safe choice)."
            )
        if self.private_key and len(self.private_key.strip().splitlines()) < 2:
            raise SftpConfigError(
                f"{where}: extra 'private_key' must be the whole key file, with its BEGIN and END lines "
                "on separate lines (in JSON, write the line breaks as \\n)."
            )
        for line in self.host_keys:
            normalize_host_key(line)
        if self.conn_timeout <= 0:
            raise SftpConfigError(f"{where}: 'conn_timeout' must be a positive number of seconds.")

    @property
    def label(self) -> str:
        """Human-readable target for messages (never contains secrets)."""
        return f"{self.username}@{self.host}:{self.port}"

    @classmethod
    def from_connection(cls, conn: ConnectionLike, conn_id: str | None = None, **overrides: Any) -> SftpConfig:
        """Build the settings from an Airflow connection; keyword ``overrides`` win over the connection."""
        extra = dict(conn.extra_dejson or {})
        values: dict[str, Any] = {"conn_id": conn_id}
        values["host"] = conn.host or ""
        if conn.port:
            values["port"] = int(conn.port)
        if conn.login:
            values["username"] = conn.login
        if conn.password:
            values["password"] = conn.password.strip()
        if extra.get("key_file"):
            values["key_file"] = str(Path(str(extra["key_file"])).expanduser())
        if extra.get("private_key"):
            values["private_key"] = str(extra["private_key"])
        passphrase = extra.get("private_key_passphrase") or extra.get("passphrase")
        if passphrase:
            values["private_key_passphrase"] = str(passphrase)
        host_key = extra.get("host_key")
        if host_key:
            values["host_keys"] = tuple(line for line in str(host_key).splitlines() if line.strip())
        if extra.get("known_hosts"):
            values["known_hosts"] = str(extra["known_hosts"])
        nhkc = extra.get("no_host_key_check", extra.get("ignore_hostkey_verification"))
        if nhkc is not None:
            values["no_host_key_check"] = parse_bool(nhkc, "no_host_key_check")
        if "look_for_keys" in extra:
            values["look_for_keys"] = parse_bool(extra["look_for_keys"], "look_for_keys")
        if "compress" in extra:
            values["compress"] = parse_bool(extra["compress"], "compress")
        for name in ("conn_timeout", "keepalive_interval"):
            if extra.get(name) not in (None, ""):
                try:
                    values[name] = float(extra[name])
                except (TypeError, ValueError):
                    raise SftpConfigError(
                        f"Connection extra {name!r} must be a number of seconds, got {extra[name]!r}."
                    ) from None
        if extra.get("ciphers"):
            ciphers = extra["ciphers"]
            values["ciphers"] = tuple([ciphers] if isinstance(ciphers, str) else ciphers)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)
