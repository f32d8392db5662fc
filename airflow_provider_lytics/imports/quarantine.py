"""Quarantine file: every row rejected before sending, with its source, line number, reason and original text.

The file is NDJSON (one ``{"source", "line", "reason", "raw"}`` object per line, gzip-compressed when the path
ends in ``.gz``), written under a temporary name and renamed when complete, so a reader never sees half a file.
It is created only when something is rejected. A remote destination (SFTP) is written locally first and
uploaded by the caller with :meth:`QuarantineWriter.finish`.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import tempfile
from pathlib import Path
from typing import IO, Any

#: Raw text longer than this is cut in the quarantine file (the line number still finds the row).
MAX_RAW_CHARS = 64 * 1024


class QuarantineWriter:
    """Collect rejected rows into ``path`` (local file). ``count`` says how many were written."""

    def __init__(self, path: str | os.PathLike[str] | None, *, tmp_dir: str | None = None) -> None:
        self.path = Path(path) if path else None
        self.tmp_dir = tmp_dir
        self.count = 0
        self._handle: IO[bytes] | None = None
        self._tmp: str | None = None
        self.samples: list[dict[str, Any]] = []

    def _open(self) -> IO[bytes]:
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            directory = str(self.path.parent)
        else:
            directory = self.tmp_dir  # type: ignore[assignment]
        fd, self._tmp = tempfile.mkstemp(dir=directory, prefix=".lytics-quarantine-", suffix=".part")
        raw = os.fdopen(fd, "wb")
        gz = self.path is not None and self.path.suffix == ".gz"
        return gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=5) if gz else raw  # type: ignore[return-value]

    def write(self, source: str, line: int, reason: str, raw: str) -> None:
        if self._handle is None:
            self._handle = self._open()
        text = raw.rstrip("\r\n")
        entry = {"source": source, "line": line, "reason": reason, "raw": text[:MAX_RAW_CHARS]}
        if len(text) > MAX_RAW_CHARS:
            entry["raw_truncated"] = True
        if len(self.samples) < 5:
            self.samples.append({k: v for k, v in entry.items() if k != "raw"})
        self._handle.write(json.dumps(entry, ensure_ascii=False).encode() + b"\n")
        self.count += 1

    def close(self) -> str | None:
        """Finish the file; returns the local path holding the quarantine (None when nothing was rejected).

        Without a destination ``path`` the file stays at a temporary location for :meth:`finish` to move.
        """
        if self._handle is None:
            return None
        handle, self._handle = self._handle, None
        inner = getattr(handle, "fileobj", None)
        handle.close()
        if inner is not None:
            inner.flush()
            os.fsync(inner.fileno())
            inner.close()
        assert self._tmp is not None
        if self.path is None:
            return self._tmp
        Path(self._tmp).replace(self.path)
        self._tmp = None
        return str(self.path)

    def abort(self) -> None:
        """Drop a half-written file (the caller failed before finishing)."""
        if self._handle is not None:
            with contextlib.suppress(Exception):
                self._handle.close()
            self._handle = None
        if self._tmp:
            with contextlib.suppress(FileNotFoundError):
                Path(self._tmp).unlink()
            self._tmp = None
