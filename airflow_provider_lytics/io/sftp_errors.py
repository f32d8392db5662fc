"""Exceptions raised by the SFTP transfer engine.

They carry messages that say what to change, and never include passwords, passphrases or key material.
"""

from __future__ import annotations


class SftpError(Exception):
    """Base class for every SFTP transfer error raised by this provider."""


class SftpConfigError(SftpError, ValueError):
    """The SFTP connection or a call argument is wrong; the message names the field to fix."""


class SftpConnectError(SftpError, ConnectionError):
    """The SSH connection or the login failed."""


class HostKeyVerificationError(SftpConnectError):
    """The server presented a host key that is not the one configured (or not known at all)."""

    def __init__(self, message: str, *, expected: list[str], presented: str | None) -> None:
        super().__init__(message)
        self.expected = expected
        self.presented = presented


class SftpTransferError(SftpError, OSError):
    """A transfer, rename, listing or delete failed on the server."""


class RemoteFileExistsError(SftpTransferError, FileExistsError):
    """The target already exists and overwriting was not asked for."""


class RemoteFileNotFoundError(SftpTransferError, FileNotFoundError):
    """A remote file or directory does not exist."""
