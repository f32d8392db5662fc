"""Streaming row readers for CSV, NDJSON and JSON (arrays or concatenated objects).

Each reader turns a decompressed binary stream into :class:`SourceRow` items: the source line number, the original
text (for the quarantine file), and either the record rendered for the upload body or the reason it was rejected.
Memory is bounded by one record; bad rows never stop the file, only file-level problems (a malformed CSV header,
broken JSON array syntax) do.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import io
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import IO, Any

from airflow_provider_lytics.imports.csv_lines import LineShape, block_body
from airflow_provider_lytics.imports.formats import ImportInputError
from airflow_provider_lytics.imports.validate import BATCH_RECORD_LIMIT, size_problem, structure_problem

_MAX_PENDING_CHARS = 8 * 1024 * 1024
#: A decoding error this far before the end of the buffer is not a token cut by the chunk edge ("-Infinity").
_LONGEST_TOKEN = 16
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


def _text_error(name: str, encoding: str, where: str, exc: UnicodeError) -> ImportInputError:
    """The whole-file text error: what is wrong and which encoding setting to try."""
    reason = getattr(exc, "reason", None) or str(exc)
    hint = "fix the file or set encoding to the one it was written in"
    if "BOM" in reason:
        hint = "set encoding='utf-16-le' or 'utf-16-be' (or 'utf-32-le'/'utf-32-be'), the byte order of the file"
    return ImportInputError(f"{name}: not valid {encoding} text {where} ({reason}); {hint}")


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
            except UnicodeError as exc:
                raise _text_error(self.name, self.encoding, f"after line {self.number}", exc) from None
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


def _split(text: str) -> tuple[list[str], bool]:
    """The lines of ``text`` without their newlines, and whether the last one had one."""
    parts = text.split("\n")
    if parts[-1]:
        return parts, False
    parts.pop()
    return parts, True


class _Feed:
    """Lines of a CSV file for the row-by-row path: the rest of a block of split lines, then the chunks after it.

    ``number`` is the number of the line just returned; lines can be pushed back to be read again. With
    ``raw=True`` the chunks are lists of whole lines (newlines included) read as they are.
    """

    def __init__(self, parts: list[str], pos: int, before: int, ends_nl: bool,
                 chunks: Iterator[str | list[str]], lines: _Lines, *, raw: bool = False) -> None:  # fmt: skip
        self._parts, self._pos, self._ends_nl, self._raw = parts, pos, ends_nl, raw
        self._last = before  # number of the last line taken from the source
        self._chunks, self._lines = chunks, lines
        self._back: list[tuple[int, str]] = []
        self.number = before
        #: Whether lines were taken from a chunk after the first block.
        self.pulled = False

    def __iter__(self) -> _Feed:
        return self

    def __next__(self) -> str:
        if self._back:
            self.number, text = self._back.pop()
            return text
        while self._pos >= len(self._parts):
            self._lines.number = self._last  # the next chunk numbers its undecodable lines from here
            chunk = next(self._chunks)
            if self._raw:
                self._parts = list(chunk)  # one line per item (an incremental decoder's lines)
            else:
                self._parts, self._ends_nl = _split(chunk if isinstance(chunk, str) else "".join(chunk))
            self._pos = 0
            self.pulled = True
        text = self._parts[self._pos]
        self._pos += 1
        self._last += 1
        self.number = self._last
        if not self._raw and (self._pos < len(self._parts) or self._ends_nl):
            text += "\n"
        return text

    def push_back(self, items: Sequence[tuple[int, str]]) -> None:
        """Return ``items`` (in file order) to be read again before the rest."""
        self._back.extend(reversed(items))

    def resume(self) -> int:
        """The number of the line before the first one not read yet."""
        return self._back[-1][0] - 1 if self._back else self._last

    def rest(self) -> tuple[list[str], bool]:
        """The lines not read yet (pushed-back ones first, newlines stripped) and whether the last had one."""
        parts = self._parts[self._pos :]
        if self._back:
            back = [text[:-1] if text.endswith("\n") else text for _, text in reversed(self._back)]
            parts = back + parts
        return parts, self._ends_nl


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
        #: A quoted row longer than this is over the record limit anyway: its quote is treated as runaway.
        self._runaway_chars = max(max_record_bytes, 1024)
        #: False: every row through the row-by-row path (the reference the fast path is tested against).
        self.fast = True

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

    def _parse_quoted(self, first: str, feed: _Feed) -> tuple[list[str] | None, str, str | None]:
        """Parse one row that contains the quote character (it may span lines); returns fields, raw, error.

        A row whose quoting is broken (a quote never closed, or not closed within :attr:`_runaway_chars`, or any
        other strict-mode error) yields an error for its first line only; the lines the parser looked at after it
        are pushed back and read again as rows, so one stray quote cannot swallow the rest of the file.
        """
        start = feed.number
        buf: list[tuple[int, str]] = []
        bound = self._runaway_chars
        total = len(first)

        def more() -> Iterator[str]:
            nonlocal total
            yield first
            for text in feed:
                buf.append((feed.number, text))
                total += len(text)
                if total > bound:
                    return
                yield text

        reader = csv.reader(more(), delimiter=self.delimiter, quotechar=self.quotechar, strict=True)
        try:
            fields = next(reader)
        except csv.Error as exc:
            if buf:
                feed.push_back(buf)
            feed.number = start
            if total > bound:
                return (
                    None,
                    first,
                    (
                        f"runaway quote: a quoted field opened on this line is not closed within {bound} characters; "
                        "the following lines were read as rows of their own"
                    ),
                )
            if buf and "unexpected end of data" in str(exc):
                return (
                    None,
                    first,
                    (
                        "unterminated quote: a quoted field opened on this line is never closed; the following "
                        "lines were read as rows of their own"
                    ),
                )
            return None, first, f"malformed CSV: {exc}"
        except StopIteration:
            return [], first, None
        return fields, first + "".join(t for _, t in buf), None

    def _block(self, parts: list[str], before: int, text: str | None = None) -> SourceRow:
        """Consecutive good lines (see :mod:`.csv_lines`) as one row of ``len(parts)`` rows; ``text``: the same
        lines already joined (optionally with a final newline)."""
        if text is None:
            text = "\n".join(parts)
        elif text.endswith("\n"):
            text = text[:-1]
        body = block_body(text, self._suffix) if self._suffix or "\r" in text else text
        return SourceRow(before + 1, text, body, rows=len(parts))

    def __iter__(self) -> Iterator[SourceRow]:
        lines = self.lines
        if self.columns and not self.has_header:
            self._set_header(self.columns, 0)
        chunks = lines.chunks()
        first: str | list[str] | None = None
        for whole in chunks:
            first = whole if self.header is not None else self._header_from(whole)
            if first:
                break
        if self.header is None and self.columns:
            self._set_header(self.columns, 0)
        if not first:
            return
        if not lines.per_line:
            yield from self._line_rows(_Feed(list(first), 0, lines.number, True, chunks, lines, raw=True))
        elif not self.fast:
            parts, ends_nl = _split(first if isinstance(first, str) else "".join(first))
            yield from self._line_rows(_Feed(parts, 0, lines.number, ends_nl, chunks, lines))
        else:
            yield from self._fast_rows(first if isinstance(first, str) else "".join(first), chunks)

    def _fast_rows(self, text: str, chunks: Iterator[str | list[str]]) -> Iterator[SourceRow]:
        """Rows of the file from ``text`` on: runs of good lines as blocks, the others one by one."""
        lines = self.lines
        shape = LineShape(len(self.header or ()), self.delimiter, self.quotechar,
                          self.max_record_bytes // 4 - len(self._suffix))  # fmt: skip
        parts, ends_nl = _split(text)
        before = lines.number
        while True:
            n = len(parts)
            bad = [k - before - 1 for k in lines.bad if before < k <= before + n] if lines.bad else ()
            good = shape.flags(parts, text, bad)
            if good is None:
                if n:
                    yield self._block(parts, before, text)
            else:
                pos, pulled = 0, False
                while pos < n:
                    try:
                        stop = good.index(False, pos)
                    except ValueError:
                        stop = n
                    if stop > pos:
                        yield self._block(parts[pos:stop], before + pos)
                    if stop == n:
                        break
                    feed = _Feed(parts, stop, before + stop, ends_nl, chunks, lines)
                    row = self._row(next(feed), feed)
                    if row is not None:
                        yield row
                    if feed.pulled:  # the row went on into the next chunk: carry on from where it stopped
                        before = feed.resume()
                        parts, ends_nl = feed.rest()
                        text = "\n".join(parts)
                        pulled = True
                        break
                    pos = feed.resume() - before
                if pulled:
                    continue
            lines.number = before + n
            chunk = next(chunks, None)
            if chunk is None:
                return
            text = chunk if isinstance(chunk, str) else "".join(chunk)
            parts, ends_nl = _split(text)
            before = lines.number

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

    def _line_rows(self, feed: _Feed) -> Iterator[SourceRow]:
        """Every row from ``feed`` on, one by one (the reference path)."""
        for text in feed:
            row = self._row(text, feed)
            if row is not None:
                yield row

    def _row(self, text: str, feed: _Feed) -> SourceRow | None:
        """The row starting with line ``text`` (None for a blank line); a quoted field may take more lines."""
        lines = self.lines
        start = feed.number
        if self.quotechar in text:
            fields, raw, error = self._parse_quoted(text, feed)
            if error is not None:
                return SourceRow(start, raw, None, error)
            if not fields or (len(fields) == 1 and not fields[0].strip()):
                return None
            count = len(fields)
        else:
            raw = text
            stripped = text.rstrip("\r\n")
            if not stripped.strip():
                return None
            count = stripped.count(self.delimiter) + 1
        if lines.bad:
            bad = [lines.bad.pop(n) for n in range(start, feed.number + 1) if n in lines.bad]
            if bad:
                return SourceRow(start, raw, None, bad[0])
        width = len(self.header or ())
        if count != width:
            return SourceRow(start, raw, None, f"row has {count} fields but the header has {width}")
        body = raw.rstrip("\r\n") + self._suffix
        if len(body) * 4 > self.max_record_bytes:
            problem = size_problem(len(body.encode()), self.max_record_bytes)
            if problem:
                return SourceRow(start, raw, None, problem)
        return SourceRow(start, raw, body)


#: Deepest object/array nesting a record may have. Lytics records are flat or a few levels deep; the limit is a
#: fixed number so that the verdict does not depend on the interpreter's recursion limit or stack depth.
MAX_NESTING = 64
TOO_DEEP = f"record is nested too deeply to be a Lytics record (more than {MAX_NESTING} levels of objects/arrays)"
LONE_SURROGATE = (
    "record contains a lone UTF-16 surrogate escape (such as \\ud800), which is not valid Unicode text; "
    "fix the escape in the source (a valid pair such as \\ud83d\\ude00 is fine)"
)
_SURROGATE = re.compile("[\ud800-\udfff]")


def _lone_surrogate(text: str) -> bool:
    return _SURROGATE.search(text) is not None


def _value_end(buf: str, pos: int) -> int | None:
    """End index of the JSON object/array starting at ``buf[pos]``, found without recursion (None if incomplete).

    Used only for a record too deeply nested for the recursive decoder, so it can be quarantined and skipped.
    """
    depth, i, n = 0, pos, len(buf)
    while i < n:
        ch = buf[i]
        if ch == '"':
            i += 1
            while i < n and buf[i] != '"':
                i += 2 if buf[i] == "\\" else 1
            if i >= n:
                return None
        elif ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    return None


def _nesting_depth(text: str) -> int:
    """Deepest ``[``/``{`` nesting in JSON text (brackets inside strings ignored), without recursion."""
    depth = deepest = 0
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch == '"':
            i += 1
            while i < n and text[i] != '"':
                i += 2 if text[i] == "\\" else 1
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
        i += 1
    return deepest


def _too_deep(text: str) -> bool:
    """Whether ``text`` nests deeper than :data:`MAX_NESTING` (the character scan runs only when it could)."""
    return text.count("[") + text.count("{") > MAX_NESTING and _nesting_depth(text) > MAX_NESTING


def _render_json(record: Mapping[str, Any]) -> str:
    return json.dumps(record, separators=(",", ":"), ensure_ascii=False, default=str)


class _JsonChecker:
    """Validate a parsed JSON value, merge constants and render it as one NDJSON line."""

    def __init__(self, constants: Mapping[str, Any] | None, max_record_bytes: int) -> None:
        self.constants = dict(constants or {})
        self.limit = max_record_bytes

    def row(self, line: int, raw: str, value: Any, passthrough: str | None = None) -> SourceRow:
        if _too_deep(raw):
            return SourceRow(line, raw, None, TOO_DEEP)
        try:
            problem = structure_problem(value)
        except RecursionError:
            problem = TOO_DEEP
        if problem:
            return SourceRow(line, raw, None, problem)
        if self.constants:
            value = {**value, **self.constants}
            passthrough = None
        body = passthrough if passthrough is not None else _render_json(value)
        if "\\u" in raw and _lone_surrogate(body if passthrough is None else _render_json(value)):
            return SourceRow(line, raw, None, LONE_SURROGATE)
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
            if _too_deep(stripped):
                yield SourceRow(number, text, None, TOO_DEEP)
                continue
            try:
                value = loads(stripped)
            except RecursionError:
                yield SourceRow(number, text, None, TOO_DEEP)
                continue
            except ValueError as exc:
                msg = getattr(exc, "msg", str(exc))
                col = getattr(exc, "colno", None)
                yield SourceRow(number, text, None, f"not valid JSON: {msg}" + (f" at column {col}" if col else ""))
                continue
            yield checker.row(number, text, value, stripped)


class JsonRows:
    """A JSON array of objects, or objects one after another (pretty-printed or not), read incrementally.

    A syntax error inside an array cannot be skipped safely, so it stops the file with its line number; the
    import checks the whole file first (:func:`checked_json`), so such a file sends nothing.
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
        #: Only check the syntax (see :func:`checked_json`): records are counted, not yielded.
        self.syntax_only = False
        self.records = 0

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
            except UnicodeError as exc:
                raise _text_error(self.name, self.encoding, f"near line {line_base}", exc) from None
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
                too_deep = False
                while True:
                    try:
                        value, end = decoder.raw_decode(buf, pos)
                        if end == len(buf) and not eof and not isinstance(value, (dict, list, str)):
                            raise ValueError("a number may continue in the next chunk")
                        break
                    except RecursionError:
                        found = _value_end(buf, pos)
                        if found is not None:
                            value, end, too_deep = None, found, True
                            break
                        if len(buf) - pos > _MAX_PENDING_CHARS or not more():
                            raise self._fail(line_at(pos), "a record is nested too deeply and not closed") from None
                    except ValueError as exc:
                        msg = getattr(exc, "msg", str(exc))
                        where = line_at(getattr(exc, "pos", pos))  # before more() moves the buffer
                        at = getattr(exc, "pos", len(buf))
                        if at < len(buf) - _LONGEST_TOKEN and not msg.startswith("Unterminated string"):
                            raise self._fail(where, msg) from None  # more data cannot mend it
                        if len(buf) - pos > _MAX_PENDING_CHARS:
                            too_big = f"a record exceeds {_MAX_PENDING_CHARS} characters"
                            raise self._fail(line_at(pos), too_big) from None
                        if not more():
                            raise self._fail(where, msg) from None
                line = line_at(pos)
                raw = buf[pos:end]
                pos = end
                expect_value = after_comma = False
                if self.syntax_only:
                    self.records += 1
                elif too_deep:
                    yield SourceRow(line, raw, None, TOO_DEEP)
                else:
                    yield self.checker.row(line, raw, value)
        finally:
            self.text.detach()


class _Tee(io.RawIOBase):
    """Read ``inner`` and copy everything read into ``copy``."""

    def __init__(self, inner: IO[bytes], copy: IO[bytes]) -> None:
        super().__init__()
        self.inner, self.copy = inner, copy

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self.inner.read(len(buffer))
        self.copy.write(data)
        buffer[: len(data)] = data
        return len(data)


@contextlib.contextmanager
def checked_json(stream: IO[bytes], name: str, *, encoding: str = "utf-8", tmp_dir: str | None = None
                 ) -> Iterator[IO[bytes]]:  # fmt: skip
    """Check a JSON file's syntax to its end, then yield its bytes again for the real read.

    A broken array cannot be resumed past the break, so it must stop the file before any record is sent: the
    first pass copies the bytes to an unnamed temporary file (disk, not memory) while checking them, and only
    a file whose syntax is sound is read again. Record-level problems are left to the second pass (quarantine).
    """
    from airflow_provider_lytics.imports.verified import anonymous_spool

    with anonymous_spool(tmp_dir) as spool:
        checker = JsonRows(io.BufferedReader(_Tee(stream, spool), 1 << 16), name, encoding=encoding)  # type: ignore[arg-type]
        checker.syntax_only = True
        for _ in checker:
            pass
        spool.flush()
        spool.seek(0)
        yield spool


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
