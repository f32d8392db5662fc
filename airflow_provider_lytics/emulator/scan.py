"""Scan cursors: a snapshot of member ids taken at scan start, paged through opaque, expiring ``_next`` tokens.

The snapshot makes a scan consistent: profiles created or changed while a client pages neither duplicate nor
skip rows. Re-sending the same cursor returns the same page, so client retries are safe.
"""

from __future__ import annotations

import base64
import binascii
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

DEFAULT_TTL_SECONDS = 600.0
MAX_OPEN_SCANS = 256


class CursorError(ValueError):
    """The ``start`` cursor is unknown, malformed or expired."""


@dataclass
class ScanState:
    ids: list[str]
    key: str  # what was scanned (segment id or ad-hoc FilterQL), to refuse a cursor used for another scan
    fields: list[str] | None
    last_used: float
    table: str = "user"  # what the ids name: profiles (user) or documents (content)
    total: int = field(init=False)

    def __post_init__(self) -> None:
        self.total = len(self.ids)


class ScanRegistry:
    """Open scans by id; each expires ``ttl`` seconds after its last page was served."""

    def __init__(self, ttl: float = DEFAULT_TTL_SECONDS, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self.clock = clock
        self._scans: OrderedDict[str, ScanState] = OrderedDict()
        self._lock = threading.Lock()

    def open(self, ids: list[str], key: str, fields: list[str] | None, table: str = "user") -> str:
        """Register a snapshot and return the cursor of its first page."""
        scan_id = uuid.uuid4().hex
        with self._lock:
            self._expire()
            self._scans[scan_id] = ScanState(ids, key, fields, self.clock(), table)
            while len(self._scans) > MAX_OPEN_SCANS:
                self._scans.popitem(last=False)
        return encode(scan_id, 0)

    def resume(self, cursor: str, key: str | None = None) -> tuple[ScanState, int]:
        scan_id, offset = decode(cursor)
        with self._lock:
            state = self._scans.get(scan_id)
            now = self.clock()
            if state is not None and now - state.last_used > self.ttl:
                del self._scans[scan_id]
                state = None
            if state is None:
                raise CursorError(
                    "scan cursor has expired or is unknown (cursors last "
                    f"{int(self.ttl)} s after the last page); restart the scan without 'start'"
                )
            if key is not None and state.key != key:
                raise CursorError("scan cursor belongs to a different segment; restart the scan without 'start'")
            state.last_used = now
            self._scans.move_to_end(scan_id)
        return state, offset

    def next_cursor(self, cursor: str, offset: int) -> str:
        scan_id, _ = decode(cursor)
        return encode(scan_id, offset)

    def close(self, cursor: str) -> None:
        scan_id, _ = decode(cursor)
        with self._lock:
            self._scans.pop(scan_id, None)

    def clear(self) -> None:
        with self._lock:
            self._scans.clear()

    def _expire(self) -> None:
        now = self.clock()
        for scan_id in [s for s, st in self._scans.items() if now - st.last_used > self.ttl]:
            del self._scans[scan_id]


def encode(scan_id: str, offset: int) -> str:
    return base64.urlsafe_b64encode(f"{scan_id}:{offset}".encode()).decode().rstrip("=")


def decode(cursor: str) -> tuple[str, int]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        scan_id, offset = raw.split(":")
        if len(scan_id) != 32 or int(offset) < 0:
            raise ValueError
        return scan_id, int(offset)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise CursorError("scan cursor is malformed: pass the '_next' value of the previous page as 'start'") from None
