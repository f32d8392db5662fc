"""Streaming compression stages (gzip, zip) that sit between an encoder and the next writer in the chain."""

from __future__ import annotations

import gzip
import zipfile
from typing import IO, Any, cast

from airflow_provider_lytics.exports.errors import ExportConfigError
from airflow_provider_lytics.exports.options import COMPRESSIONS


class Compressor:
    """A writable that compresses into ``target``; ``close`` finishes the format without closing ``target``."""

    def __init__(self, target: IO[bytes], kind: str, *, level: int = 6, member_name: str = "export") -> None:
        if kind not in COMPRESSIONS:
            raise ExportConfigError(f"Unknown compression {kind!r}: use one of {COMPRESSIONS}")
        if not 0 <= level <= 9:
            raise ExportConfigError(f"compression_level must be 0-9, got {level}")
        self.kind = kind
        self.target = target
        self._zip: zipfile.ZipFile | None = None
        self._stream: Any
        if kind == "gzip":
            self._stream = gzip.GzipFile(filename="", fileobj=target, mode="wb", compresslevel=level, mtime=0)
        elif kind == "zip":
            # target has no tell/seek: zipfile writes a streaming archive (data descriptors, zip64 when needed)
            self._zip = zipfile.ZipFile(
                cast(IO[bytes], _NoSeek(target)), "w", compression=zipfile.ZIP_DEFLATED, compresslevel=level
            )
            self._stream = self._zip.open(member_name, "w", force_zip64=True)
        else:
            self._stream = target

    def write(self, data: bytes) -> int:
        self._stream.write(data)
        return len(data)

    def close(self) -> None:
        if self.kind == "gzip":
            self._stream.close()
        elif self.kind == "zip":
            self._stream.close()
            self._zip.close()  # type: ignore[union-attr]


class _NoSeek:
    """Hide ``tell``/``seek`` so zipfile streams instead of seeking back to patch headers."""

    def __init__(self, target: IO[bytes]) -> None:
        self._target = target

    def write(self, data: bytes) -> int:
        self._target.write(data)
        return len(data)

    def flush(self) -> None:
        """Nothing buffered here."""
