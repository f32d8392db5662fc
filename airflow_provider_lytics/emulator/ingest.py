"""Streaming decoders for collect bodies: gzip, UTF-8, JSON (object, array or NDJSON) and CSV.

Everything works on an iterator of byte chunks and yields records one at a time, so a request of any size is
processed with one chunk plus one batch of records in memory. :func:`run_ingest` applies the documented record
limits and feeds batches to the profile store.
"""

from __future__ import annotations

import codecs
import csv
import itertools
import json
import operator
import re
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_provider_lytics.emulator.store import ProfileStore

SINGLE_RECORD_LIMIT = 4 * 1024
BATCH_RECORD_LIMIT = 16 * 1024
API_HOST_BODY_LIMIT = 10 * 1024 * 1024
BATCH_SIZE = 5000
#: CSV rows read and checked together (their lists live next to the records until the slice is converted).
ROW_SLICE = 1000
#: A JSON value still incomplete after this many buffered characters is treated as malformed.
MAX_PENDING_CHARS = 4 * 1024 * 1024
DELIMITERS = {",": ",", "t": "\t", "\t": "\t", "tab": "\t", "\\t": "\t", "|": "|", ";": ";"}
#: Identifier values up to this many characters cannot exceed the 256-byte limit (4 bytes per character at most).
MAX_PLAIN_ID_CHARS = 64
_WS = re.compile(r"[ \t\n\r]*")


def _after_ws(buf: str, pos: int) -> int:
    """Where the whitespace at ``pos`` ends (the pattern always matches, possibly empty)."""
    match = _WS.match(buf, pos)
    return match.end() if match else pos


class BadInput(ValueError):
    """The body cannot be processed; ``status`` is the HTTP status, ``accepted`` the records stored before it."""

    def __init__(self, message: str, status: int = 400, accepted: int = 0) -> None:
        super().__init__(message)
        self.status = status
        self.accepted = accepted


@dataclass
class IngestOptions:
    """How to read one collect request."""

    fmt: str = "json"  # "json" or "csv"
    dryrun: bool = False
    droperrors: bool = False
    timestamp_field: str | None = None
    filename: str | None = None
    headers: list[str] | None = None
    delimiter: str = ","
    append: dict[str, Any] = field(default_factory=dict)


@dataclass
class IngestSummary:
    message_count: int = 0
    rejected_count: int = 0
    rejections: list[tuple[int, str]] = field(default_factory=list)


def parse_delimiter(raw: str | None) -> str:
    if raw is None or raw == "":
        return ","
    try:
        return DELIMITERS[raw.lower() if len(raw) > 1 else raw]
    except KeyError:
        raise BadInput(f"delimiter {raw!r} is not supported: use ',', 't' (tab), '|' or ';'") from None


def parse_append(raw: str | None) -> dict[str, Any]:
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except ValueError:
        raise BadInput('append must be a URL-encoded JSON object such as {"source":"crm"}') from None
    if not isinstance(value, dict):
        raise BadInput("append must be a JSON object (key/value pairs added to every row)")
    problem = structure_error(value)
    if problem:
        raise BadInput(f"append is not usable: {problem}")
    return value


# -- bytes -> text ------------------------------------------------------------------------------------------
def decode_text(chunks: Iterable[bytes], gzipped: bool = False) -> Iterator[str]:
    """Gunzip (declared or sniffed by magic bytes, multi-member aware) and decode UTF-8 incrementally."""
    it = iter(chunks)
    first = b""
    for chunk in it:
        if chunk:
            first = chunk
            break
    if not first:
        return
    decoder = codecs.getincrementaldecoder("utf-8-sig")()
    inflating = gzipped or first[:2] == b"\x1f\x8b"

    def raw() -> Iterator[bytes]:
        yield first
        yield from it

    def inflate(source: Iterator[bytes]) -> Iterator[bytes]:
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        for chunk in source:
            while chunk:
                try:
                    out = inflater.decompress(chunk, 1 << 20)
                    yield out
                    while inflater.unconsumed_tail:
                        yield inflater.decompress(inflater.unconsumed_tail, 1 << 20)
                except zlib.error as exc:
                    raise BadInput(f"body is not valid gzip data ({exc})") from None
                chunk = inflater.unused_data
                if chunk:  # another gzip member follows
                    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        if not inflater.eof:
            raise BadInput("body is truncated gzip data: the compressed stream ends before its trailer")

    source = inflate(raw()) if inflating else raw()
    try:
        for chunk in source:
            text = decoder.decode(chunk)
            if text:
                yield text
        tail = decoder.decode(b"", final=True)
    except UnicodeDecodeError as exc:
        raise BadInput(f"body is not valid UTF-8 text ({exc.reason} at byte {exc.start} of a chunk)") from None
    if tail:
        yield tail


# -- JSON ---------------------------------------------------------------------------------------------------
@dataclass(slots=True)
class _Item:
    line: int
    value: Any
    size: int
    batch: bool


def iter_json(texts: Iterable[str]) -> Iterator[_Item]:
    """Yield each record of a JSON object, a JSON array of records, or newline-delimited JSON."""
    decoder = json.JSONDecoder()
    it = iter(texts)
    buf, pos, lines_before, eof = "", 0, 1, False
    mode: str | None = None  # "array" or "stream"
    expect = "value"  # array state: "value", "value_or_end", "comma_or_end"
    held: _Item | None = None  # first stream value, held until we know whether more follow

    # Newlines are counted once: ``counted`` lines lie before ``cursor`` in ``buf`` (positions only grow).
    cursor, counted = 0, 1

    def fill() -> bool:
        nonlocal buf, pos, lines_before, eof, cursor, counted
        chunk = next(it, None)
        if chunk is None:
            eof = True
            return False
        lines_before = line_at(pos)
        buf, pos = buf[pos:] + chunk, 0
        cursor, counted = 0, lines_before
        return True

    def line_at(index: int) -> int:
        nonlocal cursor, counted
        if index < cursor:  # an earlier position (error reporting): count from the start of the buffer
            return lines_before + buf.count("\n", 0, index)
        counted += buf.count("\n", cursor, index)
        cursor = index
        return counted

    while True:
        pos = _after_ws(buf, pos)
        if pos >= len(buf):
            if eof or not fill():
                break
            continue
        if mode is None:
            if buf[pos] == "[":
                mode, expect, pos = "array", "value_or_end", pos + 1
                continue
            mode = "stream"
        if mode == "array" and expect != "value":
            char = buf[pos]
            if char == "]":
                pos += 1
                rest = _after_ws(buf, pos)
                while rest >= len(buf) and not eof and fill():
                    rest = _after_ws(buf, pos)
                if rest < len(buf):
                    raise BadInput(f"body is not valid JSON: unexpected data after the array at line {line_at(rest)}")
                return
            if expect == "comma_or_end":
                if char != ",":
                    raise BadInput(f"body is not valid JSON: expected ',' or ']' at line {line_at(pos)}")
                pos, expect = pos + 1, "value"
                continue
        try:
            value, end = decoder.raw_decode(buf, pos)
            if end >= len(buf) and not eof:
                raise ValueError("value may continue in the next chunk")
        except RecursionError:
            raise BadInput(
                f"the JSON record at line {line_at(pos)} nests objects or arrays too deeply: flatten it"
            ) from None
        except ValueError as exc:
            if not eof and len(buf) - pos < MAX_PENDING_CHARS and fill():
                continue
            if isinstance(exc, json.JSONDecodeError):
                raise BadInput(f"body is not valid JSON: {exc.msg} at line {line_at(exc.pos)}") from None
            if eof:
                value, end = decoder.raw_decode(buf, pos)
            else:
                raise BadInput(f"a JSON record at line {line_at(pos)} exceeds {MAX_PENDING_CHARS} characters") from None
        item = _Item(line_at(pos), value, end - pos, mode == "array")
        pos = end
        if mode == "array":
            expect = "comma_or_end"
            yield item
        elif held is None:
            held = item
        else:
            held.batch = item.batch = True
            yield held
            held = item
    if mode == "array":
        raise BadInput("body is not valid JSON: the array is not closed with ']'")
    if held is not None:
        yield held


# -- CSV ----------------------------------------------------------------------------------------------------
def _lines(texts: Iterable[str]) -> Iterator[str]:
    """Split decoded chunks into lines that keep their ``\\n`` (the csv module needs it inside quoted fields)."""

    def per_chunk() -> Iterator[list[str]]:
        pending = ""
        for chunk in texts:
            parts = (pending + chunk).split("\n") if pending else chunk.split("\n")
            pending = parts.pop()
            yield [part + "\n" for part in parts]
        if pending:
            yield [pending]

    return itertools.chain.from_iterable(per_chunk())


def _read_header(reader: Any) -> list[str] | None:
    """The header row (names stripped and validated), or ``None`` for a body without any row."""
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return None
        except csv.Error as exc:
            raise BadInput(f"CSV header row is malformed at line {reader.line_num}: {exc}") from None
        if not row or (len(row) == 1 and not row[0].strip()):
            continue
        headers = [h.strip() for h in row]
        for i, name in enumerate(headers):
            if not name:
                raise BadInput(f"CSV header row has an empty column name at position {i + 1}")
        if len(set(headers)) != len(headers):
            raise BadInput(f"CSV header row repeats a column name: {', '.join(headers)}")
        return headers


def iter_csv(texts: Iterable[str], options: IngestOptions) -> Iterator[_Item]:
    """Yield CSV rows as records (``value`` is a dict, or a string naming what is wrong with the row)."""
    reader = csv.reader(_lines(texts), delimiter=options.delimiter, strict=True)
    headers = options.headers if options.headers is not None else _read_header(reader)
    if headers is None:
        return
    append = options.append
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield _Item(reader.line_num, f"malformed CSV at line {reader.line_num}: {exc}", 0, True)
            continue
        if not row or (len(row) == 1 and not row[0].strip()):
            continue
        size = sum(map(len, row)) + len(row)
        if len(row) != len(headers):
            reason = f"line {reader.line_num} has {len(row)} fields but the header has {len(headers)}"
            yield _Item(reader.line_num, reason, size, True)
            continue
        record = {h: v for h, v in zip(headers, row, strict=True) if v != ""}
        if append:
            record.update(append)
        yield _Item(reader.line_num, record, size, True)


def csv_batches(
    texts: Iterable[str],
    options: IngestOptions,
    check: Callable[..., str | None],
    identity_fields: Sequence[str],
    reject: Callable[[int, str], None],
) -> Iterator[tuple[list[dict[str, Any]], bool]]:
    """CSV rows as ``(batch, plain)``: up to :data:`BATCH_SIZE` accepted records (the bulk-ingest hot path).

    ``plain`` says the records hold only non-empty strings and no ``_``-prefixed names.

    Does what :func:`iter_csv` plus the per-record checks of :func:`run_ingest` do. Rows are read a slice at a
    time and a slice is checked as a whole (widths, sizes, identifier lengths) at C speed; only a slice with a
    row that fails a check goes through the row-by-row path. Bad rows go to ``reject(line, reason)``, which may
    raise to abort the request; the records before it that do not fill a batch are then not yielded.
    """
    reader = csv.reader(_lines(texts), delimiter=options.delimiter, strict=True)
    headers = options.headers if options.headers is not None else _read_header(reader)
    if headers is None:
        return
    # Records of non-empty strings only, none under a ``_`` name: the store may copy them as they are.
    plain = not options.append and not any(h[:1] == "_" for h in headers)
    shape = _CsvShape(headers, options.append, identity_fields)
    batch: list[dict[str, Any]] = []
    while True:
        rows, lines, error = _read_rows(reader, min(BATCH_SIZE - len(batch), ROW_SLICE))
        exhausted = not rows and error is None
        if shape.clean(rows):
            batch.extend(shape.records(rows))
        else:
            shape.check_rows(rows, lines, batch, check, reject)
        del rows, lines  # not needed while the batch is stored
        if error is not None:
            reject(*error)
        if len(batch) >= BATCH_SIZE:
            yield batch, plain
            batch = []
        elif exhausted:
            break
    if batch:
        yield batch, plain


def _read_rows(reader: Any, count: int) -> tuple[list[list[str]], list[int], tuple[int, str] | None]:
    """Up to ``count`` rows with the line number each ends on, and the malformed-CSV error that stopped them."""
    rows: list[list[str]] = []
    lines: list[int] = []
    add_row, add_line = rows.append, lines.append
    try:
        for row in itertools.islice(reader, count):
            add_row(row)
            add_line(reader.line_num)
    except csv.Error as exc:
        return rows, lines, (reader.line_num, f"malformed CSV at line {reader.line_num}: {exc}")
    return rows, lines, None


class _CsvShape:
    """The columns of one CSV body and the checks its rows must pass, for whole slices or row by row."""

    def __init__(self, headers: list[str], append: dict[str, Any], identity_fields: Sequence[str]) -> None:
        self.headers = headers
        self.width = len(headers)
        self.append = append
        # Identifier columns whose length must be checked; ``append`` values are checked record by record.
        self.id_positions = [i for i, h in enumerate(headers) if h in identity_fields]
        self.check_all = bool(append) and any(name in identity_fields for name in append)

    def clean(self, rows: list[list[str]]) -> bool:
        """Whether every row has the header's width, fits the record size limit and has short identifiers.

        A one-column body is never clean: its blank lines look like rows of one empty field.
        """
        if not rows or self.width == 1 or self.check_all:
            return False
        if list(map(len, rows)).count(self.width) != len(rows):
            return False
        if max(map(sum, map(map, itertools.repeat(len), rows))) + self.width > BATCH_RECORD_LIMIT:
            return False
        return all(max(map(len, map(operator.itemgetter(i), rows))) <= MAX_PLAIN_ID_CHARS for i in self.id_positions)

    def records(self, rows: list[list[str]]) -> list[dict[str, Any]]:
        """Records of clean rows: empty values left out, ``append`` added."""
        headers = self.headers
        if any(map(operator.contains, rows, itertools.repeat(""))):
            records = [
                {h: v for h, v in zip(headers, row, strict=True) if v != ""}
                if "" in row
                else dict(zip(headers, row, strict=True))
                for row in rows
            ]
        else:
            records = list(map(dict, map(zip, itertools.repeat(headers), rows)))
        if self.append:
            for record in records:
                record.update(self.append)
        return records

    def check_rows(
        self,
        rows: list[list[str]],
        lines: list[int],
        batch: list[dict[str, Any]],
        check: Callable[..., str | None],
        reject: Callable[[int, str], None],
    ) -> None:
        """Check rows one by one, rejecting bad ones with their line number; accepted records go to ``batch``."""
        headers, width, append = self.headers, self.width, self.append
        # A getter that always returns a tuple (a second copy of the first position covers a single column).
        ids = self.id_positions
        id_values = operator.itemgetter(*ids, *ids[:1]) if ids else None
        for row, line in zip(rows, lines, strict=True):
            if len(row) != width or width == 1:
                if not row or (len(row) == 1 and not row[0].strip()):
                    continue
                if len(row) != width:
                    reject(line, f"line {line} has {len(row)} fields but the header has {width}")
                    continue
            size = sum(map(len, row)) + width
            if size > BATCH_RECORD_LIMIT:
                reject(line, f"record at line {line} is {size} bytes; the limit is {BATCH_RECORD_LIMIT} bytes")
                continue
            pairs = zip(headers, row, strict=False)  # widths already compared
            record = {h: v for h, v in pairs if v != ""} if "" in row else dict(pairs)
            if append:
                record.update(append)
            if self.check_all or (id_values is not None and max(map(len, id_values(row))) > MAX_PLAIN_ID_CHARS):
                problem = check(record, flat=True)
                if problem:
                    reject(line, f"record at line {line}: {problem}")
                    continue
            batch.append(record)


# -- driver -------------------------------------------------------------------------------------------------
def structure_error(value: Any) -> str | None:
    if not isinstance(value, Mapping):
        return f"record is a JSON {type(value).__name__}, not an object"
    for key, val in value.items():
        if isinstance(val, list) and any(isinstance(v, (dict, list)) for v in val):
            return f"field {key!r} nests objects or arrays inside an array (not supported)"
        if isinstance(val, dict):
            nested = structure_error(val)
            if nested:
                return f"field {key!r}: {nested}"
    return None


def run_ingest(store: ProfileStore, stream: str, chunks: Iterable[bytes], options: IngestOptions,
               gzipped: bool = False) -> IngestSummary:  # fmt: skip
    """Decode ``chunks`` and ingest them in batches of :data:`BATCH_SIZE`; raises :class:`BadInput`.

    Records are committed batch by batch (so memory stays flat); when a CSV row aborts the request without
    ``droperrors``, ``BadInput.accepted`` says how many records were stored before it.
    """
    from airflow_provider_lytics.emulator.store import gc_paused

    texts = decode_text(chunks, gzipped)
    run = _Run(store, stream, options)
    with store.deferred_writes():
        try:
            if options.fmt == "csv":
                batches = csv_batches(texts, options, store.check_record, store.identity_fields, run.reject_line)
                while True:
                    with gc_paused():  # parsing and merging a batch allocate many objects; collect once after
                        parsed = next(batches, None)
                        if parsed is None:
                            break
                        run.flush(*parsed)
                        del parsed  # not alive while the next batch is parsed
            else:
                items = iter_json(texts)
                more = True
                while more:
                    with gc_paused():
                        more = run.consume(items, BATCH_SIZE)
        except BadInput as exc:
            exc.accepted = run.summary.message_count
            raise
    return run.summary


class _Run:
    """State of one :func:`run_ingest` call: the pending batch and the running summary."""

    def __init__(self, store: ProfileStore, stream: str, options: IngestOptions) -> None:
        self.store, self.stream, self.options = store, stream, options
        self.summary = IngestSummary()
        self.batch: list[Any] = []

    def consume(self, items: Iterator[_Item], limit: int | None = None) -> bool:
        """Check and store records from ``items``: all of them, or until ``limit`` were accepted.

        Returns whether ``items`` may have more (``False`` once it is exhausted).
        """
        flat = self.options.fmt == "csv"
        check = self.store.check_record
        accepted = 0
        for item in items:
            if isinstance(item.value, str) and flat:
                self.reject_line(item.line, item.value)
                continue
            size_limit = BATCH_RECORD_LIMIT if item.batch else SINGLE_RECORD_LIMIT
            if item.size > size_limit:
                reason = f"record at line {item.line} is {item.size} bytes; the limit is {size_limit} bytes"
                self.reject_line(item.line, reason)
                continue
            try:
                problem = check(item.value, flat=flat)
            except RecursionError:
                problem = "it nests objects or arrays too deeply: flatten it"
            if problem:
                self.reject_line(item.line, f"record at line {item.line}: {problem}")
                continue
            self.batch.append(item.value)
            accepted += 1
            if len(self.batch) >= BATCH_SIZE:
                self.flush(self.batch)
                self.batch = []
            if limit is not None and accepted >= limit:
                return True
        if self.batch:
            self.flush(self.batch)
            self.batch = []
        return False

    def flush(self, batch: list[Any], plain: bool = False) -> None:
        """Store one batch of already validated records (``plain``: see :meth:`ProfileStore.ingest`)."""
        opts = self.options
        result = self.store.ingest(self.stream, batch, timestamp_field=opts.timestamp_field, dryrun=opts.dryrun,
                                   filename=opts.filename, validated=True, plain=plain)  # fmt: skip
        self.summary.message_count += result.message_count

    def reject_line(self, line: int, reason: str) -> None:
        if self.options.fmt == "csv" and not self.options.droperrors:
            raise BadInput(f"{reason}; fix the row or pass droperrors=true to skip bad rows")
        self.summary.rejected_count += 1
        self.summary.rejections.append((line, reason))
