"""The emulator's state, composed of one object per concern and shared by every route."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from airflow_provider_lytics.emulator.clock import EmulatorClock
from airflow_provider_lytics.emulator.persistence import StateDB

if TYPE_CHECKING:
    from airflow_provider_lytics.emulator.faults import FaultInjector
    from airflow_provider_lytics.emulator.jobs import JobEngine, JobTimings
    from airflow_provider_lytics.emulator.store import ProfileStore

DEFAULT_TOKEN = "emulator-token"


@dataclass(frozen=True)
class Account:
    """A Lytics account as ``GET /api/account`` describes it (string ``id`` plus integer ``aid``)."""

    id: str
    aid: int
    name: str
    domain: str = "emulator.local"
    timezone: str = "UTC"

    def as_api(self) -> dict[str, Any]:
        """The account document; never the API token (a response body must not echo a credential)."""
        return {
            "id": self.id,
            "aid": self.aid,
            "name": self.name,
            "domain": self.domain,
            "timezone": self.timezone,
            "created": "2024-01-01T00:00:00Z",
            "updated": "2024-01-01T00:00:00Z",
        }


DEFAULT_ACCOUNT = Account(id="4f7b525b2e5fa5b4a3a7c0d8e1f20001", aid=1001, name="Emulator Account")


@dataclass
class Backend:
    """Everything a route may touch. Build it with :func:`build_backend`."""

    db: StateDB
    store: ProfileStore
    jobs: JobEngine
    faults: FaultInjector
    tokens: dict[str, Account] = field(default_factory=dict)
    #: The one clock every time-reading part of this emulator asks (``/_emulator/clock`` sets and advances it).
    clock: EmulatorClock = field(default_factory=EmulatorClock)

    def account_for_token(self, token: str | None) -> Account | None:
        if not token:
            return None
        for known, account in self.tokens.items():
            if secrets.compare_digest(known, token):
                return account
        return None

    def close(self) -> None:
        self.jobs.close()
        self.db.close()


def build_backend(
    db_path: str | None = None,
    tokens: list[str] | None = None,
    job_timings: JobTimings | None = None,
    clock: EmulatorClock | None = None,
) -> Backend:
    """Create (or reopen, when ``db_path`` exists) the emulator state; ``clock`` defaults to real time."""
    from airflow_provider_lytics.emulator.faults import FaultInjector
    from airflow_provider_lytics.emulator.jobs import JobEngine
    from airflow_provider_lytics.emulator.store import ProfileStore

    clock = clock or EmulatorClock()
    db = StateDB(db_path)
    backend = Backend(
        db=db,
        store=ProfileStore(db, wall_clock=clock.time),
        jobs=JobEngine(db, timings=job_timings, clock=clock.time, background=True),
        faults=FaultInjector(),
        tokens={token: DEFAULT_ACCOUNT for token in (tokens or [DEFAULT_TOKEN])},
        clock=clock,
    )
    register_default_runners(backend)
    return backend


def register_default_runners(backend: Backend) -> None:
    """Give workflows whose runs do real work in the emulator their runner (``webhook_triggers`` delivers)."""
    from airflow_provider_lytics.emulator import webhooks

    webhooks.register(backend)
