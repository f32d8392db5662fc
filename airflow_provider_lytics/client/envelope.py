"""Parsing of Lytics response envelopes (v1 ``/api``+``/collect`` and v2 ``/v2``), quirks included.

Quirks handled here so that no caller has to know them:
- ``status`` is usually the HTTP code as an int but some v1 endpoints send the string ``"success"``;
- the scan cursor is ``_next`` in fixtures and newer docs, ``next`` in older prose;
- v2 errors carry ``errors[]`` (spec) and/or a top-level ``message`` (live behaviour);
- some 5xx responses have an empty or non-JSON body.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_lytics.client.errors import LyticsApiError, error_class_for

_MAX_MESSAGE = 500


@dataclass(frozen=True)
class Envelope:
    """A decoded success response. ``data`` is the payload; the other keys are kept for paging and meta."""

    http_status: int
    data: Any
    message: str = ""
    request_id: str | None = None
    next_cursor: str | None = None
    total: int | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict)


def _fast_decoder() -> Any:
    """msgspec's JSON decoder when installed (it ships with Airflow): scan pages decode several times faster."""
    try:
        import msgspec
    except ImportError:
        return None
    return msgspec.json.Decoder()


_DECODER = _fast_decoder()


def decode_json(body: bytes) -> Any:
    """Decode a body that should be JSON; return ``None`` for an empty or non-JSON body."""
    if not body or not body.strip():
        return None
    if _DECODER is not None:
        try:
            return _DECODER.decode(body)
        except Exception:  # msgspec refuses a few things json accepts (e.g. NaN): fall through
            pass
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    return None


def parse_success(http_status: int, body: bytes) -> Envelope:
    """Decode a 2xx response. A 204 or empty body yields ``data=None``."""
    doc = decode_json(body)
    if not isinstance(doc, dict):
        return Envelope(http_status=http_status, data=doc)
    cursor = doc.get("_next", doc.get("next"))
    meta = doc.get("meta") if isinstance(doc.get("meta"), dict) else doc.get("_meta")
    return Envelope(
        http_status=http_status,
        data=doc.get("data"),
        message=str(doc.get("message") or ""),
        request_id=doc.get("request_id"),
        next_cursor=str(cursor) if cursor else None,
        total=_as_int(doc.get("total")),
        meta=meta if isinstance(meta, dict) else {},
        raw=doc,
    )


def _cursor_decoder() -> tuple[Any, Any]:
    """A msgspec decoder that reads a scan page's cursor and skips over its rows (kept as raw bytes), and the
    marker it leaves on an absent ``_next``; ``(None, None)`` without msgspec."""
    try:
        import msgspec
    except ImportError:
        return None, None

    page = msgspec.defstruct(  # built here, not as a class: msgspec is optional and annotations are strings
        "ScanPageCursor",
        [("data", msgspec.Raw, msgspec.Raw(b"null")), ("cursor", Any, msgspec.UNSET), ("old_cursor", Any, None)],
        rename={"cursor": "_next", "old_cursor": "next"},
    )

    return msgspec.json.Decoder(page), msgspec.UNSET


_CURSOR_DECODER, _ABSENT = _cursor_decoder()


def scan_continuation(body: bytes) -> tuple[str | None, bool]:
    """``(next_cursor, has_rows)`` of a 2xx scan page, as :func:`parse_success` would read them, without
    building the rows (the scan process forwards page bodies and only needs to know where to go next)."""
    if _CURSOR_DECODER is not None:
        try:
            page = _CURSOR_DECODER.decode(body)
        except Exception:  # not an object, NaN, ...: the full parser decides
            pass
        else:
            cursor = page.old_cursor if page.cursor is _ABSENT else page.cursor  # "_next" wins, as in parse_success
            data = bytes(page.data).strip()
            return (str(cursor) if cursor else None), data.startswith(b"[") and bool(data[1:-1].strip())
    env = parse_success(200, body)
    return env.next_cursor, isinstance(env.data, list) and bool(env.data)


def build_error(
    http_status: int,
    body: bytes,
    *,
    method: str,
    path: str,
    header_request_id: str | None = None,
    retry_after: float | None = None,
    attempts: int = 1,
) -> LyticsApiError:
    """Turn an error response into the matching typed exception, whatever envelope (if any) it carries."""
    doc = decode_json(body)
    message, codes, request_id = "", [], header_request_id
    if isinstance(doc, dict):
        message = str(doc.get("message") or "")
        request_id = doc.get("request_id") or request_id
        for item in doc.get("errors") or []:
            if isinstance(item, dict):
                if item.get("code"):
                    codes.append(str(item["code"]))
                if not message and item.get("message"):
                    message = str(item["message"])
    elif body:
        message = body[:_MAX_MESSAGE].decode("utf-8", "replace").strip()
    if not message:
        message = f"HTTP {http_status} with no error message"
    cls = error_class_for(http_status, message)
    return cls(
        http_status,
        message[:_MAX_MESSAGE],
        method=method,
        path=path,
        request_id=request_id,
        codes=codes,
        attempts=attempts,
        retry_after=retry_after,
    )


def entity_not_found(envelope: Envelope) -> bool:
    """True for the entity API's 200-with-"Not Found" answer (and its "Timed out" sibling)."""
    message = envelope.message.strip().lower()
    if message in {"not found", "timed out"}:
        return True
    data = envelope.data
    return isinstance(data, dict) and "not_found" in (data.get("segments") or []) and len(data) == 1
