"""Result objects and manifest content for SFTP transfers."""

from __future__ import annotations

import json
import posixpath
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from typing import Any

MANIFEST_SUFFIX = ".manifest.json"


@dataclass(frozen=True)
class TransferResult:
    """What a transfer moved: the bytes counted and hashed while streaming, never by re-reading."""

    remote_path: str
    size: int
    sha256: str
    seconds: float
    local_path: str | None = None
    manifest_path: str | None = None

    @property
    def mb_per_s(self) -> float:
        """Throughput in MB/s (10^6 bytes per second)."""
        return self.size / 1e6 / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        """JSON-serialisable form (e.g. for XCom)."""
        return asdict(self)


def manifest_path_for(remote_path: str) -> str:
    """Default manifest location: next to the data file, ``<name>.manifest.json``."""
    return remote_path + MANIFEST_SUFFIX


def manifest_bytes(result: TransferResult, row_count: int | None = None) -> bytes:
    """The manifest document: name, size, sha256, row_count (when known) and creation time (UTC, ISO-8601)."""
    doc: dict[str, Any] = {
        "name": posixpath.basename(result.remote_path),
        "size": result.size,
        "sha256": result.sha256,
    }
    if row_count is not None:
        if not isinstance(row_count, int) or isinstance(row_count, bool) or row_count < 0:
            raise ValueError(f"row_count must be a non-negative integer, got {row_count!r}")
        doc["row_count"] = row_count
    doc["created"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    return (json.dumps(doc, indent=2) + "\n").encode()
