"""LyticsSftpHook: the provider's fast SFTP transfer engine on top of an existing Airflow ``sftp`` connection.

It reads the same connection fields as Airflow's SFTPHook/SSHHook (see
:mod:`airflow_provider_lytics.io.sftp_config` for the list), so users reuse their ``sftp`` connections, but moves
data with pipelined asyncssh requests (several times faster than SFTPHook) and safe atomic renames.

Host key verification is on by default: pin the server's key with the extra ``host_key`` (recommended), or point
``known_hosts`` at a file; only an explicit ``"no_host_key_check": true`` turns the check off.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import BaseHook

if TYPE_CHECKING:
    from airflow_provider_lytics.io.sftp import SftpSession
    from airflow_provider_lytics.io.sftp_config import SftpConfig


class LyticsSftpHook(BaseHook):
    """Open fast, host-key-verified SFTP sessions from an Airflow ``sftp`` (or ``ssh``) connection.

    :param sftp_conn_id: the Airflow connection id (conn_type ``sftp``; ``ssh`` works too).
    :param block_size: bytes per SFTP request (default: the largest the server allows, up to 256 KiB).
    :param max_requests: SFTP requests kept in flight per transfer (default 32).
    :param overrides: any :class:`~airflow_provider_lytics.io.sftp_config.SftpConfig` field to set instead of the
        connection's value, e.g. ``host_keys=("ssh-ed25519 AAAA...",)`` or ``conn_timeout=60``.

    Usage::

        with LyticsSftpHook("partner_sftp").session() as sftp:
            sftp.upload_file("/tmp/export.csv", "/inbox/export.csv", manifest=True)
    """

    conn_name_attr = "sftp_conn_id"
    default_conn_name = "sftp_default"
    conn_type = "sftp"
    hook_name = "Lytics SFTP (fast transfers)"

    def __init__(
        self,
        sftp_conn_id: str = default_conn_name,
        *,
        block_size: int | None = None,
        max_requests: int = 32,
        **overrides: Any,
    ) -> None:
        super().__init__()
        self.sftp_conn_id = sftp_conn_id
        self.block_size = block_size
        self.max_requests = max_requests
        self.overrides = overrides
        self._config: SftpConfig | None = None

    def get_config(self) -> SftpConfig:
        """Read (once) and validate the connection; raises ``SftpConfigError`` naming the field to fix."""
        if self._config is None:
            from airflow_provider_lytics.io.sftp_config import SftpConfig

            conn = self.get_connection(self.sftp_conn_id)
            self._config = SftpConfig.from_connection(conn, conn_id=self.sftp_conn_id, **self.overrides)
        return self._config

    def session(self) -> SftpSession:
        """A new, not yet opened session: use it as a context manager (one SSH connection for all calls)."""
        from airflow_provider_lytics.io.sftp import SftpSession

        return SftpSession(self.get_config(), block_size=self.block_size, max_requests=self.max_requests)

    def get_conn(self) -> SftpSession:
        """An opened session (the caller must ``close()`` it); prefer ``with hook.session() as sftp``."""
        return self.session().open()

    def test_connection(self) -> tuple[bool, str]:
        """Connect, verify the host key, log in and list the home directory."""
        try:
            with self.session() as sftp:
                sftp.list_files(".")
        except Exception as exc:
            return False, str(exc)
        return True, "Connection successfully tested"
