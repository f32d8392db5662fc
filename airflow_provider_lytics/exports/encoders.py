"""Row encoders: CSV, NDJSON and Parquet, writing bytes to a binary sink in large chunks.

An encoder holds at most one buffer of encoded rows (``FLUSH_BYTES``) or, for Parquet, one row group: memory
does not grow with the export. Every encoder counts the rows and the (uncompressed) bytes it produced, which
the splitter uses for ``split_bytes``.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Mapping, Sequence
from typing import IO, Any

from airflow_provider_lytics.exports.errors import ExportConfigError
from airflow_provider_lytics.exports.options import FORMATS

FLUSH_BYTES = 256 * 1024
PARQUET_ROW_GROUP = 20_000
CSV_DELIMITERS = (",", ";", "|", "\t")
#: First characters that make a spreadsheet read a cell as a formula (OWASP "CSV Injection").
FORMULA_TRIGGERS = frozenset("=+-@\t\r")
_PLAIN_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")


def neutralize_formula(cell: str) -> str:
    """``cell`` made inert for spreadsheets: a leading ``'`` when it starts with ``= + - @``, tab or CR.

    Plain numbers (``-5``, ``+1.5e3``) stay as they are: they cannot be formulas, and a ``'`` would turn them
    into text. Everything else that starts with a trigger gets the prefix (OWASP's recommendation).
    """
    if cell[:1] in FORMULA_TRIGGERS and not _PLAIN_NUMBER.fullmatch(cell):
        return "'" + cell
    return cell


class _TextBuffer:
    """A ``write(str)`` target for :mod:`csv` that collects text cheaply (a C-level ``StringIO``: no Python call
    per row)."""

    def __init__(self) -> None:
        self._io = io.StringIO()
        self.write = self._io.write

    @property
    def size(self) -> int:
        """Characters buffered (bytes for ASCII text; close enough for flushing and split decisions)."""
        return self._io.tell()

    def take(self) -> bytes:
        data = self._io.getvalue().encode("utf-8")
        self._io.seek(0)
        self._io.truncate()
        return data


def _scalar_text(value: Any, join: str) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        try:
            return join.join(value)  # the common case: a list of strings
        except TypeError:
            pass
        return join.join(_scalar_text(v, join) if not isinstance(v, (dict, list)) else json.dumps(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
    return str(value)


class RowEncoder:
    """Base: ``write_rows`` rows (mappings) into ``sink``; ``close`` writes any trailer (never closes the sink)."""

    def __init__(self, sink: IO[bytes], columns: Sequence[str] | None) -> None:
        self.sink = sink
        self.columns = list(columns) if columns else None
        self.rows = 0
        self.bytes = 0

    def write_rows(self, rows: Sequence[Mapping[str, Any]]) -> None:
        raise NotImplementedError

    def _emit(self, data: bytes) -> None:
        if data:
            self.sink.write(data)
            self.bytes += len(data)

    def close(self) -> None:
        """Flush buffered rows and write the format's trailer."""


class CsvEncoder(RowEncoder):
    """CSV with a header row (optional), RFC 4180 quoting, multi-value fields joined by ``join``.

    ``neutralize_formulas`` (default) prefixes cells that a spreadsheet would run as a formula with ``'``
    (:func:`neutralize_formula`): exported profile values come from anyone who fills in a form.
    """

    def __init__(
        self,
        sink: IO[bytes],
        columns: Sequence[str],
        *,
        delimiter: str = ",",
        header: bool = True,
        join: str = "|",
        neutralize_formulas: bool = True,
    ) -> None:
        if not columns:
            raise ExportConfigError("CSV needs the list of columns: pass fields=[...] (the profile fields to export)")
        if delimiter not in CSV_DELIMITERS:
            raise ExportConfigError(f"csv_delimiter {delimiter!r} is not supported: use one of {CSV_DELIMITERS}")
        if join == delimiter:
            raise ExportConfigError("multi_value_join must differ from csv_delimiter, or values become columns")
        super().__init__(sink, columns)
        self.csv_columns: list[str] = list(columns)  # never None: checked above
        self.join = join
        self.neutralize_formulas = neutralize_formulas
        self._buf = _TextBuffer()
        self._writer = csv.writer(self._buf, delimiter=delimiter, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
        if header:
            self._writer.writerow(self.csv_columns)

    def write_rows(self, rows: Sequence[Mapping[str, Any]]) -> None:
        cols, join = self.csv_columns, self.join
        text = _scalar_text
        cells = [[v if v.__class__ is str else text(v, join) for v in map(row.get, cols)] for row in rows]
        if self.neutralize_formulas:
            triggers, guard = FORMULA_TRIGGERS, neutralize_formula
            cells = [[guard(c) if c[:1] in triggers else c for c in r] for r in cells]
        self._writer.writerows(cells)
        self.rows += len(rows)
        if self._buf.size >= FLUSH_BYTES:
            self._emit(self._buf.take())

    def close(self) -> None:
        self._emit(self._buf.take())


class NdjsonEncoder(RowEncoder):
    """One JSON object per line; with ``columns`` only those keys (absent values omitted), else the whole row."""

    def __init__(self, sink: IO[bytes], columns: Sequence[str] | None) -> None:
        super().__init__(sink, columns)
        self._parts: list[str] = []
        self._size = 0
        self._dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode

    def write_rows(self, rows: Sequence[Mapping[str, Any]]) -> None:
        cols = self.columns
        for row in rows:
            obj = {c: row[c] for c in cols if row.get(c) is not None} if cols else dict(row)
            line = self._dumps(obj)
            self._parts.append(line)
            self._size += len(line) + 1
        self.rows += len(rows)
        if self._size >= FLUSH_BYTES:
            self._flush()

    def _flush(self) -> None:
        if self._parts:
            self._emit(("\n".join(self._parts) + "\n").encode("utf-8"))
            self._parts, self._size = [], 0

    def close(self) -> None:
        self._flush()


class _ParquetSink(io.RawIOBase):
    """What pyarrow writes to: forwards to the chain, counts bytes for ``tell``, never closes the chain."""

    def __init__(self, target: IO[bytes], owner: RowEncoder) -> None:
        super().__init__()
        self.target = target
        self.owner = owner
        self.position = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        chunk = bytes(data)
        self.owner._emit(chunk)
        self.position += len(chunk)
        return len(chunk)

    def tell(self) -> int:
        return self.position


class ParquetEncoder(RowEncoder):
    """Parquet (pyarrow, imported here only): string columns, lists and maps as JSON text, one row group per
    ``row_group`` rows held in memory at a time."""

    def __init__(
        self, sink: IO[bytes], columns: Sequence[str], *, codec: str = "snappy", row_group: int = PARQUET_ROW_GROUP
    ) -> None:
        if not columns:
            raise ExportConfigError(
                "Parquet needs the list of columns: pass fields=[...] (the profile fields to export)"
            )
        try:
            import pyarrow as pa
            import pyarrow.parquet as pq
        except ImportError as exc:  # pragma: no cover - depends on the installation
            raise ExportConfigError(
                "format='parquet' needs pyarrow: pip install 'airflow-provider-lytics[parquet]'"
            ) from exc
        super().__init__(sink, columns)
        self._pa = pa
        self._schema = pa.schema([(c, pa.string()) for c in self.columns])  # type: ignore[union-attr]
        self._raw = _ParquetSink(sink, self)
        self._file = pa.PythonFile(self._raw, mode="w")
        self._writer = pq.ParquetWriter(self._file, self._schema, compression=codec)
        self._row_group = row_group
        self._pending: dict[str, list[str | None]] = {c: [] for c in self.columns}  # type: ignore[union-attr]
        self._pending_rows = 0

    def write_rows(self, rows: Sequence[Mapping[str, Any]]) -> None:
        for c, values in self._pending.items():
            for row in rows:
                v = row.get(c)
                values.append(None if v is None else (v if isinstance(v, str) else _json_text(v)))
        self._pending_rows += len(rows)
        self.rows += len(rows)
        if self._pending_rows >= self._row_group:
            self._flush()

    def _flush(self) -> None:
        if self._pending_rows:
            pa = self._pa
            table = pa.table({c: pa.array(v, pa.string()) for c, v in self._pending.items()}, schema=self._schema)
            self._writer.write_table(table)
            self._pending = {c: [] for c in self._pending}
            self._pending_rows = 0

    def close(self) -> None:
        self._flush()
        self._writer.close()


def _json_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True)


def make_encoder(
    fmt: str,
    sink: IO[bytes],
    columns: Sequence[str] | None,
    *,
    delimiter: str = ",",
    header: bool = True,
    join: str = "|",
    parquet_codec: str = "snappy",
    neutralize_formulas: bool = True,
) -> RowEncoder:
    """The encoder for ``fmt`` (``csv``, ``ndjson`` or ``parquet``)."""
    if fmt == "csv":
        return CsvEncoder(
            sink, columns or [], delimiter=delimiter, header=header, join=join, neutralize_formulas=neutralize_formulas
        )
    if fmt == "ndjson":
        return NdjsonEncoder(sink, columns)
    if fmt == "parquet":
        return ParquetEncoder(sink, columns or [], codec=parquet_codec)
    raise ExportConfigError(f"Unknown export format {fmt!r}: use one of {FORMATS}")
