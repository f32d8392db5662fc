"""Counts of one import run, logged at the end and returned to XCom."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

#: Counts that describe what Lytics acknowledged; they survive a retry through the checkpoint.
REMOTE_FIELDS = ("rows_sent", "accepted", "rejected_by_lytics", "batches_sent", "possible_duplicates")


@dataclass
class ImportCounts:
    """What happened to the rows of an import.

    ``rows_read`` counts data rows read from the sources (header rows excluded); ``rows_sent`` rows in batches
    Lytics acknowledged (over all tries of the task); ``accepted``/``rejected_by_lytics`` are Lytics's own
    ``message_count``/``rejected_count``; ``rejected_here`` rows quarantined before sending;
    ``possible_duplicates`` rows re-sent after a response was lost (Lytics may hold them twice);
    ``skipped_acknowledged`` rows a previous try already delivered, so this try did not send them again;
    ``rows_sent_this_try`` the part of ``rows_sent`` this try sent. A finished import reconciles:
    ``rows_read == rows_sent_this_try + rejected_here + skipped_acknowledged`` (see :meth:`unaccounted`).
    """

    files: int = 0
    rows_read: int = 0
    rows_sent: int = 0
    accepted: int = 0
    rejected_here: int = 0
    rejected_by_lytics: int = 0
    possible_duplicates: int = 0
    skipped_acknowledged: int = 0
    batches_sent: int = 0
    bytes_read: int = 0
    bytes_sent: int = 0
    rows_sent_this_try: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)

    def remote_part(self) -> dict[str, int]:
        """The counts a checkpoint must carry to the next try."""
        return {name: getattr(self, name) for name in REMOTE_FIELDS}

    def restore_remote(self, saved: dict[str, Any] | None) -> None:
        for name in REMOTE_FIELDS:
            setattr(self, name, int((saved or {}).get(name, 0)))

    def unaccounted(self) -> int:
        """Rows read but neither sent, quarantined nor skipped as acknowledged (0 when the counts reconcile)."""
        return self.rows_read - (self.rows_sent_this_try + self.rejected_here + self.skipped_acknowledged)

    @property
    def rejected(self) -> int:
        return self.rejected_here + self.rejected_by_lytics

    def summary(self) -> str:
        parts = [f"{f.name}={getattr(self, f.name)}" for f in fields(self)]
        return ", ".join(parts)
