"""One prepared key ring kept for the life of its owner, so that repeated PGP calls skip the per-call setup.

A fresh ring costs, per call: a temporary directory, python-gnupg's gpg probe, the key imports and, for private
keys, a gpg-agent start plus (with a passphrase-protected key) the key's first unlock, which runs the exporter's
full S2K hashing (about half a second for gpg's default settings). :class:`PreparedKeyring` pays that once per
owner (a :class:`~.pgp.PgpCipher` built by a hook) and reuses the ring for every later call.

What stays as with a ring per call: the directory is ``mkdtemp`` + 0700 and holds only the owner's keys, the
agent never caches a passphrase (every call must give it again), and the ring is removed and its agent stopped
when the owner calls ``close()``, is garbage-collected, or the interpreter exits. Processes that end without
running exit handlers (``os._exit`` in Airflow 2's forked task runner, a SIGKILL) are covered by a watchdog: a
tiny ``sh`` in its own session that waits for the end of a pipe only this process writes to and then stops the
agent and removes the directory. A forked child never touches its parent's ring: it prepares its own.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import weakref
from pathlib import Path

from airflow_provider_lytics.io.pgp_files import PathLike
from airflow_provider_lytics.io.pgp_keyring import PgpKeyring

# Waits for EOF on stdin (this process and its forks gone, or the ring closed normally), then cleans up.
_WATCHDOG = 'read _ignored; [ -n "$2" ] && "$2" --homedir "$1" --kill all >/dev/null 2>&1; rm -rf -- "$1"'


class _Watchdog:
    """Removes a ring directory (and stops its agent) when the process that made it is gone, however it ended."""

    def __init__(self, homedir: str, gpg_binary: str) -> None:
        gpg_path = shutil.which(gpg_binary)
        gpgconf = (shutil.which("gpgconf", path=str(Path(gpg_path).parent)) if gpg_path else None) or shutil.which(
            "gpgconf"
        )
        read_end, self._write_end = os.pipe()
        try:
            self._proc = subprocess.Popen(
                ["sh", "-c", _WATCHDOG, "sh", homedir, gpgconf or ""],
                stdin=read_end,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,  # survives a kill of the task's process group
            )
        except BaseException:
            os.close(self._write_end)
            raise
        finally:
            os.close(read_end)

    def dismiss(self) -> None:
        """The ring was closed normally: stop the watchdog without letting it act."""
        self._proc.kill()
        self._proc.wait()
        os.close(self._write_end)


def _close_ring(ring: PgpKeyring, watchdog: _Watchdog, owner_pid: int) -> None:
    if os.getpid() == owner_pid:  # a forked child's copy of the finalizer must not remove the parent's ring
        ring.close()
        watchdog.dismiss()


class PreparedKeyring:
    """Lazily opened, shared :class:`PgpKeyring`; thread-safe; ``close()`` is idempotent."""

    def __init__(self, *, gpg_binary: str = "gpg", tmp_dir: PathLike | None = None) -> None:
        self.gpg_binary = gpg_binary
        self.tmp_dir = tmp_dir
        self._lock = threading.Lock()
        self._ring: PgpKeyring | None = None
        self._pid = 0
        self._finalizer: weakref.finalize | None = None

    @property
    def homedir(self) -> str | None:
        """The ring's directory while it is open in this process."""
        ring = self._ring
        return ring.homedir if ring is not None and self._pid == os.getpid() else None

    def get(self) -> PgpKeyring:
        """The open ring, prepared on first use (and again in a forked child)."""
        with self._lock:
            if self._ring is not None and self._pid != os.getpid():
                if self._finalizer is not None:
                    self._finalizer.detach()
                self._ring = self._finalizer = None
            if self._ring is None:
                ring = PgpKeyring(gpg_binary=self.gpg_binary, tmp_dir=self.tmp_dir)
                ring.open()
                try:
                    watchdog = _Watchdog(ring.homedir or "", self.gpg_binary)
                except BaseException:
                    ring.close()
                    raise
                self._ring, self._pid = ring, os.getpid()
                self._finalizer = weakref.finalize(self, _close_ring, ring, watchdog, self._pid)
            return self._ring

    def close(self) -> None:
        """Stop the ring's agent and remove its directory (a later :meth:`get` prepares a new one)."""
        with self._lock:
            finalizer, self._finalizer, self._ring = self._finalizer, None, None
        if finalizer is not None:
            finalizer()
