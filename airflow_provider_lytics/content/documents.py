"""Read content documents from files (CSV, NDJSON, JSON; gzip or zip) or DataFrames, and check each one.

A document is one JSON object for ``POST /api/content/corpus``: ``url`` (required), optional ``title``,
``description``, ``text``, ``author``, ``topics`` (a list, or ``|``-separated text in CSV), ``primary_image``,
``created`` and custom flat attributes. A document that cannot be sent is yielded with the reason, never dropped,
so the import can keep it in its rejects file.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import IO, Any
from urllib.parse import urlsplit

from airflow_provider_lytics.imports.formats import ImportInputError, infer_format, open_parts
from airflow_provider_lytics.imports.sources import SourceFile

#: Text longer than this is refused before sending (Lytics classifies a summary as well as a whole article).
MAX_TEXT_CHARS = 256 * 1024
#: A whole document larger than this is refused before sending.
MAX_DOCUMENT_BYTES = 1024 * 1024
MAX_URL_CHARS = 2048
CSV_LIST_SEPARATOR = "|"
_LIST_COLUMNS = ("topics", "aspects")
#: ``scheme:`` without ``//`` (``mailto:x``); a host with a port (``example.com:8080``) is not one.
_BARE_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):(?!\d)")


@dataclass(slots=True)
class SourceDocument:
    """One input row: ``document`` to send, or ``error`` saying why it will not be sent."""

    source: str
    line: int
    raw: str
    document: dict[str, Any] | None
    error: str | None = None


def check_document(value: Any) -> tuple[dict[str, Any] | None, str | None]:
    """``(document, None)`` when ``value`` can be sent to the corpus API, else ``(None, reason)``."""
    if not isinstance(value, Mapping):
        kind = "array" if isinstance(value, list) else type(value).__name__
        return None, f"document is a JSON {kind}, not an object"
    doc: dict[str, Any] = {}
    for key, item in value.items():
        if item is None or item == "" or (isinstance(item, float) and math.isnan(item)):
            continue
        if not isinstance(key, str) or not key[:1].isalpha():
            return None, f"attribute name {key!r} must start with a letter"
        if isinstance(item, Mapping) or (isinstance(item, list) and any(isinstance(v, (dict, list)) for v in item)):
            return None, f"attribute {key!r} must be a text, number, boolean or list of them, not a nested object"
        doc[key] = item
    url = doc.get("url")
    if not isinstance(url, str) or not url.strip():
        return None, 'document has no "url" (the page address identifies a document)'
    problem = _url_problem(url.strip())
    if problem:
        return None, problem
    doc["url"] = url.strip()
    for name in ("title", "description", "text", "author"):
        if name in doc and not isinstance(doc[name], str):
            doc[name] = str(doc[name])
    if len(doc.get("text", "")) > MAX_TEXT_CHARS:
        return None, f'"text" is {len(doc["text"])} characters; send at most {MAX_TEXT_CHARS} (a summary works)'
    size = len(json.dumps(doc, ensure_ascii=False, default=str).encode())
    if size > MAX_DOCUMENT_BYTES:
        return None, f"document is {size} bytes; the corpus API takes at most {MAX_DOCUMENT_BYTES}"
    return doc, None


def _url_problem(url: str) -> str | None:
    if len(url) > MAX_URL_CHARS:
        return f'"url" is {len(url)} characters; the limit is {MAX_URL_CHARS}'
    if any(c.isspace() for c in url):
        return f'"url" {url[:80]!r} contains whitespace; percent-encode it'
    bare = _BARE_SCHEME.match(url) if "://" not in url else None  # mailto:, javascript: ...
    parts = urlsplit(url if "://" in url else f"//{url}")
    if (bare and bare.group(1).lower() not in ("http", "https")) or (
        parts.scheme and parts.scheme.lower() not in ("http", "https")
    ):
        return f'"url" {url[:80]!r} is not an http(s) address'
    host = parts.hostname or ""
    if "." not in host.strip("."):
        return f'"url" {url[:80]!r} has no host name (e.g. https://example.com/path)'
    return None


def _text(stream: IO[bytes], encoding: str) -> IO[str]:
    return io.TextIOWrapper(stream, encoding=codecs.lookup(encoding).name + ("-sig" if encoding == "utf-8" else ""),
                            newline="")  # fmt: skip


def _csv_rows(part: str, stream: IO[bytes], encoding: str, delimiter: str) -> Iterator[SourceDocument]:
    reader = csv.reader(_text(stream, encoding), delimiter=delimiter)
    header = next(reader, None)
    if not header or not any(h.strip() for h in header):
        raise ImportInputError(f"{part} has no header row; the first row must name the columns (url, title, ...)")
    names = [h.strip() for h in header]
    if "url" not in names:
        raise ImportInputError(f"{part} has no 'url' column; columns found: {', '.join(names)}")
    for values in reader:
        line = reader.line_num
        if not any(v.strip() for v in values):
            continue
        raw = delimiter.join(values)
        if len(values) != len(names):
            yield SourceDocument(part, line, raw, None, f"row has {len(values)} values for {len(names)} columns")
            continue
        record: dict[str, Any] = dict(zip(names, values, strict=True))
        for name in _LIST_COLUMNS:
            if record.get(name):
                record[name] = [t.strip() for t in record[name].split(CSV_LIST_SEPARATOR) if t.strip()]
        doc, error = check_document(record)
        yield SourceDocument(part, line, raw, doc, error)


def _json_lines(part: str, stream: IO[bytes], encoding: str) -> Iterator[SourceDocument]:
    for line, text in enumerate(_text(stream, encoding), 1):
        if not text.strip():
            continue
        try:
            value = json.loads(text)
        except ValueError as exc:
            yield SourceDocument(part, line, text, None, f"not valid JSON: {exc}")
            continue
        doc, error = check_document(value)
        yield SourceDocument(part, line, text, doc, error)


def _json_array(part: str, stream: IO[bytes], encoding: str) -> Iterator[SourceDocument]:
    text = _text(stream, encoding).read()
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise ImportInputError(f"{part} is not valid JSON ({exc}); fix the file or send NDJSON") from None
    items = value if isinstance(value, list) else [value]
    for index, item in enumerate(items, 1):
        doc, error = check_document(item)
        yield SourceDocument(part, index, json.dumps(item, ensure_ascii=False, default=str)[:65536], doc, error)


def read_documents(
    source: SourceFile,
    *,
    fmt: str | None = None,
    compression: str = "infer",
    encoding: str = "utf-8",
    delimiter: str = ",",
) -> Iterator[SourceDocument]:
    """Every document of ``source`` (each zip member in turn), checked. ``line`` is the row's line in its part
    (CSV, NDJSON) or its 1-based position (a JSON array)."""
    with source.open() as stream:
        for part, part_stream in open_parts(stream, source.name, compression=compression):
            kind = infer_format(part, fmt or source.fmt_hint)
            if kind == "csv":
                yield from _csv_rows(part, part_stream, encoding, delimiter)
            elif kind == "ndjson":
                yield from _json_lines(part, part_stream, encoding)
            else:
                yield from _json_array(part, part_stream, encoding)
