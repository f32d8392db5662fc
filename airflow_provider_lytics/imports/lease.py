"""A lease on an import checkpoint: one run at a time may resume from (and write) a checkpoint.

Two imports that share a checkpoint (two DAGs with the same checkpoint file, or a zombie try next to its retry)
would otherwise both "resume" it: the second re-sends the first one's in-flight rows and reports rows it never
sent. The lease lives next to the checkpoint, in the same store (task state store, Airflow Variable or a file on
shared storage), so it works across Celery workers on different hosts; it names its holder (dag, task, run, try,
map index, host) and carries a heartbeat refreshed by a background thread.

Acquiring is write, settle, verify: write our claim, wait ``settle_seconds``, read it back; whoever's claim is
still there holds the lease (stores offer no compare-and-set, and the last writer of racing claims wins). A lease
whose heartbeat is older than ``ttl_seconds`` belongs to a dead holder and is taken over; so is one held by an
earlier try of the same task instance (Airflow has started a new try, so it considers that one gone). The holder
re-reads the lease at every heartbeat and before every checkpoint write: a holder that lost its lease stops.
Heartbeats use wall-clock time, so worker clocks must agree to well within ``ttl_seconds`` (NTP does).
"""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

DEFAULT_TTL_SECONDS = 120.0
DEFAULT_WAIT_SECONDS = 60.0
DEFAULT_SETTLE_SECONDS = 1.0


class ImportLeaseError(Exception):
    """The checkpoint is held by another live run (or this run lost its lease); the message names the holder."""


class LeaseStore(Protocol):
    """Where the lease document lives (next to the checkpoint)."""

    description: str

    def lease_load(self) -> dict[str, Any] | None: ...

    def lease_save(self, document: Mapping[str, Any]) -> None: ...

    def lease_clear(self) -> None: ...


@dataclass(frozen=True)
class Holder:
    """Who runs an import: enough to find it in the Airflow UI and on the worker."""

    dag_id: str = "?"
    task_id: str = "?"
    run_id: str = "?"
    try_number: int = 0
    map_index: int = -1
    host: str = field(default_factory=socket.gethostname)

    @classmethod
    def from_context(cls, context: Mapping[str, Any]) -> Holder:
        ti = context.get("ti") or context.get("task_instance")
        map_index = getattr(ti, "map_index", -1)
        try_number = getattr(ti, "try_number", 0)
        return cls(
            dag_id=str(getattr(ti, "dag_id", None) or "?"),
            task_id=str(getattr(ti, "task_id", None) or "?"),
            run_id=str(context.get("run_id") or getattr(ti, "run_id", None) or "?"),
            try_number=try_number if isinstance(try_number, int) else 0,
            map_index=map_index if isinstance(map_index, int) else -1,
        )

    def describe(self) -> str:
        index = f" map index {self.map_index}" if self.map_index != -1 else ""
        return (f"dag {self.dag_id!r} task {self.task_id!r}{index} run {self.run_id!r} try {self.try_number} "
                f"on host {self.host!r}")  # fmt: skip

    def same_task_instance(self, other: Mapping[str, Any]) -> bool:
        return (other.get("dag_id"), other.get("task_id"), other.get("run_id"), other.get("map_index")) == (
            self.dag_id, self.task_id, self.run_id, self.map_index,
        )  # fmt: skip


def _describe(doc: Mapping[str, Any]) -> str:
    h = doc.get("holder") or {}
    return Holder(**{k: h[k] for k in Holder.__dataclass_fields__ if k in h}).describe()


class CheckpointLease:
    """Hold the lease on one checkpoint for the duration of a ``with`` block."""

    def __init__(
        self,
        store: LeaseStore,
        holder: Holder,
        *,
        ttl_seconds: float = DEFAULT_TTL_SECONDS,
        wait_seconds: float = DEFAULT_WAIT_SECONDS,
        settle_seconds: float = DEFAULT_SETTLE_SECONDS,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        log: Any = None,
    ) -> None:
        if ttl_seconds <= 0 or wait_seconds < 0 or settle_seconds < 0:
            raise ValueError("lease ttl must be positive, wait and settle times 0 or more")
        self.store, self.holder = store, holder
        self.ttl, self.wait, self.settle = ttl_seconds, wait_seconds, settle_seconds
        self.clock, self.sleep, self.log = clock, sleep, log
        self.token = uuid.uuid4().hex
        self._lost: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    # -- document ------------------------------------------------------------------------------------------
    def _claim(self) -> dict[str, Any]:
        return {"token": self.token, "holder": self.holder.__dict__, "heartbeat": self.clock(), "ttl": self.ttl}

    def _free(self, doc: Mapping[str, Any] | None) -> bool:
        """Whether ``doc`` leaves the lease free to take: absent, ours, stale, or an earlier try of this task."""
        if not doc or doc.get("token") == self.token:
            return True
        age = self.clock() - float(doc.get("heartbeat") or 0)
        if age > float(doc.get("ttl") or self.ttl):
            self._note(f"taking over a stale checkpoint lease (no heartbeat for {age:.0f} s) from {_describe(doc)}")
            return True
        held = doc.get("holder") or {}
        if self.holder.same_task_instance(held) and int(held.get("try_number") or 0) < self.holder.try_number:
            self._note(f"taking over the checkpoint lease of an earlier try: {_describe(doc)}")
            return True
        return False

    def _note(self, message: str) -> None:
        if self.log is not None:
            self.log.warning("Checkpoint %s: %s", self.store.description, message)

    # -- acquire / release -----------------------------------------------------------------------------------
    def acquire(self) -> None:
        """Take the lease, waiting at most ``wait_seconds`` for a live holder; raise :class:`ImportLeaseError`."""
        deadline = self.clock() + self.wait
        poll = max(min(self.ttl / 4, 5.0), 0.05)
        while True:
            current = self.store.lease_load()
            if self._free(current):
                self.store.lease_save(self._claim())
                if self.settle:
                    self.sleep(self.settle)
                current = self.store.lease_load()
                if current and current.get("token") == self.token:
                    self._start_heartbeat()
                    return
            if self.clock() >= deadline:
                raise ImportLeaseError(
                    f"Checkpoint {self.store.description} is in use by another run: {_describe(current or {})}, "
                    f"last heartbeat {self.clock() - float((current or {}).get('heartbeat') or 0):.0f} s ago. "
                    f"Waited {self.wait:.0f} s. Two imports must not share a checkpoint: give each its own "
                    f"checkpoint path, or wait for that run to finish (its lease expires {self.ttl:.0f} s after "
                    "its last heartbeat if it died)"
                )
            self.sleep(min(poll, max(deadline - self.clock(), 0.0)))

    def check(self) -> None:
        """Raise :class:`ImportLeaseError` if another run took the lease (called before each checkpoint write)."""
        with self._lock:
            if self._lost is None:
                doc = self.store.lease_load()
                if not doc or doc.get("token") != self.token:
                    self._lost = _describe(doc) if doc else "nobody (the lease was removed)"
        if self._lost is not None:
            raise ImportLeaseError(
                f"This run lost the lease on checkpoint {self.store.description} to {self._lost} (no heartbeat "
                f"for over {self.ttl:.0f} s?); it stops so two runs never write one checkpoint"
            )

    def heartbeat(self) -> None:
        """Refresh the heartbeat if we still hold the lease (else remember that it was lost)."""
        try:
            self.check()
        except ImportLeaseError:
            return
        with self._lock:
            self.store.lease_save(self._claim())

    def _start_heartbeat(self) -> None:
        interval = self.ttl / 3

        def beat() -> None:
            while not self._stop.wait(interval):
                try:
                    self.heartbeat()
                except Exception as exc:  # a store hiccup: the next beat retries; expiry covers a long outage
                    self._note(f"heartbeat failed: {type(exc).__name__}: {exc}")

        self._thread = threading.Thread(target=beat, name="lytics-import-lease", daemon=True)
        self._thread.start()

    def release(self) -> None:
        """Stop heartbeating and remove the lease if it is still ours."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        with self._lock:
            doc = self.store.lease_load()
            if doc and doc.get("token") == self.token:
                self.store.lease_clear()

    def __enter__(self) -> CheckpointLease:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
