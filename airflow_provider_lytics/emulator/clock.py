"""The emulator's clock: one object every time-reading part of an emulator asks for "now".

Three modes, so tests, the demo and deployments can pin the time of day without touching the machine's clock:

- ``real``: the wall clock (the default);
- ``offset``: starts at a chosen instant, then runs at the real rate (jobs keep progressing on their own);
- ``frozen``: stands still and moves only when advanced (job state machines move deterministically).

The clock hands out epoch seconds (:meth:`EmulatorClock.time`); it is thread-safe. A request served by the
emulator's app also sees its clock through :func:`current_time` (a context variable the app sets per request), for
helpers that have no backend at hand such as error-envelope timestamps.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime, timezone
from typing import Any

MODES = ("real", "offset", "frozen")


class ClockError(ValueError):
    """A clock setting the emulator refuses; the message says what to send instead."""


def parse_instant(value: Any, field_name: str = "now") -> float:
    """An ISO 8601 instant with a UTC offset (``2026-03-08T03:00:00-05:00`` or ``...Z``) or a datetime, to epoch s.

    A naive time is refused: "03:00" means nothing without a zone, and guessing one is how schedules break.
    """
    if isinstance(value, datetime):
        dt = value
    elif isinstance(value, str):
        try:
            dt = datetime.fromisoformat(value.strip().replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            raise ClockError(
                f"{field_name} must be an ISO 8601 instant such as 2026-03-08T03:00:00-05:00, got {value!r}"
            ) from None
    else:
        raise ClockError(f"{field_name} must be an ISO 8601 string such as 2026-03-08T03:00:00Z, got {value!r}")
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise ClockError(
            f"{field_name} needs a UTC offset or Z (e.g. 2026-03-08T03:00:00-05:00), got {dt.isoformat()!r}"
        )
    return dt.timestamp()


class EmulatorClock:
    """A settable, advanceable clock (see the module docstring for the modes)."""

    def __init__(
        self,
        now: datetime | str | float | None = None,
        *,
        frozen: bool = False,
        wall: Callable[[], float] = time.time,
    ) -> None:
        """``now`` (a datetime/ISO string with an offset, or epoch seconds) starts the clock there; without it the
        clock is real (or, with ``frozen``, stopped at the current wall time)."""
        self._wall = wall
        self._lock = threading.Lock()
        self._offset = 0.0  # seconds added to the wall clock while running
        self._frozen_at: float | None = None  # epoch seconds while frozen
        self._shifted = False  # set or advanced at least once: "offset" rather than "real"
        start = _to_epoch(now) if now is not None else None
        if start is not None:
            self._offset, self._shifted = start - wall(), True
        if frozen:
            self._frozen_at = start if start is not None else wall()

    # -- reading -------------------------------------------------------------------------------------------------
    def time(self) -> float:
        """Now, in epoch seconds (what ``time.time()`` would say on this emulator)."""
        with self._lock:
            return self._frozen_at if self._frozen_at is not None else self._wall() + self._offset

    __call__ = time

    def now(self) -> datetime:
        """Now as an aware UTC datetime."""
        return datetime.fromtimestamp(self.time(), timezone.utc)

    @property
    def mode(self) -> str:
        with self._lock:
            if self._frozen_at is not None:
                return "frozen"
            return "offset" if self._shifted else "real"

    def snapshot(self) -> dict[str, Any]:
        """``{"now": iso, "mode": ...}`` as ``GET /_emulator/clock`` answers."""
        with self._lock:
            frozen = self._frozen_at is not None
            ts = self._frozen_at if self._frozen_at is not None else self._wall() + self._offset
            mode = "frozen" if frozen else ("offset" if self._shifted else "real")
        return {"now": _iso(ts), "mode": mode, "epoch": ts}

    # -- setting -------------------------------------------------------------------------------------------------
    def set(self, now: datetime | str | float) -> None:
        """Jump to ``now`` (keeps the mode: a frozen clock stays frozen there, a running one runs on from it)."""
        target = _to_epoch(now)
        with self._lock:
            self._shifted = True
            if self._frozen_at is not None:
                self._frozen_at = target
            else:
                self._offset = target - self._wall()

    @staticmethod
    def check_advance(seconds: Any) -> float:
        """``seconds`` as a float when it is a valid advance, else :class:`ClockError` saying what to send."""
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not math.isfinite(seconds):
            raise ClockError(f"advance_seconds must be a finite number of seconds, got {seconds!r}")
        if seconds < 0:
            raise ClockError(f"advance_seconds must be >= 0 (set 'now' to go back in time), got {seconds!r}")
        return float(seconds)

    def advance(self, seconds: float) -> None:
        """Move forward by ``seconds`` (>= 0: emulated time never runs backwards by advancing)."""
        seconds = self.check_advance(seconds)
        with self._lock:
            self._shifted = True
            if self._frozen_at is not None:
                self._frozen_at += float(seconds)
            else:
                self._offset += float(seconds)

    def freeze(self, frozen: bool = True) -> None:
        """Stop the clock where it is, or (``False``) let it run on at the real rate from where it stands."""
        with self._lock:
            if frozen and self._frozen_at is None:
                self._frozen_at = self._wall() + self._offset
            elif not frozen and self._frozen_at is not None:
                self._offset = self._frozen_at - self._wall()
                self._frozen_at, self._shifted = None, True

    def reset(self) -> None:
        """Back to the real wall clock, running."""
        with self._lock:
            self._offset, self._frozen_at, self._shifted = 0.0, None, False

    def __repr__(self) -> str:
        snap = self.snapshot()
        return f"EmulatorClock({snap['mode']}, now={snap['now']})"


def _to_epoch(value: datetime | str | float) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return parse_instant(value)


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


# -- the clock of the request being served ------------------------------------------------------------------------

_current: ContextVar[EmulatorClock | None] = ContextVar("lytics_emulator_clock", default=None)


def current_time() -> float:
    """Now for the emulator serving this request (its clock), else the wall clock."""
    clock = _current.get()
    return clock.time() if clock is not None else time.time()


def current_datetime() -> datetime:
    return datetime.fromtimestamp(current_time(), timezone.utc)


@contextmanager
def using(clock: EmulatorClock) -> Iterator[None]:
    """Make ``clock`` the one :func:`current_time` reads within this block (and tasks/threads it spawns)."""
    token = _current.set(clock)
    try:
        yield
    finally:
        _current.reset(token)
