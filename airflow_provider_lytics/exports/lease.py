"""A lease on an incremental export's state: one run at a time, across workers and hosts.

The lease is a small JSON file next to the state (``<state_dir>/<export>.lease.json``), on the same destination,
so every Celery worker sees the same one. It is created exclusively (``O_EXCL`` locally, ``FXF_EXCL`` over SFTP):
of two runs starting together exactly one gets it. The holder renews it (a heartbeat thread pushes ``expires``
forward every ``ttl / 4``) and checks it still holds it before storing the state.

A second run waits up to ``wait`` seconds, then fails naming the holder (host, pid, since when). A lease is
*stale* when its ``expires`` has passed (its holder stopped renewing: killed, host gone) or its holder is a
process on this host that no longer exists. A stale lease is taken over safely: it is first renamed to a unique
name (only one contender's rename succeeds), its content is checked to be the stale lease that was judged (not
a fresh one another contender created meanwhile), then removed, and the new lease created exclusively.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from airflow_provider_lytics.exports.errors import ExportLeaseError

log = logging.getLogger(__name__)

DEFAULT_TTL = 120.0
DEFAULT_WAIT = 0.0


class LeaseBackend(Protocol):
    """The few atomic file operations a lease needs (implemented by the export destinations)."""

    def lease_read(self, name: str) -> bytes | None: ...

    def lease_create(self, name: str, data: bytes) -> bool:
        """Create ``name`` with ``data`` only if it does not exist; ``False`` if it does."""

    def lease_replace(self, name: str, data: bytes) -> None: ...

    def lease_rename(self, name: str, new_name: str) -> bool:
        """Rename ``name``; ``False`` if it no longer exists (someone else renamed or removed it)."""

    def lease_delete(self, name: str) -> None: ...


@dataclass(frozen=True)
class LeaseInfo:
    token: str
    host: str
    pid: int
    acquired: float
    expires: float
    run: str

    @classmethod
    def parse(cls, data: bytes | None) -> LeaseInfo | None:
        try:
            doc = json.loads(data or b"")
            return cls(str(doc["token"]), str(doc["host"]), int(doc["pid"]), float(doc["acquired"]),
                       float(doc["expires"]), str(doc.get("run", "")))  # fmt: skip
        except (ValueError, KeyError, TypeError):
            return None

    def dump(self) -> bytes:
        return json.dumps(self.__dict__, sort_keys=True).encode()

    def describe(self) -> str:
        since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.acquired))
        run = f", run {self.run}" if self.run else ""
        return f"host {self.host}, pid {self.pid}{run}, since {since}"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class ExportLease:
    """Hold the lease named ``name`` on ``backend`` for the duration of a ``with`` block."""

    def __init__(
        self,
        backend: LeaseBackend,
        name: str,
        *,
        export_name: str,
        ttl: float = DEFAULT_TTL,
        wait: float = DEFAULT_WAIT,
        run: str = "",
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        host: str | None = None,
    ) -> None:
        if ttl <= 0 or wait < 0:
            raise ValueError("lease ttl must be positive and wait not negative")
        self.backend, self.name, self.export_name = backend, name, export_name
        self.ttl, self.wait, self.run = ttl, wait, run
        self.clock, self.sleep = clock, sleep
        self.host = host or socket.gethostname()
        self.token = secrets.token_hex(8)
        self.info: LeaseInfo | None = None
        self.lost: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- acquire --------------------------------------------------------------------------------------------
    def _mine(self, acquired: float) -> LeaseInfo:
        now = self.clock()
        return LeaseInfo(self.token, self.host, os.getpid(), acquired, now + self.ttl, self.run)

    def _stale(self, held: LeaseInfo) -> bool:
        if held.expires < self.clock():
            return True
        return held.host == self.host and held.pid != os.getpid() and not _pid_alive(held.pid)

    def _take_over(self, held: LeaseInfo) -> None:
        """Move a stale lease aside; only the contender whose rename succeeds and finds the same lease wins."""
        aside = f"{self.name}.stale.{self.token}"
        if not self.backend.lease_rename(self.name, aside):
            return  # someone else moved it first
        moved = LeaseInfo.parse(self.backend.lease_read(aside))
        if moved is not None and moved.token != held.token:
            # a contender created a fresh lease between our read and our rename: give it back
            if not self.backend.lease_create(self.name, moved.dump()):
                log.warning("Lease %s changed hands during a takeover; the newest holder keeps it", self.name)
        else:
            log.warning("Took over the stale lease of export %r (%s)", self.export_name, held.describe())
        self.backend.lease_delete(aside)

    def acquire(self) -> LeaseInfo:
        deadline = self.clock() + self.wait
        while True:
            mine = self._mine(self.clock())
            if self.backend.lease_create(self.name, mine.dump()):
                self.info = mine
                self._start_heartbeat()
                log.info("Holding the lease of export %r (%s)", self.export_name, self.name)
                return mine
            raw = self.backend.lease_read(self.name)
            held = LeaseInfo.parse(raw)
            if held is None and raw is not None:
                # being written right now (or damaged): treat it as held until it expires by our clock
                held = LeaseInfo("?", "unknown", -1, self.clock(), self.clock() + self.ttl, "")
            if held is not None and self._stale(held):
                self._take_over(held)
                continue
            if held is not None and self.clock() >= deadline:
                raise ExportLeaseError(
                    f"export {self.export_name!r} is already running ({held.describe()}; lease {self.name}): "
                    "incremental runs of one export_name take turns. Wait for it to finish, raise "
                    "lease_wait, or, if that run is dead, its lease expires "
                    f"{max(0, int(held.expires - self.clock()))} s from now"
                )
            if held is not None:
                self.sleep(min(1.0, max(0.05, self.ttl / 20)))

    # -- hold -----------------------------------------------------------------------------------------------
    def _start_heartbeat(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._beat, name="lytics-export-lease", daemon=True)
        self._thread.start()

    def _beat(self) -> None:
        while not self._stop.wait(self.ttl / 4):
            try:
                self.renew()
            except Exception as exc:  # keep beating: a transient SFTP error must not drop the lease
                log.warning("Could not renew the lease of export %r: %s", self.export_name, exc)

    def renew(self) -> None:
        """Push ``expires`` forward, if the lease is still ours (else remember that it was lost)."""
        assert self.info is not None
        held = LeaseInfo.parse(self.backend.lease_read(self.name))
        if held is None or held.token != self.token:
            self.lost = held.describe() if held is not None else "nobody (the lease file is gone)"
            self._stop.set()
            return
        self.info = self._mine(self.info.acquired)
        self.backend.lease_replace(self.name, self.info.dump())

    def check(self) -> None:
        """Raise unless this run still holds the lease (called before the state is stored)."""
        if self.lost is None:
            held = LeaseInfo.parse(self.backend.lease_read(self.name))
            if held is None or held.token != self.token:
                self.lost = held.describe() if held is not None else "nobody (the lease file is gone)"
        if self.lost is not None:
            raise ExportLeaseError(
                f"export {self.export_name!r} lost its lease (now held by {self.lost}): this run's state is not "
                "stored, so the next run repeats its changes"
            )

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None
        if self.info is None:
            return
        with contextlib.suppress(Exception):
            held = LeaseInfo.parse(self.backend.lease_read(self.name))
            if held is not None and held.token == self.token:
                self.backend.lease_delete(self.name)
        self.info = None

    def __enter__(self) -> ExportLease:
        self.acquire()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()
