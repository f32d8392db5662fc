"""Open an asyncssh connection from :class:`SftpConfig`, verifying the server's host key before any login.

The host key is checked during key exchange, before a password or key is offered, so a wrong server never sees
credentials. On a mismatch the error names the expected and the presented SHA256 fingerprints (as OpenSSH prints
them) and the presented key line, so that a legitimate key change can be pinned in one copy-paste.
"""

from __future__ import annotations

import asyncio
import logging
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_provider_lytics.client.retry import Failure, RetryPolicy, RetryTracker, raising
from airflow_provider_lytics.io.sftp_config import SftpConfig, fingerprint, import_host_key
from airflow_provider_lytics.io.sftp_errors import HostKeyVerificationError, SftpConfigError, SftpConnectError

if TYPE_CHECKING:
    import asyncssh

log = logging.getLogger(__name__)
_sleep = asyncio.sleep  # the pause between connect attempts (a test records it instead)

DEFAULT_KNOWN_HOSTS = Path("~/.ssh/known_hosts")


def quiet_asyncssh_logging() -> None:
    """asyncssh logs every connection and SFTP session at INFO; keep it to warnings unless configured."""
    logger = logging.getLogger("asyncssh")
    if logger.level == logging.NOTSET:
        logger.setLevel(logging.WARNING)


def _load_client_keys(config: SftpConfig) -> list[Any] | tuple[()] | None:
    import asyncssh

    passphrase = config.private_key_passphrase
    try:
        if config.private_key:
            return [asyncssh.import_private_key(config.private_key, passphrase)]
        if config.key_file:
            return [asyncssh.read_private_key(config.key_file, passphrase)]
    except FileNotFoundError:
        raise SftpConfigError(
            f"Connection extra 'key_file' points to {config.key_file!r}, which does not exist on this worker."
        ) from None
    except (asyncssh.KeyImportError, ValueError) as exc:
        which = "'private_key'" if config.private_key else f"'key_file' ({config.key_file})"
        hint = (
            "check 'private_key_passphrase'"
            if "passphrase" in str(exc).lower() or "decrypt" in str(exc).lower()
            else "check the key format (OpenSSH or PEM)"
        )
        raise SftpConfigError(f"The private key in connection extra {which} could not be loaded: {hint}.") from None
    if not config.look_for_keys:
        return None
    return ()  # asyncssh default: ~/.ssh keys and the agent, like paramiko's look_for_keys


class _HostKeyWatcher:
    """Builds asyncssh client objects that remember the host key the server presented."""

    def __init__(self) -> None:
        self.presented: asyncssh.SSHKey | None = None

    def factory(self) -> Any:
        import asyncssh

        watcher = self

        class _Client(asyncssh.SSHClient):
            def validate_host_public_key(self, host: str, addr: str, port: int, key: asyncssh.SSHKey) -> bool:
                watcher.presented = key
                return False

        return _Client()


def _host_key_options(config: SftpConfig) -> tuple[Any, list[str], str]:
    """Return (asyncssh known_hosts argument, expected fingerprints, description of the trust source)."""
    if config.no_host_key_check:
        log.warning(
            "Host key verification is OFF for %s (no_host_key_check=true): this does not protect against "
            "man-in-the-middle attacks.",
            config.label,
        )
        return None, [], "disabled"
    if config.host_keys:
        keys = [import_host_key(line) for line in config.host_keys]
        return (keys, [], []), [fingerprint(k) for k in keys], "connection extra 'host_key'"
    if config.known_hosts:
        source = config.known_hosts
        path = Path(source).expanduser()
        if path.is_file():
            return str(path), [], f"known_hosts file {path}"
        if "\n" in source.strip() or len(source.split()) >= 3:
            return source.encode(), [], "connection extra 'known_hosts' (inline)"
        raise SftpConfigError(
            f"Connection extra 'known_hosts' points to {source!r}, which does not exist on this worker "
            "(give a known_hosts file path or the known_hosts lines themselves)."
        )
    default = DEFAULT_KNOWN_HOSTS.expanduser()
    if default.is_file():
        return str(default), [], f"known_hosts file {default}"
    # Nothing to trust: still connect far enough to learn the presented key, then fail with it.
    return ([], [], []), [], "nothing (no 'host_key', no 'known_hosts', no ~/.ssh/known_hosts)"


def _host_key_error(config: SftpConfig, expected: list[str], source: str, presented: Any) -> HostKeyVerificationError:
    if presented is not None:
        shown = fingerprint(presented)
        line = presented.export_public_key("openssh").decode().split()[:2]
        key_line = " ".join(line)
    else:
        shown, key_line = "unknown", ""
    if expected:
        message = (
            f"Host key verification failed for {config.label}: expected {', '.join(expected)} "
            f"({source}) but the server presented {shown}. If the server's key really changed, set the "
            f"connection extra 'host_key' to: {key_line}"
        )
    elif source.startswith("nothing"):
        message = (
            f"Host key verification is on but no host key is configured for {config.label}; the server presented "
            f"{shown}. After checking that fingerprint with the server's owner, set the connection extra "
            f"'host_key' to: {key_line}  (or set 'no_host_key_check': true to skip verification, which is unsafe)."
        )
    else:
        message = (
            f"Host key verification failed for {config.label}: the presented key {shown} is not in {source}. "
            f"Add it there, or pin it with the connection extra 'host_key': {key_line}"
        )
    return HostKeyVerificationError(message, expected=expected, presented=None if presented is None else shown)


async def connect(config: SftpConfig) -> asyncssh.SSHClientConnection:
    """Open and authenticate an SSH connection (retrying refused/timed-out connects), host key verified."""
    import asyncssh

    quiet_asyncssh_logging()
    known_hosts, expected, source = _host_key_options(config)
    client_keys = _load_client_keys(config)
    options: dict[str, Any] = {
        "host": config.host,
        "port": int(config.port),
        "username": config.username,
        "known_hosts": known_hosts,
        "connect_timeout": config.conn_timeout,
        "login_timeout": config.conn_timeout,
        "keepalive_interval": config.keepalive_interval or None,
        "encryption_algs": list(config.ciphers),
        "compression_algs": ["zlib@openssh.com", "none"] if config.compress else ["none"],
        "config": [],
    }
    options["password"] = config.password
    if client_keys is None:
        options["client_keys"] = None
    elif client_keys:
        options["client_keys"] = client_keys
        options["agent_path"] = None

    attempts = max(1, config.conn_retry_attempts)
    # 2 s, 4 s, then 5 s between attempts; no time budget beyond the attempts
    policy = RetryPolicy(max_attempts=attempts, base_delay=2.0, max_delay=5.0, max_total=math.inf, jitter=False)
    tracker = RetryTracker(policy, log=log, label=f"SFTP connect to {config.label}")

    async def attempt(n: int) -> asyncssh.SSHClientConnection | Failure:
        watcher = _HostKeyWatcher()
        try:
            return await asyncssh.connect(client_factory=watcher.factory, **options)
        except asyncssh.HostKeyNotVerifiable:
            raise _host_key_error(config, expected, source, watcher.presented) from None
        except asyncssh.PermissionDenied:
            methods = [m for m, on in (("password", config.password), ("key", client_keys)) if on] or ["none"]
            raise SftpConnectError(
                f"Authentication failed for {config.label} (tried: {', '.join(methods)}): check the connection's "
                "login, password or private key."
            ) from None
        except asyncssh.KeyExchangeFailed as exc:
            raise SftpConnectError(
                f"SSH key exchange with {config.label} failed ({exc.reason}): check the 'ciphers' extra and "
                "that the pinned 'host_key' type is one the server offers."
            ) from None
        except (OSError, asyncio.TimeoutError, asyncssh.ConnectionLost) as exc:
            error = SftpConnectError(
                f"Could not connect to {config.label} after {n} attempt(s): {type(exc).__name__}: {exc}"
            )
            return Failure(f"{type(exc).__name__}: {exc}", raising(error))
        except asyncssh.DisconnectError as exc:
            raise SftpConnectError(f"The SSH server {config.label} closed the connection: {exc.reason}") from None
        except ValueError as exc:  # asyncssh rejects unknown algorithm names this way
            raise SftpConfigError(
                f"Invalid SSH option for {config.label}: {exc}. Check the 'ciphers' extra (OpenSSH names such as "
                "aes128-gcm@openssh.com)."
            ) from None

    return await tracker.run_async(attempt, sleep=_sleep)
