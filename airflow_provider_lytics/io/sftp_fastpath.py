"""A leaner send path for bulk data on one asyncssh connection (AES-GCM, after login).

asyncssh spends most of an upload's CPU in Python around each 32 KiB SSH packet: it sends an empty ``IGNORE``
packet before every packet (a defence for CBC ciphers that AES-GCM does not need; OpenSSH does not do it), builds
a new ``AESGCM`` object (a key schedule) per packet, copies the payload four times and formats a log line even
when packet logging is off. :func:`install` replaces ``send_packet`` on one connection object with
:class:`FastSender`, which for data-phase packets under AES-GCM writes the same bytes on the wire (padding,
sequence numbers, rekey accounting as asyncssh does) without those costs, and hands every other packet (key
exchange, login, rekey, compression, other ciphers, packet-level debug logging) to asyncssh unchanged.

It reads asyncssh internals, so it is enabled only for asyncssh versions it was checked against
(:data:`CHECKED_VERSIONS`) and when every attribute it needs is present; otherwise the connection keeps
asyncssh's own path. Other asyncssh users in the process (e.g. an SFTP server) are never touched.
"""

from __future__ import annotations

import logging
import os
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import asyncssh

log = logging.getLogger(__name__)

# asyncssh releases whose SSHConnection.send_packet / GCMCipher internals this module was compared with.
CHECKED_VERSIONS = ((2, 18), (2, 24))
_CONN_ATTRS = (
    "_send_encryption", "_recv_encryption", "_compressor", "_kex_complete", "_auth_complete", "_rekey_bytes",
    "_rekey_bytes_sent", "_rekey_seconds", "_rekey_time", "_send_seq", "_send_enchdrlen", "_send_blocksize",
    "_send", "logger",
)  # fmt: skip
_GCM_TAG = 16
_AEAD_ATTR = "_lytics_aead"


def _version_ok() -> bool:
    import asyncssh

    try:
        version = tuple(int(part) for part in asyncssh.__version__.split(".")[:2])
    except ValueError:
        return False
    low, high = CHECKED_VERSIONS
    return low <= version <= high


def _aead(cipher: Any) -> Any:
    """The ``AESGCM`` object for one direction's key, built once per key (asyncssh builds one per packet)."""
    aead = cipher.__dict__.get(_AEAD_ATTR)
    if aead is None:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        aead = AESGCM(cipher._key)
        setattr(cipher, _AEAD_ATTR, aead)
    return aead


def _fast_decrypt(cipher: Any) -> None:
    """Give one receive-direction ``GCMCipher`` a decrypt that reuses its ``AESGCM`` object."""
    if _AEAD_ATTR in cipher.__dict__:
        return
    from cryptography.exceptions import InvalidTag

    aead = _aead(cipher)

    def verify_and_decrypt(header: bytes, data: bytes, mac: bytes) -> bytes | None:
        try:
            plain: bytes | None = aead.decrypt(cipher._iv, data + mac, header)
        except InvalidTag:
            plain = None
        cipher._update_iv()
        return plain

    cipher.verify_and_decrypt = verify_and_decrypt


class FastSender:
    """Replaces ``send_packet`` on one connection; see the module docstring for what it changes."""

    def __init__(self, conn: asyncssh.SSHClientConnection, stock: Any) -> None:
        from asyncssh.constants import MSG_USERAUTH_LAST
        from asyncssh.encryption import GCMEncryption

        self._conn = conn
        self._stock = stock
        self._gcm = GCMEncryption
        self._first = MSG_USERAUTH_LAST + 1
        self.fast_packets = 0
        self.has_encrypt_into = False

    def _usable(self, pkttype: int) -> bool:
        conn: Any = self._conn
        return (
            pkttype >= self._first
            and conn._kex_complete
            and conn._auth_complete
            and type(conn._send_encryption) is self._gcm
            and conn._compressor is None
            and conn._rekey_bytes_sent < conn._rekey_bytes
            and not (conn._rekey_seconds and time.monotonic() >= conn._rekey_time)
            and conn.logger._debug_level < 3
        )

    def __call__(self, pkttype: int, *args: bytes, handler: Any = None) -> None:
        if not self._usable(pkttype):
            self._stock(pkttype, *args, handler=handler)
            return
        conn: Any = self._conn
        receiving = conn._recv_encryption
        if type(receiving) is self._gcm:
            _fast_decrypt(receiving._cipher)
        size = 1 + sum(map(len, args))
        padlen = -(conn._send_enchdrlen + size) % conn._send_blocksize
        if padlen < 4:
            padlen += conn._send_blocksize
        packet = b"".join((bytes((padlen, pkttype)), *args, os.urandom(padlen)))
        pktlen = len(packet)
        header = pktlen.to_bytes(4, "big")
        cipher = conn._send_encryption._cipher
        aead = _aead(cipher)
        out = bytearray(4 + pktlen + _GCM_TAG)
        out[:4] = header
        aead.encrypt_into(cipher._iv, packet, header, memoryview(out)[4:])
        cipher._update_iv()
        conn._send(out)
        conn._send_seq = (conn._send_seq + 1) & 0xFFFFFFFF
        conn._rekey_bytes_sent += pktlen
        self.fast_packets += 1


def install(conn: asyncssh.SSHClientConnection) -> FastSender | None:
    """Use :class:`FastSender` on ``conn`` when this asyncssh version and connection allow it, else ``None``."""
    if os.environ.get("LYTICS_SFTP_FAST_PATH", "1") == "0":
        return None
    if not _version_ok() or not all(hasattr(conn, name) for name in _CONN_ATTRS):
        log.debug("asyncssh fast send path not used: asyncssh version or internals differ from the checked ones")
        return None
    try:
        from asyncssh.crypto.cipher import GCMCipher
        from asyncssh.encryption import GCMEncryption  # noqa: F401
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    except ImportError:
        return None
    if not hasattr(AESGCM, "encrypt_into") or not all(
        hasattr(GCMCipher, name) for name in ("_update_iv", "verify_and_decrypt")
    ):
        return None
    sender = FastSender(conn, conn.send_packet)
    conn.send_packet = sender  # type: ignore[method-assign]
    return sender
