"""Group validated rows into upload bodies that respect the Lytics limits.

A batch belongs to one source part (file or zip member), so its acknowledgement is a line range of that part.
Bodies are CSV (header row + rows, quoting as in the source) or NDJSON, optionally gzip-compressed.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from airflow_provider_lytics.imports.validate import API_HOST_BODY_LIMIT

#: Bulk-host default: large bodies mean few requests (each has a fixed cost on the Lytics side).
DEFAULT_BATCH_BYTES = 8 * 1024 * 1024
DEFAULT_BATCH_ROWS = 500_000
MAX_BATCH_BYTES = 256 * 1024 * 1024
#: Headroom below the API host's 10 MB cap (multipart proxies and header rows).
API_HOST_MAX_BATCH_BYTES = API_HOST_BODY_LIMIT - 64 * 1024
_FLUSH_CHARS = 256 * 1024
#: The first batch of a part is this small and each next one twice as large up to ``batch_bytes``, so Lytics
#: starts working while the rest is still being read.
RAMP_START_BYTES = 2 * 1024 * 1024


@dataclass
class Batch:
    """One upload: rows ``first_line``..``last_line`` of part ``part_key`` (rejected lines inside are not in it)."""

    part_key: str
    part_name: str
    sequence: int
    first_line: int
    last_line: int
    rows: int
    body: bytes
    content_type: str
    gzipped: bool = False
    possible_duplicate: bool = False
    filename: str | None = None


def check_batch_limits(batch_bytes: int, batch_rows: int, use_bulk_host: bool) -> None:
    """Reject batch sizes Lytics would refuse, with the limit to use instead."""
    if batch_rows < 1:
        raise ValueError(f"batch_rows must be at least 1, got {batch_rows}")
    if batch_bytes < 64 * 1024:
        raise ValueError(f"batch_bytes must be at least 65536 (64 KiB), got {batch_bytes}")
    if batch_bytes > MAX_BATCH_BYTES:
        raise ValueError(f"batch_bytes must be at most {MAX_BATCH_BYTES} (256 MiB), got {batch_bytes}")
    if not use_bulk_host and batch_bytes > API_HOST_MAX_BATCH_BYTES:
        raise ValueError(
            f"batch_bytes={batch_bytes} exceeds the API host's 10 MB body limit: use at most "
            f"{API_HOST_MAX_BATCH_BYTES} or send to the bulk host (use_bulk_host=True)"
        )


class BatchBuilder:
    """Accumulate rendered rows of one part until the byte or row limit, then hand out a :class:`Batch`."""

    def __init__(
        self,
        part_key: str,
        part_name: str,
        *,
        fmt: str,
        header_text: str = "",
        batch_bytes: int = DEFAULT_BATCH_BYTES,
        batch_rows: int = DEFAULT_BATCH_ROWS,
        gzip_bodies: bool = False,
        filename: str | None = None,
    ) -> None:
        self.part_key, self.part_name = part_key, part_name
        self.filename = filename
        self.content_type = "application/csv" if fmt == "csv" else "application/json"
        self.header_text = header_text
        self.batch_bytes, self.batch_rows = batch_bytes, batch_rows
        self.gzip_bodies = gzip_bodies
        self.sequence = 0
        self._limit = min(batch_bytes, RAMP_START_BYTES)
        self._reset()

    def _reset(self) -> None:
        self._buf = io.BytesIO()  # getvalue() hands over its buffer: no second copy of the body
        self._pending: list[str] = []
        self._pending_chars = 0
        self._size = 0
        self.rows = 0
        self.first_line = self.last_line = 0

    def _encode_pending(self) -> None:
        if self._pending:
            self._size += self._buf.write("".join(self._pending).encode())
            self._pending, self._pending_chars = [], 0

    def add(self, line: int, body: str) -> Batch | None:
        """Add one row; returns a full batch when adding it would pass a limit (the row starts the next batch)."""
        out = None
        limit = self._limit
        estimate = self._size + self._pending_chars + len(body) + 1
        if self.rows and (self.rows >= self.batch_rows or estimate > limit):
            self._encode_pending()
            if self.rows >= self.batch_rows or self._size + len(body.encode()) + 1 > limit:
                out = self.take()
        if not self.rows:
            self.first_line = line
            if self.header_text:
                self._pending.append(self.header_text + "\n")
                self._pending_chars += len(self.header_text) + 1
        self._pending.append(body + "\n")
        self._pending_chars += len(body) + 1
        self.rows += 1
        self.last_line = line
        if self._pending_chars >= _FLUSH_CHARS:
            self._encode_pending()
        return out

    def fits_block(self, rows: int, body: str) -> bool:
        """Whether a block of ``rows`` rows can go into an (empty, if need be) batch as a whole."""
        return rows <= self.batch_rows and len(body) + len(self.header_text) + 2 <= self._limit

    def take_if_full(self, rows: int, body: str) -> Batch | None:
        """The current batch, if adding the block would pass a limit."""
        if self.rows and (
            self.rows + rows > self.batch_rows or self._size + self._pending_chars + len(body) + 1 > self._limit
        ):
            return self.take()
        return None

    def add_block(self, first_line: int, last_line: int, rows: int, body: str) -> None:
        """Add consecutive rows ``first_line``..``last_line`` rendered as ``body`` (call :meth:`take_if_full` first)."""
        if not self.rows:
            self.first_line = first_line
            if self.header_text:
                self._pending.append(self.header_text + "\n")
                self._pending_chars += len(self.header_text) + 1
        self._encode_pending()
        self._size += self._buf.write(body.encode()) + self._buf.write(b"\n")  # no joined copy of a large block
        self.rows += rows
        self.last_line = last_line

    def take(self) -> Batch | None:
        """The rows gathered so far as a batch (None when empty)."""
        self._encode_pending()
        if not self.rows:
            return None
        body = self._buf.getvalue()
        self._buf = io.BytesIO()
        if self.gzip_bodies:
            import gzip

            body = gzip.compress(body, compresslevel=1)
        self.sequence += 1
        self._limit = min(self.batch_bytes, self._limit * 2)  # ramp up: the first upload starts early
        batch = Batch(self.part_key, self.part_name, self.sequence, self.first_line, self.last_line, self.rows, body,
                      self.content_type, self.gzip_bodies, filename=self.filename)  # fmt: skip
        self._reset()
        return batch
