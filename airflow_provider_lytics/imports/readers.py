"""Streaming row readers for CSV, NDJSON and JSON (arrays or concatenated objects).

Each reader turns a decompressed binary stream into :class:`SourceRow` items: the source line number, the original
text (for the quarantine file), and either the record rendered for the upload body or the reason it was rejected.
Memory is bounded by one record; bad rows never stop the file, only file-level problems (a malformed CSV header,
broken JSON array syntax) do.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import IO, Any

from airflow_provider_lytics.imports.formats import ImportInputError
from airflow_provider_lytics.imports.validate import BATCH_RECORD_LIMIT, size_problem, structure_problem

_MAX_PENDING_CHARS = 8 * 1024 * 1024
_READ_CHARS = 1 << 16
_BLOCK_BYTES = 1 << 20


@dataclass(slots=True)
class SourceRow:
    """One data row: ``body`` is what goes into the upload (no trailing newline) unless ``error`` says why not."""

    line: int
    raw: str
    body: str | None
    error: str | None = None
    #: More than 1 for a block of consecutive valid single-line CSV rows (``body`` holds them, newline-separated).
    rows: int = 1


def _ascii_compatible(encoding: str) -> bool:
    try:
        codecs.lookup(encoding)
    except LookupError:
        raise ImportInputError(f"Unknown text encoding {encoding!r}: use a Python codec name such as 'utf-8'") from None
    return '\n,;|\t{}[]"'.encode(encoding, "strict") == b'\n,;|\t{}[]"'  # type: ignore[no-any-return]


def _buffered(stream: IO[bytes]) -> IO[bytes]:
    if isinstance(stream, (io.BufferedReader, io.BytesIO)) or hasattr(stream, "peek"):
        return stream
    return io.BufferedReader(stream, 1 << 16)  # type: ignore[arg-type]


class _Lines:
    """Decode a binary stream line by line; a line that is not valid text is marked, not fatal.

    ASCII-compatible encodings (UTF-8, Latin-1, cp1252, ...) are split on bytes, so one bad line is quarantined
    and the rest of the file still loads; other encodings (UTF-16/32) go through an incremental decoder, where a
    decoding error stops the file with its line number.
    """

    def __init__(self, stream: IO[bytes], encoding: str, name: str) -> None:
        self.stream, self.encoding, self.name = stream, encoding, name
        self.per_line = _ascii_compatible(encoding)
        self.number = 0
        self.bad: dict[int, str] = {}

    def __iter__(self) -> Iterator[str]:
        """Every line (with its newline); ``number`` is the number of the line just yielded."""
        for chunk in self.chunks():
            yield from self.numbered(chunk)

    def numbered(self, chunk: str | list[str]) -> Iterator[str]:
        """The lines of one chunk, advancing ``number`` before each."""
        if isinstance(chunk, str):
            parts = chunk.split("\n")
            last = parts.pop()
            for part in parts:
                self.number += 1
                yield part + "\n"
            if last:
                self.number += 1
                yield last
        else:
            for text in chunk:
                self.number += 1
                yield text

    def chunks(self) -> Iterator[str | list[str]]:
        """Decoded text in pieces of whole lines: a ``str`` block (~1 MiB) that decoded cleanly, or a ``list`` of
        single lines (lines that did not decode are in ``bad``). The consumer advances ``number`` (see
        :meth:`numbered`) before asking for the next piece."""
        if not self.per_line:
            wrapper = io.TextIOWrapper(self.stream, encoding=self.encoding, newline="")  # type: ignore[arg-type]
            try:
                for text in wrapper:
                    yield [text]
            except UnicodeDecodeError as exc:
                raise ImportInputError(
                    f"{self.name}: not valid {self.encoding} text after line {self.number} ({exc.reason}); "
                    "fix the file or set encoding to the one it was written in"
                ) from None
            finally:
                wrapper.detach()
            return
        enc = self.encoding
        read = self.stream.read
        pending = b""
        first = codecs.lookup(enc).name == "utf-8"
        while True:
            chunk = read(_BLOCK_BYTES)
            if chunk:
                data = pending + chunk
                cut = data.rfind(b"\n")
                if cut < 0:
                    pending = data
                    continue
                data, pending = data[: cut + 1], data[cut + 1 :]
            else:
                data, pending = pending, b""
                if not data:
                    return
            try:
                text = data.decode("utf-8-sig" if first else enc)
            except UnicodeDecodeError:
                yield self._per_line(data, first)
            else:
                yield text
            first = False
            if not chunk:
                return

    def _per_line(self, data: bytes, first: bool) -> list[str]:
        enc = self.encoding
        pieces = data.split(b"\n")
        last = pieces.pop()
        lines = [p + b"\n" for p in pieces] + ([last] if last else [])
        out = []
        for i, raw in enumerate(lines):
            try:
                text = raw.decode("utf-8-sig" if first and i == 0 else enc)
            except UnicodeDecodeError as exc:
                text = raw.decode(enc, "replace")
                reason = f"not valid {enc} text ({exc.reason} at byte {exc.start} of the line)"
                self.bad[self.number + i + 1] = reason
            out.append(text)
        return out


def _render_csv(values: Sequence[Any], delimiter: str) -> str:
    out = io.StringIO()
    csv.writer(out, delimiter=delimiter, lineterminator="").writerow(["" if v is None else v for v in values])
    return out.getvalue()


class CsvRows:
    """CSV rows, re-emitted as CSV text (quoting preserved) with constant fields as extra columns.

    :param columns: column names; with ``has_header=True`` they replace the file's header row, otherwise the file
        has no header row and these name its columns.
    """

    def __init__(
        self,
        stream: IO[bytes],
        name: str,
        *,
        delimiter: str = ",",
        quotechar: str = '"',
        encoding: str = "utf-8",
        columns: Sequence[str] | None = None,
        has_header: bool = True,
        constants: Mapping[str, Any] | None = None,
        max_record_bytes: int = BATCH_RECORD_LIMIT,
    ) -> None:
        if not has_header and not columns:
            raise ImportInputError(f"{name}: has_header=False needs columns=[...] naming the CSV columns")
        self.name, self.delimiter, self.quotechar = name, delimiter, quotechar
        self.lines = _Lines(stream, encoding, name)
        self.columns = list(columns) if columns else None
        self.has_header = has_header
        self.constants = dict(constants or {})
        self.max_record_bytes = max_record_bytes
        self.header: list[str] | None = None
        self.header_text = ""
        self._suffix = ""

    def _set_header(self, names: list[str], line: int) -> None:
        names = [n.strip() for n in names]
        for i, n in enumerate(names):
            if not n:
                raise ImportInputError(f"{self.name}: CSV header (line {line}) has an empty name in column {i + 1}")
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ImportInputError(f"{self.name}: CSV header (line {line}) repeats column(s) {', '.join(dupes)}")
        clash = sorted(set(names) & set(self.constants))
        if clash:
            raise ImportInputError(
                f"{self.name}: constant field(s) {', '.join(clash)} are also CSV columns; rename the constant"
            )
        self.header = names
        self.header_text = _render_csv([*names, *self.constants], self.delimiter)
        if self.constants:
            self._suffix = self.delimiter + _render_csv(list(self.constants.values()), self.delimiter)

    def _parse_quoted(self, first: str, rest: Iterator[str]) -> tuple[list[str] | None, str, str | None]:
        """Parse one row that contains the quote character (it may span lines); returns fields, raw, error."""
        buf = [first]

        def more() -> Iterator[str]:
            yield first
            for text in rest:
                buf.append(text)
                yield text

        reader = csv.reader(more(), delimiter=self.delimiter, quotechar=self.quotechar, strict=True)
        try:
            fields = next(reader)
        except csv.Error as exc:
            return None, "".join(buf), f"malformed CSV: {exc}"
        except StopIteration:
            return [], "".join(buf), None
        return fields, "".join(buf), None

    def _block_row(self, chunk: str, base: int) -> SourceRow | None:
        """The whole chunk as one block row when every line is a plain valid row (no quotes, blanks, CR)."""
        width = len(self.header or ())
        if width < 2 or self.quotechar in chunk or "\r" in chunk or "\n\n" in chunk or chunk.startswith("\n"):
            return None
        text = chunk[:-1] if chunk.endswith("\n") else chunk
        parts = text.split("\n")
        w1, delim = width - 1, self.delimiter
        if any(p.count(delim) != w1 for p in parts):
            return None
        if (max(map(len, parts)) + len(self._suffix)) * 4 > self.max_record_bytes:
            return None  # possibly over the record limit: let the line path measure exactly
        if self._suffix:
            text = text.replace("\n", self._suffix + "\n") + self._suffix
        return SourceRow(base + 1, chunk, text, rows=len(parts))

    def __iter__(self) -> Iterator[SourceRow]:
        lines = self.lines
        if self.columns and not self.has_header:
            self._set_header(self.columns, 0)
        chunks = lines.chunks()
        for whole in chunks:
            chunk: str | list[str] | None = whole
            if self.header is None:
                chunk = self._header_from(whole)
                if not chunk:
                    continue
            base = lines.number
            if isinstance(chunk, str) and not lines.bad:
                block = self._block_row(chunk, base)
                if block is not None:
                    lines.number = base + block.rows
                    yield block
                    continue
            pieces = list(lines.numbered(chunk))
            lines.number = base
            if any(self.quotechar in p for p in pieces):
                # quoted fields may span lines: read the rest of the file line by line
                yield from self._line_rows(self._flatten(pieces, chunks))
                return
            yield from self._line_rows(self._flatten(pieces, iter(())))
        if self.header is None and self.columns:
            self._set_header(self.columns, 0)

    def _header_from(self, chunk: str | list[str]) -> str | list[str] | None:
        """Read the header row from the start of ``chunk``; returns the rest of the chunk."""
        lines = self.lines
        base = lines.number
        pieces = list(lines.numbered(chunk))
        lines.number = base
        for i, text in enumerate(pieces):
            lines.number += 1
            if not text.strip():
                continue
            if lines.number in lines.bad:
                raise ImportInputError(f"{self.name}: CSV header (line {lines.number}) is {lines.bad[lines.number]}")
            try:
                names = next(csv.reader([text], delimiter=self.delimiter, quotechar=self.quotechar, strict=True))
            except csv.Error as exc:
                raise ImportInputError(
                    f"{self.name}: CSV header row is malformed at line {lines.number}: {exc}"
                ) from None
            self._set_header(self.columns or names, lines.number)
            rest = pieces[i + 1 :]
            return "".join(rest) if isinstance(chunk, str) else rest
        return None

    def _flatten(self, first: list[str], rest: Iterator[str | list[str]]) -> Iterator[str]:
        lines = self.lines
        for text in first:
            lines.number += 1
            yield text
        for chunk in rest:
            yield from lines.numbered(chunk)

    def _line_rows(self, it: Iterator[str]) -> Iterator[SourceRow]:
        lines = self.lines
        delim, quote, limit = self.delimiter, self.quotechar, self.max_record_bytes
        suffix, width = self._suffix, len(self.header) if self.header else 0
        for text in it:
            start = lines.number
            if quote in text or self.header is None:
                fields, raw, error = self._parse_quoted(text, it)
                if error is not None:
                    if self.header is None:
                        raise ImportInputError(f"{self.name}: CSV header row is malformed at line {start}: {error}")
                    yield SourceRow(start, raw, None, error)
                    continue
                if not fields or (len(fields) == 1 and not fields[0].strip()):
                    continue
                if self.header is None:
                    if start in lines.bad:
                        raise ImportInputError(f"{self.name}: CSV header (line {start}) is {lines.bad[start]}")
                    self._set_header(self.columns or fields, start)
                    suffix, width = self._suffix, len(self.header or ())
                    continue
                count = len(fields)
            else:
                raw = text
                stripped = text.rstrip("\r\n")
                if not stripped.strip():
                    continue
                count = stripped.count(delim) + 1
            if lines.bad:
                bad = [lines.bad.pop(n) for n in range(start, lines.number + 1) if n in lines.bad]
                if bad:
                    yield SourceRow(start, raw, None, bad[0])
                    continue
            if count != width:
                yield SourceRow(start, raw, None, f"row has {count} fields but the header has {width}")
                continue
            body = raw.rstrip("\r\n") + suffix
            if len(body) * 4 > limit:
                problem = size_problem(len(body.encode()), limit)
                if problem:
                    yield SourceRow(start, raw, None, problem)
                    continue
            yield SourceRow(start, raw, body)


def _render_json(record: Mapping[str, Any]) -> str:
    return json.dumps(record, separators=(",", ":"), ensure_ascii=False, default=str)


class _JsonChecker:
    """Validate a parsed JSON value, merge constants and render it as one NDJSON line."""

    def __init__(self, constants: Mapping[str, Any] | None, max_record_bytes: int) -> None:
        self.constants = dict(constants or {})
        self.limit = max_record_bytes

    def row(self, line: int, raw: str, value: Any, passthrough: str | None = None) -> SourceRow:
        problem = structure_problem(value)
        if problem:
            return SourceRow(line, raw, None, problem)
        if self.constants:
            value = {**value, **self.constants}
            passthrough = None
        body = passthrough if passthrough is not None else _render_json(value)
        if len(body) * 4 > self.limit:
            problem = size_problem(len(body.encode()), self.limit)
            if problem:
                return SourceRow(line, raw, None, problem)
        return SourceRow(line, raw, body)


class NdjsonRows:
    """Newline-delimited JSON: one object per line; blank lines are skipped, bad lines quarantined."""

    def __init__(
        self,
        stream: IO[bytes],
        name: str,
        *,
        encoding: str = "utf-8",
        constants: Mapping[str, Any] | None = None,
        max_record_bytes: int = BATCH_RECORD_LIMIT,
    ) -> None:
        self.name = name
        self.lines = _Lines(stream, encoding, name)
        self.checker = _JsonChecker(constants, max_record_bytes)
        self.header_text = ""

    def __iter__(self) -> Iterator[SourceRow]:
        lines, checker, loads = self.lines, self.checker, json.loads
        for text in lines:
            stripped = text.strip()
            if not stripped:
                continue
            number = lines.number
            if lines.bad:
                reason = lines.bad.pop(number, None)
                if reason:
                    yield SourceRow(number, text, None, reason)
                    continue
            try:
                value = loads(stripped)
            except ValueError as exc:
                msg = getattr(exc, "msg", str(exc))
                col = getattr(exc, "colno", None)
                yield SourceRow(number, text, None, f"not valid JSON: {msg}" + (f" at column {col}" if col else ""))
                continue
            yield checker.row(number, text, value, stripped)


class JsonRows:
    """A JSON array of objects, or objects one after another (pretty-printed or not), read incrementally.

    A syntax error inside an array cannot be skipped safely, so it stops the file with its line number.
    """

    def __init__(
        self,
        stream: IO[bytes],
        name: str,
        *,
        encoding: str = "utf-8",
        constants: Mapping[str, Any] | None = None,
        max_record_bytes: int = BATCH_RECORD_LIMIT,
    ) -> None:
        self.name, self.encoding = name, encoding
        _ascii_compatible(encoding)
        codec = "utf-8-sig" if codecs.lookup(encoding).name == "utf-8" else encoding
        self.text = io.TextIOWrapper(stream, encoding=codec, newline="")  # type: ignore[arg-type]
        self.checker = _JsonChecker(constants, max_record_bytes)
        self.header_text = ""

    def _fail(self, line: int, what: str) -> ImportInputError:
        return ImportInputError(f"{self.name}: not valid JSON at line {line}: {what}; fix the file (or use NDJSON, "
                                "where a bad line is quarantined instead)")  # fmt: skip

    def __iter__(self) -> Iterator[SourceRow]:
        decoder = json.JSONDecoder()
        buf, pos, line_base, eof = "", 0, 1, False
        in_array: bool | None = None
        expect_value, after_comma = True, False

        def more() -> bool:
            nonlocal buf, pos, line_base, eof
            if eof:
                return False
            try:
                chunk = self.text.read(_READ_CHARS)
            except UnicodeDecodeError as exc:
                raise ImportInputError(f"{self.name}: not valid {self.encoding} text near line {line_base} "
                                       f"({exc.reason})") from None  # fmt: skip
            line_base += buf.count("\n", 0, pos)
            buf, pos = buf[pos:] + chunk, 0
            eof = not chunk
            return bool(chunk)

        def skip_ws() -> bool:
            nonlocal pos
            while True:
                while pos < len(buf) and buf[pos] in " \t\r\n":
                    pos += 1
                if pos < len(buf) or not more():
                    return pos < len(buf)

        def line_at(index: int) -> int:
            return line_base + buf.count("\n", 0, index)

        try:
            while True:
                if not skip_ws():
                    if in_array:
                        raise self._fail(line_at(pos), "the array is not closed with ']'")
                    return
                ch = buf[pos]
                if in_array is None:
                    in_array = ch == "["
                    if in_array:
                        pos += 1
                        continue
                if in_array:
                    if ch == "]":
                        if after_comma:
                            raise self._fail(line_at(pos), "a ',' is followed by ']' (trailing comma)")
                        pos += 1
                        if skip_ws():
                            raise self._fail(line_at(pos), "unexpected data after the closing ']'")
                        return
                    if not expect_value:
                        if ch != ",":
                            raise self._fail(line_at(pos), "expected ',' or ']' between records")
                        pos += 1
                        expect_value = after_comma = True
                        continue
                while True:
                    try:
                        value, end = decoder.raw_decode(buf, pos)
                        if end == len(buf) and not eof and not isinstance(value, (dict, list, str)):
                            raise ValueError("a number may continue in the next chunk")
                        break
                    except ValueError as exc:
                        if len(buf) - pos > _MAX_PENDING_CHARS:
                            too_big = f"a record exceeds {_MAX_PENDING_CHARS} characters"
                            raise self._fail(line_at(pos), too_big) from None
                        if not more():
                            msg = getattr(exc, "msg", str(exc))
                            raise self._fail(line_at(getattr(exc, "pos", pos)), msg) from None
                line = line_at(pos)
                raw = buf[pos:end]
                pos = end
                expect_value = after_comma = False
                yield self.checker.row(line, raw, value)
        finally:
            self.text.detach()


def open_rows(
    fmt: str,
    stream: IO[bytes],
    name: str,
    *,
    encoding: str = "utf-8",
    constants: Mapping[str, Any] | None = None,
    max_record_bytes: int = BATCH_RECORD_LIMIT,
    delimiter: str = ",",
    quotechar: str = '"',
    columns: Sequence[str] | None = None,
    has_header: bool = True,
) -> CsvRows | NdjsonRows | JsonRows:
    """The reader for ``fmt`` ('csv', 'ndjson' or 'json')."""
    if fmt == "csv":
        return CsvRows(stream, name, delimiter=delimiter, quotechar=quotechar, encoding=encoding, columns=columns,
                       has_header=has_header, constants=constants, max_record_bytes=max_record_bytes)  # fmt: skip
    if fmt == "ndjson":
        return NdjsonRows(stream, name, encoding=encoding, constants=constants, max_record_bytes=max_record_bytes)
    if fmt == "json":
        return JsonRows(stream, name, encoding=encoding, constants=constants, max_record_bytes=max_record_bytes)
    raise ImportInputError(f"Unknown input format {fmt!r}: use 'csv', 'ndjson' or 'json'")
