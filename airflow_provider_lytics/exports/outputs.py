"""One logical export output (e.g. all members, or the ``added`` changes): encoder -> compression -> PGP ->
atomic destination writer, rolled over to a new file part when a split limit is reached.

The final bytes are counted and SHA-256-hashed as they pass to the destination, so the manifest never has to
re-read a file. Encryption runs in gpg (its own process, fed by a thread of :class:`PgpCipher`), and SFTP uploads
in their own thread: encoding, compression, encryption and upload of the same file overlap.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import IO, TYPE_CHECKING, Any, cast

from airflow_provider_lytics.exports.compress import Compressor
from airflow_provider_lytics.exports.encoders import make_encoder
from airflow_provider_lytics.exports.errors import ExportConfigError, ExportReconciliationError

if TYPE_CHECKING:
    from airflow_provider_lytics.exports.destinations import Destination, FileWriter
    from airflow_provider_lytics.exports.naming import FileNamer

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FormatOptions:
    """How rows become bytes."""

    fmt: str = "csv"
    columns: tuple[str, ...] | None = None
    delimiter: str = ","
    header: bool = True
    join: str = "|"
    compression: str = "none"
    compression_level: int = 6
    parquet_codec: str = "snappy"
    #: CSV only: prefix cells a spreadsheet would run as formulas with ``'`` (see encoders.neutralize_formula)
    neutralize_formulas: bool = True


@dataclass(frozen=True)
class EncryptionOptions:
    """PGP through a :class:`~airflow_provider_lytics.hooks.pgp.PgpHook` (or anything with ``open_encryptor``)."""

    pgp: Any
    armor: bool = False
    compress: bool = True
    sign: bool = False


@dataclass(frozen=True)
class FileResult:
    """A file the export wrote."""

    path: str
    name: str
    change: str
    rows: int
    bytes: int
    sha256: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class _Counting:
    def __init__(self, writer: FileWriter) -> None:
        self.writer = writer
        self.size = 0
        self.sha = hashlib.sha256()

    def write(self, data: bytes) -> int:
        self.sha.update(data)
        self.size += len(data)
        self.writer.write(data)
        return len(data)

    def flush(self) -> None:
        """Writes are passed on at once."""


class _Part:
    def __init__(
        self, dest: Destination, name: str, fmt: FormatOptions, enc: EncryptionOptions | None, overwrite: bool
    ) -> None:
        self.name = name
        self.writer = dest.open_file(name, overwrite=overwrite)
        self.counting = _Counting(self.writer)
        self.stack = contextlib.ExitStack()
        try:
            target: Any = self.counting
            if enc is not None:
                target = self.stack.enter_context(
                    enc.pgp.open_encryptor(target, armor=enc.armor, compress=enc.compress, sign=enc.sign)
                )
            inner = name.split(".zip")[0] if fmt.compression == "zip" else name
            self.compressor = Compressor(target, fmt.compression, level=fmt.compression_level, member_name=inner)
            self.encoder = make_encoder(
                fmt.fmt, cast("IO[bytes]", self.compressor), fmt.columns, delimiter=fmt.delimiter, header=fmt.header,
                join=fmt.join,
                parquet_codec=fmt.parquet_codec, neutralize_formulas=fmt.neutralize_formulas,
            )  # fmt: skip
        except BaseException as exc:
            self.abort(exc)
            raise

    def close(self) -> tuple[int, str]:
        self.encoder.close()
        self.compressor.close()
        self.stack.close()  # PGP: wait until gpg has written the last ciphertext byte
        self.writer.commit()
        return self.counting.size, self.counting.sha.hexdigest()

    def abort(self, exc: BaseException) -> None:
        with contextlib.suppress(BaseException):
            self.stack.__exit__(type(exc), exc, exc.__traceback__)
        with contextlib.suppress(BaseException):
            self.writer.abort()


class OutputStream:
    """Rows of one change type, written as one file or as parts (``split_rows`` / ``split_bytes``)."""

    def __init__(
        self,
        dest: Destination,
        namer: FileNamer,
        change: str,
        fmt: FormatOptions,
        enc: EncryptionOptions | None = None,
        *,
        split_rows: int | None = None,
        split_bytes: int | None = None,
        overwrite: bool = False,
        with_change_in_name: bool = True,
    ) -> None:
        if split_rows is not None and split_rows < 1:
            raise ExportConfigError(f"split_rows must be a positive number of rows, got {split_rows}")
        if split_bytes is not None:
            if split_bytes < 1024:
                raise ExportConfigError(f"split_bytes must be at least 1024, got {split_bytes}")
            if fmt.fmt == "parquet":
                raise ExportConfigError(
                    "split_bytes is not available for Parquet (sizes are known per row group): use split_rows"
                )
        self.dest, self.namer, self.change = dest, namer, change
        self.fmt, self.enc = fmt, enc
        self.split_rows, self.split_bytes = split_rows, split_bytes
        self.overwrite = overwrite
        self.with_change_in_name = with_change_in_name
        self.files: list[FileResult] = []
        self.rows = 0
        self._part: _Part | None = None

    @property
    def splitting(self) -> bool:
        return self.split_rows is not None or self.split_bytes is not None

    def _open(self) -> _Part:
        number = len(self.files) + 1 if self.splitting else None
        name = self.namer.name(self.change, number, with_change=self.with_change_in_name)
        if any(f.name == name for f in self.files):
            raise ExportConfigError(
                f"file_name {self.namer.template!r} gives the same name twice ({name}): add {{PART}}"
            )
        self._part = _Part(self.dest, name, self.fmt, self.enc, self.overwrite)
        return self._part

    def _roll(self) -> None:
        part = self._part
        if part is None:
            return
        rows = part.encoder.rows
        try:
            size, sha = part.close()
        except BaseException as exc:
            part.abort(exc)  # e.g. gpg refused the signing passphrase at the end: remove the temporary file
            self._part = None
            raise
        self._part = None
        self.files.append(FileResult(part.writer.path, part.name, self.change, rows, size, sha))
        log.info("Wrote %s: %d rows, %d bytes, sha256 %s", part.writer.path, rows, size, sha)

    def write_rows(self, rows: Sequence[Mapping[str, Any]]) -> None:
        start = 0
        while start < len(rows):
            part = self._part or self._open()
            end = len(rows)
            if self.split_rows is not None:
                end = min(end, start + self.split_rows - part.encoder.rows)
            part.encoder.write_rows(rows[start:end])
            self.rows += end - start
            start = end
            full = self.split_rows is not None and part.encoder.rows >= self.split_rows
            if self.split_bytes is not None and _encoded_size(part) >= self.split_bytes:
                full = True
            if full:
                self._roll()

    def close(self) -> list[FileResult]:
        """Finish the current part (or write one empty file if no rows came) and return every file written."""
        if self._part is None and not self.files:
            self._open()
        self._roll()
        in_files = sum(f.rows for f in self.files)
        if in_files != self.rows:  # each file's rows are counted by its encoder: they must add up to the rows given
            raise ExportReconciliationError(
                f"{self.change}: {self.rows} rows were given but the files hold {in_files} "
                f"({', '.join(f'{f.name}: {f.rows}' for f in self.files)}): the export is incomplete"
            )
        return self.files

    def abort(self, exc: BaseException) -> None:
        """Remove the part being written (committed parts stay: the caller decides about them)."""
        if self._part is not None:
            self._part.abort(exc)
            self._part = None


def _encoded_size(part: _Part) -> int:
    enc = part.encoder
    buffered = getattr(enc, "_buf", None)
    pending = buffered.size if buffered is not None else getattr(enc, "_size", 0)
    return enc.bytes + pending
