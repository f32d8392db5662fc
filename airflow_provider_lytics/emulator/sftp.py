"""The emulator's managed SFTP server: a real SFTP peer (asyncssh) confined to a data directory on disk.

Like Lytics' managed SFTP, it holds files for imports and exports. It accepts password and/or public key logins
per user, each user confined to their own root: every path is resolved to its real location (symlinks followed)
and refused when that leaves the user's root, so a link to ``/etc`` placed inside the root reads nothing outside
it. With several users and no explicit ``root``, each user gets ``<root>/<user name>``. It keeps a STABLE host
key (generated once, stored next to the data root or at ``host_key_path``), so
clients can pin ``host_key`` once and keep host key verification on across restarts::

    with EmulatorSftpServer(Path("/tmp/lytics/sftp")) as server:
        print(server.port, server.fingerprint)
        conn = server.airflow_connection()   # dict for AIRFLOW_CONN_<ID> (JSON), host key pinned

The server runs on its own event loop in a daemon thread; ``start()`` returns once it is listening.
"""

from __future__ import annotations

import asyncio
import logging
import os
import posixpath
import secrets
import stat
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import asyncssh

log = logging.getLogger(__name__)

DEFAULT_USER = "lytics"
#: Emulator only; pass your own users for anything shared. Long and distinctive on purpose: Airflow's secret
#: masker hides every occurrence of a connection password in logs, and a short one such as ``lytics`` would turn
#: ``airflow_provider_lytics`` into ``airflow_provider_***``.
DEFAULT_PASSWORD = "lytics-emulator-sftp-password"
HOST_KEY_FILENAME = "lytics-emulator-sftp-host-key"
START_TIMEOUT = 10.0


class SftpServerError(RuntimeError):
    """The SFTP server could not be configured or started; the message says what to change."""


class _User:
    __slots__ = ("keys", "name", "password", "root")

    def __init__(self, name: str, password: str | None, keys: list[asyncssh.SSHKey], root: str | None = None) -> None:
        self.name = name
        self.password = password
        self.keys = keys
        self.root = root  # as configured (relative to the server root, or absolute); None: the default


def _parse_users(users: Mapping[str, Mapping[str, Any]]) -> dict[str, _User]:
    import asyncssh

    parsed: dict[str, _User] = {}
    for name, spec in users.items():
        if not isinstance(spec, Mapping):
            raise SftpServerError(f"User {name!r}: expected a mapping with 'password' and/or 'authorized_keys'.")
        unknown = set(spec) - {"password", "authorized_keys", "root"}
        if unknown:
            raise SftpServerError(
                f"User {name!r}: unknown setting(s) {sorted(unknown)}; use 'password', 'authorized_keys' and 'root'."
            )
        root = spec.get("root")
        if root is not None and (not isinstance(root, str) or not root):
            raise SftpServerError(f"User {name!r}: 'root' must be a directory path (relative to the server root).")
        if "/" in name or name in (".", "..") or not name:
            raise SftpServerError(f"User name {name!r} cannot contain '/' (it names the user's directory).")
        raw_keys = spec.get("authorized_keys") or []
        if isinstance(raw_keys, str):
            raw_keys = [line for line in raw_keys.splitlines() if line.strip() and not line.startswith("#")]
        keys = []
        for line in raw_keys:
            try:
                keys.append(asyncssh.import_public_key(line.strip()))
            except (asyncssh.KeyImportError, ValueError):
                raise SftpServerError(
                    f"User {name!r}: an authorized key is not an OpenSSH public key line ('<type> <base64>')."
                ) from None
        password = spec.get("password")
        if not password and not keys:
            raise SftpServerError(f"User {name!r} needs a 'password' or at least one entry in 'authorized_keys'.")
        parsed[name] = _User(name, str(password) if password else None, keys, root)
    if not parsed:
        raise SftpServerError("At least one SFTP user is required.")
    return parsed


def _within(path: bytes, root: bytes) -> bool:
    return path == root or path.startswith(root.rstrip(b"/") + b"/")


def _is_link(path: bytes) -> bool:
    try:
        return stat.S_ISLNK(os.lstat(path).st_mode)
    except OSError:
        return False


def confined_sftp_server(chan: Any, roots: Mapping[str, Path]) -> asyncssh.SFTPServer:
    """An asyncssh SFTP server for the channel's user, confined to that user's root (real paths checked)."""
    import asyncssh

    class _Confined(asyncssh.SFTPServer):
        def map_path(self, path: bytes) -> bytes:
            local = super().map_path(path)  # normalised and joined to the root ("..", absolute paths handled)
            root = self._chroot
            assert root is not None
            if local == root or local.rstrip(b"/") == root:
                return root
            parent, name = os.path.split(local)
            real_parent = os.path.realpath(parent)
            if not _within(real_parent, root):
                raise asyncssh.SFTPPermissionDenied("the path leads outside the SFTP root (through a link)")
            candidate = posixpath.join(real_parent, name)
            if _is_link(candidate) and not _within(os.path.realpath(candidate), root):
                raise asyncssh.SFTPPermissionDenied("the path leads outside the SFTP root (through a link)")
            return candidate

    username = chan.get_extra_info("username")
    root = roots.get(username)
    if root is None:  # authentication succeeded, so this cannot happen; refuse rather than serve a default
        raise asyncssh.SFTPPermissionDenied("no SFTP root for this user")
    return _Confined(chan, chroot=os.fsencode(str(root)))


def load_or_create_host_key(path: Path) -> asyncssh.SSHKey:
    """Read the ed25519 host key at ``path``, creating it (mode 0600, atomically) the first time."""
    import asyncssh

    if path.exists():
        try:
            return asyncssh.read_private_key(str(path))
        except (asyncssh.KeyImportError, ValueError, OSError) as exc:
            raise SftpServerError(
                f"The SFTP host key file {path} cannot be read ({type(exc).__name__}): delete it to generate a "
                "new one (clients that pinned the old key will then refuse to connect until updated)."
            ) from None
    path.parent.mkdir(parents=True, exist_ok=True)
    key = asyncssh.generate_private_key("ssh-ed25519", comment="lytics-emulator-sftp")
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(key.export_private_key("openssh"))
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    log.info("Generated SFTP host key %s", path)
    return key


class EmulatorSftpServer:
    """Managed SFTP for the emulator: each user confined to a root, password or key auth, stable host key.

    :param root: data directory (created if missing). With one user (and no ``root`` for it), clients see it
        as ``/``; with several, each user sees ``<root>/<user name>`` as ``/``.
    :param host: interface to bind (default loopback).
    :param port: TCP port, ``0`` picks a free one (read it from :attr:`port` after :meth:`start`).
    :param users: ``{"name": {"password": "...", "authorized_keys": ["ssh-ed25519 AAAA...", ...], "root": "dir"}}``
        (``root``, optional: the user's directory, relative to ``root``; ``"."`` shares the whole root); default
        is one user ``lytics`` with password :data:`DEFAULT_PASSWORD`.
    :param host_key_path: where the host key lives; default ``<root's parent>/lytics-emulator-sftp-host-key``.
    """

    def __init__(
        self,
        root: Path | str,
        host: str = "127.0.0.1",
        port: int = 0,
        users: Mapping[str, Mapping[str, Any]] | None = None,
        host_key_path: Path | str | None = None,
    ) -> None:
        self.root = Path(root).expanduser().resolve()
        self.host = host
        self._requested_port = port
        self._users = _parse_users(users if users is not None else {DEFAULT_USER: {"password": DEFAULT_PASSWORD}})
        self.host_key_path = Path(host_key_path) if host_key_path else self.root.parent / HOST_KEY_FILENAME
        self.root.mkdir(parents=True, exist_ok=True)
        self.user_roots = self._user_roots()
        self._host_key = load_or_create_host_key(self.host_key_path)
        self._port: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._acceptor: asyncssh.SSHAcceptor | None = None
        self._connections = 0

    def _user_roots(self) -> dict[str, Path]:
        shared = len(self._users) == 1
        roots: dict[str, Path] = {}
        for name, user in self._users.items():
            configured = user.root if user.root is not None else ("." if shared else name)
            path = (self.root / configured).resolve()
            if not (path == self.root or self.root in path.parents) and not Path(configured).is_absolute():
                raise SftpServerError(f"User {name!r}: 'root' {configured!r} leads outside the server root.")
            path.mkdir(parents=True, exist_ok=True)
            roots[name] = path
        return roots

    # ------------------------------------------------------------------ identity
    @property
    def host_public_key(self) -> str:
        """The host public key as an OpenSSH line (``ssh-ed25519 AAAA...``), ready for the ``host_key`` extra."""
        return " ".join(self._host_key.export_public_key("openssh").decode().split()[:2])

    @property
    def fingerprint(self) -> str:
        """SHA256 fingerprint of the host key, as OpenSSH prints it."""
        return self._host_key.get_fingerprint("sha256")

    @property
    def port(self) -> int:
        if self._port is None:
            raise SftpServerError("The SFTP server is not running: call start() first.")
        return self._port

    @property
    def connection_count(self) -> int:
        """SSH connections accepted since start (lets tests check that sessions reuse one connection)."""
        return self._connections

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive() and self._acceptor is not None

    def airflow_connection(self, user: str = DEFAULT_USER, *, password: str | None = None) -> dict[str, Any]:
        """An Airflow connection (JSON form for ``AIRFLOW_CONN_<ID>``) for ``user``, host key pinned."""
        if user not in self._users:
            raise SftpServerError(f"Unknown SFTP user {user!r}; known: {sorted(self._users)}.")
        conn: dict[str, Any] = {
            "conn_type": "sftp",
            "host": self.host,
            "port": self.port,
            "login": user,
            "extra": {"host_key": self.host_public_key},
        }
        secret = password if password is not None else self._users[user].password
        if secret:
            conn["password"] = secret
        return conn

    def describe(self) -> str:
        """One line for logs and the CLI banner (no passwords)."""
        return (
            f"SFTP on {self.host}:{self.port} (root {self.root}; one directory per user when several), "
            f"users {', '.join(sorted(self._users))}, "
            f"host key {self.fingerprint}"
        )

    # ------------------------------------------------------------------ lifecycle
    def _server_factory(self) -> asyncssh.SSHServer:
        import asyncssh

        users = self._users
        server = self

        class _Server(asyncssh.SSHServer):
            def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
                server._connections += 1

            def begin_auth(self, username: str) -> bool:
                return True

            def password_auth_supported(self) -> bool:
                return True

            def validate_password(self, username: str, password: str) -> bool:
                user = users.get(username)
                return bool(user and user.password and secrets.compare_digest(user.password, password))

            def public_key_auth_supported(self) -> bool:
                return True

            def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
                user = users.get(username)
                return bool(user and key in user.keys)

        return _Server()

    async def _listen(self) -> asyncssh.SSHAcceptor:
        import asyncssh

        roots = self.user_roots
        return await asyncssh.listen(
            self.host,
            self._requested_port,
            server_host_keys=[self._host_key],
            server_factory=self._server_factory,
            sftp_factory=lambda chan: confined_sftp_server(chan, roots),
            allow_scp=False,
            agent_forwarding=False,
            x11_forwarding=False,
            allow_pty=False,
            line_editor=False,
            process_factory=None,
            encryption_algs=[
                "aes128-gcm@openssh.com",
                "aes256-gcm@openssh.com",
                "chacha20-poly1305@openssh.com",
                "aes128-ctr",
                "aes256-ctr",
            ],
            config=[],
        )

    def start(self) -> EmulatorSftpServer:
        """Start listening in a background thread; returns when the port is open."""
        if self.running:
            return self
        from airflow_provider_lytics.io.sftp_connect import quiet_asyncssh_logging

        quiet_asyncssh_logging()
        started = threading.Event()
        failure: list[BaseException] = []

        def _main() -> None:
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            self._loop = loop
            try:
                self._acceptor = loop.run_until_complete(self._listen())
                self._port = self._acceptor.sockets[0].getsockname()[1]
            except BaseException as exc:
                failure.append(exc)
                started.set()
                loop.close()
                return
            started.set()
            try:
                loop.run_forever()
            finally:
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.close()

        self._thread = threading.Thread(target=_main, name="lytics-emulator-sftp", daemon=True)
        self._thread.start()
        if not started.wait(START_TIMEOUT):
            raise SftpServerError(f"The SFTP server did not start within {START_TIMEOUT:.0f} s.")
        if failure:
            self._thread.join()
            self._thread = self._loop = None
            exc = failure[0]
            if isinstance(exc, OSError):
                raise SftpServerError(
                    f"Cannot listen on {self.host}:{self._requested_port} ({exc.strerror or exc}): choose another "
                    "port (0 picks a free one) or stop the process using it."
                ) from None
            raise SftpServerError(f"The SFTP server failed to start: {exc}") from exc
        log.info("%s", self.describe())
        return self

    def stop(self) -> None:
        """Stop accepting, close open sessions and join the thread."""
        loop, thread, acceptor = self._loop, self._thread, self._acceptor
        if loop is None or thread is None:
            return

        async def _shutdown() -> None:
            if acceptor is not None:
                acceptor.close()
                await acceptor.wait_closed()

        try:
            asyncio.run_coroutine_threadsafe(_shutdown(), loop).result(timeout=START_TIMEOUT)
        except Exception:
            log.debug("SFTP server shutdown did not finish cleanly", exc_info=True)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=START_TIMEOUT)
        self._loop = self._thread = self._acceptor = None
        self._port = None

    def __enter__(self) -> EmulatorSftpServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def serve_sftp(
    root: Path | str,
    *,
    host: str = "127.0.0.1",
    port: int = 2222,
    users: Mapping[str, Mapping[str, Any]] | None = None,
    host_key_path: Path | str | None = None,
) -> EmulatorSftpServer:
    """Start the managed SFTP server for the emulator CLI (``--sftp-port``); returns the running server.

    The caller stops it with ``server.stop()`` on shutdown. ``server.describe()`` is a ready banner line and
    ``json.dumps(server.airflow_connection())`` a ready ``AIRFLOW_CONN_<ID>`` value.
    """
    server = EmulatorSftpServer(root, host=host, port=port, users=users, host_key_path=host_key_path)
    return server.start()
