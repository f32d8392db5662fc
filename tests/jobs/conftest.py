"""Job tests on one deterministic clock: the emulator's clock frozen, and the job operators reading the same clock.

``emulated_time`` freezes the session emulator's clock and points the job operators' ``time`` at it: their
``time.time()`` is the emulator's now and their ``time.sleep(s)`` advances it by ``s`` (then brings every job up to
it), so a wait loop drives the job state machine step by step. Nothing races the wall clock; nothing sleeps.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest

from airflow_provider_lytics.emulator.server import EmulatorServer


class EmulatedTime:
    """The parts of the ``time`` module the job operators use, on the emulator's frozen clock."""

    def __init__(self, emulator: EmulatorServer) -> None:
        self.emulator = emulator
        self.clock = emulator.clock

    def time(self) -> float:
        return self.clock.time()

    def now(self) -> datetime:
        return self.clock.now()

    def sleep(self, seconds: float) -> None:
        self.advance(seconds)

    def set(self, when: Any) -> None:
        """Jump to ``when`` (an aware datetime or ISO text); jobs are brought up to it."""
        self.clock.set(when)
        self.settle()

    def advance(self, seconds: float) -> None:
        """Move the emulated time forward and let every job take the transitions now due."""
        self.clock.advance(seconds)
        self.settle()

    def settle(self) -> None:
        """Apply due transitions, wait for runners they started (webhook deliveries), apply again."""
        jobs = self.emulator.backend.jobs
        jobs.advance_all()
        assert jobs.wait_for_runners(timeout=60), "an emulator job runner did not finish"
        jobs.advance_all()

    # the rest of the time module, for code that reads it through the patched name
    def __getattr__(self, name: str) -> Any:
        import time

        return getattr(time, name)


@pytest.fixture
def emulated_time(emulator: EmulatorServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[EmulatedTime]:
    """The emulator's clock frozen at the current wall time, shared with the job operators (see module doc)."""
    from airflow_provider_lytics.operators import jobs as job_operators

    fake = EmulatedTime(emulator)
    emulator.clock.freeze()
    monkeypatch.setattr(job_operators, "time", fake)
    try:
        yield fake
    finally:
        emulator.clock.reset()
